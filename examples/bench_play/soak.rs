//! `bench-play soak` / `bench-play soak-peer`: the long live soak (bench/soak.sh).
//!
//! `soak` runs, for `--minutes`, one live stream on 127.0.0.1 with `--peers` peers of which
//! `--liars` misbehave (`bench-play liar`, see liar.rs) and the rest are element peers
//! (`bench-play soak-peer`); every `--churn-every` s it kills one honest peer by PID and starts
//! a fresh one (and replaces one liar by a fresh one with the next behaviour, under a new peer
//! id); every `--tracker-restart-every` s it kills the tracker by PID and starts it again on the
//! same port. It samples every element peer's RSS and open fds (/proc/PID) every 10 s, prints a
//! `SOAK_MIN` line per minute and a `SOAK_RESULT {json}` line at the end.
//!
//! The stream: the swarm benchmark's 120-s clip (60 × 2-s MPEG-TS segments), served as a live
//! sliding window that loops the clip for as long as the soak lasts. Each loop starts with
//! EXT-X-DISCONTINUITY (the clip's timestamps restart), as a real loop or ad break would.
//! Segment URIs carry `?s=<media sequence>` so origin bytes per unique segment can be counted.
//! `/digests` lists the SHA-1 of every file of the clip: segment `s` is file `s mod 60`.
//!
//! Wrong bytes: each element peer hashes what its `p2phlssrc` pushes, one hash per segment
//! (a buffer with a PTS starts one). An honest output is the clip in order: file index minus
//! segment position on the element's timeline (PTS / 2 s) is one constant per peer. A segment
//! whose hash is no file of the clip (garbage, truncated) or whose offset differs from the
//! peer's most common one (another segment's bytes: stale) is wrong. Must be 0.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use sha1::{Digest, Sha1};

use crate::swarm::unix_ms;
use crate::Result;

// ---------------------------------------------------------------------------------------------
// small helpers (also used by liar.rs)
// ---------------------------------------------------------------------------------------------

/// Blocking `GET` of an `http://` URL (HTTP/1.1, `Connection: close`), bounded in time.
pub fn http_get(url: &str) -> Result<Vec<u8>> {
    let u = url::Url::parse(url)?;
    let addr = u
        .socket_addrs(|| Some(80))?
        .into_iter()
        .next()
        .ok_or("no address")?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let target = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        u.host_str().unwrap_or("127.0.0.1")
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP head")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("GET {url}: status {status}").into());
    }
    Ok(buf[end + 4..].to_vec())
}

pub fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Peer ids in element messages are 20 chars that may be binary; compare them in hex.
fn hex_id(s: &str) -> String {
    if s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| format!("{:02x}", c as u32 & 0xff))
        .collect()
}

fn kv(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn say(out: &Mutex<std::io::Stdout>, line: String) {
    let mut o = out.lock().unwrap();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

// ---------------------------------------------------------------------------------------------
// soak-peer: one element viewer that checks every byte it pushes
// ---------------------------------------------------------------------------------------------

/// Per source pad: the segment being hashed, and what the finished ones were.
struct Check {
    files: Arc<HashMap<String, usize>>,
    n: i64,
    seg_ns: f64,
    cur: Option<(u64, Sha1, u64)>,
    /// (file index − timeline position) mod n → segments.
    offsets: HashMap<i64, u64>,
    first_offset: Option<i64>,
    unknown: u64,
    unknown_bytes: u64,
    known: u64,
    reported: u32,
}

impl Check {
    fn new(files: Arc<HashMap<String, usize>>, seg_ns: f64) -> Self {
        let n = files.len() as i64;
        Check {
            files,
            n,
            seg_ns,
            cur: None,
            offsets: HashMap::new(),
            first_offset: None,
            unknown: 0,
            unknown_bytes: 0,
            known: 0,
            reported: 0,
        }
    }

    fn buffer(&mut self, pts: Option<u64>, data: &[u8], out: &Mutex<std::io::Stdout>) {
        if let Some(pts) = pts {
            self.finish(out);
            self.cur = Some((pts, Sha1::new(), 0));
        }
        if let Some((_, h, n)) = self.cur.as_mut() {
            h.update(data);
            *n += data.len() as u64;
        }
    }

    fn finish(&mut self, out: &Mutex<std::io::Stdout>) {
        let Some((pts, h, bytes)) = self.cur.take() else {
            return;
        };
        let digest = hex_bytes(&h.finalize());
        let pos = (pts as f64 / self.seg_ns).round() as i64;
        match self.files.get(&digest) {
            None => {
                self.unknown += 1;
                self.unknown_bytes += bytes;
                if self.reported < 20 {
                    self.reported += 1;
                    say(
                        out,
                        format!(
                            "WRONG t={:.1} pts_s={:.3} bytes={bytes} kind=unknown sha1={digest}",
                            unix_ms(),
                            pts as f64 / 1e9
                        ),
                    );
                }
            }
            Some(&idx) => {
                self.known += 1;
                let off = (idx as i64 - pos).rem_euclid(self.n);
                *self.offsets.entry(off).or_default() += 1;
                let first = *self.first_offset.get_or_insert(off);
                if off != first && self.reported < 20 {
                    self.reported += 1;
                    say(
                        out,
                        format!(
                            "WRONG t={:.1} pts_s={:.3} bytes={bytes} kind=misplaced file={idx} offset={off} expected_offset={first}",
                            unix_ms(),
                            pts as f64 / 1e9
                        ),
                    );
                }
            }
        }
    }

    /// Segments that are not the origin's bytes for their place.
    fn wrong(&self) -> u64 {
        self.unknown + self.known - self.offsets.values().max().copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct Playhead {
    first_buffer: Option<f64>,
    max_late_ms: f64,
    stalls: u32,
}

pub fn soak_peer(args: &[String]) -> Result<()> {
    let start_unix = unix_ms();
    let (mut uri, mut tracker, mut digests, mut until) = (None, None, None, None::<f64>);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--uri" => uri = Some(val()?),
            "--tracker" => tracker = Some(val()?),
            "--digests" => digests = Some(val()?),
            "--until-ms" => until = Some(val()?.parse()?),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let uri = uri.ok_or("--uri is required")?;
    let digests = digests.ok_or("--digests is required")?;
    let table: serde_json::Value = serde_json::from_slice(&http_get(&digests)?)?;
    let files: HashMap<String, usize> = table["files"]
        .as_array()
        .ok_or("bad /digests")?
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_str().map(|s| (s.to_string(), i)))
        .collect();
    let files = Arc::new(files);
    let seg_ns = table["seg_secs"].as_f64().ok_or("bad /digests")? * 1e9;

    gst::init()?;
    gstp2pmedia::plugin_register_static()?;
    let out = Arc::new(Mutex::new(std::io::stdout()));

    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("p2phlssrc")
        .property("location", &uri)
        .property("p2p-enabled", true)
        .property("stats-interval", 1000u32)
        .build()?;
    if let Some(t) = &tracker {
        src.set_property("trackers", gst::Array::new([t.as_str()]));
    }
    src.set_property("ice-servers", gst::Array::default());
    pipeline.add(&src)?;

    let head = Arc::new(Mutex::new(Playhead::default()));
    let checks: Arc<Mutex<Vec<Check>>> = Arc::default();
    let pl = pipeline.downgrade();
    let (h2, o2, c2) = (head.clone(), out.clone(), checks.clone());
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pl.upgrade() else { return };
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", true)
            .property("async", true)
            .build()
            .expect("fakesink");
        pipeline.add(&sink).expect("add sink");
        sink.sync_state_with_parent().expect("sink state");
        let sinkpad = sink.static_pad("sink").expect("sink pad");
        let slot = {
            let mut c = c2.lock().unwrap();
            c.push(Check::new(files.clone(), seg_ns));
            c.len() - 1
        };
        let (h, out, pl, checks) = (h2.clone(), o2.clone(), pipeline.downgrade(), c2.clone());
        sinkpad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(buf) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            if let Ok(map) = buf.map_readable() {
                checks.lock().unwrap()[slot].buffer(
                    buf.pts().map(|p| p.nseconds()),
                    map.as_slice(),
                    &out,
                );
            }
            // Stalls, as swarm.rs measures them: the largest lag of a buffer's running time
            // behind the clock is the time the playhead waited; each growth by ≥ 100 ms is one.
            let now = unix_ms();
            let mut h = h.lock().unwrap();
            if h.first_buffer.is_none() {
                h.first_buffer = Some(now);
                say(&out, format!("FIRST t={now:.1}"));
                return gst::PadProbeReturn::Ok;
            }
            let (Some(pts), Some(pipeline)) = (buf.pts(), pl.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
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
                    say(
                        &out,
                        format!(
                            "STALL t={now:.1} ms={:.0} pts_s={:.2}",
                            late - h.max_late_ms,
                            pts.seconds_f64()
                        ),
                    );
                }
                h.max_late_ms = late;
            }
            gst::PadProbeReturn::Ok
        });
        let _ = pad.link(&sinkpad);
    });

    // The orchestrator closes our stdin to stop us (or kills us by PID: churn).
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

    say(&out, format!("START t={start_unix:.1}"));
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut error = None;
    let mut last_stat = Instant::now();
    let stat_line = |word: &str| -> String {
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
        let h = head.lock().unwrap();
        let c = checks.lock().unwrap();
        format!(
            "{word} t={:.1} http={} p2p={} up={} http_segs={} p2p_segs={} peers={} trackers={} \
             stalls={} stall_ms={:.0} segs={} wrong={} unknown={} unknown_bytes={} offsets={} cpu_ms={}",
            unix_ms(),
            num("http-bytes"),
            num("p2p-bytes"),
            num("p2p-upload-bytes"),
            num("http-segments"),
            num("p2p-segments"),
            num("peers"),
            num("trackers-connected"),
            h.stalls,
            h.max_late_ms.max(0.0),
            c.iter().map(|c| c.known + c.unknown).sum::<u64>(),
            c.iter().map(Check::wrong).sum::<u64>(),
            c.iter().map(|c| c.unknown).sum::<u64>(),
            c.iter().map(|c| c.unknown_bytes).sum::<u64>(),
            c.iter().map(|c| c.offsets.len()).sum::<usize>(),
            crate::cpu_ms().unwrap_or(0),
        )
    };
    while !stop.load(Ordering::SeqCst) && until.is_none_or(|u| unix_ms() < u) {
        if last_stat.elapsed() >= Duration::from_secs(5) {
            last_stat = Instant::now();
            say(&out, stat_line("STAT"));
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => say(&out, format!("EOS t={:.1}", unix_ms())),
            gst::MessageView::Error(e) => {
                let text = format!("{} ({:?})", e.error(), e.debug());
                say(
                    &out,
                    format!("ERROR t={:.1} {}", unix_ms(), text.replace('\n', " ")),
                );
                error = Some(text);
                break;
            }
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                let ev = match s.name().as_str() {
                    "p2pmedia-peer-connected" => "CONNECTED",
                    "p2pmedia-peer-closed" => "CLOSED",
                    _ => continue,
                };
                let peer = s.get::<String>("peer-id").unwrap_or_default();
                say(
                    &out,
                    format!("{ev} t={:.1} peer={}", unix_ms(), hex_id(&peer)),
                );
            }
            _ => {}
        }
    }
    for c in checks.lock().unwrap().iter_mut() {
        c.finish(&out);
    }
    say(&out, stat_line("END"));
    pipeline.set_state(gst::State::Null)?;
    if let Some(e) = error {
        return Err(e.into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// the looping live origin
// ---------------------------------------------------------------------------------------------

struct Clip {
    /// (file URI relative to v0/, duration s, size, sha1 hex)
    files: Vec<(String, f64, u64, String)>,
    seg_secs: f64,
}

/// Serves `live.m3u8` (master) → `v0/live.m3u8`: a sliding window of `window` segments over
/// the clip looped `loops` times; the clock starts at the first request of the media playlist.
///
/// `detector_check`: the origin itself lies (to check that the wrong-bytes count works): segment
/// `s` with `s % 7 == 3` names another file of the clip, `s % 11 == 5` a copy of its own file
/// with one byte flipped.
fn serve_live(
    dir: &std::path::Path,
    window: usize,
    total: usize,
    detector_check: bool,
) -> Result<(crate::origin::Origin, String, Arc<Clip>)> {
    let segs = crate::swarm::media_segments(dir, "v0/index.m3u8")?;
    let seg_secs = segs.first().map(|s| s.1).ok_or("empty clip")?;
    if segs.iter().any(|s| (s.1 - seg_secs).abs() > 1e-6) {
        return Err("the soak needs equal segment durations".into());
    }
    let mut files = Vec::new();
    for (uri, d, size) in &segs {
        let bytes = std::fs::read(dir.join("v0").join(uri))?;
        files.push((uri.clone(), *d, *size, hex_bytes(&Sha1::digest(&bytes))));
    }
    let clip = Arc::new(Clip { files, seg_secs });
    let origin = crate::origin::Origin::serve_dir(dir);
    let c = clip.clone();
    let start: Mutex<Option<Instant>> = Mutex::new(None);
    origin.route("v0/live.m3u8", move |_| {
        let t0 = *start.lock().unwrap().get_or_insert_with(Instant::now);
        let n = c.files.len();
        let avail = (window + (t0.elapsed().as_secs_f64() / c.seg_secs) as usize).min(total);
        let first = avail.saturating_sub(window);
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            c.seg_secs.ceil() as u32,
            // Loop boundaries before the first segment: one on the first segment itself is
            // still listed (its EXT-X-DISCONTINUITY counts it), so it is not in the header.
            first.saturating_sub(1) / n
        );
        for seq in first..avail {
            if seq > 0 && seq % n == 0 {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let (uri, d, _, _) = &c.files[seq % n];
            let uri = match seq {
                _ if detector_check && seq % 7 == 3 => c.files[(seq + 5) % n].0.clone(),
                _ if detector_check && seq % 11 == 5 => format!("flipped/{uri}"),
                _ => uri.clone(),
            };
            s.push_str(&format!("#EXTINF:{d:.6},\n{uri}?s={seq}\n"));
        }
        crate::origin::Response::playlist(s)
    });
    if detector_check {
        for (uri, ..) in &clip.files {
            let mut bytes = std::fs::read(dir.join("v0").join(uri))?;
            // Inside a packet's payload (not its header): still well-formed MPEG-TS.
            let at = (188 * 10 + 150).min(bytes.len() - 1);
            bytes[at] ^= 0x5a;
            origin.route(&format!("v0/flipped/{uri}"), move |_| {
                crate::origin::Response::new(200, "video/mp2t", bytes.clone())
            });
        }
    }
    let master =
        std::fs::read_to_string(dir.join("master.m3u8"))?.replace("v0/index.m3u8", "v0/live.m3u8");
    origin.route("live.m3u8", move |_| {
        crate::origin::Response::playlist(master.clone())
    });
    let table = serde_json::json!({
        "seg_secs": clip.seg_secs,
        "files": clip.files.iter().map(|f| f.3.clone()).collect::<Vec<_>>(),
        "uris": clip.files.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
    })
    .to_string();
    origin.route("digests", move |_| {
        crate::origin::Response::new(200, "application/json", table.clone())
    });
    let url = origin.url("live.m3u8");
    Ok((origin, url, clip))
}

// ---------------------------------------------------------------------------------------------
// the tracker, restartable on one port
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct TrackerSeen {
    /// info hash (hex) → peer ids (hex) that announced `start` on it.
    swarms: HashMap<String, HashSet<String>>,
    starts: u64,
    warnings: u64,
}

struct TrackerProc {
    child: Child,
    _stdin: ChildStdin,
}

fn start_tracker(port: u16, seen: &Arc<Mutex<TrackerSeen>>) -> Result<(TrackerProc, u16)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tracker");
    let mut child = Command::new("node")
        .arg(dir.join("server.mjs"))
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    let seen = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.first().copied() {
                Some("LISTENING") => {
                    let _ = tx.send(w.get(1).and_then(|p| p.parse::<u16>().ok()));
                }
                Some("EVENT") if w.len() >= 4 => {
                    let mut s = seen.lock().unwrap();
                    if w[1] == "start" {
                        s.starts += 1;
                    }
                    s.swarms
                        .entry(w[2].to_string())
                        .or_default()
                        .insert(w[3].to_string());
                }
                Some("WARNING") => seen.lock().unwrap().warnings += 1,
                _ => {}
            }
        }
    });
    let mut t = TrackerProc {
        child,
        _stdin: stdin,
    };
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(p)) => Ok((t, p)),
        _ => {
            let _ = t.child.kill();
            let _ = t.child.wait();
            Err(format!("tracker did not listen on port {port} within 20 s").into())
        }
    }
}

impl Drop for TrackerProc {
    fn drop(&mut self) {
        let _ = self.child.kill(); // by PID
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// soak (orchestrator)
// ---------------------------------------------------------------------------------------------

struct Proc {
    liar: bool,
    slot: usize,
    behaviour: Option<String>,
    pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    spawned: f64,
    churned: bool,
    exited: bool,
    /// Fields of the last STAT/END (peers) or LIAR (liars) line.
    last: HashMap<String, String>,
    ended: bool,
    peer_hex: Option<String>,
    /// Remote peer ids (hex) this element peer connected to / lost.
    connected: Vec<String>,
    closed: Vec<String>,
    errors: Vec<String>,
    /// (seconds since soak start, VmRSS KiB, open fds)
    samples: Vec<(f64, u64, u64)>,
}

impl Proc {
    fn f(&self, k: &str) -> f64 {
        self.last.get(k).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    }
}

fn proc_rss_fds(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// Least-squares slope of y over x (x in minutes) → KiB/min.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// RSS slope (KiB/min) over the second half of a process's samples.
fn rss_slope(samples: &[(f64, u64, u64)]) -> Option<f64> {
    let (t0, t1) = (samples.first()?.0, samples.last()?.0);
    let mid = (t0 + t1) / 2.0;
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.0 >= mid)
        .map(|s| (s.0 / 60.0, s.1 as f64))
        .collect();
    slope(&pts)
}

struct Opts {
    minutes: f64,
    peers: usize,
    liars: usize,
    churn_every: f64,
    tracker_restart_every: f64,
    stagger: f64,
    window: usize,
    behaviours: Vec<String>,
    liar_bind: String,
    detector_check: bool,
}

pub fn soak(args: &[String]) -> Result<()> {
    let mut o = Opts {
        minutes: 60.0,
        peers: 6,
        liars: 2,
        churn_every: 180.0,
        tracker_restart_every: 600.0,
        stagger: 4.0,
        window: 10,
        behaviours: vec!["garbage".into(), "stale".into(), "drip".into()],
        liar_bind: "127.0.0.1".into(),
        detector_check: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--minutes" => o.minutes = val()?.parse()?,
            "--peers" => o.peers = val()?.parse()?,
            "--liars" => o.liars = val()?.parse()?,
            "--churn-every" => o.churn_every = val()?.parse()?,
            "--tracker-restart-every" => o.tracker_restart_every = val()?.parse()?,
            "--stagger" => o.stagger = val()?.parse()?,
            "--window" => o.window = val()?.parse()?,
            "--liar-behaviours" => {
                o.behaviours = val()?.split(',').map(str::to_string).collect();
            }
            "--liar-bind" => o.liar_bind = val()?,
            "--detector-check" => o.detector_check = true,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    if o.liars >= o.peers {
        return Err("--liars must be fewer than --peers".into());
    }
    let honest = o.peers - o.liars;

    let t_gen = Instant::now();
    let spec = crate::stream::StreamSpec::swarm();
    let dir = crate::stream::generate(&spec)?;
    let dur_s = o.minutes * 60.0;
    let clip_segs = crate::swarm::media_segments(&dir, "v0/index.m3u8")?.len();
    // Enough segments for the whole soak past the window and the join delays.
    let total = o.window + ((dur_s + 120.0) / spec.seg_secs as f64) as usize;
    let (origin, url, clip) = serve_live(&dir, o.window, total, o.detector_check)?;
    let digests = origin.url("digests");
    let seen = Arc::new(Mutex::new(TrackerSeen::default()));
    let (tracker, port) = start_tracker(0, &seen)?;
    let mut tracker = Some(tracker);
    let tracker_url = format!("ws://127.0.0.1:{port}");
    println!(
        "soak: {} min, {} peers ({honest} element peers, {} liars: {}), churn every {} s, \
         tracker restart every {} s; stream: {}-s clip of 720p{} {} kbit/s looped as live \
         ({} segments of {} s, window {}), {} ({:.1} s); origin {url}, tracker {tracker_url}",
        o.minutes,
        o.peers,
        o.liars,
        o.behaviours.join("/"),
        o.churn_every,
        o.tracker_restart_every,
        spec.secs,
        spec.fps,
        spec.renditions[0].video_kbps,
        clip_segs,
        clip.seg_secs,
        o.window,
        dir.display(),
        t_gen.elapsed().as_secs_f64()
    );

    let exe = std::env::current_exe()?;
    let t0 = unix_ms();
    let end_at = t0 + dur_s * 1e3;
    let until = format!("{:.0}", end_at + 30e3);
    let (tx, rx) = mpsc::channel::<(usize, String)>();
    let mut procs: Vec<Proc> = Vec::new();
    let spawn =
        |procs: &mut Vec<Proc>, liar: bool, slot: usize, behaviour: Option<String>| -> Result<()> {
            let mut cmd = Command::new(&exe);
            if liar {
                cmd.args([
                    "liar",
                    "--behaviour",
                    behaviour.as_deref().unwrap_or("garbage"),
                ])
                .args(["--master", &url, "--tracker", &tracker_url])
                .args(["--bind", &o.liar_bind]);
            } else {
                cmd.args(["soak-peer", "--uri", &url, "--tracker", &tracker_url])
                    .args(["--digests", &digests]);
            }
            let mut child = cmd
                .args(["--until-ms", &until])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let i = procs.len();
            let stdout = child.stdout.take().expect("piped");
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                    let _ = tx.send((i, line));
                }
                let _ = tx.send((i, "EXIT".into()));
            });
            let stdin = child.stdin.take();
            eprintln!(
                "[soak {:>6.1} s] start {} slot {slot}{} pid {}",
                (unix_ms() - t0) / 1e3,
                if liar { "liar" } else { "peer" },
                behaviour
                    .as_deref()
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default(),
                child.id()
            );
            procs.push(Proc {
                liar,
                slot,
                behaviour,
                pid: child.id(),
                child,
                stdin,
                spawned: unix_ms(),
                churned: false,
                exited: false,
                last: HashMap::new(),
                ended: false,
                peer_hex: None,
                connected: Vec::new(),
                closed: Vec::new(),
                errors: Vec::new(),
                samples: Vec::new(),
            });
            Ok(())
        };

    // Liars first: they are in the swarm when the first element peer announces.
    let mut next_behaviour = 0usize;
    for l in 0..o.liars {
        let b = o.behaviours[next_behaviour % o.behaviours.len()].clone();
        next_behaviour += 1;
        spawn(&mut procs, true, l, Some(b))?;
    }
    let mut spawned_honest = 0usize;
    let (mut churns, mut restarts) = (0u64, 0u64);
    let mut next_churn = t0 + o.churn_every * 1e3;
    let mut next_restart = t0 + o.tracker_restart_every * 1e3;
    let mut next_sample = t0;
    let mut next_minute = t0 + 60e3;
    let mut closing_since: Option<f64> = None;
    let mut restart_gaps_ms: Vec<f64> = Vec::new();
    let mut prev_minute = (0.0, 0.0, 0.0);
    loop {
        let now = unix_ms();
        let secs = (now - t0) / 1e3;
        while spawned_honest < honest && now >= t0 + o.stagger * 1e3 * spawned_honest as f64 {
            spawn(&mut procs, false, spawned_honest, None)?;
            spawned_honest += 1;
        }
        while let Ok((i, line)) = rx.try_recv() {
            handle_line(&mut procs[i], &line, t0);
        }
        // Nothing new in the last 10 s: a peer started then would only add a startup.
        if closing_since.is_none() && now < end_at - 10e3 {
            if o.churn_every > 0.0 && now >= next_churn {
                next_churn += o.churn_every * 1e3;
                churns += 1;
                // Honest slots 1.. rotate; slot 0 lives the whole soak (the long RSS series).
                let slot = if honest > 1 {
                    1 + (churns as usize - 1) % (honest - 1)
                } else {
                    0
                };
                if let Some(p) = procs
                    .iter_mut()
                    .find(|p| !p.liar && p.slot == slot && !p.churned && !p.exited)
                {
                    eprintln!(
                        "[soak {secs:>6.1} s] churn: kill peer slot {slot} pid {}",
                        p.pid
                    );
                    p.churned = true;
                    let _ = p.child.kill(); // SIGKILL by PID: a viewer vanishing mid-transfer
                    let _ = p.child.wait();
                }
                spawn(&mut procs, false, slot, None)?;
                if o.liars > 0 {
                    // One liar comes back as a fresh peer id with the next behaviour.
                    let slot = (churns as usize - 1) % o.liars;
                    if let Some(p) = procs
                        .iter_mut()
                        .find(|p| p.liar && p.slot == slot && !p.churned && !p.exited)
                    {
                        p.churned = true;
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                    }
                    let b = o.behaviours[next_behaviour % o.behaviours.len()].clone();
                    next_behaviour += 1;
                    spawn(&mut procs, true, slot, Some(b))?;
                }
            }
            if o.tracker_restart_every > 0.0 && now >= next_restart {
                next_restart += o.tracker_restart_every * 1e3;
                let t_kill = unix_ms();
                if let Some(t) = tracker.take() {
                    eprintln!(
                        "[soak {secs:>6.1} s] tracker restart: kill pid {}",
                        t.child.id()
                    );
                    drop(t); // SIGKILL by PID and reap
                }
                // The port may take a moment to free: retry a few times.
                for attempt in 0..5 {
                    match start_tracker(port, &seen) {
                        Ok((t, _)) => {
                            eprintln!(
                                "[soak {secs:>6.1} s] tracker back on port {port}, pid {}",
                                t.child.id()
                            );
                            tracker = Some(t);
                            break;
                        }
                        Err(e) => {
                            eprintln!("[soak] tracker restart attempt {attempt}: {e}");
                            std::thread::sleep(Duration::from_millis(500));
                        }
                    }
                }
                restart_gaps_ms.push(unix_ms() - t_kill);
                restarts += 1;
            }
        }
        if now >= next_sample {
            next_sample += 10e3;
            for p in procs.iter_mut().filter(|p| !p.exited && !p.churned) {
                if let Some((rss, fds)) = proc_rss_fds(p.pid) {
                    p.samples.push((secs, rss, fds));
                }
            }
        }
        if now >= next_minute && closing_since.is_none() {
            next_minute += 60e3;
            print_minute(&procs, secs, &mut prev_minute);
        }
        if closing_since.is_none() && now >= end_at {
            closing_since = Some(now);
            for p in procs.iter_mut() {
                p.stdin.take(); // EOF: element peers print END and exit; liars exit
            }
        }
        if let Some(c) = closing_since {
            let all_done = procs.iter().all(|p| p.exited || p.churned || p.liar);
            if all_done || now >= c + 30e3 {
                if !all_done {
                    eprintln!("[soak] peers did not exit within 30 s; killing them");
                }
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in procs.iter_mut() {
        let _ = p.child.kill(); // by PID; a no-op for exited ones
        let _ = p.child.wait();
    }
    while let Ok((i, line)) = rx.try_recv() {
        handle_line(&mut procs[i], &line, t0);
    }
    drop(tracker);
    let wall = (unix_ms() - t0) / 1e3;
    let result = summarise(
        &o,
        &procs,
        &origin,
        &clip,
        &seen,
        churns,
        restarts,
        &restart_gaps_ms,
        wall,
    );
    println!("SOAK_RESULT {result}");
    Ok(())
}

fn handle_line(p: &mut Proc, line: &str, t0: f64) {
    let word = line.split_whitespace().next().unwrap_or("");
    let f = kv(line);
    let who = format!(
        "{} slot {} pid {}",
        if p.liar { "liar" } else { "peer" },
        p.slot,
        p.pid
    );
    let at = (crate::swarm::unix_ms() - t0) / 1e3;
    match word {
        "STAT" | "LIAR" => p.last = f,
        "END" => {
            p.last = f;
            p.ended = true;
        }
        "LIAR_ID" => p.peer_hex = f.get("peer").cloned(),
        "CONNECTED" => p.connected.extend(f.get("peer").cloned()),
        "CLOSED" => p.closed.extend(f.get("peer").cloned()),
        "STALL" | "WRONG" => eprintln!("[soak {at:>6.1} s] {who}: {line}"),
        "ERROR" => {
            eprintln!("[soak {at:>6.1} s] {who}: {line}");
            p.errors.push(line.to_string());
        }
        "EXIT" => p.exited = true,
        _ => {}
    }
}

fn totals(procs: &[Proc]) -> serde_json::Value {
    let peers: Vec<&Proc> = procs.iter().filter(|p| !p.liar).collect();
    let sum = |k: &str| peers.iter().map(|p| p.f(k)).sum::<f64>();
    let (http, p2p) = (sum("http"), sum("p2p"));
    let liar_ids: HashSet<&str> = procs
        .iter()
        .filter(|p| p.liar)
        .filter_map(|p| p.peer_hex.as_deref())
        .collect();
    let count = |f: fn(&Proc) -> &Vec<String>, liars: bool| -> usize {
        peers
            .iter()
            .flat_map(|p| f(p).iter())
            .filter(|id| liar_ids.contains(id.as_str()) == liars)
            .count()
    };
    let liars: Vec<&Proc> = procs.iter().filter(|p| p.liar).collect();
    let lsum = |k: &str| liars.iter().map(|p| p.f(k)).sum::<f64>() as u64;
    serde_json::json!({
        "http_bytes": http as u64, "p2p_bytes": p2p as u64, "upload_bytes": sum("up") as u64,
        "p2p_share": if http + p2p > 0.0 { p2p / (http + p2p) } else { 0.0 },
        "stalls": sum("stalls") as u64, "stall_ms": sum("stall_ms"),
        "segments_checked": sum("segs") as u64, "wrong_segments": sum("wrong") as u64,
        "wrong_unknown_bytes": sum("unknown_bytes") as u64,
        "connections_to_liars": count(|p| &p.connected, true),
        "closed_liar_connections": count(|p| &p.closed, true),
        "connections_to_honest": count(|p| &p.connected, false),
        "closed_honest_connections": count(|p| &p.closed, false),
        "liar_requests": lsum("requests"), "liar_lies_sent": lsum("lies"),
        "liar_channels": lsum("channels"),
        "errors": peers.iter().map(|p| p.errors.len()).sum::<usize>(),
    })
}

/// `prev`: (http, p2p, stalls) totals at the previous minute, for the minute's own figures.
fn print_minute(procs: &[Proc], secs: f64, prev: &mut (f64, f64, f64)) {
    let t = totals(procs);
    let g = |k: &str| t[k].as_f64().unwrap_or(0.0);
    let (h, p, st) = (
        g("http_bytes") - prev.0,
        g("p2p_bytes") - prev.1,
        g("stalls") - prev.2,
    );
    *prev = (g("http_bytes"), g("p2p_bytes"), g("stalls"));
    let mut cells = Vec::new();
    for p in procs.iter().filter(|p| !p.liar && !p.churned && !p.exited) {
        if let Some(s) = p.samples.last() {
            cells.push(format!(
                "{}:{:.1}MiB/{}fd",
                p.slot,
                s.1 as f64 / 1024.0,
                s.2
            ));
        }
    }
    println!(
        "SOAK_MIN m={:.0} rss/fds=[{}] p2p_this_min={:.1}% p2p={:.1}% stalls_this_min={} stalls={} \
         stall_ms={:.0} segs={} wrong={} liar_conns={} liar_closed={} liar_requests={} errors={}",
        secs / 60.0,
        cells.join(" "),
        if h + p > 0.0 { 100.0 * p / (h + p) } else { 0.0 },
        100.0 * g("p2p_share"),
        st,
        g("stalls"),
        g("stall_ms"),
        g("segments_checked"),
        g("wrong_segments"),
        g("connections_to_liars"),
        g("closed_liar_connections"),
        g("liar_requests"),
        g("errors"),
    );
    let _ = std::io::stdout().flush();
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    o: &Opts,
    procs: &[Proc],
    origin: &crate::origin::Origin,
    clip: &Clip,
    seen: &Mutex<TrackerSeen>,
    churns: u64,
    restarts: u64,
    restart_gaps_ms: &[f64],
    wall: f64,
) -> serde_json::Value {
    let t = totals(procs);
    // Origin: body bytes sent for segments, and the unique segments (by media sequence).
    let log = origin.log();
    let mut paths: Vec<&str> = log
        .iter()
        .map(|r| r.path.as_str())
        .filter(|p| p.ends_with(".ts"))
        .collect();
    paths.sort();
    paths.dedup();
    // Less what the liars fetched to lie with (they mark their requests `by=liar`).
    let liar_fetched: u64 = procs
        .iter()
        .filter(|p| p.liar)
        .map(|p| p.f("fetched") as u64)
        .sum();
    let origin_seg: u64 = paths
        .iter()
        .map(|p| origin.bytes(p))
        .sum::<u64>()
        .saturating_sub(liar_fetched);
    let seqs: std::collections::BTreeSet<usize> = log
        .iter()
        .filter(|r| r.path.ends_with(".ts"))
        .filter(|r| !r.query.as_deref().unwrap_or("").contains("by=liar"))
        .filter_map(|r| r.query.as_deref()?.strip_prefix("s=")?.parse().ok())
        .collect();
    let n = clip.files.len();
    let unique: u64 = seqs.iter().map(|s| clip.files[s % n].2).sum();

    let per_peer: Vec<serde_json::Value> = procs
        .iter()
        .filter(|p| !p.liar)
        .map(|p| {
            let fds: Vec<u64> = p.samples.iter().map(|s| s.2).collect();
            let (h, q) = (p.f("http"), p.f("p2p"));
            serde_json::json!({
                "slot": p.slot, "pid": p.pid,
                "from_s": (p.spawned - procs[0].spawned) / 1e3,
                "minutes": p.samples.last().map(|l| (l.0 - p.samples[0].0) / 60.0),
                "churned": p.churned, "clean_end": p.ended,
                "rss_mib_start": p.samples.first().map(|s| s.1 as f64 / 1024.0),
                "rss_mib_end": p.samples.last().map(|s| s.1 as f64 / 1024.0),
                "rss_mib_max": p.samples.iter().map(|s| s.1).max().map(|m| m as f64 / 1024.0),
                "rss_slope_kib_per_min": rss_slope(&p.samples),
                "fds_start": fds.first(), "fds_end": fds.last(), "fds_max": fds.iter().max(),
                "http_bytes": h as u64, "p2p_bytes": q as u64,
                "p2p_share": if h + q > 0.0 { q / (h + q) } else { 0.0 },
                "stalls": p.f("stalls") as u64, "stall_ms": p.f("stall_ms"),
                "segments": p.f("segs") as u64, "wrong": p.f("wrong") as u64,
                "errors": p.errors,
            })
        })
        .collect();
    let liars: Vec<serde_json::Value> = procs
        .iter()
        .filter(|p| p.liar)
        .map(|p| {
            serde_json::json!({
                "slot": p.slot, "behaviour": p.behaviour, "peer": p.peer_hex,
                "channels": p.f("channels") as u64, "requests": p.f("requests") as u64,
                "lies": p.f("lies") as u64, "bytes": p.f("bytes") as u64,
                "closed_after_request": p.f("closed_after_request") as u64,
            })
        })
        .collect();
    // The long-lived peer (slot 0, never churned) and the worst of those that lived ≥ 10 min.
    let long = procs.iter().find(|p| !p.liar && p.slot == 0 && !p.churned);
    let slopes_10min: Vec<f64> = procs
        .iter()
        .filter(|p| !p.liar)
        .filter(|p| p.samples.len() >= 60)
        .filter_map(|p| rss_slope(&p.samples))
        .collect();
    let seen = seen.lock().unwrap();
    let liar_ids: HashSet<&str> = procs
        .iter()
        .filter(|p| p.liar)
        .filter_map(|p| p.peer_hex.as_deref())
        .collect();
    let swarms: BTreeMap<&String, serde_json::Value> = seen
        .swarms
        .iter()
        .map(|(ih, ids)| {
            let l = ids.iter().filter(|i| liar_ids.contains(i.as_str())).count();
            (
                ih,
                serde_json::json!({"peer_ids": ids.len(), "liar_ids": l}),
            )
        })
        .collect();
    let fds_all: Vec<u64> = procs
        .iter()
        .filter(|p| !p.liar)
        .flat_map(|p| p.samples.iter().map(|s| s.2))
        .collect();
    let result = serde_json::json!({
        "minutes": o.minutes, "peers": o.peers, "liars": o.liars,
        "element_peers": o.peers - o.liars,
        "churn_every_s": o.churn_every, "tracker_restart_every_s": o.tracker_restart_every,
        "liar_behaviours": o.behaviours, "liar_bind": o.liar_bind,
        "detector_check": o.detector_check,
        "churns": churns, "tracker_restarts": restarts,
        "tracker_restart_gap_ms": restart_gaps_ms,
        "wall_s": wall,
        "p2p_share": t["p2p_share"], "limit": (o.peers - o.liars - 1) as f64 / (o.peers - o.liars) as f64,
        "stalls": t["stalls"], "stall_ms": t["stall_ms"],
        "segments_checked": t["segments_checked"], "wrong_segments": t["wrong_segments"],
        "origin_segment_bytes": origin_seg, "unique_segment_bytes": unique,
        "liar_origin_bytes": liar_fetched,
        "origin_x": origin_seg as f64 / unique.max(1) as f64,
        "long_lived_peer": long.map(|p| serde_json::json!({
            "pid": p.pid,
            "rss_slope_kib_per_min": rss_slope(&p.samples),
            "rss_mib_start": p.samples.first().map(|s| s.1 as f64 / 1024.0),
            "rss_mib_end": p.samples.last().map(|s| s.1 as f64 / 1024.0),
            "fds_start": p.samples.first().map(|s| s.2),
            "fds_end": p.samples.last().map(|s| s.2),
            "fds_max": p.samples.iter().map(|s| s.2).max(),
        })),
        "rss_slope_kib_per_min_max_10min": slopes_10min.iter().cloned().fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s)))),
        "fds_max": fds_all.iter().max(),
        "totals": t,
        "tracker": {"starts": seen.starts, "warnings": seen.warnings, "swarms": swarms},
        "per_peer": per_peer,
        "liar_procs": liars,
    });
    print_summary(&result);
    result
}

fn print_summary(r: &serde_json::Value) {
    let g = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let l = &r["long_lived_peer"];
    println!();
    println!(
        "soak {} min: {} element peers + {} liars, {} churns, {} tracker restarts",
        r["minutes"], r["element_peers"], r["liars"], r["churns"], r["tracker_restarts"]
    );
    println!(
        "  P2P share {:.1} % (limit {:.1} %), origin {:.2}x unique segment bytes",
        100.0 * g("p2p_share"),
        100.0 * g("limit"),
        g("origin_x")
    );
    println!(
        "  stalls {} ({:.0} ms total), wrong segments {} of {} checked",
        r["stalls"],
        g("stall_ms"),
        r["wrong_segments"],
        r["segments_checked"]
    );
    println!(
        "  long-lived peer: RSS {:.1} -> {:.1} MiB, slope {:.1} KiB/min (2nd half); fds {} -> {} (max {})",
        l["rss_mib_start"].as_f64().unwrap_or(f64::NAN),
        l["rss_mib_end"].as_f64().unwrap_or(f64::NAN),
        l["rss_slope_kib_per_min"].as_f64().unwrap_or(f64::NAN),
        l["fds_start"],
        l["fds_end"],
        l["fds_max"]
    );
    if r["detector_check"].as_bool() == Some(true) {
        // About 1/7 + 1/11 of the segments are wrong at the origin itself.
        let (w, n) = (g("wrong_segments"), g("segments_checked"));
        let expected = n * (1.0 / 7.0 + 1.0 / 11.0 - 1.0 / 77.0);
        let ok = n > 0.0 && (w - expected).abs() <= 0.25 * expected + 3.0;
        println!(
            "  detector check (the origin lies): {w} wrong of {n}, expected about {expected:.0}: {}",
            if ok { "OK" } else { "FAILED" }
        );
    }
    let t = &r["totals"];
    println!(
        "  liars: {} data channels, {} requests, {} lies sent; elements connected to liars {} times, closed {}",
        t["liar_channels"],
        t["liar_requests"],
        t["liar_lies_sent"],
        t["connections_to_liars"],
        t["closed_liar_connections"]
    );
}
