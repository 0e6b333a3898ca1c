//! Benchmark helper for bench/startup.sh (not a test).
//!
//!   bench-play serve [hls|dash]
//!       generate the benchmark stream (cached; HLS by default, or the same content as fMP4
//!       DASH), serve it on 127.0.0.1, print its manifest URL on stdout, then serve until killed.
//!   bench-play play --player playbin|playbin3 --uri URI [--timeout SECS]
//!       play URI once, as fast as possible (fakesinks, sync=false; p2phlssrc with
//!       p2p-enabled=false), and print one line:
//!       `ttff_ms=.. first_out_ms=.. frames=.. wall_ms=.. cpu_ms=.. rss_kib=.. hls=..`: time from
//!       PLAYING to the first decoded video frame (pad probe on the video sink) and to the first
//!       buffer the adaptive element pushed, decoded video frames, time to EOS, this process's
//!       user+system CPU time and peak RSS (from /proc/self at the end), and which adaptive
//!       element (hlsdemux, hlsdemux2, p2phlssrc, dashdemux, dashdemux2, p2pdashsrc) played.
//!   bench-play swarm / peer: the swarm benchmark (bench/swarm.sh, bench_play/swarm.rs).
//!   bench-play upload: one seeding element's CPU per uploaded byte (bench/upload.sh,
//!       bench_play/upload.rs).
//!   bench-play tracker-load: N swarms in one process against the strict tracker, messages
//!       and CPU per window (bench/tracker-load.sh, bench_play/tracker_load.rs).
//!   bench-play soak / soak-peer / liar: the live soak with misbehaving peers, churn and tracker
//!       restarts (bench/soak.sh, bench_play/soak.rs and liar.rs).

#[path = "common/chart.rs"]
mod chart;
#[path = "bench_play/liar.rs"]
mod liar;
#[path = "../tests/common/origin.rs"]
mod origin;
#[path = "common/procfs.rs"]
mod procfs;
#[path = "bench_play/soak.rs"]
mod soak;
#[path = "common/stream.rs"]
mod stream;
#[path = "common/swarm.rs"]
mod swarm;
#[path = "bench_play/swarm.rs"]
mod swarm_bench;
#[path = "bench_play/tracker_load.rs"]
mod tracker_load;
#[path = "bench_play/upload.rs"]
mod upload;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

const USAGE: &str = "usage: bench-play serve [hls|dash]\n       bench-play play --player playbin|playbin3 --uri URI [--timeout SECS]\n       bench-play swarm [--runs vod:2,live:4,pml-vod:4,...] [--stagger S] [--vod-secs S] [--live-secs S] [--set PROP=VALUE]\n       bench-play peer --uri URI [--tracker WS] [--scheduler ours|pml] [--no-p2p] [--until-ms UNIX_MS] [--sync false] [--set PROP=VALUE]\n       bench-play upload [--downloaders N] [--stagger S] [--window S] [--seeder-rate B/s] [--perf-out FILE]\n       bench-play tracker-load [--swarms N] [--secs S] [--interval-s S] [--window-s S]\n       bench-play soak [--minutes M] [--peers N] [--liars L] [--churn-every S] [--tracker-restart-every S] [--liar-behaviours garbage,stale,drip] [--liar-bind IP]\n       bench-play soak-peer --uri URI --tracker WS --digests URL [--until-ms UNIX_MS]\n       bench-play liar --behaviour garbage|stale|drip --master URL --tracker WS [--bind IP] [--until-ms UNIX_MS]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("serve") if args.len() == 1 => serve(stream::Format::Hls),
        Some("serve") if args.len() == 2 && args[1] == "hls" => serve(stream::Format::Hls),
        Some("serve") if args.len() == 2 && args[1] == "dash" => serve(stream::Format::Dash),
        Some("play") => play(&args[1..]),
        Some("peer") => swarm_bench::peer(&args[1..]),
        Some("swarm") => swarm_bench::swarm(&args[1..]),
        Some("upload") => upload::upload(&args[1..]),
        Some("tracker-load") => tracker_load::tracker_load(&args[1..]),
        Some("soak") => soak::soak(&args[1..]),
        Some("soak-peer") => soak::soak_peer(&args[1..]),
        Some("liar") => liar::liar(&args[1..]),
        _ => Err(USAGE.into()),
    };
    if let Err(e) = r {
        eprintln!("bench-play: {e}");
        std::process::exit(1);
    }
}

pub(crate) type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
pub(crate) use procfs::{cpu_ms, peak_rss_kib, rss_split};

fn serve(format: stream::Format) -> Result<()> {
    let dir = stream::generate_as(&stream::StreamSpec::bench(), format)?;
    let origin = origin::Origin::serve_dir(&dir);
    println!("{}", origin.url(format.manifest()));
    std::io::stdout().flush()?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn play(args: &[String]) -> Result<()> {
    let (mut player, mut uri, mut timeout) = (None, None, Duration::from_secs(120));
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--player" => player = Some(val()?),
            "--uri" => uri = Some(val()?),
            "--timeout" => timeout = Duration::from_secs(val()?.parse()?),
            _ => return Err(format!("unknown argument {a}\n{USAGE}").into()),
        }
    }
    let (player, uri) = player.zip(uri).ok_or(USAGE)?;

    gst::init()?;
    gstp2pmedia::plugin_register_static()?;

    let fakesink = || {
        gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
    };
    let video_sink = fakesink()?;
    let pipeline = gst::ElementFactory::make(&player)
        .property("uri", &uri)
        .property("video-sink", &video_sink)
        .property("audio-sink", fakesink()?)
        .build()?;

    let frames = Arc::new(AtomicU64::new(0));
    let first_frame = Arc::new(Mutex::new(None::<Instant>));
    let (f, ff) = (frames.clone(), first_frame.clone());
    video_sink
        .static_pad("sink")
        .ok_or("fakesink without sink pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if f.fetch_add(1, Ordering::Relaxed) == 0 {
                *ff.lock().unwrap() = Some(Instant::now());
            }
            gst::PadProbeReturn::Ok
        });

    // When does the adaptive element (demuxer or our source) push its first buffer?
    let first_out = Arc::new(Mutex::new(None::<Instant>));
    let bin = pipeline
        .clone()
        .downcast::<gst::Bin>()
        .map_err(|_| "player is not a bin")?;
    let fo = first_out.clone();
    bin.connect_deep_element_added(move |_, _, element| {
        if hls_name(element).is_none() {
            return;
        }
        let fo = fo.clone();
        element.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let fo = fo.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    fo.lock().unwrap().get_or_insert_with(Instant::now);
                    gst::PadProbeReturn::Remove
                },
            );
        });
    });

    // p2phlssrc/p2pdashsrc with P2P off: the same HTTP-only work as the demuxers it is compared with
    // (and nothing leaves 127.0.0.1).
    pipeline.connect("source-setup", false, |args| {
        if let Ok(src) = args[1].get::<gst::Element>() {
            if src.find_property("p2p-enabled").is_some() {
                src.set_property("p2p-enabled", false);
            }
        }
        None
    });

    let bus = pipeline.bus().ok_or("player without bus")?;
    let t0 = Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let deadline = t0 + timeout;
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err(format!("no EOS within {timeout:?}"));
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!("{} ({:?})", e.error(), e.debug()));
            }
            _ => {}
        }
    };
    let wall = t0.elapsed();
    // The HLS element(s) still in the pipeline did the work (legacy decodebin tries
    // hlsdemux2 first and drops it).
    let hls: BTreeSet<String> = bin
        .iterate_recurse()
        .into_iter()
        .filter_map(|e| e.ok().and_then(|e| hls_name(&e)))
        .collect();
    pipeline.set_state(gst::State::Null)?;
    outcome?;

    let first = first_frame
        .lock()
        .unwrap()
        .ok_or("no video frame decoded")?;
    let first_out = first_out
        .lock()
        .unwrap()
        .ok_or("the adaptive element pushed nothing")?;
    let ms = |t: Instant| (t - t0).as_secs_f64() * 1e3;
    let hls: Vec<String> = hls.into_iter().collect();
    println!(
        "ttff_ms={:.1} first_out_ms={:.1} frames={} wall_ms={:.0} cpu_ms={} rss_kib={} hls={}",
        ms(first),
        ms(first_out),
        frames.load(Ordering::Relaxed),
        wall.as_secs_f64() * 1e3,
        cpu_ms()?,
        peak_rss_kib()?,
        if hls.is_empty() {
            "none".into()
        } else {
            hls.join("+")
        }
    );
    Ok(())
}

fn hls_name(element: &gst::Element) -> Option<String> {
    let name = element.factory()?.name();
    matches!(
        name.as_str(),
        "hlsdemux" | "hlsdemux2" | "p2phlssrc" | "dashdemux" | "dashdemux2" | "p2pdashsrc"
    )
    .then(|| name.to_string())
}
