//! Interop suite against real P2P Media Loader peers: headless Debian Chromium running hls.js
//! 1.7.4 + p2p-media-loader 2.3.1 / 2.2.2, a real bittorrent-tracker 11.2.3 and a local origin,
//! all inside a private loopback-only network namespace (`tests/interop/netns.sh`), driven by
//! `tests/interop/run.mjs`.
//!
//! For now: the browser-only baseline. Browsers of one family form a swarm and trade segments,
//! and the info-hash they announce is the one `gstp2pmedia::p2p::identity` computes.
//! Element peers join through the runner's `--external CMD` (see `RunSpec::externals`).
//!
//! Needs: root (unshare), apt `chromium` + `ffmpeg`, and `npm ci --ignore-scripts --prefix
//! tests/interop`. Missing pieces fail the test with the install command; only
//! `P2PMEDIA_SKIP_BROWSER_TESTS=1` skips it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use gstp2pmedia::manifest::hls::{self, Playlist};
use gstp2pmedia::media::Variant;
use gstp2pmedia::p2p::identity::{stream_swarm, swarm_id_from_url};
use gstp2pmedia::p2p::{Compat, StreamProperties, StreamType};
use serde_json::Value;

const VOD_MASTER: &str = "vod/master.m3u8";
/// The origin serves any fixture path under `live/` as a live stream (sliding window advancing
/// in real time over the same segments), so the live fixture needs no running encoder.
const LIVE_MASTER: &str = "live/vod/master.m3u8";
const VOD_SECS: u32 = 30;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// `false` = skip (explicitly requested); anything missing otherwise panics with the fix.
fn prerequisites() -> bool {
    if std::env::var("P2PMEDIA_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
        eprintln!("skipping browser interop tests: P2PMEDIA_SKIP_BROWSER_TESTS=1");
        return false;
    }
    let nm = interop_dir().join("node_modules");
    for f in [
        "playwright-core/package.json",
        "bittorrent-tracker/server.js",
        "p2p-media-loader-hlsjs/package.json",
        "p2p-media-loader-hlsjs-22/package.json",
        "hls.js/package.json",
    ] {
        assert!(
            nm.join(f).exists(),
            "{f} not installed: run `npm ci --ignore-scripts --prefix tests/interop` \
             (or set P2PMEDIA_SKIP_BROWSER_TESTS=1 to skip)"
        );
    }
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium missing: `apt-get install --no-install-recommends chromium` \
         (or set P2PMEDIA_SKIP_BROWSER_TESTS=1 to skip)"
    );
    for (tool, pkg) in [
        ("ffmpeg", "ffmpeg"),
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
        ("node", "nodejs"),
    ] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "{tool} not found: install {pkg}");
    }
    true
}

/// Scratch space for this test process: fixtures and run outputs.
fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("p2pmedia-interop");
        // Drop what earlier test processes left (kept for inspection until the next run).
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let d = base.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// 30-s two-variant VOD (640x360 and 320x180, H.264 + AAC in MPEG-TS, 2-s segments with a key
/// frame at each start), generated once per test process (~4 s).
fn fixtures() -> &'static Path {
    static FX: OnceLock<PathBuf> = OnceLock::new();
    FX.get_or_init(|| {
        let root = work_dir().join("fixtures");
        let vod = root.join("vod");
        std::fs::create_dir_all(&vod).unwrap();
        let t = Instant::now();
        let out = Command::new("ffmpeg")
            .current_dir(&vod)
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &VOD_SECS.to_string()])
            .args(["-filter_complex", "[0:v]split=2[a][b];[b]scale=320:180[c]"])
            .args(["-map", "[a]", "-map", "1:a", "-map", "[c]", "-map", "1:a"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-profile:v",
                "main",
            ])
            .args(["-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50"])
            .args(["-sc_threshold", "0"])
            .args([
                "-b:v:0",
                "600k",
                "-maxrate:v:0",
                "660k",
                "-bufsize:v:0",
                "1200k",
            ])
            .args([
                "-b:v:1",
                "200k",
                "-maxrate:v:1",
                "220k",
                "-bufsize:v:1",
                "400k",
            ])
            .args(["-c:a", "aac", "-b:a", "64k", "-ac", "2"])
            .args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"])
            .args([
                "-hls_flags",
                "independent_segments",
                "-hls_segment_type",
                "mpegts",
            ])
            .args(["-master_pl_name", "master.m3u8"])
            .args(["-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:180p"])
            .args(["-hls_segment_filename", "v%v/seg%03d.ts", "v%v/index.m3u8"])
            .output()
            .expect("run ffmpeg");
        assert!(
            out.status.success(),
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(vod.join("master.m3u8").exists());
        eprintln!("fixtures generated in {:.1}s", t.elapsed().as_secs_f64());
        root
    })
}

/// One runner invocation.
struct RunSpec<'a> {
    name: &'a str,
    stream: &'a str,
    browsers: usize,
    /// Family per browser, cycled ("23" / "22").
    pml: &'a [&'a str],
    /// Stop once every joining browser has loaded this many segments over P2P (0 = never).
    until_p2p: u32,
    /// Seconds after the last launch (upper bound with `until_p2p`).
    duration: u32,
    /// External peer commands (element peers), each started in the namespace with
    /// TRACKER_URL, STREAM_URL, ORIGIN_URL, INTEROP_PEER_INDEX, INTEROP_OUT; e.g.
    /// `format!("exec {target}/debug/examples/interop_peer --sync --duration 40")`
    /// (`examples/interop_peer.rs`: prints the element's stats as `STATS`/`FINAL` lines).
    externals: &'a [String],
}

/// Runs the swarm and returns `result.json`. Browser runs never overlap (2 cores).
fn run(spec: &RunSpec) -> Value {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Also across test processes (nextest runs each test in its own process).
    let lock = std::fs::File::create(work_dir().parent().unwrap().join(".lock")).unwrap();
    lock.lock().expect("lock the interop run");
    let out = work_dir().join(spec.name);
    // Hard limit for everything in the namespace: launches (~1 s each, 20 s worst case) + run.
    let limit = 60 + spec.duration + 25 * spec.browsers as u32;
    let mut cmd = Command::new(interop_dir().join("netns.sh"));
    cmd.arg("-t")
        .arg(limit.to_string())
        .arg("node")
        .arg(interop_dir().join("run.mjs"))
        .arg("--fixtures")
        .arg(fixtures())
        .arg("--out")
        .arg(&out)
        .args(["--stream", spec.stream])
        .args(["--browsers", &spec.browsers.to_string()])
        .args(["--pml", &spec.pml.join(",")])
        .args(["--until-p2p", &spec.until_p2p.to_string()])
        .args(["--duration", &spec.duration.to_string()])
        .args(["--deadline", &(limit - 10).to_string()]);
    for e in spec.externals {
        cmd.arg("--external").arg(e);
    }
    let t = Instant::now();
    let o = cmd.output().expect("start tests/interop/netns.sh");
    let stdout = String::from_utf8_lossy(&o.stdout);
    eprintln!(
        "--- {} ({:.1}s, {})\n{stdout}{}",
        spec.name,
        t.elapsed().as_secs_f64(),
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "interop runner failed ({}); outputs in {}",
        o.status,
        out.display()
    );
    let text = std::fs::read_to_string(out.join("result.json")).expect("result.json");
    serde_json::from_str(&text).expect("result.json is JSON")
}

/// hls.js's video sample-entry codes (`utils/codecs.ts`): the CODECS entries it puts in
/// `level.videoCodec`, which PML 2.3 hashes into the stream index.
fn hlsjs_video_codec(codecs: &str) -> Option<String> {
    const VIDEO: &[&str] = &[
        "avc1", "avc2", "avc3", "avc4", "avcp", "av01", "drac", "dva1", "dvav", "dvh1", "dvhe",
        "encv", "hev1", "hvc1", "mjp2", "mp4v", "mvc1", "mvc2", "mvc3", "mvc4", "resv", "rv60",
        "s263", "svc1", "svc2", "vc-1", "vp08", "vp09",
    ];
    let v: Vec<&str> = codecs
        .split(',')
        .map(str::trim)
        .filter(|c| VIDEO.contains(&c.get(..4).unwrap_or(c)))
        .map(|c| c.split('/').next().unwrap_or(c))
        .collect();
    (!v.is_empty()).then(|| v.join(","))
}

/// What p2p-media-loader-hlsjs 2.3 feeds `generateStreamShortId` for an hls.js level (§5.1):
/// with a zero bitrate only the bitrate, else codecs/resolution/frame rate/video range.
fn hlsjs_level_props(v: &Variant) -> StreamProperties {
    let bitrate = if v.bandwidth > 0 {
        v.bandwidth
    } else {
        v.average_bandwidth.unwrap_or(0)
    };
    if bitrate == 0 {
        return StreamProperties::default();
    }
    StreamProperties {
        bitrate,
        codecs: v.codecs.as_deref().and_then(hlsjs_video_codec),
        width: v.resolution.map(|(w, _)| w as u32),
        height: v.resolution.map(|(_, h)| h as u32),
        frame_rate: v.frame_rate,
        video_range: v.video_range.clone(),
        ..Default::default()
    }
}

/// Info-hash of every level of the master playlist at `master_url` (served from `file`), in
/// playlist order, for `compat`. 2.2 numbers levels in MANIFEST_LOADED (= playlist) order.
fn level_info_hashes(compat: Compat, master_url: &str, file: &Path) -> Vec<(u64, String)> {
    let url = url::Url::parse(master_url).unwrap();
    let Playlist::Master(m) = hls::parse(&std::fs::read(file).unwrap(), &url).unwrap() else {
        panic!("{} is not a master playlist", file.display());
    };
    let swarm = swarm_id_from_url(&url, None);
    m.variants
        .iter()
        .enumerate()
        .map(|(pos, v)| {
            let props = hlsjs_level_props(v);
            let s = stream_swarm(compat, &swarm, StreamType::Main, &props, pos);
            (v.bandwidth, s.info_hash)
        })
        .collect()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}
fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The baseline for one family: the first browser's peer id supplies P2P bytes to the second,
/// data channels open both ways, everybody announces the info-hash our identity code computes
/// for the pinned (highest) level, no fatal player errors, no peers from the other family.
fn check_family(r: &Value, pml: &str, stream_file: &Path, expect_p2p: bool) {
    let compat = if pml == "23" {
        Compat::Pml23
    } else {
        Compat::Pml22
    };
    let prefix = compat.pml_peer_id_prefix();
    let browsers: Vec<&Value> = r["browsers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| s(&b["pml"]) == pml)
        .collect();
    assert!(browsers.len() >= 2, "pml {pml}: need 2 browsers");

    // The pinned level is the highest bitrate, the one the page picks with level=max.
    let hashes = level_info_hashes(compat, s(&r["streamUrl"]), stream_file);
    let expected = hashes.iter().max_by_key(|(bw, _)| *bw).unwrap().1.clone();
    let all: BTreeSet<&str> = hashes.iter().map(|(_, h)| h.as_str()).collect();

    let mut own = Vec::new();
    for b in &browsers {
        let label = s(&b["label"]);
        assert!(
            b["problems"].as_array().unwrap().is_empty(),
            "{label}: {}",
            b["problems"]
        );
        assert!(!b["fatal"].as_bool().unwrap(), "{label}: {}", b["errors"]);
        assert!(
            b["errors"]["segment"].as_array().unwrap().is_empty(),
            "{label}: segment errors {}",
            b["errors"]["segment"]
        );
        let announced: BTreeSet<&str> = b["announcedInfoHashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect();
        assert_eq!(
            announced,
            BTreeSet::from([expected.as_str()]),
            "{label} announced {announced:?}; identity computes {expected} for the pinned level \
             (all levels: {hashes:?})"
        );
        let id = s(&b["ownPeerIds"][&expected]).to_owned();
        assert!(
            id.len() == 20 && id.starts_with(prefix),
            "{label}: own peer id {id:?}"
        );
        // Never a peer of the other family (the element, if any, uses this family's prefix).
        for p in b["peersSeen"].as_array().unwrap() {
            assert!(
                s(p).starts_with(prefix),
                "{label} met {p} from another family"
            );
        }
        own.push(id);
    }

    // Tracker side: exactly these info-hashes, announced by exactly these peer ids.
    let tracker: BTreeMap<&str, BTreeSet<&str>> = r["tracker"]["announces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| all.contains(s(&a["info_hash"])) || s(&a["peer_id"]).starts_with(prefix))
        .fold(BTreeMap::new(), |mut m, a| {
            m.entry(s(&a["info_hash"]))
                .or_default()
                .insert(s(&a["peer_id"]));
            m
        });
    // External peers (element) may announce too; they are whoever is not one of our browsers.
    let others = r["tracker"]["otherPeerIds"].as_array().unwrap();
    let want: BTreeSet<&str> = own
        .iter()
        .map(String::as_str)
        .chain(others.iter().map(s))
        .filter(|id| tracker.values().any(|ids| ids.contains(id)))
        .collect();
    assert!(
        own.iter().all(|id| want.contains(id.as_str())),
        "{tracker:?}"
    );
    assert_eq!(
        tracker,
        BTreeMap::from([(expected.as_str(), want)]),
        "tracker announces for pml {pml}"
    );

    // Swarm: the later browser connected to the first and got P2P bytes from its peer id.
    let (first, later) = (&own[0], browsers[1]);
    let (later_label, first_label) = (s(&later["label"]), s(&browsers[0]["label"]));
    let seen = |b: &Value, id: &str| {
        b["peersSeen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| s(p) == id)
    };
    assert!(
        seen(later, first),
        "{later_label} never connected to {first_label}"
    );
    assert!(
        seen(browsers[0], &own[1]),
        "{first_label} never saw {later_label}"
    );
    if expect_p2p {
        let from_first = n(&later["downloadedFromPeer"][first.as_str()]);
        assert!(
            from_first > 0 && n(&later["p2pBytes"]) > 0,
            "{later_label} got no P2P bytes from {first_label} ({first}): {}",
            later["downloadedFromPeer"]
        );
        let p2p_segments = later["segmentLog"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| s(&e["src"]) == "p2p" && s(&e["peer"]) == first)
            .count();
        assert!(
            p2p_segments > 0,
            "{later_label}: no whole segment from {first}"
        );
        assert!(
            n(&browsers[0]["uploadBytes"]) > 0,
            "{first_label} uploaded nothing"
        );
    }
}

/// VOD: two 2.3.1 and two 2.2.2 browsers (interleaved, so the families also prove disjoint).
#[test]
fn browser_baseline_vod() {
    if !prerequisites() {
        return;
    }
    let r = run(&RunSpec {
        name: "vod",
        stream: VOD_MASTER,
        browsers: 4,
        pml: &["23", "22"],
        until_p2p: 3,
        duration: 40,
        externals: &[],
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    let file = fixtures().join(VOD_MASTER);
    check_family(&r, "23", &file, true);
    check_family(&r, "22", &file, true);
}

/// Live (sliding window over the fixture): swarm and info-hash for the live URL. Browsers that
/// join together fetch the live edge over HTTP, so P2P bytes are not required here.
#[test]
fn browser_baseline_live() {
    if !prerequisites() {
        return;
    }
    let r = run(&RunSpec {
        name: "live",
        stream: LIVE_MASTER,
        browsers: 2,
        pml: &["23"],
        until_p2p: 0,
        duration: 8,
        externals: &[],
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    check_family(&r, "23", &fixtures().join("vod/master.m3u8"), false);
    for b in r["browsers"].as_array().unwrap() {
        let live = b["segmentLog"].as_array().unwrap().len();
        assert!(live >= 3, "{}: only {live} live segments", b["label"]);
    }
}
