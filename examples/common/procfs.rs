//! This process's CPU time and memory, from /proc (Linux), for the benchmarks' tables.
//! Included with `#[path = "common/procfs.rs"] mod procfs;` (each example uses a part).
#![allow(dead_code)]

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// User + system CPU time of this process (all threads, finished ones included), in ms.
pub fn cpu_ms() -> Result<u64> {
    Ok(stat_ms("/proc/self/stat").ok_or("bad /proc/self/stat")?.1)
}

/// A process's or thread's name and user + system CPU time in ms, from its `stat` file.
pub fn stat_ms(path: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux (x86_64 and arm64).
    Some((name, ticks * 10))
}

/// Peak resident set size (VmHWM) of this process, in KiB.
pub fn peak_rss_kib() -> Result<u64> {
    status_kib("VmHWM")
}

/// Resident set size now (VmRSS) of this process, in KiB.
pub fn rss_kib() -> Result<u64> {
    status_kib("VmRSS")
}

/// A `<field>: N kB` line of /proc/self/status.
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("bad {field}"))?
        .parse()?)
}

/// Where this process's resident memory is now, from /proc/self/smaps, as `key=KiB` fields:
/// `rss`, `anon` (private anonymous: heap, malloc arenas, thread stacks), `heap` (the `[heap]`
/// mapping, the main arena), `anon_maps` (anonymous mappings: the other threads' malloc arenas,
/// thread stacks, large allocations), `exe` (this binary's own pages: the statically linked
/// plugin's code, shared clean), `libs` (every other file mapping: GStreamer, GLib, libc…), and
/// `threads`. The swarm benchmark prints it per run, so a change in one part shows.
pub fn rss_split() -> Result<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let exe = std::fs::read_link("/proc/self/exe")?;
    let exe = exe.to_string_lossy();
    let (mut rss, mut anon, mut heap, mut anon_maps, mut exe_kib, mut libs) = (0u64, 0, 0, 0, 0, 0);
    let mut path = String::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let Some(first) = f.next() else { continue };
        if first.contains('-') && !first.ends_with(':') {
            // A mapping header: address perms offset dev inode [path].
            path = f.nth(4).unwrap_or("").to_string();
            continue;
        }
        let kib: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match first {
            "Rss:" => {
                rss += kib;
                match path.as_str() {
                    "[heap]" => heap += kib,
                    "" => anon_maps += kib,
                    p if p == exe => exe_kib += kib,
                    p if p.starts_with('[') => {}
                    _ => libs += kib,
                }
            }
            "Anonymous:" => anon += kib,
            _ => {}
        }
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .map_or("0", str::trim);
    Ok(format!(
        "rss_now_kib={rss} anon_kib={anon} heap_kib={heap} anon_maps_kib={anon_maps} \
         exe_kib={exe_kib} libs_kib={libs} threads={threads}"
    ))
}
