//! `fuzz-tool seeds DIR`: writes each target's seed corpus to DIR/TARGET/.
//! `fuzz-tool replay TARGET PATH...`: runs the target's checks on each file (or each file of each
//! directory) without AFL, naming the file before it runs; an invariant that does not hold panics
//! with its message (and a stack trace under `RUST_BACKTRACE=1`).

use accord_fuzz::{seeds, Target};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seeds") if args.len() == 2 => {
            let dir = Path::new(&args[1]);
            for target in Target::ALL {
                let out = dir.join(target.name());
                if let Err(e) = std::fs::create_dir_all(&out) {
                    eprintln!("{}: {e}", out.display());
                    return ExitCode::from(2);
                }
                let list = seeds::seeds(target);
                for (name, bytes) in &list {
                    if let Err(e) = std::fs::write(out.join(name), bytes) {
                        eprintln!("{}: {e}", out.join(name).display());
                        return ExitCode::from(2);
                    }
                }
                println!("{}: {} seeds", target.name(), list.len());
            }
            ExitCode::SUCCESS
        }
        Some("replay") if args.len() >= 3 => {
            let Some(target) = Target::from_name(&args[1]) else {
                eprintln!("unknown target `{}`", args[1]);
                return ExitCode::from(2);
            };
            target.prepare();
            let mut files = Vec::new();
            for path in &args[2..] {
                collect(Path::new(path), &mut files);
            }
            for file in &files {
                let bytes = match std::fs::read(file) {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("{}: {e}", file.display());
                        return ExitCode::from(2);
                    }
                };
                eprintln!("{}", file.display());
                target.check(&bytes);
            }
            println!(
                "{}: {} inputs, every invariant held",
                target.name(),
                files.len()
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: fuzz-tool seeds DIR | fuzz-tool replay TARGET PATH...\ntargets: {}",
                Target::ALL.map(Target::name).join(", ")
            );
            ExitCode::from(2)
        }
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for entry in entries {
            let hidden = entry
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') || n == "README.txt");
            if entry.is_file() && !hidden {
                out.push(entry);
            }
        }
    } else {
        out.push(path.to_owned());
    }
}
