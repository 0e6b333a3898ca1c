//! Element peer for the interop suite: plays `STREAM_URL` with `p2phlssrc` (`p2pdashsrc` for an
//! `.mpd` URL or a `p2pdash+` URI; `--element NAME` overrides) joined to the tracker
//! at `TRACKER_URL` (both set by `tests/interop/run.mjs --external`), prints the element's
//! `stats` as one line every second (`STATS <structure>`) and at the end (`FINAL <structure>`),
//! and exits at EOS or after `--duration` (0, after printing FINAL) or on an error (1).
//! SIGTERM (how the runner stops it) ends it as `--duration` does: FINAL, DIGEST, RUSAGE.
//! A driver rather than a gst-launch-1.0 line (which can set `trackers=<"ws://…">` too): it
//! prints the element's `stats` as it goes.
//!
//!   cargo build --example interop_peer
//!   run.mjs ... --external "$CARGO_TARGET_DIR/debug/examples/interop_peer --sync \
//!       --prop compat=pml-2.2 --prop max-peers=5"
//!
//! `--sync`: consume in real time (stay in the swarm as a player would) instead of as fast as
//! possible. `--prop NAME=VALUE`: any other element property, parsed from its string form.
//! `--duration S`: stop after S seconds. `--stay`: at EOS keep playing (stay in the swarms as a
//! seeder) until `--duration`.
//!
//! Also prints every element message (`p2pmedia-peer-connected`/`-closed`,
//! `p2pmedia-segment-loaded`) as `EVENT {json}` (fields as JSON, plus `"name"` and `"t"` in
//! seconds since start), and, per src pad, the SHA-1 of every byte pushed out of it:
//! `DIGEST {"pad":..,"bytes":..,"buffers":..,"sha1":..,"eos":bool}` at that pad's EOS and for
//! every pad at the end (`"eos": false` = incomplete). `EOS` is printed when the pipeline ends.
//! Last, `RUSAGE {"cpu_ms":..,"wall_ms":..,"peak_rss_kib":..}` for the benchmarks' tables.
#[path = "common/procfs.rs"]
mod procfs;
#[path = "common/signals.rs"]
mod signals;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use gst::prelude::*;

fn main() {
    let mut sync = false;
    let mut stay = false;
    let mut props: Vec<(String, String)> = Vec::new();
    let mut duration: Option<Duration> = None;
    let mut element: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sync" => sync = true,
            "--stay" => stay = true,
            "--prop" => {
                let p = args.next().expect("--prop NAME=VALUE");
                let (k, v) = p.split_once('=').expect("--prop NAME=VALUE");
                props.push((k.to_owned(), v.to_owned()));
            }
            "--element" => element = Some(args.next().expect("--element NAME")),
            "--duration" => {
                let s: f64 = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--duration S");
                duration = Some(Duration::from_secs_f64(s));
            }
            _ => {
                eprintln!(
                    "usage: interop_peer [--sync] [--stay] [--duration S] [--element NAME] \
                     [--prop NAME=VALUE]..."
                );
                std::process::exit(2);
            }
        }
    }
    let stream = std::env::var("STREAM_URL").expect("STREAM_URL");
    let tracker = std::env::var("TRACKER_URL").expect("TRACKER_URL");

    gst::init().unwrap();
    gstp2pmedia::plugin_register_static().unwrap();
    let pipeline = gst::Pipeline::new();
    let element = element.unwrap_or_else(|| {
        let path = stream.split(['?', '#']).next().unwrap_or_default();
        if path.ends_with(".mpd") || stream.starts_with("p2pdash+") {
            "p2pdashsrc".into()
        } else {
            "p2phlssrc".into()
        }
    });
    let src = gst::ElementFactory::make(&element)
        .property("location", &stream)
        .property("trackers", gst::Array::new([tracker]))
        .build()
        .unwrap();
    for (k, v) in &props {
        src.set_property_from_str(k, v);
    }
    pipeline.add(&src).unwrap();
    // One sink per output pad (container or elementary streams alike); a probe hashes what the
    // pad pushes.
    let digests: Arc<Mutex<BTreeMap<String, PadDigest>>> = Arc::default();
    let p = pipeline.downgrade();
    let d = digests.clone();
    src.connect_pad_added(move |_, pad| {
        let name = pad.name().to_string();
        d.lock().unwrap().insert(name.clone(), PadDigest::default());
        let d = d.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::BUFFER_LIST
                | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                let mut all = d.lock().unwrap();
                let e = all.get_mut(&name).unwrap();
                match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) => e.add(b),
                    Some(gst::PadProbeData::BufferList(l)) => l.iter().for_each(|b| e.add(b)),
                    Some(gst::PadProbeData::Event(ev)) if ev.type_() == gst::EventType::Eos => {
                        e.eos = true;
                        println!("DIGEST {}", e.json(&name));
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
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

    let t0 = Instant::now();
    let main_loop = glib::MainLoop::new(None, false);
    let code = std::rc::Rc::new(std::cell::Cell::new(0));
    let bus = pipeline.bus().unwrap();
    let (l, c) = (main_loop.clone(), code.clone());
    let _watch = bus
        .add_watch_local(move |_, msg| {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    println!("EOS");
                    if !stay {
                        l.quit()
                    }
                }
                gst::MessageView::Element(e) => {
                    if let Some(st) = e.structure().filter(|st| {
                        st.name().starts_with("p2pmedia-") && st.name() != "p2pmedia-stats"
                    }) {
                        println!("EVENT {}", event_json(st, t0.elapsed()));
                    }
                }
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

    // SIGTERM (the runner stopping us): end as `--duration` does, with the last lines.
    signals::install();
    let l = main_loop.clone();
    glib::timeout_add_local(Duration::from_millis(100), move || {
        if signals::received() != 0 {
            l.quit();
            return glib::ControlFlow::Break;
        }
        glib::ControlFlow::Continue
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    main_loop.run();
    println!("FINAL {}", src.property::<gst::Structure>("stats"));
    for (name, d) in digests.lock().unwrap().iter() {
        println!("DIGEST {}", d.json(name));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    println!(
        "RUSAGE {}",
        serde_json::json!({
            "cpu_ms": procfs::cpu_ms().unwrap_or(0),
            "wall_ms": t0.elapsed().as_millis() as u64,
            "peak_rss_kib": procfs::peak_rss_kib().unwrap_or(0),
        })
    );
    std::process::exit(code.get());
}

#[derive(Default)]
struct PadDigest {
    hash: Sha1,
    bytes: u64,
    buffers: u64,
    eos: bool,
}

impl PadDigest {
    fn add(&mut self, b: &gst::BufferRef) {
        let m = b.map_readable().expect("readable buffer");
        self.hash.update(m.as_slice());
        self.bytes += m.len() as u64;
        self.buffers += 1;
    }
    fn json(&self, pad: &str) -> serde_json::Value {
        let sha1: String = self
            .hash
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        serde_json::json!({"pad": pad, "bytes": self.bytes, "buffers": self.buffers,
            "sha1": sha1, "eos": self.eos})
    }
}

/// An element message as one JSON object: its fields (strings and integers as such, anything
/// else in its serialized form), `name`, and `t` (seconds since start).
fn event_json(st: &gst::StructureRef, t: Duration) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    o.insert("name".into(), st.name().as_str().into());
    o.insert(
        "t".into(),
        ((t.as_secs_f64() * 1000.0).round() / 1000.0).into(),
    );
    for (k, v) in st.iter() {
        let j = if let Ok(s) = v.get::<String>() {
            s.into()
        } else if let Ok(n) = v.get::<u64>() {
            n.into()
        } else if let Ok(n) = v.get::<i64>() {
            n.into()
        } else if let Ok(n) = v.get::<u32>() {
            n.into()
        } else if let Ok(n) = v.get::<i32>() {
            n.into()
        } else {
            v.serialize()
                .map(|s| s.to_string())
                .unwrap_or_default()
                .into()
        };
        o.insert(k.to_string(), j);
    }
    serde_json::Value::Object(o)
}
