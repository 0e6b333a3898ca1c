//! Fault matrix for trackers (issue 11 rows 5, 6, 14): a real `p2phlssrc` pipeline playing a
//! VOD in real time (decodebin, `sync=true` sinks) with P2P on, against a hostile WebSocket
//! tracker written here on 127.0.0.1. Every case asserts that the element pushes exactly the
//! bytes of an HTTP-only run, that no thread panicked, and that PeerConnections
//! ([`live_peer_connections`]), file descriptors (`/proc/self/fd`) and RSS stay bounded while
//! the tracker misbehaves and come back down afterwards.
//!
//! The cases run one at a time (a process-wide lock): fds, RSS and the PeerConnection count
//! are per process. `SOAK=1` makes the accept-then-close case run 5 minutes instead of ~20 s.

mod common;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use gst::prelude::*;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use common::playback::{capture_raw, stat};
use gstp2pmedia::net::rtc::{live_peer_connections, RtcConfig, RtcFactory, WebRtcFactory};

const VOD_SECS: u32 = 10;
const SEG_SECS: u32 = 2;
const VOD_MEDIA: &str = "vod/index.m3u8";
/// A small `max-peers`, so that "full" is reached by a flood.
const MAX_PEERS: u32 = 4;
/// Offers per announce (PML's 5): what one connection of a tracker can cost us.
const OFFERS_PER_ANNOUNCE: usize = 5;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Panics anywhere in the process (tokio swallows those of spawned tasks).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, SeqCst);
            prev(info);
        }));
    });
}

fn fixture_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("faults-tracker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("vod");
        std::fs::create_dir_all(&dir).unwrap();
        let g = (25 * SEG_SECS).to_string();
        let secs = VOD_SECS.to_string();
        let out = std::process::Command::new("ffmpeg")
            .args(["-y", "-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size=160x90:rate=25:duration={secs}"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency=440:sample_rate=48000:duration={secs}"
            ))
            .args(["-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-pix_fmt", "yuv420p"])
            .args(["-g", &g, "-keyint_min", &g, "-sc_threshold", "0"])
            .args(["-c:a", "aac", "-b:a", "64k", "-ac", "2"])
            .args(["-f", "hls", "-hls_time", &SEG_SECS.to_string()])
            .args(["-hls_playlist_type", "vod"])
            .args(["-hls_segment_filename", "seg%03d.ts", "index.m3u8"])
            .current_dir(&dir)
            .output()
            .expect("run ffmpeg (is it installed?)");
        assert!(
            out.status.success(),
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        root
    })
}

// ---------------------------------------------------------------------------------------------
// Process figures.
// ---------------------------------------------------------------------------------------------

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Real SDPs (loopback host candidates only), made once with the crate's own WebRTC factory.
// ---------------------------------------------------------------------------------------------

struct Sdps {
    offer: String,
    answer: String,
}

fn sdps() -> &'static Sdps {
    static SDPS: OnceLock<Sdps> = OnceLock::new();
    SDPS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let f = WebRtcFactory::new(RtcConfig {
                ice_servers: Vec::new(),
                udp_bind: vec![([127, 0, 0, 1], 0).into()],
                ..RtcConfig::default()
            });
            let (pending, offer) = f.create_offer().await.expect("offer");
            let (conn, answer) = f.accept_offer(&offer).await.expect("answer");
            drop((pending, conn));
            Sdps { offer, answer }
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The hostile tracker.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    /// Answers announces like a tracker and nothing else.
    Polite,
    /// After each announce response, relays offers from this many distinct peer ids.
    Flood(usize),
    /// Relays 200 offers per announce, then (1 s later, when we are full) answers every
    /// offer we sent.
    AnswerAll,
    /// Answers the announce, then closes the socket.
    AcceptThenClose,
    /// Announce responses with a 60-KiB `tracker id` and warning, then a 1-MiB frame.
    BigFrames,
    /// A non-UTF-8 binary frame and a relayed offer; once answered, a non-UTF-8 text frame.
    NonUtf8,
    /// TCP accepted, nothing ever read or written.
    Blackhole,
}

#[derive(Default)]
struct Seen {
    /// TCP connections accepted.
    accepted: AtomicUsize,
    /// Announces received from us, and the first one's arrival.
    announces: AtomicUsize,
    first_announce: Mutex<Option<Instant>>,
    /// Our answers to relayed offers (each one a PeerConnection we made).
    answers: AtomicUsize,
    /// Largest message we sent.
    largest: AtomicUsize,
}

struct Tracker {
    url: String,
    seen: Arc<Seen>,
    rt: tokio::runtime::Runtime,
}

impl Tracker {
    fn start(behaviour: Behaviour) -> Tracker {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let url = format!("ws://{}", std_listener.local_addr().unwrap());
        let seen: Arc<Seen> = Arc::default();
        let s = seen.clone();
        rt.spawn(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            // Blackholed sockets are kept open here until the tracker goes away.
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                s.accepted.fetch_add(1, SeqCst);
                if behaviour == Behaviour::Blackhole {
                    held.push(tcp);
                    continue;
                }
                tokio::spawn(serve(tcp, behaviour, s.clone()));
            }
        });
        Tracker { url, seen, rt }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // Dropping the runtime closes every socket it holds.
        let rt = std::mem::replace(
            &mut self.rt,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        );
        rt.shutdown_timeout(Duration::from_secs(1));
    }
}

fn id20(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = 20 - prefix.len())
}

async fn serve(tcp: tokio::net::TcpStream, behaviour: Behaviour, seen: Arc<Seen>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let sdps = sdps();
    let mut relayed = 0usize;
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        seen.largest.fetch_max(text.len(), SeqCst);
        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if v.get("answer").is_some() {
            seen.answers.fetch_add(1, SeqCst);
            if behaviour == Behaviour::NonUtf8 {
                // The answer came on the socket that carried the junk binary frame; now a
                // text frame that is not UTF-8.
                let bad =
                    Frame::message(vec![b'{', 0xc3, 0x28, b'}'], OpCode::Data(Data::Text), true);
                if ws.send(Message::Frame(bad)).await.is_err() {
                    return;
                }
            }
            continue;
        }
        if v["action"] != "announce" || v.get("event") == Some(&json!("stopped")) {
            continue;
        }
        seen.announces.fetch_add(1, SeqCst);
        seen.first_announce
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
        let ih = v["info_hash"].clone();
        let mut response = json!({
            "action": "announce", "interval": 120, "info_hash": ih,
            "complete": 1, "incomplete": 1,
        });
        if behaviour == Behaviour::BigFrames {
            response["tracker id"] = json!("t".repeat(60 * 1024));
            response["warning message"] = json!("w".repeat(60 * 1024));
        }
        if ws.send(Message::text(response.to_string())).await.is_err() {
            return;
        }
        let mut out: Vec<Message> = Vec::new();
        let offer = |n: usize| {
            json!({
                "action": "announce", "info_hash": ih,
                "peer_id": id20("-FL0001-", n), "offer_id": id20("o", n),
                "offer": {"type": "offer", "sdp": sdps.offer},
            })
            .to_string()
        };
        match behaviour {
            Behaviour::Polite | Behaviour::Blackhole => {}
            Behaviour::Flood(n) => {
                for _ in 0..n {
                    out.push(Message::text(offer(relayed)));
                    relayed += 1;
                }
            }
            Behaviour::AnswerAll => {
                // Offers first, so that peers' offers fill the free slots; then, once we are
                // full, an answer to every offer we sent.
                for _ in 0..200 {
                    out.push(Message::text(offer(relayed)));
                    relayed += 1;
                }
                for m in out.drain(..) {
                    if ws.send(m).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let ours = v["offers"].as_array().cloned().unwrap_or_default();
                for (i, o) in ours.iter().enumerate() {
                    let a = json!({
                        "action": "announce", "info_hash": ih,
                        "peer_id": id20("-AN0001-", relayed + i), "offer_id": o["offer_id"],
                        "answer": {"type": "answer", "sdp": sdps.answer},
                    });
                    out.push(Message::text(a.to_string()));
                }
                relayed += ours.len();
            }
            Behaviour::AcceptThenClose => {
                let _ = ws.close(None).await;
                return;
            }
            Behaviour::BigFrames => out.push(Message::text("x".repeat(1 << 20))),
            Behaviour::NonUtf8 => {
                out.push(Message::binary(vec![0xff, 0xfe, b'{', 0x80]));
                out.push(Message::text(offer(relayed)));
                relayed += 1;
            }
        }
        for m in out {
            if ws.send(m).await.is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The player: p2phlssrc ! decodebin ! fakesink(sync) per pad, sampled every 100 ms.
// ---------------------------------------------------------------------------------------------

/// Per source pad: name and every byte pushed, in order.
type Pads = Vec<(String, Vec<u8>)>;

struct Run {
    pads: Pads,
    eos: bool,
    errors: Vec<String>,
    wall: Duration,
    max_pcs: usize,
    max_fds: usize,
    max_rss_kib: u64,
    max_peers_stat: u64,
    trackers_connected: u64,
}

fn http_reference(location: &str) -> Pads {
    static REF: OnceLock<Pads> = OnceLock::new();
    REF.get_or_init(|| {
        let r = capture_raw(location, &[], Duration::from_secs(30));
        assert!(r.eos && r.errors.is_empty(), "reference: {:?}", r.errors);
        r.pads.into_iter().map(|p| (p.name, p.bytes)).collect()
    })
    .clone()
}

fn play(location: &str, trackers: &[&str], max_peers: u32) -> Run {
    common::init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("p2phlssrc")
        .property("location", location)
        .property("p2p-enabled", true)
        .property("trackers", gst::Array::new(trackers.iter().copied()))
        // Host candidates only: nothing leaves the machine.
        .property("ice-servers", gst::Array::default())
        .property("max-peers", max_peers)
        .build()
        .expect("p2phlssrc");
    pipeline.add(&src).unwrap();
    let pads: Arc<Mutex<Pads>> = Arc::default();
    {
        let pads = pads.clone();
        let pl = pipeline.downgrade();
        src.connect_pad_added(move |_, pad| {
            let Some(pl) = pl.upgrade() else { return };
            let idx = {
                let mut p = pads.lock().unwrap();
                p.push((pad.name().to_string(), Vec::new()));
                p.len() - 1
            };
            let p2 = pads.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    let m = b.map_readable().expect("readable buffer");
                    p2.lock().unwrap()[idx].1.extend_from_slice(&m);
                }
                gst::PadProbeReturn::Ok
            });
            let db = gst::ElementFactory::make("decodebin").build().unwrap();
            pl.add(&db).unwrap();
            let pl2 = pl.downgrade();
            db.connect_pad_added(move |_, dpad| {
                let Some(pl) = pl2.upgrade() else { return };
                // Real time: the tracker has the whole playback to misbehave.
                let sink = gst::ElementFactory::make("fakesink")
                    .property("sync", true)
                    .build()
                    .unwrap();
                pl.add(&sink).unwrap();
                sink.sync_state_with_parent().unwrap();
                let _ = dpad.link(&sink.static_pad("sink").unwrap());
            });
            db.sync_state_with_parent().unwrap();
            pad.link(&db.static_pad("sink").unwrap()).unwrap();
        });
    }
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let deadline = start + Duration::from_secs(VOD_SECS as u64 + 30);
    let mut run = Run {
        pads: Vec::new(),
        eos: false,
        errors: Vec::new(),
        wall: Duration::ZERO,
        max_pcs: 0,
        max_fds: 0,
        max_rss_kib: 0,
        max_peers_stat: 0,
        trackers_connected: 0,
    };
    while Instant::now() < deadline {
        run.max_pcs = run.max_pcs.max(live_peer_connections());
        run.max_fds = run.max_fds.max(fds());
        run.max_rss_kib = run.max_rss_kib.max(rss_kib());
        let stats = src.property::<gst::Structure>("stats");
        run.max_peers_stat = run.max_peers_stat.max(stat(&stats, "peers"));
        run.trackers_connected = run
            .trackers_connected
            .max(stat(&stats, "trackers-connected"));
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                run.eos = true;
                break;
            }
            gst::MessageView::Error(e) => {
                run.errors.push(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    run.wall = start.elapsed();
    pipeline.set_state(gst::State::Null).unwrap();
    run.pads = std::mem::take(&mut *pads.lock().unwrap());
    run
}

/// Waits until `f` holds (PeerConnections close asynchronously), at most `within`.
fn settles(within: Duration, f: impl Fn() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Baseline {
    fds: usize,
    rss_kib: u64,
    panics: usize,
}

fn baseline() -> Baseline {
    count_panics();
    let _ = sdps();
    let _ = http_reference(&origin_url());
    assert!(
        settles(Duration::from_secs(10), || live_peer_connections() == 0),
        "{} PeerConnections left over before the case",
        live_peer_connections()
    );
    Baseline {
        fds: fds(),
        rss_kib: rss_kib(),
        panics: PANICS.load(SeqCst),
    }
}

fn origin_url() -> String {
    static ORIGIN: OnceLock<common::origin::Origin> = OnceLock::new();
    ORIGIN
        .get_or_init(|| common::origin::Origin::serve_dir(fixture_root()))
        .url(VOD_MEDIA)
}

/// What every case asserts: bit-exact to HTTP-only, no panic, PeerConnections within
/// `max_pcs`, fds and RSS bounded during the run and PeerConnections/fds back afterwards.
fn assert_never_worse(case: &str, base: &Baseline, run: &Run, max_pcs: usize) {
    eprintln!(
        "{case}: {:.1} s, eos {}, max {} PeerConnections, max {} peers, fds {} -> max {}, \
         RSS {} -> max {} MiB, trackers connected {}",
        run.wall.as_secs_f64(),
        run.eos,
        run.max_pcs,
        run.max_peers_stat,
        base.fds,
        run.max_fds,
        base.rss_kib / 1024,
        run.max_rss_kib / 1024,
        run.trackers_connected
    );
    assert!(run.eos && run.errors.is_empty(), "{case}: {:?}", run.errors);
    let reference = http_reference(&origin_url());
    assert_eq!(
        reference.iter().map(|p| &p.0).collect::<Vec<_>>(),
        run.pads.iter().map(|p| &p.0).collect::<Vec<_>>(),
        "{case}: pads differ from HTTP-only"
    );
    for ((name, want), (_, have)) in reference.iter().zip(&run.pads) {
        assert!(
            want == have,
            "{case}: pad {name}: {} bytes, HTTP-only {}",
            have.len(),
            want.len()
        );
    }
    assert_eq!(
        PANICS.load(SeqCst),
        base.panics,
        "{case}: something panicked"
    );
    assert!(
        run.max_pcs <= max_pcs,
        "{case}: {} PeerConnections at once (bound {max_pcs})",
        run.max_pcs
    );
    // A pipeline with decoders, the HTTP client and a few PeerConnections (each a few UDP
    // sockets per interface): far from what a leak per offer or per reconnect would reach.
    assert!(
        run.max_fds <= base.fds + 200,
        "{case}: fds {} -> {}",
        base.fds,
        run.max_fds
    );
    assert!(
        run.max_rss_kib <= base.rss_kib + 200 * 1024,
        "{case}: RSS {} -> {} KiB",
        base.rss_kib,
        run.max_rss_kib
    );
    assert!(
        settles(Duration::from_secs(10), || live_peer_connections() == 0),
        "{case}: {} PeerConnections left after the pipeline stopped",
        live_peer_connections()
    );
    assert!(
        settles(Duration::from_secs(10), || fds() <= base.fds + 16),
        "{case}: fds {} after the run, {} before",
        fds(),
        base.fds
    );
}

// ---------------------------------------------------------------------------------------------
// The cases.
// ---------------------------------------------------------------------------------------------

/// 2,000 peer ids offer at once: at most `max-peers` PeerConnections, and the rest dropped
/// cheaply (rate limit in the tracker client): far fewer answers than offers.
#[test]
fn offer_flood_from_2000_peer_ids() {
    common::guard_for(Duration::from_secs(90), || {
        let _s = serial();
        let base = baseline();
        let t = Tracker::start(Behaviour::Flood(2000));
        let run = play(&origin_url(), &[&t.url], MAX_PEERS);
        let answers = t.seen.answers.load(SeqCst);
        eprintln!("flood: {answers} answers to 2,000 offers");
        assert_never_worse("flood", &base, &run, MAX_PEERS as usize);
        assert!(t.seen.announces.load(SeqCst) >= 1);
        // Token bucket: 40 + 10/s passed on, and only free slots are answered.
        let bound = 40 + 10 * run.wall.as_secs() as usize;
        assert!(answers <= bound, "{answers} answers (bound {bound})");
        // Half the slots are left to incoming offers, so some of the flood was taken.
        assert!(answers >= 1, "no offer of the flood was answered");
    });
}

/// The tracker answers every offer we make and floods offers so that we are full: answers
/// must not take us past `max-peers`.
#[test]
fn answers_to_every_pending_offer_while_full() {
    common::guard_for(Duration::from_secs(90), || {
        let _s = serial();
        let base = baseline();
        let t = Tracker::start(Behaviour::AnswerAll);
        let run = play(&origin_url(), &[&t.url], MAX_PEERS);
        assert_never_worse("answer-all", &base, &run, MAX_PEERS as usize);
    });
}

/// A tracker that answers the announce and closes at once, for ~20 s (5 min with `SOAK=1`):
/// reconnects back off, our offers die with each socket (never more than the offer cap
/// alive), fds and RSS do not grow from one playback to the next.
#[test]
fn accept_then_close_loop() {
    let soak = std::env::var_os("SOAK").is_some_and(|v| v == "1");
    let total = Duration::from_secs(if soak { 300 } else { 20 });
    common::guard_for(total + Duration::from_secs(90), move || {
        let _s = serial();
        let base = baseline();
        let t = Tracker::start(Behaviour::AcceptThenClose);
        let start = Instant::now();
        let mut rounds = 0;
        let mut fds_after = Vec::new();
        while start.elapsed() < total {
            let run = play(&origin_url(), &[&t.url], 20);
            // Our offers die with their socket: one announce's worth alive at most, however
            // many reconnects.
            assert_never_worse("accept-then-close", &base, &run, OFFERS_PER_ANNOUNCE);
            rounds += 1;
            fds_after.push(fds());
        }
        let secs = start.elapsed().as_secs_f64();
        let accepted = t.seen.accepted.load(SeqCst);
        eprintln!(
            "accept-then-close: {rounds} playbacks, {accepted} connections in {secs:.0} s, \
             fds after each: {fds_after:?}"
        );
        // Each playback is a new session (fresh backoff): 2 s base doubling, +0..3 s jitter
        // gives at most ~5 connections per 10-s playback; a tight loop would give hundreds.
        assert!(accepted >= rounds, "{accepted} connections");
        assert!(
            accepted <= rounds * 6,
            "{accepted} connections in {rounds} playbacks"
        );
    });
}

/// 60-KiB `tracker id` and warning, then a 1-MiB frame on every connection: the id is never
/// echoed, the frame only costs a reconnect.
#[test]
fn one_mib_frames_and_huge_tracker_id() {
    common::guard_for(Duration::from_secs(90), || {
        let _s = serial();
        let base = baseline();
        let t = Tracker::start(Behaviour::BigFrames);
        let run = play(&origin_url(), &[&t.url], MAX_PEERS);
        assert_never_worse("big-frames", &base, &run, MAX_PEERS as usize);
        let (accepted, largest) = (t.seen.accepted.load(SeqCst), t.seen.largest.load(SeqCst));
        eprintln!("big-frames: {accepted} connections, largest message from us {largest} B");
        assert!(accepted >= 2, "the 1-MiB frame did not end the socket");
        assert!(accepted <= 5, "{accepted} connections");
        assert!(largest < 16 * 1024, "we sent a {largest}-byte message");
    });
}

/// A non-UTF-8 binary frame is skipped (the offer after it is answered on the same socket),
/// a non-UTF-8 text frame ends the socket (RFC 6455) and the client reconnects with backoff.
#[test]
fn non_utf8_frames() {
    common::guard_for(Duration::from_secs(90), || {
        let _s = serial();
        let base = baseline();
        let t = Tracker::start(Behaviour::NonUtf8);
        let run = play(&origin_url(), &[&t.url], MAX_PEERS);
        assert_never_worse("non-utf8", &base, &run, MAX_PEERS as usize);
        let accepted = t.seen.accepted.load(SeqCst);
        eprintln!(
            "non-utf8: {accepted} connections, {} answers",
            t.seen.answers.load(SeqCst)
        );
        assert!((2..=5).contains(&accepted), "{accepted} connections");
        assert!(
            t.seen.answers.load(SeqCst) >= 1,
            "the offer after the binary frame was not answered on that socket"
        );
    });
}

/// One tracker accepts TCP and never says a word; the other works: it gets our announce at
/// once, and the blackholed one is retried after the connect timeout, not in a loop.
#[test]
fn blackholed_tracker() {
    common::guard_for(Duration::from_secs(90), || {
        let _s = serial();
        let base = baseline();
        let hole = Tracker::start(Behaviour::Blackhole);
        let good = Tracker::start(Behaviour::Polite);
        let start = Instant::now();
        let run = play(&origin_url(), &[&hole.url, &good.url], MAX_PEERS);
        assert_never_worse("blackhole", &base, &run, MAX_PEERS as usize);
        let first = good
            .seen
            .first_announce
            .lock()
            .unwrap()
            .expect("no announce");
        assert!(
            first - start < Duration::from_secs(5),
            "the working tracker waited {:?}",
            first - start
        );
        assert!(run.trackers_connected >= 1);
        let accepted = hole.seen.accepted.load(SeqCst);
        eprintln!("blackhole: {accepted} connections in {:?}", run.wall);
        assert!((1..=3).contains(&accepted), "{accepted} connections");
    });
}
