//! `bench-play swarm` / `bench-play peer`: the element-only swarm benchmark (bench/swarm.sh).
//!
//! `swarm` generates the stream (cached), and for each run starts the origin (in this process)
//! and the real tracker (`tests/tracker/server.mjs`), then starts N `bench-play peer`
//! processes, `stagger` seconds apart, reads their event lines and prints a table and a
//! `SWARM_BENCH {json}` line.
//!
//! `peer` is one viewer: `p2phlssrc` → `fakesink sync=true` on every source pad (no demuxing,
//! no decoding). The element timestamps the first buffer of each segment with the segment's
//! start, so the sink consumes segment k when the clock reaches its start: real time at segment
//! granularity, which is when a player's playhead needs it.
//!
//! Stalls: a pad probe before the sink compares, for each timestamped buffer, the pipeline's
//! running time with the buffer's running time. The sink never pauses the clock, so once a
//! segment arrives late the lag stays: the largest lag seen is the total time the playhead
//! waited (`stall_ms`), and every growth of it by 100 ms or more is one stall.
//! The first buffer (preroll, before the clock runs) never counts.
//!
//! Peers exit when their stdin closes (the orchestrator closes it when every VOD peer reached
//! EOS, or at the live deadline) or at `--until-ms`, so none outlives the benchmark.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::{Child, ChildStdin, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::swarm::{self, unix_ms, Kind};
use crate::Result;

// ---------------------------------------------------------------------------------------------
// peer
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Playhead {
    first_buffer: Option<f64>,
    max_late_ms: f64,
    stalls: u32,
    buffers: u64,
}

pub fn peer(args: &[String]) -> Result<()> {
    let start_unix = unix_ms();
    let (mut uri, mut tracker, mut scheduler, mut p2p, mut until) =
        (None, None, "ours".to_string(), true, None::<f64>);
    // `--sync false`: take the stream as fast as it comes (bench/upload.sh's seeder).
    let mut sync = true;
    let mut knobs: Vec<(String, String)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--uri" => uri = Some(val()?),
            "--tracker" => tracker = Some(val()?),
            "--scheduler" => scheduler = val()?,
            "--no-p2p" => p2p = false,
            "--sync" => sync = val()?.parse()?,
            "--until-ms" => until = Some(val()?.parse()?),
            "--set" => {
                let kv = val()?;
                let (k, v) = kv.split_once('=').ok_or("--set needs NAME=VALUE")?;
                knobs.push((k.into(), v.into()));
            }
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let uri = uri.ok_or("--uri is required")?;
    gst::init()?;
    gstp2pmedia::plugin_register_static()?;

    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = {
        let out = out.clone();
        move |line: String| {
            let mut o = out.lock().unwrap();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    };

    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("p2phlssrc")
        .property("location", uri.strip_prefix("p2phls+").unwrap_or(&uri))
        .property("p2p-enabled", p2p)
        .property("stats-interval", 1000u32)
        .build()?;
    if let Some(t) = &tracker {
        src.set_property("trackers", gst::Array::new([t.as_str()]));
    }
    src.set_property("ice-servers", gst::Array::default());
    src.set_property_from_str("scheduler", &scheduler);
    for (k, v) in &knobs {
        src.set_property_from_str(k, v);
    }
    pipeline.add(&src)?;

    let head = Arc::new(Mutex::new(Playhead::default()));
    let t_play = Arc::new(Mutex::new(None::<f64>));
    let pl = pipeline.downgrade();
    let (h2, say2) = (head.clone(), say.clone());
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pl.upgrade() else { return };
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", sync)
            .property("async", true)
            .build()
            .expect("fakesink");
        pipeline.add(&sink).expect("add sink");
        sink.sync_state_with_parent().expect("sink state");
        let sinkpad = sink.static_pad("sink").expect("sink pad");
        let (h, say, pl) = (h2.clone(), say2.clone(), pipeline.downgrade());
        sinkpad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(buf) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let now = unix_ms();
            let mut h = h.lock().unwrap();
            h.buffers += 1;
            if h.first_buffer.is_none() {
                h.first_buffer = Some(now);
                say(format!("FIRST t={now:.1}"));
                return gst::PadProbeReturn::Ok;
            }
            let (Some(pts), Some(pipeline)) = (buf.pts(), pl.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
            // Before PLAYING the base time is not set yet: the running time would be the
            // clock's (hours). Buffers that arrive so early are not late anyway.
            if pipeline.current_state() != gst::State::Playing {
                return gst::PadProbeReturn::Ok;
            }
            let seg = pad
                .sticky_event::<gst::event::Segment>(0)
                .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().cloned());
            let (Some(seg), Some(clock_rt)) = (seg, pipeline.current_running_time()) else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(buf_rt) = seg.to_running_time(pts) else {
                return gst::PadProbeReturn::Ok;
            };
            let late = (clock_rt.nseconds() as f64 - buf_rt.nseconds() as f64) / 1e6;
            if late > h.max_late_ms {
                if late - h.max_late_ms >= 100.0 {
                    h.stalls += 1;
                    say(format!(
                        "STALL t={now:.1} ms={:.0} pts_s={:.2}",
                        late - h.max_late_ms,
                        pts.seconds_f64()
                    ));
                }
                h.max_late_ms = late;
            }
            gst::PadProbeReturn::Ok
        });
        let _ = pad.link(&sinkpad);
    });

    // The orchestrator closes our stdin to stop us.
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        while std::io::stdin()
            .read_line(&mut s)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            s.clear();
        }
        st.store(true, Ordering::SeqCst);
    });

    *t_play.lock().unwrap() = Some(unix_ms());
    say(format!("START t={:.1} play={:.1}", start_unix, unix_ms()));
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut eos = false;
    let mut error = None;
    let mut max_peers = 0u32;
    while !stop.load(Ordering::SeqCst) && until.is_none_or(|u| unix_ms() < u) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                say(format!("EOS t={:.1}", unix_ms()));
            }
            gst::MessageView::Error(e) => {
                let text = format!("{} ({:?})", e.error(), e.debug());
                say(format!(
                    "ERROR t={:.1} {}",
                    unix_ms(),
                    text.replace('\n', " ")
                ));
                error = Some(text);
                break;
            }
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                match s.name().as_str() {
                    "p2pmedia-peer-connected" | "p2pmedia-peer-closed" => {
                        let peer = s.get::<String>("peer-id").unwrap_or_default();
                        let ev = if s.name().as_str() == "p2pmedia-peer-connected" {
                            "CONNECTED"
                        } else {
                            "CLOSED"
                        };
                        // Connected: our role and the element's own answer → open time.
                        let setup = match (s.get::<&str>("role"), s.get::<f64>("setup-ms")) {
                            (Ok(role), Ok(ms)) => format!(" role={role} setup_ms={ms:.1}"),
                            _ => String::new(),
                        };
                        say(format!(
                            "{ev} t={:.1} peer={}{setup}",
                            unix_ms(),
                            hex(&peer)
                        ));
                    }
                    "p2pmedia-stats" => {
                        max_peers = max_peers.max(s.get::<u32>("peers").unwrap_or(0));
                        // The per-second figures the orchestrator charts.
                        say(format!(
                            "STATS t={:.1} http={} p2p={} up={}",
                            unix_ms(),
                            s.get::<u64>("http-bytes").unwrap_or(0),
                            s.get::<u64>("p2p-bytes").unwrap_or(0),
                            s.get::<u64>("p2p-upload-bytes").unwrap_or(0)
                        ));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let stats = src.property::<gst::Structure>("stats");
    let num = |f: &str| -> u64 {
        stats
            .value(f)
            .ok()
            .and_then(|v| {
                v.get::<u64>()
                    .ok()
                    .or_else(|| v.get::<u32>().ok().map(u64::from))
            })
            .unwrap_or(0)
    };
    let end = unix_ms();
    let h = head.lock().unwrap();
    let line = format!(
        "END t={end:.1} http={} p2p={} up={} http_segs={} p2p_segs={} max_peers={max_peers} \
         first={:.1} stalls={} stall_ms={:.0} buffers={} cpu_ms={} wall_ms={:.0} rss_kib={} {} eos={}",
        num("http-bytes"),
        num("p2p-bytes"),
        num("p2p-upload-bytes"),
        num("http-segments"),
        num("p2p-segments"),
        h.first_buffer
            .map_or(-1.0, |f| f - t_play.lock().unwrap().unwrap_or(f)),
        h.stalls,
        h.max_late_ms.max(0.0),
        h.buffers,
        crate::cpu_ms()?,
        end - start_unix,
        crate::peak_rss_kib()?,
        crate::rss_split()?,
        eos as u8,
    );
    drop(h);
    say(line);
    pipeline.set_state(gst::State::Null)?;
    if let Some(e) = error {
        return Err(e.into());
    }
    Ok(())
}

/// Peer ids are 20 bytes that may be binary; compare them in hex everywhere.
fn hex(s: &str) -> String {
    if s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| format!("{:02x}", c as u32 & 0xff))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// swarm (orchestrator)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct RunSpec {
    kind: &'static str, // "vod" | "live"
    scheduler: &'static str,
    peers: usize,
    /// Element properties for every peer (`bench-play peer --set`).
    sets: Vec<String>,
}

#[derive(Default, Clone, Debug)]
struct PeerResult {
    spawned: f64,
    fields: HashMap<String, String>,
    connected: Vec<(f64, String)>,
    /// (role, answer → open ms) per connection, as the element measured it.
    setups: Vec<(String, f64)>,
    /// `STATS` lines: (unix ms, HTTP bytes, P2P bytes received so far).
    points: Vec<(f64, f64, f64)>,
    stalls: u32,
    eos: bool,
    error: Option<String>,
}

impl PeerResult {
    fn f(&self, k: &str) -> f64 {
        self.fields
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

fn kv(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn swarm(args: &[String]) -> Result<()> {
    let mut runs = "vod:2,vod:4,vod:8,live:2,live:4,pml-vod:4".to_string();
    let (mut stagger, mut vod_secs, mut live_secs, mut window) = (4.0, 60.0, 90.0, 10usize);
    let mut chart_dir = None;
    // `--set PROP=VALUE`: given to every peer of every run (e.g. max-store-size=8388608).
    let mut sets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--runs" => runs = val()?,
            "--stagger" => stagger = val()?.parse()?,
            "--vod-secs" => vod_secs = val()?.parse()?,
            "--live-secs" => live_secs = val()?.parse()?,
            "--window" => window = val()?.parse()?,
            "--chart-dir" => chart_dir = Some(std::path::PathBuf::from(val()?)),
            "--set" => sets.push(val()?),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let mut specs = Vec::new();
    for r in runs.split(',').filter(|r| !r.is_empty()) {
        let (name, n) = r.split_once(':').ok_or(format!("bad run {r}"))?;
        let (scheduler, kind) = match name {
            "vod" => ("ours", "vod"),
            "live" => ("ours", "live"),
            "pml-vod" => ("pml", "vod"),
            "pml-live" => ("pml", "live"),
            _ => return Err(format!("bad run kind {name}").into()),
        };
        specs.push(RunSpec {
            kind,
            scheduler,
            peers: n.parse()?,
            sets: sets.clone(),
        });
    }

    let t0 = Instant::now();
    let spec = crate::stream::StreamSpec::swarm();
    let dir = crate::stream::generate(&spec)?;
    println!(
        "stream: {} s of 720p{} H.264 {} kbit/s + AAC, {}-s segments, {} ({:.1} s)",
        spec.secs,
        spec.fps,
        spec.renditions[0].video_kbps,
        spec.seg_secs,
        dir.display(),
        t0.elapsed().as_secs_f64()
    );
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for s in &specs {
        let (row, chart) = run_one(&exe, &dir, s, stagger, vod_secs, live_secs, window)?;
        println!("SWARM_RUN {row}");
        if let Some(d) = &chart_dir {
            std::fs::create_dir_all(d)?;
            let path = d.join(format!(
                "swarm-{}.svg",
                row["run"].as_str().unwrap_or("run")
            ));
            std::fs::write(&path, chart.to_svg())?;
            println!("chart: {}", path.display());
        }
        rows.push(row);
    }
    print_table(&rows);
    let json = serde_json::json!({
        "stream": {"vod_secs": vod_secs, "live_secs": live_secs, "live_window": window,
                    "height": 720, "fps": spec.fps, "video_kbps": spec.renditions[0].video_kbps,
                    "seg_secs": spec.seg_secs},
        "stagger_s": stagger,
        "sink": "fakesink sync=true directly on p2phlssrc pads (no demux, no decode)",
        "targets": {"p2p_share_4peers": 0.72, "rss_mib": 30, "setup_ms_median": 250},
        "runs": rows,
        "wall_s": t0.elapsed().as_secs_f64(),
    });
    println!("SWARM_BENCH {json}");
    Ok(())
}

struct PeerProc {
    child: Child,
    stdin: Option<ChildStdin>,
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    exe: &std::path::Path,
    dir: &std::path::Path,
    s: &RunSpec,
    stagger: f64,
    vod_secs: f64,
    live_secs: f64,
    window: usize,
) -> Result<(serde_json::Value, crate::chart::Chart)> {
    let label = format!(
        "{}{}-{}p",
        if s.scheduler == "pml" { "pml-" } else { "" },
        s.kind,
        s.peers
    );
    let kind = if s.kind == "vod" {
        Kind::Vod { secs: vod_secs }
    } else {
        Kind::Live { window }
    };
    let (origin, url, vod_bytes) = swarm::serve(dir, kind)?;
    let tracker = swarm::Tracker::start()?;
    let t_start = unix_ms();
    let n = s.peers;
    let last_join = stagger * (n - 1) as f64;
    // Live: everyone stops `live_secs` after the first join. VOD: when all reached EOS (or a
    // safety deadline well past the last join + the stream).
    let deadline = if s.kind == "live" {
        t_start + live_secs * 1e3
    } else {
        t_start + (last_join + vod_secs + 45.0) * 1e3
    };
    eprintln!(
        "[{label}] origin {url}, tracker {} (pid {}), {n} peers {stagger} s apart",
        tracker.url(),
        tracker.pid()
    );

    let (tx, rx) = mpsc::channel::<crate::swarm::PeerLine>();
    let mut procs: Vec<PeerProc> = Vec::new();
    let mut results: Vec<PeerResult> = vec![PeerResult::default(); n];
    let mut ended = vec![false; n];
    let mut closing = false;
    loop {
        let now = unix_ms();
        // Spawn due peers.
        while procs.len() < n && now >= t_start + stagger * 1e3 * procs.len() as f64 {
            let i = procs.len();
            let (child, stdin) = crate::swarm::spawn_peer(
                Command::new(exe)
                    .args(["peer", "--uri", format!("p2phls+{url}").as_str()])
                    .args([
                        "--tracker",
                        tracker.url().as_str(),
                        "--scheduler",
                        s.scheduler,
                    ])
                    .args(["--until-ms", format!("{:.0}", deadline + 5e3).as_str()])
                    .args(s.sets.iter().flat_map(|kv| ["--set", kv.as_str()])),
                i,
                &tx,
            )?;
            results[i].spawned = unix_ms();
            procs.push(PeerProc { child, stdin });
        }
        while let Ok((i, at, line)) = rx.try_recv() {
            let r = &mut results[i];
            let word = line.split_whitespace().next().unwrap_or("");
            let f = kv(&line);
            match word {
                "CONNECTED" => {
                    let t = f.get("t").and_then(|t| t.parse().ok()).unwrap_or(at);
                    r.connected
                        .push((t, f.get("peer").cloned().unwrap_or_default()));
                    if let (Some(role), Some(ms)) = (
                        f.get("role"),
                        f.get("setup_ms").and_then(|v| v.parse().ok()),
                    ) {
                        r.setups.push((role.clone(), ms));
                    }
                }
                "STATS" => {
                    let g = |k: &str| f.get(k).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                    r.points.push((g("t"), g("http"), g("p2p")));
                }
                "EOS" => {
                    r.eos = true;
                    eprintln!(
                        "[{label}] peer {i}: EOS after {:.1} s",
                        (at - r.spawned) / 1e3
                    );
                }
                "STALL" => {
                    r.stalls += 1;
                    // With GST_DEBUG set, the peers' logs (stderr) can be read around this.
                    eprintln!("[{label}] peer {i} pid {}: {line}", procs[i].child.id());
                }
                "ERROR" => {
                    eprintln!("[{label}] peer {i}: {line}");
                    r.error = Some(line.clone());
                }
                "END" => {
                    r.fields = f;
                    ended[i] = true;
                }
                "EXIT" => ended[i] = true,
                _ => {}
            }
        }
        let all_spawned = procs.len() == n;
        let vod_done = s.kind == "vod" && all_spawned && results.iter().all(|r| r.eos);
        if !closing && all_spawned && (vod_done || now >= deadline) {
            closing = true;
            for p in procs.iter_mut() {
                p.stdin.take(); // EOF: the peer reports and exits
            }
        }
        if closing && ended.iter().all(|e| *e) {
            break;
        }
        if now >= deadline + 20e3 {
            eprintln!("[{label}] peers did not exit in time; killing them");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in procs.iter_mut() {
        let _ = p.child.kill(); // by PID; a no-op for exited ones
        let _ = p.child.wait();
    }
    let wall = (unix_ms() - t_start) / 1e3;

    // Which peer id is which process: the k-th peer id that announced with offers.
    let mut order: Vec<String> = Vec::new();
    let mut offer_at: HashMap<String, f64> = HashMap::new();
    for (t, line) in tracker.lines.lock().unwrap().iter() {
        let Some(rest) = line.strip_prefix("IN ") else {
            continue;
        };
        let Some(json) = rest.split_once(' ').map(|x| x.1) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
            continue;
        };
        let has_offers = v["offers"].as_array().is_some_and(|a| !a.is_empty());
        if let (true, Some(pid)) = (has_offers, v["peer_id"].as_str()) {
            let id = hex(pid);
            if !offer_at.contains_key(&id) {
                offer_at.insert(id.clone(), *t);
                order.push(id);
            }
        }
    }
    drop(tracker);
    let index_of: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    // Data-channel setup per connected pair (i < j): from j's first announce with offers (at
    // the tracker) to the later of the two `p2pmedia-peer-connected` messages.
    let mut pair_open: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        for (t, remote) in &r.connected {
            if let Some(&j) = index_of.get(remote.as_str()) {
                let key = (i.min(j), i.max(j));
                let e = pair_open.entry(key).or_insert(*t);
                *e = e.max(*t);
            }
        }
    }
    let setups: Vec<f64> = pair_open
        .iter()
        .filter_map(|(&(_, j), &t)| order.get(j).and_then(|id| offer_at.get(id)).map(|o| t - o))
        .collect();
    let join_to_conn: Vec<f64> = results
        .iter()
        .skip(1)
        .filter_map(|r| r.connected.first().map(|(t, _)| t - r.spawned))
        .collect();

    let (origin_seg, unique) = swarm::origin_segment_bytes(&origin, dir);
    let stream_bytes = if vod_bytes > 0 { vod_bytes } else { unique };
    let (http, p2p): (f64, f64) = results
        .iter()
        .fold((0.0, 0.0), |(h, p), r| (h + r.f("http"), p + r.f("p2p")));
    let share = if http + p2p > 0.0 {
        p2p / (http + p2p)
    } else {
        0.0
    };
    let limit = (n as f64 - 1.0) / n as f64;
    let mib = |b: f64| b / 1024.0 / 1024.0;
    let peers_json: Vec<serde_json::Value> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (h, p) = (r.f("http"), r.f("p2p"));
            serde_json::json!({
                "peer": i,
                "http_bytes": h as u64, "p2p_bytes": p as u64, "upload_bytes": r.f("up") as u64,
                "p2p_share": if h + p > 0.0 { p / (h + p) } else { 0.0 },
                "first_buffer_ms": r.f("first"),
                "stalls": r.f("stalls") as u64, "stall_ms": r.f("stall_ms"),
                "rss_mib": r.f("rss_kib") / 1024.0,
                // At the end of the run (peak is above): where the resident memory is.
                "rss_split_mib": {
                    "rss": r.f("rss_now_kib") / 1024.0, "anon": r.f("anon_kib") / 1024.0,
                    "heap": r.f("heap_kib") / 1024.0, "anon_maps": r.f("anon_maps_kib") / 1024.0,
                    "exe": r.f("exe_kib") / 1024.0, "libs": r.f("libs_kib") / 1024.0,
                    "threads": r.f("threads"),
                },
                "cpu_pct": if r.f("wall_ms") > 0.0 { 100.0 * r.f("cpu_ms") / r.f("wall_ms") } else { 0.0 },
                "connections": r.connected.len(),
                "max_peers": r.f("max_peers") as u64,
                "join_to_first_connection_ms": r.connected.first().map(|(t, _)| t - r.spawned),
                "eos": r.eos, "error": r.error,
            })
        })
        .collect();
    let col = |k: &str| -> Vec<f64> {
        peers_json
            .iter()
            .filter_map(|p| p[k].as_f64())
            .collect::<Vec<_>>()
    };
    let max = |v: Vec<f64>| v.into_iter().fold(0.0f64, f64::max);
    // Answer → channel open per role, as each element measured it (not the tracker's view).
    let role_setups = |role: &str| -> serde_json::Value {
        let mut v: Vec<f64> = results
            .iter()
            .flat_map(|r| r.setups.iter())
            .filter(|(r, _)| r == role)
            .map(|(_, ms)| *ms)
            .collect();
        v.sort_by(f64::total_cmp);
        let p95 = v
            .get(((v.len() as f64 * 0.95).ceil() as usize).saturating_sub(1))
            .copied();
        serde_json::json!({"n": v.len(), "median": median(v.clone()), "p95": p95, "max": v.last()})
    };
    let row = serde_json::json!({
        "run": label, "kind": s.kind, "scheduler": s.scheduler, "peers": n, "sets": s.sets,
        "p2p_share": share, "limit": limit,
        "http_bytes": http as u64, "p2p_bytes": p2p as u64,
        "origin_segment_bytes": origin_seg, "stream_bytes": stream_bytes,
        "origin_x": origin_seg as f64 / stream_bytes.max(1) as f64,
        "origin_total_bytes": origin.total_bytes(),
        "stalls": col("stalls").iter().sum::<f64>() as u64,
        "stall_ms": col("stall_ms").iter().sum::<f64>(),
        "first_buffer_ms_median": median(col("first_buffer_ms")),
        "first_buffer_ms_max": max(col("first_buffer_ms")),
        "rss_mib_max": max(col("rss_mib")),
        "rss_mib_median": median(col("rss_mib")),
        "cpu_pct_max": max(col("cpu_pct")),
        "cpu_pct_median": median(col("cpu_pct")),
        "setup_ms_median": median(setups.clone()),
        "offerer_setup_ms": role_setups("offerer"),
        "answerer_setup_ms": role_setups("answerer"),
        "setup_pairs": setups.len(),
        "setup_ms": setups,
        "join_to_first_connection_ms_median": median(join_to_conn),
        "all_eos": results.iter().all(|r| r.eos),
        "wall_s": wall,
        "per_peer": peers_json,
    });
    eprintln!(
        "[{label}] done in {wall:.0} s: P2P {:.1} % (limit {:.1} %), origin {:.1} MiB = {:.2}x stream",
        share * 100.0,
        limit * 100.0,
        mib(origin_seg as f64),
        origin_seg as f64 / stream_bytes.max(1) as f64
    );
    let chart = crate::chart::Chart {
        title: format!(
            "bench/swarm.sh {label}: P2P {:.1} % (limit {:.1} %)",
            share * 100.0,
            limit * 100.0
        ),
        peers: results
            .iter()
            .enumerate()
            .map(|(i, r)| crate::chart::PeerSeries {
                name: format!("peer {i}"),
                points: r
                    .points
                    .iter()
                    .map(|&(t, http, p2p)| crate::chart::Point {
                        t: (t - t_start) / 1e3,
                        http,
                        p2p,
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok((row, chart))
}

fn print_table(rows: &[serde_json::Value]) {
    let g = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    println!();
    println!(
        "{:<13} {:>3} {:>6} {:>6} {:>8} {:>4} {:>7} {:>8} {:>13} {:>8} {:>9} {:>9} {:>10} {:>11} {:>11}",
        "run",
        "N",
        "P2P%",
        "limit",
        "origin×",
        "N×",
        "stalls",
        "stall_ms",
        "1st_buf_ms",
        "RSS_MiB",
        "CPU%",
        "ann→open",
        "join→conn",
        "offerer",
        "answerer"
    );
    println!(
        "{:<13} {:>3} {:>6} {:>6} {:>8} {:>4} {:>7} {:>8} {:>13} {:>8} {:>9} {:>9} {:>10} {:>11} {:>11}",
        "", "", "", "", "", "", "(sum)", "(sum)", "med/max", "max", "med/max", "median", "median",
        "med/p95 ms", "med/p95 ms"
    );
    for r in rows {
        println!(
            "{:<13} {:>3} {:>6.1} {:>6.1} {:>8.2} {:>4} {:>7} {:>8.0} {:>6.0}/{:<6.0} {:>8.1} {:>4.1}/{:<4.1} {:>9.0} {:>10.0} {:>5.0}/{:<5.0} {:>5.0}/{:<5.0}",
            r["run"].as_str().unwrap_or("?"),
            g(r, "peers"),
            100.0 * g(r, "p2p_share"),
            100.0 * g(r, "limit"),
            g(r, "origin_x"),
            g(r, "peers"),
            g(r, "stalls"),
            g(r, "stall_ms"),
            g(r, "first_buffer_ms_median"),
            g(r, "first_buffer_ms_max"),
            g(r, "rss_mib_max"),
            g(r, "cpu_pct_median"),
            g(r, "cpu_pct_max"),
            g(r, "setup_ms_median"),
            g(r, "join_to_first_connection_ms_median"),
            r["offerer_setup_ms"]["median"].as_f64().unwrap_or(f64::NAN),
            r["offerer_setup_ms"]["p95"].as_f64().unwrap_or(f64::NAN),
            r["answerer_setup_ms"]["median"].as_f64().unwrap_or(f64::NAN),
            r["answerer_setup_ms"]["p95"].as_f64().unwrap_or(f64::NAN),
        );
    }
    println!(
        "\nper peer (join order): P2P share % | first buffer ms | stalls/ms | RSS MiB | CPU %"
    );
    for r in rows {
        let peers = r["per_peer"].as_array().cloned().unwrap_or_default();
        let cells: Vec<String> = peers
            .iter()
            .map(|p| {
                format!(
                    "{:.0}%|{:.0}|{}/{:.0}|{:.1}|{:.1}",
                    100.0 * p["p2p_share"].as_f64().unwrap_or(0.0),
                    p["first_buffer_ms"].as_f64().unwrap_or(-1.0),
                    p["stalls"].as_u64().unwrap_or(0),
                    p["stall_ms"].as_f64().unwrap_or(0.0),
                    p["rss_mib"].as_f64().unwrap_or(0.0),
                    p["cpu_pct"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        println!(
            "  {:<13} {}",
            r["run"].as_str().unwrap_or("?"),
            cells.join("  ")
        );
    }
    println!(
        "\nRSS split at the end, per peer (MiB; rss = anon + file-backed): \
         rss | anon (heap + anon_maps: malloc arenas, stacks) | exe (plugin code) | libs | threads"
    );
    for r in rows {
        let peers = r["per_peer"].as_array().cloned().unwrap_or_default();
        let cells: Vec<String> = peers
            .iter()
            .map(|p| {
                let s = &p["rss_split_mib"];
                let m = |k: &str| s[k].as_f64().unwrap_or(0.0);
                format!(
                    "{:.1}|{:.1}({:.1}+{:.1})|{:.1}|{:.1}|{:.0}",
                    m("rss"),
                    m("anon"),
                    m("heap"),
                    m("anon_maps"),
                    m("exe"),
                    m("libs"),
                    m("threads")
                )
            })
            .collect();
        println!(
            "  {:<13} {}",
            r["run"].as_str().unwrap_or("?"),
            cells.join("  ")
        );
    }
    println!(
        "\ntargets: 4 peers >= 72 % P2P (VOD and live; PML 2.3.1 browsers: 54-55 % VOD, 63 % live), \
         RSS <= 30 MiB per peer, data-channel setup (answer -> open, per role) <= 250 ms median, \
         <= 500 ms p95"
    );
}
