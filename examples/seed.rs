//! Seeders for operators (issue 15): one `mode=seeder` pipeline per channel URL
//! (`p2phlssrc` or, for an `.mpd`, `p2pdashsrc`, each `! fakesink`), a status line per channel
//! every `--interval` seconds — peers, upload rate, origin bytes, segments seeded and served —
//! and a clean stop on SIGINT or SIGTERM (every pipeline to NULL, a last line per channel).
//! A channel whose pipeline fails is reported and started again after a pause; the others go on.
//!
//!   scripts/seed.sh [--tracker URL]... [--prop NAME=VALUE]... [--interval S] URL...
//!
//! `--tracker`: announce URLs (default: the element's). `--prop`: any element property, as
//! gst-launch-1.0 spells it (`--prop seed-variants=730400`, `--prop max-upload-rate=0`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

#[path = "common/signals.rs"]
mod signals;

/// Pause before a failed channel is started again.
const RESTART_AFTER: Duration = Duration::from_secs(5);

struct Channel {
    name: String,
    url: String,
    pipeline: Option<gst::Pipeline>,
    src: Option<gst::Element>,
    /// Upload bytes at the last status line, and when.
    last_up: (u64, Instant),
    failed_at: Option<Instant>,
    restarts: u32,
    last_error: Option<String>,
}

fn usage() -> ! {
    eprintln!("usage: seed [--tracker URL]... [--prop NAME=VALUE]... [--interval S] URL...");
    std::process::exit(2);
}

fn main() {
    let mut trackers: Vec<String> = Vec::new();
    let mut props: Vec<(String, String)> = Vec::new();
    let mut urls: Vec<String> = Vec::new();
    let mut interval = 1.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tracker" => trackers.push(args.next().unwrap_or_else(|| usage())),
            "--prop" => {
                let p = args.next().unwrap_or_else(|| usage());
                let (k, v) = p.split_once('=').unwrap_or_else(|| usage());
                props.push((k.to_owned(), v.to_owned()));
            }
            "--interval" => {
                interval = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s: &f64| *s > 0.0)
                    .unwrap_or_else(|| usage())
            }
            s if s.starts_with("--") => usage(),
            _ => urls.push(a),
        }
    }
    if urls.is_empty() {
        usage();
    }
    gst::init().expect("GStreamer");
    gstp2pmedia::plugin_register_static().expect("register the p2pmedia plugin");

    let main_loop = glib::MainLoop::new(None, false);
    let channels: Rc<RefCell<Vec<Channel>>> = Rc::new(RefCell::new(
        urls.iter()
            .enumerate()
            .map(|(i, url)| Channel {
                name: format!("ch{}", i + 1),
                url: url.clone(),
                pipeline: None,
                src: None,
                last_up: (0, Instant::now()),
                failed_at: None,
                restarts: 0,
                last_error: None,
            })
            .collect(),
    ));
    for ch in channels.borrow_mut().iter_mut() {
        start(ch, &trackers, &props);
    }

    // Status lines, failures and restarts, from the main loop.
    let (chs, trk, prp) = (channels.clone(), trackers.clone(), props.clone());
    glib::timeout_add_local(Duration::from_secs_f64(interval), move || {
        for ch in chs.borrow_mut().iter_mut() {
            poll_bus(ch);
            if ch.failed_at.is_some_and(|t| t.elapsed() >= RESTART_AFTER) {
                ch.restarts += 1;
                eprintln!("[{}] starting again (restart {})", ch.name, ch.restarts);
                start(ch, &trk, &prp);
            }
            println!("{}", status(ch));
        }
        glib::ControlFlow::Continue
    });
    signals::install();
    let l = main_loop.clone();
    glib::timeout_add_local(
        Duration::from_millis(100),
        move || match signals::received() {
            0 => glib::ControlFlow::Continue,
            signal => {
                eprintln!("signal {signal}: stopping");
                l.quit();
                glib::ControlFlow::Break
            }
        },
    );
    main_loop.run();
    for ch in channels.borrow_mut().iter_mut() {
        println!("{} (final)", status(ch));
        stop(ch);
    }
}

fn start(ch: &mut Channel, trackers: &[String], props: &[(String, String)]) {
    stop(ch);
    ch.failed_at = None;
    let path = ch.url.split(['?', '#']).next().unwrap_or_default();
    let factory = if path.ends_with(".mpd") {
        "p2pdashsrc"
    } else {
        "p2phlssrc"
    };
    let src = match gst::ElementFactory::make(factory)
        .property("location", &ch.url)
        .property_from_str("mode", "seeder")
        .build()
    {
        Ok(s) => s,
        Err(e) => {
            fail(ch, format!("cannot create {factory}: {e}"));
            return;
        }
    };
    if !trackers.is_empty() {
        src.set_property("trackers", gst::Array::new(trackers));
    }
    for (k, v) in props {
        let Some(pspec) = src.find_property(k) else {
            eprintln!("[{}] {factory} has no property {k}", ch.name);
            std::process::exit(2);
        };
        match glib::Value::deserialize_with_pspec(v, &pspec) {
            Ok(value) => src.set_property_from_value(k, &value),
            Err(e) => {
                eprintln!("[{}] {k}={v}: {e}", ch.name);
                std::process::exit(2);
            }
        }
    }
    let pipeline = gst::Pipeline::with_name(&ch.name);
    pipeline.add(&src).expect("add the source");
    let weak = pipeline.downgrade();
    // A seeder's output never holds it back; it is dropped here.
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let Ok(sink) = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
        else {
            return;
        };
        if pipeline.add(&sink).is_ok() {
            let _ = sink.sync_state_with_parent();
            let _ = pad.link(&sink.static_pad("sink").expect("sink pad"));
        }
    });
    ch.src = Some(src);
    ch.pipeline = Some(pipeline.clone());
    if pipeline.set_state(gst::State::Playing).is_err() {
        poll_bus(ch);
        if ch.failed_at.is_none() {
            fail(ch, "could not start".into());
        }
    }
}

fn stop(ch: &mut Channel) {
    if let Some(p) = ch.pipeline.take() {
        let _ = p.set_state(gst::State::Null);
    }
    ch.src = None;
}

fn fail(ch: &mut Channel, why: String) {
    eprintln!("[{}] {}: {why}", ch.name, ch.url);
    ch.last_error = Some(why);
    ch.failed_at = Some(Instant::now());
    stop(ch);
}

fn poll_bus(ch: &mut Channel) {
    let Some(bus) = ch.pipeline.as_ref().and_then(|p| p.bus()) else {
        return;
    };
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(e) => {
                fail(ch, format!("{} ({:?})", e.error(), e.debug()));
                return;
            }
            gst::MessageView::Warning(w) => {
                eprintln!("[{}] warning: {}", ch.name, w.error());
            }
            _ => {}
        }
    }
}

fn status(ch: &mut Channel) -> String {
    let Some(src) = &ch.src else {
        return format!(
            "[{}] down: {}",
            ch.name,
            ch.last_error.as_deref().unwrap_or("stopped")
        );
    };
    let st = src.property::<gst::Structure>("stats");
    let u = |k: &str| st.get::<u64>(k).unwrap_or(0);
    let peers = st.get::<u32>("peers").unwrap_or(0);
    let up = u("p2p-upload-bytes");
    let (last, at) = ch.last_up;
    let secs = at.elapsed().as_secs_f64().max(0.001);
    let rate = up.saturating_sub(last) as f64 * 8.0 / secs / 1e6;
    ch.last_up = (up, Instant::now());
    let swarms = st.get::<gst::Array>("swarms").map_or(0, |a| a.len());
    format!(
        "[{}] peers {peers:>3}  up {rate:>6.2} Mbit/s ({:.1} MB)  origin {:.1} MB  seeded {} \
         served {}  swarms {swarms}{}",
        ch.name,
        up as f64 / 1e6,
        u("http-bytes") as f64 / 1e6,
        u("seeded-segments"),
        u("served-segments"),
        if ch.restarts > 0 {
            format!("  restarts {}", ch.restarts)
        } else {
            String::new()
        }
    )
}
