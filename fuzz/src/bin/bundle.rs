//! AFL target `bundle`: see [`accord_fuzz::Target`] and CONTRIBUTING.md ("Fuzzing").

fn main() {
    let target = accord_fuzz::Target::from_name("bundle").expect("a target");
    target.prepare();
    afl::fuzz!(|data: &[u8]| {
        target.check(data);
    });
}
