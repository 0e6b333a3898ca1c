//! Demo: a local P2P swarm. Generates a local HLS (or, with `--dash`, MPEG-DASH) stream, serves
//! it on 127.0.0.1, starts a real WebTorrent tracker (`tests/tracker/server.mjs`,
//! bittorrent-tracker 11.2.3) and plays the stream in real time through several `p2phlssrc`
//! (`p2pdashsrc`) peers that share segments over WebRTC data
//! channels (127.0.0.1 host candidates only). Prints a table of HTTP vs P2P bytes per peer every
//! second (from the elements' `p2pmedia-stats` bus messages) and a summary at the end.
//!
//!   cargo run --example demo -- [--dash] [--peers N] [--stagger S] [--duration S] [--uri URL] [--no-p2p]
//!   cargo run --example demo -- --serve [--dash] [--port 8080] [--duration S]
//!
//! `--peers N` (default 4) plays the stream in N pipelines (peers) in this process, the i-th
//! joining `i * stagger` seconds (default 4) after the first. `--peers 1` or `--no-p2p` is the
//! plain HTTP mode (no tracker, `p2p-enabled=false`).
//! `--serve` only serves the stream (on a fixed port, for gst-launch-1.0) until killed.
//! At the end it writes an SVG chart of the per-second figures (per peer, HTTP and P2P bytes
//! received; the swarm's P2P share) and prints `chart: PATH` as its last line (`--chart PATH`,
//! default `target/demo-chart.svg`).

#[path = "common/chart.rs"]
mod chart;
#[path = "../tests/common/origin.rs"]
mod origin;
#[path = "common/stream.rs"]
mod stream;
#[path = "common/swarm.rs"]
mod swarm;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use origin::Origin;

const USAGE: &str = "\
usage: demo [--dash] [--peers N] [--stagger SECS] [--duration SECS] [--uri URL] [--no-p2p]
       demo --serve [--dash] [--port PORT] [--duration SECS]
  --dash           MPEG-DASH: the local stream as an MPD, played with p2pdashsrc
  --peers N        play the stream in N pipelines (P2P peers) at once (default 4)
  --stagger SECS   peer i joins i*SECS after peer 0 (default 4)
  --no-p2p         plain HTTP: no tracker, p2p-enabled=false (also with --peers 1)
  --duration SECS  stop after SECS (default: when every peer reached the end)
  --uri URL        play this stream (.m3u8 HLS, .mpd DASH) instead of the generated local one
  --serve          only serve the generated stream on 127.0.0.1:PORT (default 8080) until killed
  --chart PATH     write the SVG chart there (default target/demo-chart.svg)";

struct Opts {
    peers: usize,
    stagger: Duration,
    duration: Option<Duration>,
    uri: Option<String>,
    serve: bool,
    port: u16,
    p2p: bool,
    dash: bool,
    chart: std::path::PathBuf,
}

impl Opts {
    fn parse() -> Result<Opts, String> {
        let mut o = Opts {
            peers: 4,
            stagger: Duration::from_secs(4),
            duration: None,
            uri: None,
            serve: false,
            port: 8080,
            p2p: true,
            dash: false,
            chart: "target/demo-chart.svg".into(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            let secs = |v: String| -> Result<Duration, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or(format!("not a number of seconds: {v}"))
            };
            match a.as_str() {
                "--peers" => {
                    o.peers = val("--peers")?
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or("--peers needs a number >= 1")?
                }
                "--stagger" => o.stagger = secs(val("--stagger")?)?,
                "--duration" => o.duration = Some(secs(val("--duration")?)?),
                "--uri" => o.uri = Some(val("--uri")?),
                "--serve" => o.serve = true,
                "--no-p2p" => o.p2p = false,
                "--dash" => o.dash = true,
                "--chart" => o.chart = val("--chart")?.into(),
                "--port" => {
                    o.port = val("--port")?
                        .parse()
                        .map_err(|_| "--port needs a port number")?
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {a}")),
            }
        }
        if o.peers == 1 {
            o.p2p = false;
        }
        if o.uri
            .as_deref()
            .is_some_and(|u| u.split(['?', '#']).next().unwrap_or(u).ends_with(".mpd"))
        {
            o.dash = true;
        }
        Ok(o)
    }
}

fn main() {
    let opts = match Opts::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("demo: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(opts) {
        eprintln!("demo: {e}");
        std::process::exit(1);
    }
}

fn run(opts: Opts) -> Result<(), Box<dyn std::error::Error>> {
    // The local stream and its origin (kept alive until the end of `run`).
    let format = if opts.dash {
        stream::Format::Dash
    } else {
        stream::Format::Hls
    };
    let mut _origin = None;
    let mut stream_dir = None;
    let http_uri = match &opts.uri {
        Some(u) => u.clone(),
        None => {
            let spec = stream::StreamSpec::demo();
            let t0 = Instant::now();
            let dir = stream::generate_as(&spec, format)?;
            println!(
                "stream: {} s, {} variants, {} ({:.1} s)",
                spec.secs,
                spec.renditions.len(),
                dir.display(),
                t0.elapsed().as_secs_f64()
            );
            let o = Origin::serve_dir(&dir);
            let u = o.url(format.manifest());
            _origin = Some(o);
            stream_dir = Some(dir);
            u
        }
    };

    if opts.serve {
        return serve(
            &opts,
            _origin
                .as_ref()
                .ok_or("--serve serves the local stream; drop --uri")?,
        );
    }

    gst::init()?;
    gstp2pmedia::plugin_register_static()?;
    let (element, scheme) = if opts.dash {
        ("p2pdashsrc", "p2pdash+")
    } else {
        ("p2phlssrc", "p2phls+")
    };
    if gst::ElementFactory::find(element).is_none() {
        return Err(format!("the p2pmedia plugin has no {element} element").into());
    }
    let uri = format!("{scheme}{http_uri}");
    // The swarm's tracker: a real bittorrent-tracker (Node.js) on 127.0.0.1, stopped by PID
    // when `tracker` is dropped (and by itself if this process dies: its stdin closes).
    let tracker = if opts.p2p {
        let t = swarm::Tracker::start()?;
        println!(
            "tracker: {} (bittorrent-tracker 11.2.3, pid {})",
            t.url(),
            t.pid()
        );
        Some(t)
    } else {
        None
    };
    let p2p = P2p {
        enabled: opts.p2p,
        tracker: tracker.as_ref().map(|t| t.url()),
    };
    println!(
        "playing {uri} with {} peer(s), {} s apart, {}",
        opts.peers,
        opts.stagger.as_secs_f64(),
        if opts.p2p {
            "sharing segments over WebRTC data channels (127.0.0.1 host candidates only)"
        } else {
            "HTTP only (p2p-enabled=false)"
        }
    );

    let t0 = Instant::now();
    let mut peers: Vec<Peer> = (0..opts.peers)
        .map(|i| Peer::new(i, p2p.clone()))
        .collect::<Result<_, _>>()?;
    let mut next_print = Duration::from_secs(1);
    let mut chart = chart::Chart {
        title: format!(
            "{} peers playing {} over {}",
            opts.peers,
            if opts.dash { "MPEG-DASH" } else { "HLS" },
            if opts.p2p { "HTTP + P2P" } else { "HTTP only" }
        ),
        peers: (0..opts.peers)
            .map(|i| chart::PeerSeries {
                name: format!("peer {i}"),
                points: Vec::new(),
            })
            .collect(),
    };
    println!("{}", table_header(peers.len()));
    loop {
        let now = t0.elapsed();
        for p in peers.iter_mut() {
            if p.started.is_none() && now >= opts.stagger * p.id as u32 {
                p.start(&uri)?;
            }
            p.poll_bus();
        }
        if now >= next_print {
            println!("{}", table_row(now, &peers));
            for (p, series) in peers.iter().zip(chart.peers.iter_mut()) {
                if p.started.is_some() {
                    let s = &p.bus_stats;
                    series.points.push(chart::Point {
                        t: now.as_secs_f64(),
                        http: s.num("http-bytes").unwrap_or(0.0),
                        p2p: s.num("p2p-bytes").unwrap_or(0.0),
                    });
                }
            }
            next_print += Duration::from_secs(1);
        }
        let all_done = peers.iter().all(|p| p.outcome.is_some());
        if all_done || opts.duration.is_some_and(|d| now >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let wall = t0.elapsed();
    // Read the last stats before stopping (a stopped source may reset them).
    let finals: Vec<Stats> = peers.iter().map(Peer::stats).collect();
    for p in &peers {
        p.pipeline.set_state(gst::State::Null)?;
    }
    summary(
        &peers,
        &finals,
        wall,
        _origin.as_ref().zip(stream_dir.as_deref()),
    );
    drop(tracker);
    // The last line: where the chart is.
    if let Some(dir) = opts.chart.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&opts.chart, chart.to_svg())?;
    let path = std::fs::canonicalize(&opts.chart).unwrap_or(opts.chart.clone());
    if peers
        .iter()
        .any(|p| matches!(p.outcome, Some(Outcome::Error(_))))
    {
        println!("chart: {}", path.display());
        return Err("a peer failed".into());
    }
    println!("chart: {}", path.display());
    Ok(())
}

/// Serve the stream on 127.0.0.1:`port` by forwarding each connection to the origin (which
/// itself listens on an ephemeral port), so gst-launch-1.0 lines can name a fixed URL.
fn serve(opts: &Opts, origin: &Origin) -> Result<(), Box<dyn std::error::Error>> {
    let (manifest, scheme) = if opts.dash {
        ("manifest.mpd", "p2pdash+")
    } else {
        ("master.m3u8", "p2phls+")
    };
    let url = if opts.port == 0 {
        origin.url(manifest)
    } else {
        let listener = TcpListener::bind(("127.0.0.1", opts.port))
            .map_err(|e| format!("bind 127.0.0.1:{}: {e}", opts.port))?;
        let target: SocketAddr = ([127, 0, 0, 1], origin.port()).into();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    if let Ok(upstream) = TcpStream::connect(target) {
                        let _ = pipe(client, upstream);
                    }
                });
            }
        });
        format!("http://127.0.0.1:{}/{manifest}", opts.port)
    };
    println!("serving {url}");
    println!("  GST_PLUGIN_PATH=target/debug gst-launch-1.0 playbin uri={scheme}{url}");
    match opts.duration {
        Some(d) => std::thread::sleep(d),
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
    println!("served {} bytes", origin.total_bytes());
    Ok(())
}

/// Copy bytes both ways until either side closes.
fn pipe(a: TcpStream, b: TcpStream) -> io::Result<()> {
    let (mut a2, mut b2) = (a.try_clone()?, b.try_clone()?);
    let t = std::thread::spawn(move || {
        let _ = io::copy(&mut b2, &mut a2);
        let _ = a2.shutdown(Shutdown::Write);
    });
    let (mut a, mut b) = (a, b);
    let _ = io::copy(&mut a, &mut b);
    let _ = b.shutdown(Shutdown::Write);
    let _ = t.join();
    Ok(())
}

enum Outcome {
    Eos(Duration),
    Error(String),
}

/// How every peer's source element is configured.
#[derive(Clone)]
struct P2p {
    enabled: bool,
    tracker: Option<String>,
}

/// One player: a playbin on `p2phls+http://...` (or `p2pdash+`), decoding to fakesinks in real time.
struct Peer {
    id: usize,
    /// The latest `p2pmedia-stats` message from its source.
    bus_stats: Stats,
    /// Data channels open now (`p2pmedia-peer-connected` minus `-closed`) and ever.
    links: (i64, u64),
    pipeline: gst::Element,
    source: Arc<Mutex<Option<gst::Element>>>,
    video_frames: Arc<AtomicU64>,
    first_frame: Arc<Mutex<Option<Instant>>>,
    started: Option<Instant>,
    outcome: Option<Outcome>,
}

impl Peer {
    fn new(id: usize, p2p: P2p) -> Result<Peer, gst::glib::BoolError> {
        let sink = |name: &str| {
            gst::ElementFactory::make("fakesink")
                .name(format!("{name}{id}"))
                .property("sync", true)
                .build()
        };
        let video_sink = sink("video")?;
        let pipeline = gst::ElementFactory::make("playbin")
            .name(format!("peer{id}"))
            .property("video-sink", &video_sink)
            .property("audio-sink", sink("audio")?)
            .build()?;
        let video_frames = Arc::new(AtomicU64::new(0));
        let first_frame = Arc::new(Mutex::new(None));
        let (frames, first) = (video_frames.clone(), first_frame.clone());
        video_sink
            .static_pad("sink")
            .expect("fakesink has a sink pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if frames.fetch_add(1, Ordering::Relaxed) == 0 {
                    *first.lock().unwrap() = Some(Instant::now());
                }
                gst::PadProbeReturn::Ok
            });
        let source = Arc::new(Mutex::new(None));
        let slot = source.clone();
        pipeline.connect("source-setup", false, move |args| {
            let src = args[1]
                .get::<gst::Element>()
                .expect("source-setup gives an element");
            if src.find_property("p2p-enabled").is_some() {
                src.set_property("p2p-enabled", p2p.enabled);
                src.set_property("stats-interval", 1000u32);
                if let Some(t) = &p2p.tracker {
                    src.set_property("trackers", gst::Array::new([t.as_str()]));
                }
                // Loopback: host candidates only, no STUN.
                src.set_property("ice-servers", gst::Array::default());
            }
            *slot.lock().unwrap() = Some(src);
            None
        });
        Ok(Peer {
            id,
            bus_stats: Stats::default(),
            links: (0, 0),
            pipeline,
            source,
            video_frames,
            first_frame,
            started: None,
            outcome: None,
        })
    }

    fn start(&mut self, uri: &str) -> Result<(), gst::StateChangeError> {
        self.pipeline.set_property("uri", uri);
        self.started = Some(Instant::now());
        self.pipeline.set_state(gst::State::Playing).map(|_| ())
    }

    fn poll_bus(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        let Some(bus) = self.pipeline.bus() else {
            return;
        };
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    let t = self.started.map(|s| s.elapsed()).unwrap_or_default();
                    println!(
                        "peer {}: end of stream after {:.1} s",
                        self.id,
                        t.as_secs_f64()
                    );
                    self.outcome = Some(Outcome::Eos(t));
                }
                gst::MessageView::Error(e) => {
                    let text = format!(
                        "{} ({})",
                        e.error(),
                        e.debug().map(|d| d.to_string()).unwrap_or_default()
                    );
                    eprintln!("peer {}: error: {text}", self.id);
                    self.outcome = Some(Outcome::Error(text));
                }
                gst::MessageView::Warning(w) => {
                    eprintln!("peer {}: warning: {}", self.id, w.error());
                }
                gst::MessageView::Element(e) => match e.structure().map(|s| s.name().as_str()) {
                    Some("p2pmedia-stats") => {
                        self.bus_stats = Stats(e.structure().map(|s| s.to_owned()))
                    }
                    Some("p2pmedia-peer-connected") => {
                        self.links.0 += 1;
                        self.links.1 += 1;
                    }
                    Some("p2pmedia-peer-closed") => self.links.0 -= 1,
                    _ => {}
                },
                _ => {}
            }
            if self.outcome.is_some() {
                break;
            }
        }
    }

    fn stats(&self) -> Stats {
        let src = self.source.lock().unwrap().clone();
        src.filter(|s| s.find_property("stats").is_some())
            .map(|s| Stats(s.property::<Option<gst::Structure>>("stats")))
            .unwrap_or_default()
    }

    /// This peer's cell in the live table: playback position, then HTTP / P2P MiB received
    /// and data channels open (from the latest `p2pmedia-stats` bus message).
    fn cell(&self) -> String {
        if self.started.is_none() {
            return format!("{:^24}", "(not started)");
        }
        let pos = self
            .pipeline
            .query_position::<gst::ClockTime>()
            .map(|p| format!("{:4.0}s", p.seconds_f64()))
            .unwrap_or_else(|| "    -".into());
        let pos = match &self.outcome {
            Some(Outcome::Eos(_)) => " end ".to_string(),
            Some(Outcome::Error(_)) => "FAIL ".to_string(),
            None => pos,
        };
        let s = &self.bus_stats;
        let mib = |f: &str| s.num(f).unwrap_or(0.0) / 1024.0 / 1024.0;
        format!(
            "{pos} {:5.1} {:5.1} {:>2}p",
            mib("http-bytes"),
            mib("p2p-bytes"),
            s.num("peers").unwrap_or(0.0)
        )
    }
}

fn table_header(n: usize) -> String {
    let mut h = String::from("  time |");
    for i in 0..n {
        h.push_str(&format!(" {:^24} |", format!("peer {i}: pos http p2p")));
    }
    h.push_str(" all peers: http  p2p  P2P share");
    h.push_str(&format!(
        "\n       |{}  (MiB received per peer; Np = data channels open)",
        " ".repeat(27 * n)
    ));
    h
}

fn table_row(now: Duration, peers: &[Peer]) -> String {
    let mut r = format!("[{:>4}s]", now.as_secs());
    for p in peers {
        r.push_str(&format!(" {:<24} |", p.cell()));
    }
    let sum = |f: &str| peers.iter().filter_map(|p| p.bus_stats.num(f)).sum::<f64>();
    let (http, p2p) = (sum("http-bytes"), sum("p2p-bytes"));
    let share = if http + p2p > 0.0 {
        100.0 * p2p / (http + p2p)
    } else {
        0.0
    };
    r.push_str(&format!(
        " {:9.1} {:5.1}  {share:5.1} %",
        http / 1024.0 / 1024.0,
        p2p / 1024.0 / 1024.0
    ));
    r
}

/// The element's read-only `stats` structure; every field is optional (they grow with the
/// element: P2P fields arrive with the swarm).
#[derive(Default)]
struct Stats(Option<gst::Structure>);

impl Stats {
    fn num(&self, field: &str) -> Option<f64> {
        let v = self.0.as_ref()?.value(field).ok()?;
        v.get::<u64>()
            .map(|x| x as f64)
            .or_else(|_| v.get::<i64>().map(|x| x as f64))
            .or_else(|_| v.get::<u32>().map(f64::from))
            .or_else(|_| v.get::<i32>().map(f64::from))
            .or_else(|_| v.get::<f64>())
            .ok()
    }

    fn describe(&self) -> String {
        if self.0.is_none() {
            return "no stats yet".into();
        }
        let mut parts = Vec::new();
        if let Some(b) = self.num("http-bytes") {
            let segs = self
                .num("http-segments")
                .map(|n| format!(" in {n} seg"))
                .unwrap_or_default();
            parts.push(format!("http {}{segs}", bytes(b)));
        }
        if let Some(b) = self.num("p2p-bytes") {
            let segs = self
                .num("p2p-segments")
                .map(|n| format!(" in {n} seg"))
                .unwrap_or_default();
            parts.push(format!("p2p {}{segs}", bytes(b)));
        }
        if let Some(b) = self.num("p2p-upload-bytes") {
            parts.push(format!("up {}", bytes(b)));
        }
        if let Some(n) = self.num("peers") {
            parts.push(format!("{n} peers"));
        }
        if let Some(b) = self.num("variant-bitrate") {
            parts.push(format!("variant {}", bitrate(b)));
        }
        if let Some(b) = self.num("bandwidth") {
            parts.push(format!("bw {}", bitrate(b)));
        }
        if let Some(t) = self.num("buffered-time") {
            // GStreamer times are nanoseconds.
            parts.push(format!("buffered {:.1} s", t / 1e9));
        }
        parts.join(", ")
    }
}

fn bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else if b >= 1024.0 {
        format!("{:.0} KiB", b / 1024.0)
    } else {
        format!("{b} B")
    }
}

fn bitrate(bps: f64) -> String {
    format!("{:.1} Mbit/s", bps / 1e6)
}

/// HTTP and P2P bytes over all peers, and the share that came over P2P.
fn totals(stats: &[Stats]) -> String {
    let sum = |f: &str| stats.iter().filter_map(|s| s.num(f)).sum::<f64>();
    let (http, p2p, up) = (sum("http-bytes"), sum("p2p-bytes"), sum("p2p-upload-bytes"));
    let share = if http + p2p > 0.0 {
        100.0 * p2p / (http + p2p)
    } else {
        0.0
    };
    format!(
        "http {}, p2p {} ({share:.1} % of bytes over P2P), uploaded {}",
        bytes(http),
        bytes(p2p),
        bytes(up)
    )
}

fn summary(
    peers: &[Peer],
    finals: &[Stats],
    wall: Duration,
    origin: Option<(&Origin, &std::path::Path)>,
) {
    println!(
        "\nsummary: {} peer(s), {:.1} s",
        peers.len(),
        wall.as_secs_f64()
    );
    for (p, s) in peers.iter().zip(finals) {
        let end = match &p.outcome {
            Some(Outcome::Eos(t)) => format!("played to the end in {:.1} s", t.as_secs_f64()),
            Some(Outcome::Error(e)) => format!("FAILED: {e}"),
            None if p.started.is_some() => "stopped before the end".into(),
            None => "never started".into(),
        };
        let first = match (p.started, *p.first_frame.lock().unwrap()) {
            (Some(s), Some(f)) => format!("first frame after {:.2} s", (f - s).as_secs_f64()),
            _ => "no frame".into(),
        };
        let (h, q) = (
            s.num("http-bytes").unwrap_or(0.0),
            s.num("p2p-bytes").unwrap_or(0.0),
        );
        let share = if h + q > 0.0 {
            100.0 * q / (h + q)
        } else {
            0.0
        };
        println!(
            "  peer {}: {end}; {first}; {} video frames; {share:.1} % over P2P, {} data channel(s) opened; {}",
            p.id,
            p.video_frames.load(Ordering::Relaxed),
            p.links.1,
            s.describe()
        );
    }
    println!("  all peers: {}", totals(finals));
    let n = peers.len() as f64;
    let limit = 100.0 * (n - 1.0) / n;
    if let Some((o, dir)) = origin {
        let (seg, _) = swarm::origin_segment_bytes(o, dir);
        // One viewer's stream: the segment bytes a peer received on average (HTTP + P2P; the
        // variants it played depend on its adaptive choices).
        let per_peer = finals
            .iter()
            .map(|s| s.num("http-bytes").unwrap_or(0.0) + s.num("p2p-bytes").unwrap_or(0.0))
            .sum::<f64>()
            / n;
        println!(
            "  origin served {} in {} requests; segments {} = {:.2}x one viewer's stream ({}), \
             {n}x without P2P; best possible P2P share with {n} peers: {limit:.0} %",
            bytes(o.total_bytes() as f64),
            o.total_requests(),
            bytes(seg as f64),
            seg as f64 / per_peer.max(1.0),
            bytes(per_peer)
        );
    }
}
