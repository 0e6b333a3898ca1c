//! Element peer for the interop suite: plays `STREAM_URL` with `p2phlssrc` joined to the tracker
//! at `TRACKER_URL` (both set by `tests/interop/run.mjs --external`), prints the element's
//! `stats` as one line every second (`STATS <structure>`) and at the end (`FINAL <structure>`),
//! and exits at EOS or after `--duration` (0, after printing FINAL) or on an error (1).
//! SIGTERM (how the runner stops it) just ends it: the last STATS line is at most 1 s old.
//! gst-launch cannot set the `trackers` string array (GStrv), hence this driver.
//!
//!   cargo build --example interop_peer
//!   run.mjs ... --external "$CARGO_TARGET_DIR/debug/examples/interop_peer --sync \
//!       --prop compat=pml-2.2 --prop max-peers=5"
//!
//! `--sync`: consume in real time (stay in the swarm as a player would) instead of as fast as
//! possible. `--prop NAME=VALUE`: any other element property, parsed from its string form.
//! `--duration S`: stop after S seconds.
use std::time::{Duration, Instant};

use gst::prelude::*;

fn main() {
    let mut sync = false;
    let mut props: Vec<(String, String)> = Vec::new();
    let mut duration: Option<Duration> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sync" => sync = true,
            "--prop" => {
                let p = args.next().expect("--prop NAME=VALUE");
                let (k, v) = p.split_once('=').expect("--prop NAME=VALUE");
                props.push((k.to_owned(), v.to_owned()));
            }
            "--duration" => {
                let s: f64 = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--duration S");
                duration = Some(Duration::from_secs_f64(s));
            }
            _ => {
                eprintln!("usage: interop_peer [--sync] [--duration S] [--prop NAME=VALUE]...");
                std::process::exit(2);
            }
        }
    }
    let stream = std::env::var("STREAM_URL").expect("STREAM_URL");
    let tracker = std::env::var("TRACKER_URL").expect("TRACKER_URL");

    gst::init().unwrap();
    gstp2pmedia::plugin_register_static().unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("p2phlssrc")
        .property("location", &stream)
        .property("trackers", vec![tracker])
        .build()
        .unwrap();
    for (k, v) in &props {
        src.set_property_from_str(k, v);
    }
    pipeline.add(&src).unwrap();
    // One sink per output pad (container or elementary streams alike).
    let p = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = p.upgrade() else { return };
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", sync)
            .property("async", false)
            .build()
            .unwrap();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    });

    let main_loop = glib::MainLoop::new(None, false);
    let code = std::rc::Rc::new(std::cell::Cell::new(0));
    let bus = pipeline.bus().unwrap();
    let (l, c) = (main_loop.clone(), code.clone());
    let _watch = bus
        .add_watch_local(move |_, msg| {
            match msg.view() {
                gst::MessageView::Eos(_) => l.quit(),
                gst::MessageView::Error(e) => {
                    eprintln!("ERROR {} ({:?})", e.error(), e.debug());
                    c.set(1);
                    l.quit();
                }
                _ => {}
            }
            glib::ControlFlow::Continue
        })
        .unwrap();
    let (s, l, started) = (src.clone(), main_loop.clone(), Instant::now());
    glib::timeout_add_local(Duration::from_secs(1), move || {
        println!("STATS {}", s.property::<gst::Structure>("stats"));
        if duration.is_some_and(|d| started.elapsed() >= d) {
            l.quit();
        }
        glib::ControlFlow::Continue
    });

    pipeline.set_state(gst::State::Playing).unwrap();
    main_loop.run();
    println!("FINAL {}", src.property::<gst::Structure>("stats"));
    pipeline.set_state(gst::State::Null).unwrap();
    std::process::exit(code.get());
}
