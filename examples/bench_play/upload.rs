//! `bench-play upload`: what serving peers costs one element (bench/upload.sh).
//!
//! One seeder and N downloaders, all `bench-play peer` processes (swarm.rs) on the real tracker,
//! the origin in this process:
//!
//! 1. The seeder (`max-upload-rate` 0 = unlimited, unless `--seeder-rate`; fakesink
//!    sync=false) fetches the whole VOD over HTTP as fast as it comes and stays in the swarm.
//! 2. Once it reached EOS (everything stored), the N downloaders join `--stagger` s apart with
//!    `p2p-upload=false` (they never serve each other: every P2P byte comes from the seeder)
//!    and fakesink sync=true with `p2p-download-time-window` `--window` s, so after a first
//!    window's burst each pulls at playback rate: N x the stream's bit rate from the seeder.
//! 3. The serving window runs from the first downloader's spawn to the last one's EOS. The
//!    seeder's CPU (user+system, /proc/PID/stat, all threads) over it is divided by its wall
//!    time: % of one core. With the bytes it uploaded (its `p2p-upload-bytes`) this gives
//!    CPU-ms per MB, the figure that does not depend on how many downloaders this machine
//!    could run beside it; `at 5 MB/s` extrapolates it to 8 x 5 Mbit/s.
//!
//! Per-thread CPU (/proc/PID/task/*/stat, grouped by thread name) says which part (tokio
//! workers, GStreamer streaming threads, ...) it went to; `--perf-out FILE` also records
//! `perf record --call-graph dwarf` on the seeder over the window.

use std::collections::BTreeMap;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::procfs::stat_ms;
use crate::swarm::{self, unix_ms, Kind};
use crate::Result;

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// CPU ms per thread name (threads of one name summed; digits stripped so that
/// `tokio-rt-0`, `tokio-rt-1` count as one).
fn threads_ms(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let p = e.path().join("stat");
        if let Some((name, ms)) = stat_ms(&p.to_string_lossy()) {
            let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
            *out.entry(name.to_string()).or_insert(0) += ms;
        }
    }
    out
}

fn kv(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn upload(args: &[String]) -> Result<()> {
    let (mut n, mut stagger, mut window) = (8usize, 0.5f64, 10.0f64);
    let mut seeder_rate = 0u64;
    let mut perf_out = None::<String>;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--downloaders" => n = val()?.parse()?,
            "--stagger" => stagger = val()?.parse()?,
            "--window" => window = val()?.parse()?,
            "--seeder-rate" => seeder_rate = val()?.parse()?,
            "--perf-out" => perf_out = Some(val()?),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let spec = crate::stream::StreamSpec::upload();
    let dir = crate::stream::generate(&spec)?;
    let vod_secs = spec.secs as f64;
    let (origin, url, vod_bytes) = swarm::serve(&dir, Kind::Vod { secs: vod_secs })?;
    let stream_mbps = vod_bytes as f64 * 8.0 / vod_secs / 1e6;
    println!(
        "stream: {} s of 720p{} H.264 {} kbit/s + AAC, {}-s segments: {:.1} MB, {:.2} Mbit/s",
        spec.secs,
        spec.fps,
        spec.renditions[0].video_kbps,
        spec.seg_secs,
        vod_bytes as f64 / 1e6,
        stream_mbps
    );
    let tracker = swarm::Tracker::start()?;
    let exe = std::env::current_exe()?;
    let t0 = unix_ms();
    let deadline = t0 + (60.0 + stagger * n as f64 + vod_secs + 60.0) * 1e3;
    let (tx, rx) = mpsc::channel::<swarm::PeerLine>();
    let spawn = |i: usize, extra: &[String]| -> Result<Proc> {
        let (child, stdin) = swarm::spawn_peer(
            Command::new(&exe)
                .args(["peer", "--uri", url.as_str(), "--tracker"])
                .arg(tracker.url())
                .args(["--until-ms", format!("{:.0}", deadline + 5e3).as_str()])
                .args(extra),
            i,
            &tx,
        )?;
        Ok(Proc { child, stdin })
    };
    let set = |kv: &str| ["--set".to_string(), kv.to_string()];
    // Index 0 is the seeder, 1..=n the downloaders.
    let mut procs = vec![spawn(
        0,
        &[
            vec!["--sync".into(), "false".into()],
            set(&format!("max-upload-rate={seeder_rate}")).to_vec(),
        ]
        .concat(),
    )?];
    let seeder_pid = procs[0].child.id();
    eprintln!(
        "[upload] seeder pid {seeder_pid} (max-upload-rate {seeder_rate} B/s{}), tracker {}",
        if seeder_rate == 0 { " = unlimited" } else { "" },
        tracker.url()
    );
    let mut ends: Vec<Option<BTreeMap<String, String>>> = vec![None; n + 1];
    let mut eos = vec![false; n + 1];
    let mut exited = vec![false; n + 1];
    let mut up_series: Vec<(f64, f64)> = Vec::new();
    let mut cpu_series: Vec<(f64, u64)> = Vec::new();
    let mut errors = 0;
    let mut handle = |ends: &mut Vec<Option<BTreeMap<String, String>>>,
                      eos: &mut Vec<bool>,
                      exited: &mut Vec<bool>,
                      up_series: &mut Vec<(f64, f64)>,
                      (i, at, line): (usize, f64, String)| {
        let word = line.split_whitespace().next().unwrap_or("");
        match word {
            "EOS" => eos[i] = true,
            "STATS" if i == 0 => {
                let f = kv(&line);
                let up = f.get("up").and_then(|v| v.parse().ok()).unwrap_or(0.0);
                up_series.push((at, up));
            }
            "STALL" | "ERROR" => {
                if word == "ERROR" {
                    errors += 1;
                }
                eprintln!(
                    "[upload] {} {i}: {line}",
                    if i == 0 { "seeder" } else { "peer" }
                );
            }
            "END" => ends[i] = Some(kv(&line)),
            "EXIT" => exited[i] = true,
            _ => {}
        }
    };

    // 1. The seeder fetches everything.
    while !eos[0] {
        if unix_ms() > t0 + 120e3 || exited[0] {
            return Err("the seeder did not reach EOS within 120 s".into());
        }
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(100)) {
            handle(&mut ends, &mut eos, &mut exited, &mut up_series, m);
        }
    }
    let seeded_s = (unix_ms() - t0) / 1e3;
    eprintln!("[upload] seeder has the whole VOD after {seeded_s:.1} s; downloaders join");
    std::thread::sleep(Duration::from_secs(1));

    // 2. The downloaders.
    let t_start = unix_ms();
    let cpu0 = stat_ms(&format!("/proc/{seeder_pid}/stat"))
        .ok_or("seeder gone")?
        .1;
    let threads0 = threads_ms(seeder_pid);
    let perf = match &perf_out {
        Some(path) => Some(
            Command::new("perf")
                .args(["record", "--call-graph", "dwarf,16384", "-o", path, "-p"])
                .arg(seeder_pid.to_string())
                .stdout(Stdio::null())
                .spawn()?,
        ),
        None => None,
    };
    let mut next_sample = t_start;
    loop {
        let now = unix_ms();
        while procs.len() < n + 1 && now >= t_start + stagger * 1e3 * (procs.len() - 1) as f64 {
            let i = procs.len();
            let extra = [
                set("p2p-upload=false"),
                set(&format!("p2p-download-time-window={window}")),
            ]
            .concat();
            procs.push(spawn(i, &extra)?);
        }
        if now >= next_sample {
            if let Some((_, ms)) = stat_ms(&format!("/proc/{seeder_pid}/stat")) {
                cpu_series.push((now, ms));
            }
            next_sample += 1e3;
        }
        let all_eos = procs.len() == n + 1 && eos[1..].iter().all(|e| *e);
        if all_eos || now >= deadline || exited[0] {
            break;
        }
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(50)) {
            handle(&mut ends, &mut eos, &mut exited, &mut up_series, m);
        }
    }
    let t_end = unix_ms();
    let cpu1 = stat_ms(&format!("/proc/{seeder_pid}/stat"))
        .ok_or("seeder gone")?
        .1;
    let threads1 = threads_ms(seeder_pid);
    if let Some(mut p) = perf {
        // perf writes its file on SIGINT; by PID.
        let _ = Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
    }

    // 3. Stop everyone (stdin EOF: each reports END and exits), then by PID.
    for p in procs.iter_mut() {
        p.stdin.take();
    }
    let stop_by = unix_ms() + 20e3;
    while !exited.iter().all(|e| *e) && unix_ms() < stop_by {
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(100)) {
            handle(&mut ends, &mut eos, &mut exited, &mut up_series, m);
        }
    }
    for p in procs.iter_mut() {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
    drop(tracker);

    let wall_ms = t_end - t_start;
    let cpu_ms = cpu1.saturating_sub(cpu0) as f64;
    let g = |i: usize, k: &str| -> f64 {
        ends[i]
            .as_ref()
            .and_then(|f| f.get(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // The seeder's upload counter at its last STATS line (1 s apart) at or before `t`.
    let up_at = |t: f64| {
        up_series
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map_or(0.0, |x| x.1)
    };
    // Uploaded in the window: its final count (once every downloader has it all nobody asks
    // for more) minus what it had uploaded before (nothing: nobody else was there).
    let up_total = g(0, "up");
    let up_window = (up_total - up_at(t_start)).max(0.0);
    let dl_p2p: f64 = (1..=n).map(|i| g(i, "p2p")).sum();
    let dl_http: f64 = (1..=n).map(|i| g(i, "http")).sum();
    let stalls: f64 = (1..=n).map(|i| g(i, "stalls")).sum();
    let dl_cpu: Vec<f64> = (1..=n)
        .map(|i| 100.0 * g(i, "cpu_ms") / g(i, "wall_ms").max(1.0))
        .collect();
    let mb = up_window / 1e6;
    let cpu_pct = 100.0 * cpu_ms / wall_ms;
    let ms_per_mb = if mb > 0.0 { cpu_ms / mb } else { f64::NAN };
    let rate = mb / (wall_ms / 1e3);
    // Busiest 10 s: CPU and bytes over the same 10 s (1-s samples of both).
    let mut peak = (0.0f64, 0.0f64);
    for w in cpu_series.windows(11) {
        let (a, b) = (w[0], w[10]);
        let pct = 100.0 * (b.1 - a.1) as f64 / (b.0 - a.0);
        let r = (up_at(b.0) - up_at(a.0)) / 1e6 / ((b.0 - a.0) / 1e3);
        if r > peak.1 {
            peak = (pct, r);
        }
    }
    println!(
        "UPLOAD_RUN seeder_cpu_pct={cpu_pct:.1} cpu_ms={cpu_ms:.0} wall_s={:.1} up_mb={mb:.1} \
         up_mb_s={rate:.2} cpu_ms_per_mb={ms_per_mb:.1} peak10s_up_mb_s={:.2} peak10s_cpu_pct={:.1}",
        wall_ms / 1e3,
        peak.1,
        peak.0
    );
    println!();
    println!(
        "seeder, {n} downloaders x {stream_mbps:.2} Mbit/s, serving window {:.1} s \
         (first downloader spawned -> last EOS):",
        wall_ms / 1e3
    );
    println!("  CPU            {cpu_pct:.1} % of one core ({cpu_ms:.0} ms user+system)");
    println!(
        "  uploaded       {mb:.1} MB in the window ({:.1} MB in all), {rate:.2} MB/s = {:.1} Mbit/s",
        up_total / 1e6,
        rate * 8.0
    );
    println!("  per MB         {ms_per_mb:.1} CPU-ms per MB uploaded");
    println!(
        "  busiest 10 s   {:.2} MB/s at {:.1} % of one core",
        peak.1, peak.0
    );
    println!(
        "  at 5 MB/s      {:.1} % of one core (8 x 5 Mbit/s, from CPU-ms per MB; target <= 10 %)",
        ms_per_mb * 5.0 / 10.0
    );
    println!("  RSS            {:.1} MiB peak", g(0, "rss_kib") / 1024.0);
    println!("  seeder threads (CPU ms in the window, by name):");
    let mut th: Vec<(String, u64)> = threads1
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*threads0.get(k).unwrap_or(&0))))
        .filter(|(_, v)| *v > 0)
        .collect();
    th.sort_by_key(|t| std::cmp::Reverse(t.1));
    for (name, ms) in &th {
        println!(
            "    {name:<24} {ms:>7} ms  {:>5.1} %",
            100.0 * *ms as f64 / wall_ms
        );
    }
    println!(
        "downloaders: P2P {:.1} MB, HTTP {:.1} MB (origin sent {:.1} MB of segments), stalls {stalls}, \
         all EOS {}, CPU % each {}",
        dl_p2p / 1e6,
        dl_http / 1e6,
        swarm::origin_segment_bytes(&origin, &dir).0 as f64 / 1e6,
        eos[1..].iter().all(|e| *e),
        dl_cpu
            .iter()
            .map(|c| format!("{c:.0}"))
            .collect::<Vec<_>>()
            .join("/")
    );
    let json = serde_json::json!({
        "downloaders": n, "stream_mbit_s": stream_mbps, "stream_bytes": vod_bytes,
        "seeder_max_upload_rate": seeder_rate, "window_s": window, "stagger_s": stagger,
        "wall_s": wall_ms / 1e3, "seeder_cpu_ms": cpu_ms, "seeder_cpu_pct": cpu_pct,
        "upload_bytes": up_window, "upload_mb_s": rate, "cpu_ms_per_mb": ms_per_mb,
        "peak10s_upload_mb_s": peak.1, "peak10s_cpu_pct": peak.0,
        "cpu_pct_at_5mb_s": ms_per_mb * 0.5,
        "seeder_rss_mib": g(0, "rss_kib") / 1024.0,
        "seeder_threads_ms": th.iter().map(|(k, v)| (k.clone(), *v)).collect::<BTreeMap<_, _>>(),
        "downloader_p2p_bytes": dl_p2p, "downloader_http_bytes": dl_http,
        "downloader_cpu_pct": dl_cpu, "stalls": stalls, "errors": errors,
        "all_eos": eos[1..].iter().all(|e| *e),
    });
    println!("UPLOAD_BENCH {json}");
    Ok(())
}
