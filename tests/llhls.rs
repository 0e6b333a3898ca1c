//! Low-latency HLS against a local LL-HLS origin producing 0.2-s parts in real time
//! (`common::llhls`): the element starts PART-HOLD-BACK from the live edge, pushes parts as
//! they are published (blocking playlist reloads, delta updates), and its latency to the live
//! edge is measured against whole-segment playback (`low-latency=false`) of the same stream.
//! `hlsdemux2` is not the reference here: GStreamer 1.22's knows no LL-HLS.
//!
//! Latency: each fragment's wall-clock time (`timestamp/x-unix` meta, from the origin's
//! EXT-X-PROGRAM-DATE-TIME, which is its production clock) subtracted from the time a
//! clock-synchronised sink renders it, as a player would.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gst::prelude::*;

use common::llhls::*;
use common::origin::Origin;
use common::*;

/// What one run's sink saw.
#[derive(Default)]
struct Run {
    /// Every byte the element pushed, in order.
    bytes: Vec<u8>,
    /// Per timestamped buffer: (render wall time, latency = render time − its wall clock), s.
    latency: Vec<(f64, f64)>,
    errors: Vec<String>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `p2phlssrc location=… low-latency=… ! appsink sync=true` for `play` of wall time.
fn play(url: &str, low_latency: bool, play: Duration) -> Run {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("p2phlssrc")
        .property("location", url)
        .property("p2p-enabled", false)
        .property("low-latency", low_latency)
        .build()
        .unwrap();
    pipeline.add(&src).unwrap();
    let run = Arc::new(Mutex::new(Run::default()));
    {
        let run = run.clone();
        let pl = pipeline.downgrade();
        src.connect_pad_added(move |_, pad| {
            let Some(pl) = pl.upgrade() else { return };
            let sink = gst_app::AppSink::builder().sync(true).build();
            let run = run.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let now = unix_now();
                        let b = sample.buffer().unwrap();
                        let mut r = run.lock().unwrap();
                        r.bytes.extend_from_slice(&b.map_readable().unwrap());
                        if b.pts().is_some() {
                            if let Some(m) = b.iter_meta::<gst::ReferenceTimestampMeta>().next() {
                                let wall = m.timestamp().nseconds() as f64 / 1e9;
                                r.latency.push((now, now - wall));
                            }
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            pl.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        });
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let until = Instant::now() + play;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            break;
        };
        match msg.view() {
            gst::MessageView::Error(e) => {
                run.lock().unwrap().errors.push(format!("{}", e.error()));
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let out = std::mem::take(&mut *run.lock().unwrap());
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn low_latency_plays_parts_near_the_live_edge_where_whole_segments_lag() {
    guard_for(Duration::from_secs(60), || {
        let f = ll_fixture();
        let o = Origin::empty();
        let ll = serve_ll(&o, "ll");
        let full = serve_ll(&o, "full");
        let watch = Duration::from_secs(10);
        // Side by side: the wall time is the live stream's, not twice it (and both see the
        // same machine load).
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| play(&o.url("ll/index.m3u8"), true, watch));
            let b = s.spawn(|| play(&o.url("full/index.m3u8"), false, watch));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(
            a.errors.is_empty() && b.errors.is_empty(),
            "{:?} {:?}",
            a.errors,
            b.errors
        );

        // Byte for byte what the origin produced, from where each started.
        let (_, parts_a) = assert_run_of_parts(&a.bytes, &f.parts, "low-latency");
        let (_, parts_b) = assert_run_of_parts(&b.bytes, &f.parts, "whole segments");
        let (ca, cb) = (ll.counts(), full.counts());
        eprintln!("low-latency: {parts_a} parts, origin {ca:?}");
        eprintln!("whole segments: {parts_b} parts, origin {cb:?}");
        // Parts over blocking delta reloads, never the whole segments; and the other way.
        assert!(ca.part_requests >= 20 && ca.segment_requests == 0, "{ca:?}");
        assert!(ca.blocking >= 10 && ca.delta >= 10, "{ca:?}");
        assert!(cb.segment_requests >= 5 && cb.part_requests == 0, "{cb:?}");
        // Whole segments block on the next segment (`_HLS_msn` alone).
        assert!(cb.blocking >= 5, "{cb:?}");

        // Latency over the last 6 s (after start-up).
        let steady = |r: &Run| {
            let end = r.latency.last().map_or(0.0, |l| l.0);
            r.latency
                .iter()
                .filter(|(t, _)| *t >= end - 6.0)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
        };
        let (la, lb) = (steady(&a), steady(&b));
        assert!(la.len() >= 20 && lb.len() >= 4, "{} {}", la.len(), lb.len());
        let (ma, mb) = (median(la.clone()), median(lb.clone()));
        let max_a = la.iter().cloned().fold(0.0, f64::max);
        eprintln!(
            "latency to the live edge: low-latency median {ma:.2} s (max {max_a:.2} s, \
             PART-HOLD-BACK {PART_HOLD_BACK} s), whole segments median {mb:.2} s; ratio {:.2}",
            mb / ma
        );
        // PART-HOLD-BACK plus a part's production, with room for a loaded machine; whole
        // segments start 3 target durations back.
        assert!(ma < 1.5, "low-latency median latency {ma:.2} s");
        assert!(mb > 2.5, "whole-segment median latency {mb:.2} s");
        // No stall: the sink never waited a segment duration (1 s) for the next part.
        let gaps = a.latency.windows(2).map(|w| w[1].0 - w[0].0);
        let worst = gaps.fold(0.0, f64::max);
        assert!(worst < 1.0, "low-latency: {worst:.2} s between two parts");
    });
}

/// A part the origin does not have (404, as a CDN edge may answer for a moment) is skipped:
/// playback goes on with the next part (a discontinuity), no error, the rest byte for byte.
#[test]
fn a_missing_part_is_skipped_not_fatal() {
    guard_for(Duration::from_secs(30), || {
        let f = ll_fixture();
        let o = Origin::empty();
        let _ll = serve_ll(&o, "ll");
        // Playback starts about PREROLL − PART-HOLD-BACK into the stream: a part 1.6 s later.
        let missing = ((PREROLL - PART_HOLD_BACK) / PART_SECS) as usize + 8;
        o.set_fault(
            &format!("ll/p{missing:03}.ts"),
            common::origin::Fault::StatusAlways { status: 404 },
        );
        let r = play(&o.url("ll/index.m3u8"), true, Duration::from_secs(5));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let find = |k: usize| {
            r.bytes
                .windows(f.parts[k].0.len())
                .position(|w| w == f.parts[k].0.as_slice())
        };
        assert!(o.requests(&format!("ll/p{missing:03}.ts")) >= 1);
        assert_eq!(find(missing), None, "the missing part was pushed");
        let (before, after) = (find(missing - 1), find(missing + 1));
        assert!(
            before.is_some() && after.is_some() && after > before,
            "playback did not go on around part {missing}"
        );
    });
}
