//! This process's CPU time and peak memory, from /proc (Linux), for the benchmarks' tables.

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// User + system CPU time of this process (all threads, finished ones included), in ms.
pub fn cpu_ms() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').ok_or("bad /proc/self/stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    // USER_HZ is 100 on Linux (x86_64 and arm64).
    Ok(ticks * 10)
}

/// Peak resident set size (VmHWM) of this process, in KiB.
pub fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
}
