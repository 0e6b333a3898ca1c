//! `bench-play tracker-load`: what many swarms cost at the tracker and in CPU (issue 14 item 4).
//!
//! N live channels (the swarm benchmark's stream served under N master playlists, so N swarms)
//! and N `p2phlssrc ! fakesink sync=true` pipelines in this one process, one per channel, each
//! alone in its swarm: every element holds one WebSocket to the tracker, re-announces at the
//! interval the tracker asks for, and creates the offers each announce carries (PML's 5
//! PeerConnections, which expire unanswered). The tracker is the strict one
//! (`tests/tracker/strict.mjs`, interval `--interval-s`, wt-tracker's 20 s by default), which
//! prints every message it receives. Per window of `--window-s` the benchmark prints the
//! messages the tracker received (announces with offers, others), this process's CPU (% of one
//! core), RSS and live PeerConnections, then one `TRACKER_LOAD {json}` line. "Flat" means the
//! later windows look like the first full one: no growth with time.

use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::procfs::{cpu_ms, rss_kib};
use crate::swarm::{self, Kind};
use crate::Result;

pub fn tracker_load(args: &[String]) -> Result<()> {
    let (mut n, mut secs, mut interval_s, mut window_s) = (50usize, 180u64, 20u64, 30u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--swarms" => n = val()?.parse()?,
            "--secs" => secs = val()?.parse()?,
            "--interval-s" => interval_s = val()?.parse()?,
            "--window-s" => window_s = val()?.parse()?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    gst::init()?;
    gstp2pmedia::plugin_register_static()?;
    let spec = crate::stream::StreamSpec::swarm();
    let dir = crate::stream::generate(&spec)?;
    let (origin, url, _) = swarm::serve(&dir, Kind::Live { window: 10 })?;
    // The same master playlist under N names: N swarm ids, one stream.
    let master = url.rsplit('/').next().unwrap_or("live.m3u8").to_string();
    let text =
        std::fs::read_to_string(dir.join("master.m3u8"))?.replace("v0/index.m3u8", "v0/live.m3u8");
    let urls: Vec<String> = (0..n)
        .map(|i| {
            let name = format!("ch{i}-{master}");
            let body = text.clone();
            origin.route(&name, move |_| {
                crate::origin::Response::playlist(body.clone())
            });
            origin.url(&name)
        })
        .collect();
    let tracker = swarm::Tracker::start_strict(interval_s * 1000)?;
    println!(
        "tracker-load: {n} swarms (one p2phlssrc each, one process), strict tracker {} asking \
         for announces every {interval_s} s, {secs} s, windows of {window_s} s",
        tracker.url()
    );

    let mut pipelines = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let p = gst::parse::launch(&format!(
            "p2phlssrc name=src location={u} ! fakesink sync=true"
        ))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
        let src = p.by_name("src").ok_or("no src")?;
        src.set_property("trackers", gst::Array::new([tracker.url()]));
        // Host candidates only: nothing leaves the machine.
        src.set_property("ice-servers", gst::Array::default());
        p.set_state(gst::State::Playing)?;
        pipelines.push(p);
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let t0 = Instant::now();
    let t0_unix = swarm::unix_ms();
    let (mut cpu_prev, mut t_prev) = (cpu_ms()?, Instant::now());
    let mut windows = Vec::new();
    println!("window_s  announces+offers  other_msgs  per_swarm_per_min  cpu_%  rss_mib  peer_connections  errors");
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(
            Duration::from_secs(window_s)
                .min(Duration::from_secs(secs).saturating_sub(t0.elapsed())),
        );
        let (cpu, now) = (cpu_ms()?, Instant::now());
        let from = t0_unix + t_prev.duration_since(t0).as_secs_f64() * 1e3;
        let to = t0_unix + now.duration_since(t0).as_secs_f64() * 1e3;
        let (mut offers, mut other, mut violations) = (0u64, 0u64, 0u64);
        // Taken, not copied: the tracker's log (SDPs included) must not grow this process's
        // RSS, which is one of the figures.
        let lines = std::mem::take(&mut *tracker.lines.lock().unwrap());
        for (at, line) in lines.iter() {
            if *at < from || *at >= to {
                continue;
            }
            if let Some(raw) = line.strip_prefix("IN ") {
                if raw.contains("\"offers\":[{") {
                    offers += 1;
                } else {
                    other += 1;
                }
            } else if line.starts_with("VIOLATION ") {
                violations += 1;
            }
        }
        let wall = now.duration_since(t_prev).as_secs_f64();
        let cpu_pct = (cpu - cpu_prev) as f64 / (wall * 1e3) * 100.0;
        let per_min = (offers + other) as f64 / n as f64 / wall * 60.0;
        let errors = pipelines
            .iter()
            .filter(|p| {
                p.bus()
                    .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
                    .is_some()
            })
            .count();
        let pcs = gstp2pmedia::net::rtc::live_peer_connections();
        let rss = rss_kib()? as f64 / 1024.0;
        println!(
            "{:>8.0}  {offers:>16}  {other:>10}  {per_min:>17.2}  {cpu_pct:>5.1}  {rss:>7.1}  {pcs:>16}  {errors:>6}",
            now.duration_since(t0).as_secs_f64()
        );
        windows.push(serde_json::json!({
            "end_s": now.duration_since(t0).as_secs_f64(),
            "announces_with_offers": offers,
            "other_messages": other,
            "messages_per_swarm_per_min": per_min,
            "cpu_pct": cpu_pct,
            "rss_mib": rss,
            "peer_connections": pcs,
            "errors": errors,
            "violations": violations,
        }));
        (cpu_prev, t_prev) = (cpu, now);
    }
    for p in &pipelines {
        let _ = p.set_state(gst::State::Null);
    }
    println!(
        "TRACKER_LOAD {}",
        serde_json::json!({
            "swarms": n,
            "interval_s": interval_s,
            "secs": secs,
            "windows": windows,
        })
    );
    drop(tracker);
    drop(origin);
    Ok(())
}
