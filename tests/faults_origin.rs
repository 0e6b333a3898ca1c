//! Fault matrix for origins (issue 11, "never worse than HTTP"): whatever an origin does —
//! endless bodies, absurd lengths, ignored ranges on huge files, trickling bytes, slow
//! segments with P2P on, live playlists that freeze, go backwards or reach the end of the
//! sequence space, cookies aimed at other hosts — a real `p2phlssrc`/`p2pdashsrc` pipeline
//! either plays bit-exact to HTTP-only or posts one clear error; never a panic, a hang, or
//! unbounded memory (the process RSS is sampled during every run).
//!
//! The tests take one lock each: RSS is per process, and the machine is shared.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::prelude::*;

use common::dash_fixtures::{dash_fixtures, BASE_MPD};
use common::evil::{rss_bytes, Evil, EvilOrigin};
use common::fixtures::{fixtures, AES_NOIV_MEDIA, BYTES_FILE, BYTES_MEDIA, SEQ_MEDIA};
use common::origin::{Fault, Origin, Response};
use common::playback::BusError;
use common::tracker::{node_available, TrackerProcess};

const MIB: u64 = 1 << 20;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Per pad: its name and every byte it pushed.
type Pads = Vec<(String, Vec<u8>)>;

/// What one run of `<factory> location=… ! fakesink` per pad did.
struct Run {
    /// Per pad, every byte pushed, in pad order.
    pads: Vec<(String, Vec<u8>)>,
    errors: Vec<BusError>,
    warnings: Vec<(Duration, String)>,
    error_at: Option<Duration>,
    eos: bool,
    timed_out: bool,
    elapsed: Duration,
    /// Highest RSS seen during the run minus the RSS before it.
    rss_growth: u64,
}

impl Run {
    fn summary(&self) -> String {
        format!(
            "eos={} timed_out={} elapsed={:.1?} errors={:?} warnings={:?} pads={:?} rss+{} MiB",
            self.eos,
            self.timed_out,
            self.elapsed,
            self.errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>(),
            self.warnings,
            self.pads
                .iter()
                .map(|(n, b)| (n, b.len()))
                .collect::<Vec<_>>(),
            self.rss_growth / MIB
        )
    }

    /// Exactly one ERROR, and nothing played to EOS.
    fn one_error(&self) -> &BusError {
        assert!(!self.timed_out, "hung: {}", self.summary());
        assert_eq!(self.errors.len(), 1, "{}", self.summary());
        &self.errors[0]
    }

    fn complete(&self) {
        assert!(
            self.eos && self.errors.is_empty() && !self.timed_out,
            "did not complete: {}",
            self.summary()
        );
    }
}

fn run_src(
    factory: &str,
    location: &str,
    setup: impl FnOnce(&gst::Element),
    timeout: Duration,
) -> Run {
    common::init();
    let before = rss_bytes();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(rss_bytes(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make(factory)
        .property("location", location)
        .property("p2p-enabled", false)
        .build()
        .unwrap();
    setup(&src);
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
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .build()
                .unwrap();
            let pads = pads.clone();
            sink.static_pad("sink").unwrap().add_probe(
                gst::PadProbeType::BUFFER,
                move |_, info| {
                    if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                        pads.lock().unwrap()[idx]
                            .1
                            .extend_from_slice(&b.map_readable().unwrap());
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            pl.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        });
    }
    let start = Instant::now();
    let bus = pipeline.bus().unwrap();
    let _ = pipeline.set_state(gst::State::Playing);
    let (mut eos, mut timed_out, mut errors, mut warnings) = (false, false, vec![], vec![]);
    let mut error_at = None;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let wait = left.min(Duration::from_millis(100));
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(wait.as_nanos() as u64)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                break;
            }
            gst::MessageView::Error(e) => {
                error_at = Some(start.elapsed());
                errors.push(bus_error(&e.error(), e.debug(), msg.src()));
                break;
            }
            gst::MessageView::Warning(w) => {
                warnings.push((start.elapsed(), w.error().message().to_string()));
            }
            _ => {}
        }
    }
    // Any further ERROR within a moment (tests require exactly one).
    if !errors.is_empty() {
        while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(300)) {
            if let gst::MessageView::Error(e) = msg.view() {
                errors.push(bus_error(&e.error(), e.debug(), msg.src()));
            }
        }
    }
    let elapsed = start.elapsed();
    let _ = pipeline.set_state(gst::State::Null);
    done.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let pads = std::mem::take(&mut *pads.lock().unwrap());
    Run {
        pads,
        errors,
        warnings,
        error_at,
        eos,
        timed_out,
        elapsed,
        rss_growth: peak.load(Ordering::SeqCst).saturating_sub(before),
    }
}

fn bus_error(e: &glib::Error, debug: Option<glib::GString>, src: Option<&gst::Object>) -> BusError {
    BusError {
        resource: e.is::<gst::ResourceError>(),
        stream: e.is::<gst::StreamError>(),
        domain: e.domain().as_str().to_string(),
        message: e.message().to_string(),
        debug: debug.map(|d| d.to_string()).unwrap_or_default(),
        src: src.map(|s| s.path_string().to_string()).unwrap_or_default(),
        src_factory: String::new(),
    }
}

fn hls(location: &str, setup: impl FnOnce(&gst::Element), timeout: Duration) -> Run {
    run_src("p2phlssrc", location, setup, timeout)
}

/// Rewrites the URI lines of a playlist.
fn rewrite(playlist: &str, f: impl Fn(usize, &str) -> String) -> String {
    let mut i = 0;
    let mut out = String::new();
    for l in playlist.lines() {
        if l.is_empty() || l.starts_with('#') {
            out.push_str(l);
        } else {
            out.push_str(&f(i, l));
            i += 1;
        }
        out.push('\n');
    }
    out
}

/// The `seq` fixture (HTTP-only, straight from the origin) as the reference bytes.
fn seq_reference(o: &Origin) -> Vec<u8> {
    let r = hls(&o.url(SEQ_MEDIA), |_| {}, Duration::from_secs(30));
    r.complete();
    assert_eq!(r.pads.len(), 1);
    r.pads.into_iter().next().unwrap().1
}

fn assert_bounded(r: &Run, limit: u64) {
    assert!(
        r.rss_growth < limit,
        "RSS grew by {} MiB (limit {} MiB): {}",
        r.rss_growth / MIB,
        limit / MIB,
        r.summary()
    );
}

// ---------------------------------------------------------------------------------------------
// Endless bodies, absurd lengths
// ---------------------------------------------------------------------------------------------

#[test]
fn endless_playlist_and_mpd_fail_once_with_bounded_memory() {
    common::guard_for(Duration::from_secs(60), || {
        let _l = serial();
        let evil = EvilOrigin::start();
        evil.set(
            "/index.m3u8",
            Evil::Endless {
                fill: b"#EXTINF:2.0,\nseg.ts\n".repeat(3000),
            },
        );
        evil.set(
            "/manifest.mpd",
            Evil::Endless {
                fill: b"<!-- padding -->".repeat(4000),
            },
        );
        for (factory, path) in [
            ("p2phlssrc", "/index.m3u8"),
            ("p2pdashsrc", "/manifest.mpd"),
        ] {
            let r = run_src(factory, &evil.url(path), |_| {}, Duration::from_secs(25));
            let e = r.one_error();
            assert!(e.resource, "{}", r.summary());
            assert!(e.message.contains("too large"), "{}", r.summary());
            // The cap (32 MiB) plus what sat in socket buffers; and one request: no retry.
            assert_eq!(evil.requests(path), 1, "{}", r.summary());
            assert!(evil.sent(path) < 48 * MIB, "{} bytes sent", evil.sent(path));
            assert_bounded(&r, 160 * MIB);
            eprintln!("{factory}: {}", r.summary());
        }
    });
}

#[test]
fn endless_segment_key_and_sidx_fail_once_with_bounded_memory() {
    common::guard_for(Duration::from_secs(90), || {
        let _l = serial();
        let f = fixtures();
        let o = Origin::serve_dir(&f.root);
        let evil = EvilOrigin::start();
        evil.set(
            "/endless.ts",
            Evil::Endless {
                fill: vec![0x47; 188 * 300],
            },
        );
        evil.set(
            "/key",
            Evil::Endless {
                fill: vec![7; 4096],
            },
        );

        // A segment: capped by max-segment-download-size.
        let seq = f.read_string(SEQ_MEDIA);
        let pl = rewrite(&seq, |i, uri| {
            if i == 1 {
                evil.url("/endless.ts")
            } else {
                o.url(&format!("seq/{uri}"))
            }
        });
        o.route("/endless-seg.m3u8", move |_| Response::playlist(pl.clone()));
        let r = hls(
            &o.url("endless-seg.m3u8"),
            |s| s.set_property("max-segment-download-size", 4 * MIB),
            Duration::from_secs(25),
        );
        let e = r.one_error();
        assert!(e.message.contains("too large"), "{}", r.summary());
        assert_eq!(evil.requests("/endless.ts"), 1, "{}", r.summary());
        assert!(evil.sent("/endless.ts") < 24 * MIB);
        assert_bounded(&r, 100 * MIB);
        eprintln!("segment: {}", r.summary());

        // An AES-128 key: capped at 4 KiB.
        let aes = f.read_string(AES_NOIV_MEDIA);
        let key_url = evil.url("/key");
        let pl = rewrite(&aes, |_, uri| o.url(&format!("aes/noiv/{uri}")))
            .lines()
            .map(|l| {
                if l.starts_with("#EXT-X-KEY") {
                    format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{key_url}\"")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        o.route("/endless-key.m3u8", move |_| Response::playlist(pl.clone()));
        let r = hls(&o.url("endless-key.m3u8"), |_| {}, Duration::from_secs(25));
        let e = r.one_error();
        assert!(e.message.contains("AES-128 key"), "{}", r.summary());
        assert!(e.message.contains("too large"), "{}", r.summary());
        assert_eq!(evil.requests("/key"), 1, "{}", r.summary());
        assert_bounded(&r, 64 * MIB);
        eprintln!("key: {}", r.summary());

        // A DASH SegmentBase stream whose file answers every range with an endless 206: the
        // `sidx` (and init) byte ranges are their own caps.
        let d = dash_fixtures();
        let mpd = d.read_string(BASE_MPD);
        let mut mpd_out = String::new();
        for line in mpd.lines() {
            let t = line.trim();
            match t
                .strip_prefix("<BaseURL>")
                .and_then(|r| r.strip_suffix("</BaseURL>"))
            {
                Some(file) => {
                    let path = format!("/base/{file}");
                    evil.set(
                        &path,
                        Evil::Endless {
                            fill: vec![0; 64 * 1024],
                        },
                    );
                    mpd_out.push_str(&format!("<BaseURL>{}</BaseURL>\n", evil.url(&path)));
                }
                None => {
                    mpd_out.push_str(line);
                    mpd_out.push('\n');
                }
            }
        }
        o.route("/endless-sidx.mpd", move |_| {
            Response::new(200, "application/dash+xml", mpd_out.clone())
        });
        let r = run_src(
            "p2pdashsrc",
            &o.url("endless-sidx.mpd"),
            |_| {},
            Duration::from_secs(25),
        );
        let e = r.one_error();
        assert!(e.message.contains("too large"), "{}", r.summary());
        let log = evil.log();
        let ranged: Vec<_> = log
            .iter()
            .filter(|(p, _)| p.starts_with("/base/"))
            .collect();
        assert!(!ranged.is_empty() && ranged.iter().all(|(_, r)| r.is_some()));
        assert_bounded(&r, 64 * MIB);
        eprintln!("sidx: {} ({} requests)", r.summary(), ranged.len());
    });
}

#[test]
fn ten_gigabyte_content_length_fails_before_the_body() {
    common::guard_for(Duration::from_secs(60), || {
        let _l = serial();
        let f = fixtures();
        let o = Origin::serve_dir(&f.root);
        let evil = EvilOrigin::start();
        evil.set(
            "/huge.ts",
            Evil::Huge {
                len: 10_000_000_000,
                prefix: Arc::new(Vec::new()),
            },
        );
        let pl = rewrite(&f.read_string(SEQ_MEDIA), |i, uri| {
            if i == 2 {
                evil.url("/huge.ts")
            } else {
                o.url(&format!("seq/{uri}"))
            }
        });
        o.route("/huge.m3u8", move |_| Response::playlist(pl.clone()));
        let r = hls(&o.url("huge.m3u8"), |_| {}, Duration::from_secs(25));
        let e = r.one_error();
        assert!(
            e.message.contains("10000000000 bytes declared"),
            "{}",
            r.summary()
        );
        assert_eq!(evil.requests("/huge.ts"), 1, "no retry: {}", r.summary());
        // Segments before it played.
        assert!(
            !r.pads.is_empty() && !r.pads[0].1.is_empty(),
            "{}",
            r.summary()
        );
        assert!(evil.sent("/huge.ts") < 32 * MIB);
        assert_bounded(&r, 64 * MIB);
        eprintln!("{}", r.summary());
    });
}

#[test]
fn range_ignored_on_a_two_gigabyte_file_plays_bit_exact() {
    common::guard_for(Duration::from_secs(90), || {
        let _l = serial();
        let f = fixtures();
        let o = Origin::serve_dir(&f.root);
        let reference = hls(&o.url(BYTES_MEDIA), |_| {}, Duration::from_secs(30));
        reference.complete();
        // The real single file, then zeros up to 2 GiB: generated as sent, never stored.
        let evil = EvilOrigin::start();
        const LEN: u64 = 2 << 30;
        evil.set(
            "/big.ts",
            Evil::Huge {
                len: LEN,
                prefix: Arc::new(f.read(BYTES_FILE)),
            },
        );
        let pl = rewrite(&f.read_string(BYTES_MEDIA), |_, _| evil.url("/big.ts"));
        o.route("/big.m3u8", move |_| Response::playlist(pl.clone()));
        let r = hls(&o.url("big.m3u8"), |_| {}, Duration::from_secs(40));
        r.complete();
        assert_eq!(r.pads.len(), reference.pads.len());
        for (a, b) in reference.pads.iter().zip(&r.pads) {
            assert!(a.1 == b.1, "pad {} differs from HTTP-only", a.0);
        }
        let log = evil.log();
        assert!(log.iter().all(|(_, range)| range.is_some()), "{log:?}");
        let sent = evil.sent("/big.ts");
        eprintln!(
            "{} ranged GETs; {} MiB sent of a {} MiB file; {}",
            log.len(),
            sent / MIB,
            LEN / MIB,
            r.summary()
        );
        assert!(sent < LEN / 8, "read far past the ranges: {sent} bytes");
        assert_bounded(&r, 96 * MIB);
    });
}

// ---------------------------------------------------------------------------------------------
// Slow origins
// ---------------------------------------------------------------------------------------------

#[test]
fn slowloris_segment_is_bounded_in_time_and_fails_once() {
    common::guard_for(Duration::from_secs(60), || {
        let _l = serial();
        let f = fixtures();
        let o = Origin::serve_dir(&f.root);
        let evil = EvilOrigin::start();
        let uris = f.segment_uris(SEQ_MEDIA);
        // One byte every 200 ms: never silent long enough for the inactivity timeout.
        evil.set(
            "/slow.ts",
            Evil::Trickle {
                body: f.read(&format!("seq/{}", uris[1])),
                every: Duration::from_millis(200),
            },
        );
        let pl = rewrite(&f.read_string(SEQ_MEDIA), |i, uri| {
            if i == 1 {
                evil.url("/slow.ts")
            } else {
                o.url(&format!("seq/{uri}"))
            }
        });
        o.route("/slow.m3u8", move |_| Response::playlist(pl.clone()));
        let r = hls(
            &o.url("slow.m3u8"),
            |s| {
                s.set_property("timeout", 2u32);
                s.set_property("retries", 1i32);
            },
            Duration::from_secs(30),
        );
        let e = r.one_error();
        assert!(e.message.contains("too slow"), "{}", r.summary());
        // Two attempts of about one 2-s window each, plus the backoff.
        assert!(
            r.error_at.unwrap() < Duration::from_secs(12),
            "{}",
            r.summary()
        );
        assert_eq!(evil.requests("/slow.ts"), 2, "{}", r.summary());
        eprintln!("{}", r.summary());
    });
}

#[test]
fn throttled_segments_with_p2p_on_one_get_each_and_no_stall() {
    if !node_available() {
        eprintln!("skipped: node and the tracker are not installed");
        return;
    }
    common::guard_for(Duration::from_secs(100), || {
        let _l = serial();
        let f = fixtures();
        let o = Origin::serve_dir(&f.root);
        let reference = seq_reference(&o);
        let tracker = TrackerProcess::start_strict(0, 1000);
        let uris = f.segment_uris(SEQ_MEDIA);
        for u in &uris {
            let path = format!("seq/{u}");
            let len = f.read(&path).len();
            // Each segment takes about 5 s: slow but alive.
            o.set_fault(
                &path,
                Fault::Throttle {
                    bytes_per_sec: len / 5 + 1,
                },
            );
        }
        let before: Vec<usize> = uris
            .iter()
            .map(|u| o.requests(&format!("seq/{u}")))
            .collect();
        let turl = tracker.url();
        let r = hls(
            &o.url(SEQ_MEDIA),
            move |s| {
                s.set_property("p2p-enabled", true);
                s.set_property("trackers", gst::Array::new([turl]));
                s.set_property("ice-servers", gst::Array::default());
            },
            Duration::from_secs(80),
        );
        r.complete();
        assert!(r.pads[0].1 == reference, "output differs from HTTP-only");
        for (u, b) in uris.iter().zip(before) {
            let n = o.requests(&format!("seq/{u}")) - b;
            assert_eq!(n, 1, "{u} was requested {n} times: {}", r.summary());
        }
        // Never slower than the origin itself: about 5 s a segment, loaded in sequence at
        // worst, and nothing waiting on the swarm beyond that.
        let limit = Duration::from_secs(6 * uris.len() as u64 + 5);
        assert!(r.elapsed < limit, "{}", r.summary());
        eprintln!("{} segments: {}", uris.len(), r.summary());
    });
}

// ---------------------------------------------------------------------------------------------
// Live playlists that misbehave
// ---------------------------------------------------------------------------------------------

fn live_playlist(first_seq: u64, segments: &[&str], end: bool) -> String {
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{first_seq}\n"
    );
    for u in segments {
        s.push_str(&format!("#EXTINF:1.0,\n{u}\n"));
    }
    if end {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}

fn live_segs(o: &Origin, range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| o.url(&format!("live/seg{i:03}.ts")))
        .collect()
}

#[test]
fn frozen_live_playlist_warns_then_errors_or_ends() {
    common::guard_for(Duration::from_secs(60), || {
        let _l = serial();
        let f = fixtures();
        let o = Origin::serve_dir(&f.root);
        let segs = live_segs(&o, 0..3);
        let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let pl = live_playlist(0, &refs, false);
        o.route("/frozen.m3u8", move |_| Response::playlist(pl.clone()));
        for action in ["error", "eos"] {
            let r = hls(
                &o.url("frozen.m3u8"),
                |s| {
                    s.set_property("live-freeze-timeout", 3u32);
                    s.set_property_from_str("live-freeze-action", action);
                },
                Duration::from_secs(25),
            );
            eprintln!("{action}: {}", r.summary());
            assert!(!r.timed_out, "{}", r.summary());
            let warned = r
                .warnings
                .iter()
                .find(|(_, m)| m.contains("may have stopped"))
                .unwrap_or_else(|| panic!("no freeze warning: {}", r.summary()));
            assert!(
                !r.pads.is_empty() && !r.pads[0].1.is_empty(),
                "{}",
                r.summary()
            );
            if action == "error" {
                let e = r.one_error();
                assert!(e.message.contains("stopped"), "{}", r.summary());
                assert!(warned.0 < r.error_at.unwrap());
            } else {
                r.complete();
            }
            // Warned after ~1.5 s of freeze, acted after ~3 s: well within 12 s of start.
            assert!(r.elapsed < Duration::from_secs(12), "{}", r.summary());
        }
    });
}

#[test]
fn media_sequence_going_backwards_resyncs_without_replay_or_hang() {
    common::guard_for(Duration::from_secs(60), || {
        let _l = serial();
        let f = fixtures();
        let o = Origin::serve_dir(&f.root);
        // Segments 5..8 at sequence 105..107, then the encoder restarts: sequence 0, segments
        // 0..3 appear one per second, then ENDLIST.
        let before = live_segs(&o, 5..8);
        let after = live_segs(&o, 0..3);
        let t0: Mutex<Option<Instant>> = Mutex::new(None);
        o.route("/backwards.m3u8", move |_| {
            let t = t0
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now)
                .elapsed();
            let text = if t < Duration::from_secs(2) {
                let r: Vec<&str> = before.iter().map(String::as_str).collect();
                live_playlist(105, &r, false)
            } else {
                let n = (((t.as_secs_f64() - 2.0) as usize) + 1).min(3);
                let r: Vec<&str> = after[..n].iter().map(String::as_str).collect();
                live_playlist(0, &r, n == 3)
            };
            Response::playlist(text)
        });
        let r = hls(&o.url("backwards.m3u8"), |_| {}, Duration::from_secs(30));
        eprintln!("{}", r.summary());
        r.complete();
        for i in 0..3 {
            let p = format!("live/seg{i:03}.ts");
            assert_eq!(o.requests(&p), 1, "{p} fetched {} times", o.requests(&p));
        }
        // Everything after the restart was played (the window before it depends on the
        // live start: 3 target durations from the end).
        let tail: Vec<u8> = (0..3)
            .flat_map(|i| f.read(&format!("live/seg{i:03}.ts")))
            .collect();
        assert!(r.pads[0].1.ends_with(&tail), "{}", r.summary());
    });
}

#[test]
fn sequence_at_u64_max_ends_cleanly() {
    common::guard_for(Duration::from_secs(60), || {
        let _l = serial();
        let f = fixtures();
        let o = Origin::serve_dir(&f.root);
        let segs = live_segs(&o, 0..3);
        let refs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let expected: Vec<u8> = (0..3)
            .flat_map(|i| f.read(&format!("live/seg{i:03}.ts")))
            .collect();
        for end in [true, false] {
            let pl = live_playlist(u64::MAX - 2, &refs, end);
            let path = format!("/max-{end}.m3u8");
            o.route(&path, move |_| Response::playlist(pl.clone()));
            let r = hls(
                &o.url(&path),
                |s| s.set_property("live-freeze-timeout", 20u32),
                Duration::from_secs(15),
            );
            eprintln!("ENDLIST {end}: {}", r.summary());
            // Live or not, segment u64::MAX is the last there can be: EOS right after it,
            // long before the freeze timeout, and nothing replayed.
            r.complete();
            assert!(r.elapsed < Duration::from_secs(10), "{}", r.summary());
            if end {
                assert!(r.pads[0].1 == expected, "{}", r.summary());
            } else {
                assert!(r.pads[0].1.ends_with(&expected[expected.len() / 3..]));
            }
        }
        for i in 0..3 {
            let p = format!("live/seg{i:03}.ts");
            assert!(o.requests(&p) <= 2, "{p} replayed: {}", o.requests(&p));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

#[test]
fn cookies_and_extra_headers_only_go_to_the_manifest_origin() {
    common::guard_for(Duration::from_secs(60), || {
        let _l = serial();
        let f = fixtures();
        let manifest_origin = Origin::serve_dir(&f.root);
        let other = Origin::serve_dir(&f.root);
        // Even segments from the manifest's origin, odd ones from another host (port).
        let pl = rewrite(&f.read_string(SEQ_MEDIA), |i, uri| {
            let o = if i % 2 == 0 { &manifest_origin } else { &other };
            o.url(&format!("seq/{uri}"))
        });
        manifest_origin.route("/mixed.m3u8", move |_| Response::playlist(pl.clone()));
        let r = hls(
            &manifest_origin.url("mixed.m3u8"),
            |s| {
                s.set_property("cookies", gst::Array::new(["session=s3cret"]));
                let h = gst::Structure::builder("headers")
                    .field("X-Token", "t0ken")
                    .build();
                s.set_property("extra-headers", h);
            },
            Duration::from_secs(30),
        );
        r.complete();
        let mine = manifest_origin.log();
        assert!(mine.len() >= 3);
        for req in &mine {
            assert_eq!(req.header("cookie"), Some("session=s3cret"), "{req:?}");
            assert_eq!(req.header("x-token"), Some("t0ken"), "{req:?}");
        }
        let theirs = other.log();
        assert!(!theirs.is_empty());
        for req in &theirs {
            assert_eq!(req.header("cookie"), None, "cookie leaked: {req:?}");
            assert_eq!(req.header("x-token"), None, "header leaked: {req:?}");
        }
    });
}
