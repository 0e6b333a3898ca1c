//! Every writable property of `p2phlssrc` and `p2pdashsrc` can be set from a string, the way
//! `gst-launch-1.0` (GStreamer 1.22) sets them, and the list properties (`trackers`,
//! `ice-servers`, `cookies`, arrays of strings: `<"a", "b">`) reach the element from a real
//! `gst-launch-1.0` run:
//!
//! - `every_writable_property_takes_a_string`: for each writable property of both elements, a
//!   value other than the default is set with `gst_util_set_object_arg` (what gst-launch-1.0 and
//!   `gst_parse_launch` call) and read back. A property type with no string form fails it.
//! - `gst_launch_sets_every_writable_property`: one `gst-launch-1.0` line per element setting
//!   every writable property at once (the values above) must parse and start the element.
//! - `gst_launch_list_properties_reach_the_element`: `gst-launch-1.0 p2phlssrc
//!   trackers=<"ws://…"> ice-servers=<"stun:…"> cookies=<…>` (and `p2pdashsrc`) against a
//!   loopback origin, tracker and STUN socket: the tracker gets the announce, the STUN socket a
//!   binding request, the origin the cookies, and the run ends with EOS; `ice-servers=<>` too.
//!
//! The gst-launch-1.0 runs load the plugin this test binary was built with (the
//! `libgstp2pmedia.so` next to it in `target/debug/deps`), through `GST_PLUGIN_PATH` as a user
//! does.

mod common;

use std::ffi::CString;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use common::dash_fixtures::{dash_fixtures, TMPL_MPD};
use common::fixtures::{fixtures, TS_MASTER};
use common::launch::plugin_dir;
use common::origin::Origin;
use common::tracker::{node_available, TrackerProcess};
use common::{guard_for, init};

const ELEMENTS: [&str; 2] = ["p2phlssrc", "p2pdashsrc"];

/// A string for `pspec` whose value differs from the element's current (default) one, in the
/// form a user types after gst-launch-1.0. Panics for a type with no such form: a new
/// property of an unhandled type must fail this test until it is settable from a string.
fn string_value(e: &gst::Element, pspec: &glib::ParamSpec) -> String {
    let name = pspec.name();
    let current = e.property_value(name);
    let ty = pspec.value_type();
    if ty == glib::Type::STRING {
        return match name {
            "location" => "http://127.0.0.1:9/launch/master.m3u8".into(),
            "proxy" => "http://127.0.0.1:9".into(),
            "seed-variants" => "730400,290400".into(),
            "segment-hashes-url" => "http://127.0.0.1:9/launch/segments-sha256.json".into(),
            _ => format!("launch-{name}"),
        };
    }
    if ty == glib::Type::BOOL {
        return (!current.get::<bool>().unwrap()).to_string();
    }
    // Numbers: the default + 1 (the default - 1 at the maximum).
    macro_rules! number {
        ($spec:ty, $t:ty) => {
            if let Some(p) = pspec.downcast_ref::<$spec>() {
                let d = current.get::<$t>().unwrap();
                let v = if d < p.maximum() { d + 1 } else { d - 1 };
                return v.to_string();
            }
        };
    }
    number!(glib::ParamSpecUInt, u32);
    number!(glib::ParamSpecInt, i32);
    number!(glib::ParamSpecUInt64, u64);
    number!(glib::ParamSpecInt64, i64);
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        let d = current.get::<f64>().unwrap();
        let v: f64 = if d == 0.25 { 0.5 } else { 0.25 };
        return v.clamp(p.minimum(), p.maximum()).to_string();
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecEnum>() {
        let d = current.get::<&glib::EnumValue>().unwrap().value();
        return p
            .enum_class()
            .values()
            .iter()
            .find(|v| v.value() != d)
            .unwrap_or_else(|| panic!("{name}: an enum with one value"))
            .nick()
            .to_string();
    }
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecFlags>() {
        // The first flag not set now (compat: pml-2.2, which both elements take alone).
        let set = current.transform::<u32>().unwrap().get::<u32>().unwrap();
        return p
            .flags_class()
            .values()
            .iter()
            .find(|v| v.value() & set == 0)
            .unwrap_or_else(|| panic!("{name}: every flag set by default"))
            .nick()
            .to_string();
    }
    if ty == gst::Array::static_type() {
        return match name {
            "trackers" => r#"<"ws://127.0.0.1:9/a", "wss://127.0.0.1:9/b">"#.into(),
            "ice-servers" => r#"<"stun:127.0.0.1:9">"#.into(),
            _ => r#"<"a=1", "b=2">"#.into(),
        };
    }
    if ty == gst::Structure::static_type() {
        return "headers, X-Launch=(string)yes".into();
    }
    panic!("{name}: no string form for a property of type {ty}");
}

/// `gst_util_set_object_arg`, what gst-launch-1.0 / `gst_parse_launch` call for `name=value`.
fn set_object_arg(e: &gst::Element, name: &str, value: &str) {
    let n = CString::new(name).unwrap();
    let v = CString::new(value).unwrap();
    unsafe {
        gst::ffi::gst_util_set_object_arg(
            e.as_ptr() as *mut glib::gobject_ffi::GObject,
            n.as_ptr(),
            v.as_ptr(),
        )
    }
}

fn serialized(v: &glib::Value) -> String {
    if matches!(v.get::<Option<gst::Structure>>(), Ok(None)) {
        return "NULL".into();
    }
    v.serialize()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| format!("{v:?}"))
}

fn writable(e: &gst::Element) -> Vec<glib::ParamSpec> {
    e.list_properties()
        .iter()
        .filter(|p| {
            p.flags().contains(glib::ParamFlags::WRITABLE)
                && !p.flags().contains(glib::ParamFlags::CONSTRUCT_ONLY)
                && p.owner_type() != gst::Object::static_type()
        })
        .cloned()
        .collect()
}

#[test]
fn every_writable_property_takes_a_string() {
    guard_for(Duration::from_secs(30), || {
        init();
        let mut checked = 0;
        for element in ELEMENTS {
            let e = gst::ElementFactory::make(element).build().unwrap();
            let props = writable(&e);
            assert!(
                props.len() > 30,
                "{element}: only {} properties",
                props.len()
            );
            for pspec in props {
                let name = pspec.name();
                let default = serialized(&e.property_value(name));
                let text = string_value(&e, &pspec);
                let want = gst::glib::Value::deserialize_with_pspec(&text, &pspec)
                    .unwrap_or_else(|_| panic!("{element}: {name}={text} does not deserialize"));
                set_object_arg(&e, name, &text);
                let got = serialized(&e.property_value(name));
                assert_eq!(
                    got,
                    serialized(&want),
                    "{element}: {name}={text} did not take (default {default})"
                );
                assert_ne!(got, default, "{element}: {name}={text} is the default");
                checked += 1;
            }
            // The empty list, as `ice-servers=<>`, also takes.
            set_object_arg(&e, "ice-servers", "<>");
            assert_eq!(e.property::<gst::Array>("ice-servers").len(), 0);
            // Applications set lists as GstValueArray values and read them back as such.
            e.set_property(
                "trackers",
                gst::Array::new(["ws://127.0.0.1:1", "ws://[::1]:2"]),
            );
            let t = e.property::<gst::Array>("trackers");
            let t: Vec<String> = t.iter().map(|v| v.get::<String>().unwrap()).collect();
            assert_eq!(t, ["ws://127.0.0.1:1", "ws://[::1]:2"]);
        }
        eprintln!("{checked} writable properties set from strings");

        // What an application written for the GStrv properties of earlier builds gets: a
        // panic that names the expected type, not a silent no-op.
        let e = gst::ElementFactory::make("p2phlssrc").build().unwrap();
        let old = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            e.set_property("trackers", vec!["ws://127.0.0.1:1".to_string()])
        }))
        .expect_err("a Vec<String> was accepted");
        let msg = old
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| old.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(
            msg.contains("expected: 'GstValueArray', got: 'GStrv'"),
            "{msg}"
        );
    });
}

/// `gst-launch-1.0 ARGS` with the built plugin and its own registry, bounded.
pub fn gst_launch(args: &[String], limit: Duration) -> Output {
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(args);
    bounded(cmd, limit)
}

/// `cmd` with the built plugin and its own registry; killed (by PID) after `limit`.
fn bounded(mut cmd: Command, limit: Duration) -> Output {
    let registry = std::env::temp_dir().join(format!("p2pmedia-launch-{}.bin", std::process::id()));
    let mut child = cmd
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", registry)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run gst-launch-1.0");
    let pid = child.id();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} (pid {pid}) still running after {limit:?}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn gst_launch_sets_every_writable_property() {
    guard_for(Duration::from_secs(60), || {
        init();
        for element in ELEMENTS {
            let e = gst::ElementFactory::make(element).build().unwrap();
            let mut args = vec![element.to_string()];
            for pspec in writable(&e) {
                // A seeder needs P2P, which this line turns off (`p2p-enabled=false`): it
                // would refuse to start (one clear error) instead of trying its location.
                let value = match pspec.name() {
                    "mode" => "player".to_string(),
                    _ => string_value(&e, &pspec),
                };
                args.push(format!("{}={value}", pspec.name()));
            }
            args.extend(["!", "fakesink"].map(String::from));
            let out = gst_launch(&args, Duration::from_secs(20));
            let log = text(&out);
            // Every property parsed (gst-launch-1.0 stops at the first it cannot set, with
            // "could not set property"), and the element started with what it was given:
            // nothing listens on port 9, so its first fetch fails (the segment hashes, which
            // come before the manifest).
            assert!(
                !log.contains("could not set property") && !log.contains("erroneous pipeline"),
                "{element}: {log}"
            );
            assert!(
                log.contains("127.0.0.1:9/launch/segments-sha256.json"),
                "{element}: the element never tried its segment-hashes-url:\n{log}"
            );
        }
    });
}

/// A minimal STUN server on a loopback UDP socket: answers every binding request (type 0x0001,
/// magic cookie 0x2112A442) with a success response carrying the sender's XOR-MAPPED-ADDRESS,
/// and counts the requests. It stops when the returned flag is set.
fn stun_server() -> (
    u16,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let requests = std::sync::Arc::new(AtomicUsize::new(0));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (n, done) = (requests.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !done.load(Ordering::Relaxed) {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            if len < 20 || buf[0..2] != [0, 1] || buf[4..8] != [0x21, 0x12, 0xa4, 0x42] {
                continue;
            }
            n.fetch_add(1, Ordering::Relaxed);
            let std::net::SocketAddr::V4(from) = from else {
                continue;
            };
            let mut r = vec![0x01, 0x01, 0, 12];
            r.extend_from_slice(&buf[4..20]);
            r.extend_from_slice(&[0x00, 0x20, 0, 8, 0, 0x01]);
            r.extend_from_slice(&(from.port() ^ 0x2112).to_be_bytes());
            r.extend_from_slice(&(u32::from(*from.ip()) ^ 0x2112_a442).to_be_bytes());
            let _ = socket.send_to(&r, from);
        }
    });
    (port, requests, stop)
}

#[test]
fn gst_launch_list_properties_reach_the_element() {
    guard_for(Duration::from_secs(120), || {
        init();
        if !node_available() {
            return;
        }
        let tracker = TrackerProcess::start_strict(0, 60_000);
        for (element, o, manifest) in [
            ("p2phlssrc", Origin::serve_dir(&fixtures().root), TS_MASTER),
            (
                "p2pdashsrc",
                Origin::serve_dir(&dash_fixtures().root),
                TMPL_MPD,
            ),
        ] {
            let before = tracker.messages().len();
            let (stun_port, stun_requests, stun_stop) = stun_server();
            let args: Vec<String> = [
                element.to_string(),
                format!("location={}", o.url(manifest)),
                format!(r#"trackers=<"{}">"#, tracker.url()),
                format!(r#"ice-servers=<"stun:127.0.0.1:{stun_port}">"#),
                r#"cookies=<"launch=1", "list=2">"#.to_string(),
                "!".into(),
                // In real time (10 s): the element meets the tracker while it plays.
                "fakesink".into(),
                "sync=true".into(),
            ]
            .into();
            let out = gst_launch(&args, Duration::from_secs(40));
            stun_stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let got_stun = stun_requests.load(std::sync::atomic::Ordering::Relaxed) > 0;
            let log = text(&out);
            assert!(out.status.success(), "{element}: {}\n{log}", out.status);
            assert!(log.contains("Got EOS"), "{element}: no EOS\n{log}");
            let announces = tracker.messages()[before..]
                .iter()
                .filter(|m| m["action"] == "announce")
                .count();
            assert!(announces > 0, "{element}: the tracker got no announce");
            assert!(
                got_stun,
                "{element}: no STUN binding request reached ice-servers=<stun:127.0.0.1:{stun_port}>"
            );
            let log = o.log();
            assert!(!log.is_empty());
            for r in &log {
                let cookie = r.header("cookie").unwrap_or_default();
                assert!(
                    cookie.contains("launch=1") && cookie.contains("list=2"),
                    "{element}: {r:?}"
                );
            }

            // The empty list: host candidates only, and it still plays to the end.
            let args: Vec<String> = [
                element.to_string(),
                format!("location={}", o.url(manifest)),
                format!(r#"trackers=<"{}">"#, tracker.url()),
                "ice-servers=<>".into(),
                "!".into(),
                "fakesink".into(),
            ]
            .into();
            let out = gst_launch(&args, Duration::from_secs(40));
            assert!(out.status.success(), "{element}: {}", text(&out));
        }
    });
}

/// The `gst-launch-1.0` lines of the elements' `SECTION:element-…` doc blocks, with the file
/// they are in.
fn doc_lines() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut lines = Vec::new();
    for file in ["src/element/hlssrc/imp.rs", "src/element/dashsrc/imp.rs"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let block = text
            .split("/**")
            .find(|b| b.contains("SECTION:element-"))
            .and_then(|b| b.split("*/").next())
            .unwrap_or_else(|| panic!("{file}: no SECTION:element- doc block"));
        assert!(block.contains("Since: 0.1"), "{file}: no Since:");
        for l in block.lines() {
            let l = l.trim().trim_start_matches('*').trim();
            if l.starts_with("gst-launch-1.0 ") {
                lines.push((file.to_string(), l.to_string()));
            }
        }
    }
    lines
}

/// Every example pipeline of the doc blocks runs as written, against a loopback origin
/// serving the test fixtures (its URL in place of `http://127.0.0.1:8080/…`) and the real
/// tracker (in place of `ws://127.0.0.1:8000`), through `sh -c` (the lines are shell
/// lines, with quotes), each bounded to 60 s and ending with EOS. Lines that would use the
/// public default trackers and STUN servers (the `playbin3` ones: a URI cannot carry
/// `trackers`/`ice-servers`) are not run: CI stays on loopback.
#[test]
fn doc_pipelines_run_as_written() {
    guard_for(Duration::from_secs(300), || {
        init();
        if !node_available() {
            return;
        }
        let tracker = TrackerProcess::start_strict(0, 60_000);
        let hls = Origin::serve_dir(&fixtures().root);
        let dash = Origin::serve_dir(&dash_fixtures().root);
        let lines = doc_lines();
        assert!(lines.len() >= 6, "{lines:#?}");
        let mut ran = 0;
        for (file, line) in lines {
            let offline = line.contains("p2p-enabled=false")
                || (line.contains("trackers=") && line.contains("ice-servers="));
            if !offline {
                assert!(
                    line.starts_with("gst-launch-1.0 playbin"),
                    "{file}: an element line that would reach public trackers: {line}"
                );
                eprintln!("not run (public trackers and STUN servers): {line}");
                continue;
            }
            let run = line
                .replace("http://127.0.0.1:8080/master.m3u8", &hls.url(TS_MASTER))
                .replace("http://127.0.0.1:8080/manifest.mpd", &dash.url(TMPL_MPD))
                .replace("ws://127.0.0.1:8000", &tracker.url());
            assert!(
                !run.contains(":8080") && !run.contains(":8000"),
                "{file}: a URL the test does not serve: {line}"
            );
            let started = Instant::now();
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(format!("exec {run}"));
            let out = bounded(cmd, Duration::from_secs(60));
            let log = text(&out);
            assert!(
                out.status.success(),
                "{file}: {line}\n{}\n{log}",
                out.status
            );
            assert!(log.contains("Got EOS"), "{file}: no EOS: {line}\n{log}");
            eprintln!("ran in {:.1} s: {line}", started.elapsed().as_secs_f64());
            ran += 1;
        }
        assert!(ran >= 4, "only {ran} doc lines ran");
        // The tracker lines reached the tracker.
        assert!(
            tracker.messages().iter().any(|m| m["action"] == "announce"),
            "no doc line announced on the tracker"
        );
    });
}
