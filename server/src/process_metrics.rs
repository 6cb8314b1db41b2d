//! The process's own series in the names Prometheus client libraries use (`process_*`), read
//! from `/proc/self` at scrape time, and the build's `accord_build_info`. Where `/proc` is not
//! there (not Linux), the `process_*` series are left out.

use crate::metrics::family;
use std::fmt::Write;

/// Clock ticks per second of `/proc/self/stat`'s times: Linux's `USER_HZ`, 100 on every
/// architecture it exposes to user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// Appends `accord_build_info` and the `process_*` series to `o`.
pub fn write(o: &mut String) {
    family(
        o,
        "accord_build_info",
        "gauge",
        "The running build (value always 1): version and profile.",
    );
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let _ = writeln!(
        o,
        "accord_build_info{{version=\"{}\",profile=\"{profile}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let Some(sample) = Sample::read() else {
        return;
    };
    let mut series = |name: &str, kind: &str, help: &str, value: f64| {
        family(o, name, kind, help);
        let _ = writeln!(o, "{name} {value}");
    };
    series(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        sample.cpu_seconds,
    );
    series(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        sample.resident_bytes as f64,
    );
    series(
        "process_resident_memory_max_bytes",
        "gauge",
        "Peak resident memory size in bytes since the process started (VmHWM).",
        sample.resident_peak_bytes as f64,
    );
    series(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        sample.virtual_bytes as f64,
    );
    series(
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        sample.open_fds as f64,
    );
    if let Some(max) = sample.max_fds {
        series(
            "process_max_fds",
            "gauge",
            "Most open file descriptors allowed (the soft limit).",
            max as f64,
        );
    }
    series(
        "process_threads",
        "gauge",
        "Threads of the process.",
        sample.threads as f64,
    );
    if let Some(start) = sample.start_time_seconds {
        series(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            start,
        );
    }
}

/// What `/proc/self` says now.
struct Sample {
    cpu_seconds: f64,
    resident_bytes: u64,
    resident_peak_bytes: u64,
    virtual_bytes: u64,
    open_fds: u64,
    max_fds: Option<u64>,
    threads: u64,
    start_time_seconds: Option<f64>,
}

impl Sample {
    fn read() -> Option<Sample> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        };
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // Field numbers of proc(5) less 3: utime 14, stime 15, num_threads 20, starttime 22.
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let cpu_ticks = field(14)? + field(15)?;
        let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        let start_time_seconds = match (boot_time, field(22)) {
            (Some(boot), Some(ticks)) => Some(boot as f64 + ticks as f64 / TICKS_PER_SECOND),
            _ => None,
        };
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse::<u64>().ok())
            });
        Some(Sample {
            cpu_seconds: cpu_ticks as f64 / TICKS_PER_SECOND,
            resident_bytes: kib("VmRSS:")? * 1024,
            resident_peak_bytes: kib("VmHWM:")? * 1024,
            virtual_bytes: kib("VmSize:")? * 1024,
            open_fds,
            max_fds,
            threads: field(20)?,
            start_time_seconds,
        })
    }
}
