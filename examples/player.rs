//! An application that embeds the element: plays an HLS or DASH manifest with `playbin3`, which
//! picks `p2phlssrc` / `p2pdashsrc` for `p2phls+http(s)://` / `p2pdash+http(s)://` URIs, and
//! prints one status line per second from the element's read-only `stats` property and the bus
//! messages it posts (`p2pmedia-peer-connected`/`-closed`, `p2pmedia-segment-loaded`). With
//! `--reject-every N` it vetoes the first delivery of every N-th segment through the
//! `validate-segment` signal (the element then fetches it again from the origin; the second
//! delivery is accepted).
//!
//!   cargo run --example player -- URL [--reject-every N] [--display] [--tracker WS_URL]... [--no-p2p]
//!
//! URL is the manifest's plain `http(s)://` URL (`.mpd` = DASH) or already a `p2phls+`/`p2pdash+`
//! URI. Audio and video go to `fakesink sync=true` (real time, no device needed) unless
//! `--display`. Exits 0 at end of stream, 1 with a message on an error, 2 on bad arguments.
//! The plugin is taken from the GStreamer registry when it is installed (or on
//! `GST_PLUGIN_PATH`), else this crate's copy is registered statically.
//! `examples/player.py` is the same application in Python (PyGObject); `tests/examples.rs` runs both.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

const USAGE: &str = "\
usage: player URL [--reject-every N] [--display] [--tracker WS_URL]... [--no-p2p]
  URL               manifest URL: http(s)://.../master.m3u8 (HLS), .../manifest.mpd (DASH),
                    or a p2phls+http(s):// / p2pdash+http(s):// URI
  --reject-every N  veto the first delivery of every N-th segment (validate-segment signal)
  --display         play to the default audio/video outputs instead of fake sinks
  --tracker WS_URL  WebTorrent tracker to announce on (repeatable; default: the element's)
  --no-p2p          HTTP only (p2p-enabled=false; validate-segment is then never emitted)";

struct Opts {
    uri: String,
    reject_every: Option<u64>,
    display: bool,
    trackers: Vec<String>,
    p2p: bool,
}

fn parse() -> Result<Opts, String> {
    let mut uri = None;
    let mut o = Opts {
        uri: String::new(),
        reject_every: None,
        display: false,
        trackers: vec![],
        p2p: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reject-every" => {
                o.reject_every = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .filter(|n| *n >= 1)
                        .ok_or("--reject-every needs a number >= 1")?,
                )
            }
            "--display" => o.display = true,
            "--no-p2p" => o.p2p = false,
            "--tracker" => o.trackers.push(args.next().ok_or("--tracker needs a URL")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if uri.is_none() => uri = Some(a),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    let uri = uri.ok_or("the manifest URL is missing")?;
    o.uri = if uri.starts_with("p2phls+") || uri.starts_with("p2pdash+") {
        uri
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        let path = uri.split(['?', '#']).next().unwrap_or(&uri);
        let scheme = if path.ends_with(".mpd") {
            "p2pdash+"
        } else {
            "p2phls+"
        };
        format!("{scheme}{uri}")
    } else {
        return Err(format!("not an http(s) URL: {uri}"));
    };
    Ok(o)
}

fn main() {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("player: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(opts) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("player: error: {e}");
            std::process::exit(1);
        }
    }
}

/// What the bus and the signal handler tell, for the status line.
#[derive(Default)]
struct Seen {
    loaded_http: u64,
    loaded_p2p: u64,
    peers_connected: u64,
    peers_closed: u64,
}

fn run(opts: Opts) -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    let origin_of_plugin = if gst::ElementFactory::find("p2phlssrc").is_some() {
        "installed"
    } else {
        gstp2pmedia::plugin_register_static()?;
        "built in"
    };
    let playbin = gst::ElementFactory::make("playbin3")
        .property("uri", &opts.uri)
        .build()?;
    if !opts.display {
        for prop in ["video-sink", "audio-sink"] {
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", true)
                .build()?;
            playbin.set_property(prop, &sink);
        }
    }

    let source: Arc<Mutex<Option<gst::Element>>> = Arc::default();
    // Segments seen by the validator (by URL), in the order of their first delivery.
    let checked: Arc<Mutex<Vec<String>>> = Arc::default();
    let rejected = Arc::new(AtomicU64::new(0));
    {
        let (slot, checked, rejected) = (source.clone(), checked.clone(), rejected.clone());
        let (p2p, trackers, reject_every) = (opts.p2p, opts.trackers.clone(), opts.reject_every);
        playbin.connect("source-setup", false, move |args| {
            let src = args[1].get::<gst::Element>().expect("an element");
            // Not ours (no `stats`): leave it alone.
            src.find_property("stats")?;
            src.set_property("p2p-enabled", p2p);
            if !trackers.is_empty() {
                set_string_list(&src, "trackers", &trackers);
            }
            if let Some(n) = reject_every {
                let (checked, rejected) = (checked.clone(), rejected.clone());
                // Emitted from the element's own threads, before a segment is used or shared.
                src.connect("validate-segment", false, move |args| {
                    let url = args[1].get::<String>().expect("url");
                    let id = args[2].get::<u64>().expect("segment-id");
                    let from = args[3].get::<String>().expect("source");
                    let bytes = args[4].get::<glib::Bytes>().expect("data");
                    let ok = {
                        let mut seen = checked.lock().unwrap();
                        if seen.contains(&url) {
                            true // a re-delivery, after our veto or a refetch
                        } else {
                            seen.push(url.clone());
                            !(seen.len() as u64).is_multiple_of(n)
                        }
                    };
                    if !ok {
                        rejected.fetch_add(1, Ordering::SeqCst);
                        println!(
                            "rejected segment {id} ({} bytes from {from}): {url}",
                            bytes.len()
                        );
                    }
                    Some(ok.to_value())
                });
            }
            *slot.lock().unwrap() = Some(src);
            None
        });
    }

    println!(
        "playing {} with playbin3 ({} p2pmedia plugin, {}{})",
        opts.uri,
        origin_of_plugin,
        if opts.p2p { "HTTP + P2P" } else { "HTTP only" },
        opts.reject_every
            .map(|n| format!(", vetoing every {n}th segment"))
            .unwrap_or_default()
    );
    playbin.set_state(gst::State::Playing)?;
    let bus = playbin.bus().expect("a pipeline has a bus");
    let t0 = Instant::now();
    let mut next = Duration::from_secs(1);
    let mut seen = Seen::default();
    let result = loop {
        let left = next.saturating_sub(t0.elapsed());
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) {
            use gst::MessageView;
            match msg.view() {
                MessageView::Eos(_) => break Ok(()),
                MessageView::Error(e) => {
                    break Err(format!(
                        "{} from {}{}",
                        e.error(),
                        msg.src().map(|s| s.path_string()).unwrap_or_default(),
                        e.debug().map(|d| format!(" ({d})")).unwrap_or_default()
                    ))
                }
                MessageView::Warning(w) => println!("warning: {}", w.error()),
                MessageView::Element(e) => {
                    let Some(s) = e.structure() else { continue };
                    match s.name().as_str() {
                        "p2pmedia-segment-loaded" => {
                            if s.get::<&str>("source") == Ok("p2p") {
                                seen.loaded_p2p += 1;
                            } else {
                                seen.loaded_http += 1;
                            }
                        }
                        "p2pmedia-peer-connected" => {
                            seen.peers_connected += 1;
                            println!(
                                "peer connected: {}",
                                s.get::<&str>("peer-id").unwrap_or("?")
                            );
                        }
                        "p2pmedia-peer-closed" => {
                            seen.peers_closed += 1;
                            println!("peer closed: {}", s.get::<&str>("peer-id").unwrap_or("?"));
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if t0.elapsed() >= next {
            println!(
                "{}",
                status(&playbin, &source, &seen, &rejected, t0.elapsed())
            );
            next += Duration::from_secs(1);
        }
    };
    // The last figures, then stop.
    let last = status(&playbin, &source, &seen, &rejected, t0.elapsed());
    playbin.set_state(gst::State::Null)?;
    result?;
    println!("end of stream: {last}");
    Ok(())
}

/// `[  4s] 3.0/10.0 s | http 1.2 MiB 3 seg | p2p 0.0 MiB 0 seg | up 0.0 MiB | peers 0 | loaded 3 http 0 p2p | rejected 1`
fn status(
    playbin: &gst::Element,
    source: &Mutex<Option<gst::Element>>,
    seen: &Seen,
    rejected: &AtomicU64,
    t: Duration,
) -> String {
    let secs = |c: Option<gst::ClockTime>| {
        c.map(|c| format!("{:.1}", c.seconds_f64()))
            .unwrap_or_else(|| "-".into())
    };
    let pos = secs(playbin.query_position::<gst::ClockTime>());
    let dur = secs(playbin.query_duration::<gst::ClockTime>());
    let stats = source
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|s| s.property::<Option<gst::Structure>>("stats"));
    let num = |f: &str| -> u64 {
        let Some(v) = stats.as_ref().and_then(|s| s.value(f).ok()) else {
            return 0;
        };
        v.get::<u64>()
            .or_else(|_| v.get::<u32>().map(u64::from))
            .unwrap_or(0)
    };
    let mib = |f: &str| num(f) as f64 / 1024.0 / 1024.0;
    format!(
        "[{:>3}s] {pos}/{dur} s | http {:.2} MiB {} seg | p2p {:.2} MiB {} seg | up {:.2} MiB | peers {} ({} connected, {} closed) | loaded {} http {} p2p | rejected {}",
        t.as_secs(),
        mib("http-bytes"),
        num("http-segments"),
        mib("p2p-bytes"),
        num("p2p-segments"),
        mib("p2p-upload-bytes"),
        num("peers"),
        seen.peers_connected,
        seen.peers_closed,
        seen.loaded_http,
        seen.loaded_p2p,
        rejected.load(Ordering::SeqCst)
    )
}

/// Set a list-of-strings property whatever its type: a `GStrv` (set as a list) or a
/// `GstValueArray` (parsed from `<"a", "b">`, as `gst-launch-1.0` writes it).
fn set_string_list(obj: &gst::Element, name: &str, items: &[String]) {
    let Some(pspec) = obj.find_property(name) else {
        return;
    };
    if pspec.value_type() == <Vec<String>>::static_type() {
        obj.set_property(name, items.to_vec());
    } else {
        let quoted: Vec<String> = items
            .iter()
            .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        obj.set_property_from_str(name, &format!("<{}>", quoted.join(", ")));
    }
}
