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

// Only the binary lookup; the process is started by the runner, in the namespace.
#[path = "common/aquatic.rs"]
#[allow(dead_code)]
mod aquatic;

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
        "shaka-player/package.json",
        "p2p-media-loader-shaka/package.json",
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
/// frame at each start), the same with alternate audio (`alt/`) and as DASH (`dash/`, fMP4),
/// generated once per test process (~6 s).
fn fixtures() -> &'static Path {
    static FX: OnceLock<PathBuf> = OnceLock::new();
    FX.get_or_init(|| {
        let root = work_dir().join("fixtures");
        let t = Instant::now();
        encode(
            &root.join("vod"),
            &["-map", "[a]", "-map", "1:a", "-map", "[c]", "-map", "1:a"],
            &[
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_playlist_type",
                "vod",
                "-hls_flags",
                "independent_segments",
                "-hls_segment_type",
                "mpegts",
                "-master_pl_name",
                "master.m3u8",
                "-var_stream_map",
                "v:0,a:0,name:360p v:1,a:1,name:180p",
                "-hls_segment_filename",
                "v%v/seg%03d.ts",
                "v%v/index.m3u8",
            ],
        );
        assert!(root.join("vod/master.m3u8").exists());
        // Alternate audio: video-only variants + one EXT-X-MEDIA TYPE=AUDIO rendition with a URI
        // (hls.js loads it as a separate track: PML's `secondary` swarm).
        let alt = root.join("alt");
        encode(
            &alt,
            &["-map", "[a]", "-map", "[c]", "-map", "1:a"],
            &[
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_playlist_type",
                "vod",
                "-hls_flags",
                "independent_segments",
                "-hls_segment_type",
                "mpegts",
                "-master_pl_name",
                "master.m3u8",
                "-var_stream_map",
                "v:0,agroup:aud,name:360p v:1,agroup:aud,name:180p \
                 a:0,agroup:aud,default:yes,language:en,name:audio",
                "-hls_segment_filename",
                "v%v/seg%03d.ts",
                "v%v/index.m3u8",
            ],
        );
        let master = std::fs::read_to_string(alt.join("master.m3u8")).unwrap();
        assert!(
            master.contains("TYPE=AUDIO") && master.contains("URI="),
            "{master}"
        );
        // DASH VOD for Shaka: the same two video renditions in one AdaptationSet + one audio
        // AdaptationSet, fMP4, SegmentTemplate with $Number$ and @duration (2 s).
        let dash = root.join("dash");
        encode(
            &dash,
            &["-map", "[a]", "-map", "[c]", "-map", "1:a"],
            &[
                "-f",
                "dash",
                "-seg_duration",
                "2",
                "-use_template",
                "1",
                "-use_timeline",
                "0",
                "-adaptation_sets",
                "id=0,streams=v id=1,streams=a",
                "-init_seg_name",
                "init-$RepresentationID$.m4s",
                "-media_seg_name",
                "chunk-$RepresentationID$-$Number%05d$.m4s",
                "manifest.mpd",
            ],
        );
        let mpd = std::fs::read_to_string(dash.join("manifest.mpd")).unwrap();
        assert!(
            mpd.contains("$Number%05d$") && !mpd.contains("SegmentTimeline"),
            "{mpd}"
        );
        eprintln!("fixtures generated in {:.1}s", t.elapsed().as_secs_f64());
        root
    })
}

/// One ffmpeg run into `dir`: the test pattern at 640x360 and scaled to 320x180 (`[a]`, `[c]`)
/// plus a sine (`1:a`), H.264 main 600k/200k with a key frame every 2 s, AAC 64k; `maps` picks
/// the streams, `output` is the muxer part.
fn encode(dir: &Path, maps: &[&str], output: &[&str]) {
    encode_secs(dir, VOD_SECS, maps, output)
}

#[rustfmt::skip]
fn encode_secs(dir: &Path, secs: u32, maps: &[&str], output: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args(["-filter_complex", "[0:v]split=2[a][b];[b]scale=320:180[c]"])
        .args(maps)
        .args(["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main"])
        .args(["-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-b:v:0", "600k", "-maxrate:v:0", "660k", "-bufsize:v:0", "1200k"])
        .args(["-b:v:1", "200k", "-maxrate:v:1", "220k", "-bufsize:v:1", "400k"])
        .args(["-c:a", "aac", "-b:a", "64k", "-ac", "2"])
        .args(output)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[rustfmt::skip]
/// A longer HLS stream beside the others (`long/`, [`LONG_SECS`], the two levels of `vod/`):
/// its live view grows for over a minute, long enough for a live swarm to settle.
fn long_fixture() -> &'static str {
    static LONG: OnceLock<()> = OnceLock::new();
    LONG.get_or_init(|| {
        let dir = fixtures().join("long");
        if dir.join("master.m3u8").exists() {
            return;
        }
        let t = Instant::now();
        encode_secs(
            &dir,
            LONG_SECS,
            &["-map", "[a]", "-map", "1:a", "-map", "[c]", "-map", "1:a"],
            &[
                "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
                "-hls_flags", "independent_segments", "-hls_segment_type", "mpegts",
                "-master_pl_name", "master.m3u8",
                "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:180p",
                "-hls_segment_filename", "v%v/seg%03d.ts", "v%v/index.m3u8",
            ],
        );
        eprintln!("long fixture generated in {:.1}s", t.elapsed().as_secs_f64());
    });
    "live/long/master.m3u8"
}

/// Length of the `long/` fixture.
const LONG_SECS: u32 = 130;

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
    /// External peers started once browser K is ready, before browser K+1: (K, command).
    late_externals: &'a [(usize, String)],
    /// End the run once every external peer has exited (and `until_p2p` is met).
    until_externals: bool,
    /// Another tracker instead of the runner's own (`--tracker-cmd`: run in the namespace with
    /// TRACKER_PORT and INTEROP_OUT set); the result then has no tracker record.
    tracker_cmd: Option<String>,
    /// Segments in a live view's sliding window (`--live-window`; the runner's default, 6,
    /// when `None`).
    live_window: Option<u32>,
    /// Extra hls.js config of every hls.js page (`--hls`, JSON).
    hls: Option<&'a str>,
    /// More runner arguments (the PeerTube emulation's `--sha`, `--tracker-path`, `--liar`).
    extra: &'a [String],
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
    let limit =
        60 + spec.duration + 25 * spec.browsers as u32 + 10 * spec.late_externals.len() as u32;
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
    for (k, e) in spec.late_externals {
        cmd.arg("--external-after-browser").arg(format!("{k}:{e}"));
    }
    if spec.until_externals {
        cmd.args(["--until-externals", "1"]);
    }
    if let Some(t) = &spec.tracker_cmd {
        cmd.arg("--tracker-cmd").arg(t);
    }
    if let Some(w) = spec.live_window {
        cmd.args(["--live-window", &w.to_string()]);
    }
    if let Some(h) = spec.hls {
        cmd.args(["--hls", h]);
    }
    cmd.args(spec.extra);
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
    let r: Value = serde_json::from_str(&text).expect("result.json is JSON");
    assert_tracker_rules_kept(&r);
    r
}

/// The runner checks every tracker message against the rules of the trackers people deploy
/// (`tests/tracker/rules.mjs`): none of ours may break one. A browser's breach is P2P Media
/// Loader's, printed for the record.
fn assert_tracker_rules_kept(r: &Value) {
    let browser_ids: BTreeSet<&str> = r["browsers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| {
            b["ownPeerIds"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, v)| s(v))
        })
        .collect();
    let all = r["tracker"]["violations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (browsers, ours): (Vec<&Value>, Vec<&Value>) = all.iter().partition(|v| {
        v["peer_id"]
            .as_str()
            .is_some_and(|p| browser_ids.contains(p))
    });
    if !browsers.is_empty() {
        eprintln!("tracker rules broken by browsers: {browsers:?}");
    }
    assert!(
        ours.is_empty(),
        "tracker rules broken by our peers: {ours:?}"
    );
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

/// A browser's segment errors: none from an element (any kind, timeouts included: issue 12
/// removed their tolerance), and at most `max_browser_timeouts` PML bytes-receiving-timeouts
/// from other browsers (PML between two browsers, printed when tolerated); anything else fails.
/// The elements are the tracker's announcers that are not one of the browsers.
fn assert_segment_errors(r: &Value, b: &Value, max_browser_timeouts: usize) {
    let label = s(&b["label"]);
    let elements: BTreeSet<&str> = r["tracker"]["otherPeerIds"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    let errors = b["errors"]["segment"].as_array().unwrap();
    let from_elements: Vec<&Value> = errors
        .iter()
        .filter(|e| elements.contains(s(&e["peer"])))
        .collect();
    assert!(
        from_elements.is_empty(),
        "{label}: segment errors towards an element: {from_elements:?}"
    );
    assert!(
        errors.len() <= max_browser_timeouts
            && errors
                .iter()
                .all(|e| e["type"] == "bytes-receiving-timeout"),
        "{label}: segment errors {}",
        b["errors"]["segment"]
    );
    if !errors.is_empty() {
        eprintln!(
            "{label}: tolerated (browser to browser): {}",
            b["errors"]["segment"]
        );
    }
}

/// The runner's `--pml` family name as our `Compat`.
fn compat_of(pml: &str) -> Compat {
    match pml {
        "23" => Compat::Pml23,
        "22" => Compat::Pml22,
        "06" | "pt" => Compat::Pml06,
        "pt22" => Compat::Pml22,
        _ => panic!("unknown family {pml}"),
    }
}

/// The info-hashes a browser announced (as sent: binary strings for 0.6).
fn announced(b: &Value) -> BTreeSet<&str> {
    b["announcedInfoHashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
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
/// Segment errors: none towards an element, and at most `max_timeouts` bytes-receiving-timeouts
/// per browser between browsers (`assert_segment_errors`).
fn check_family(r: &Value, pml: &str, stream_file: &Path, expect_p2p: bool, max_timeouts: usize) {
    let compat = compat_of(pml);
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
        assert_segment_errors(r, b, max_timeouts);
        let announced = announced(b);
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
        late_externals: &[],
        until_externals: false,
        tracker_cmd: None,
        live_window: None,
        hls: None,
        extra: &[],
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    let file = fixtures().join(VOD_MASTER);
    check_family(&r, "23", &file, true, 0);
    check_family(&r, "22", &file, true, 0);
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
        late_externals: &[],
        until_externals: false,
        tracker_cmd: None,
        live_window: None,
        hls: None,
        extra: &[],
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    check_family(&r, "23", &fixtures().join("vod/master.m3u8"), false, 0);
    for b in r["browsers"].as_array().unwrap() {
        let live = b["segmentLog"].as_array().unwrap().len();
        assert!(live >= 3, "{}: only {live} live segments", b["label"]);
    }
}

// ------------------------------------------------------------------ DASH: Shaka Player + PML 2.2.2

/// The DASH fixture (`dash/`): 640x360 + 320x180 video, one audio AdaptationSet.
const DASH_MPD: &str = "dash/manifest.mpd";
/// The same as a dynamic MPD (the runner's live view).
const LIVE_DASH_MPD: &str = "live/dash/manifest.mpd";

/// One P2P swarm of an MPD: PML type, bandwidth of the Representation, info-hash.
#[derive(Debug, Clone)]
struct DashSwarm {
    stream_type: StreamType,
    bandwidth: u64,
    info_hash: String,
}

/// The swarms of the MPD at `mpd_url` (served from `file`) as the crate computes them for
/// p2p-media-loader-shaka: `dash_streams::shaka_streams` of the first Period (type, 2.2
/// position, 2.3 props) + `identity::stream_swarm(compat, swarm_id, ...)`.
fn dash_swarms(compat: Compat, mpd_url: &str, file: &Path) -> Vec<DashSwarm> {
    use gstp2pmedia::manifest::dash;
    use gstp2pmedia::p2p::dash_streams::shaka_streams;
    let url = url::Url::parse(mpd_url).unwrap();
    let mpd = dash::parse(&std::fs::read(file).unwrap(), &url, 0.0).unwrap();
    let swarm = swarm_id_from_url(&url, None);
    let period = &mpd.periods[0];
    shaka_streams(period)
        .into_iter()
        .map(|st| {
            let rep = &period.adaptation_sets[st.adaptation_set].representations[st.representation];
            DashSwarm {
                stream_type: st.stream_type,
                bandwidth: rep.bandwidth,
                info_hash: stream_swarm(compat, &swarm, st.stream_type, &st.props, st.position)
                    .info_hash,
            }
        })
        .collect()
}

/// Shaka browsers (PML 2.2.2) in one swarm: every browser announces exactly the info-hashes the
/// crate computes for the pinned (highest) video Representation and the audio one, with
/// `-PM0202-` peer ids and nobody else on the tracker; no fatal player error, no segment error,
/// no launch problem; every later browser got P2P bytes and whole segments from another browser
/// (`expect_p2p`) and the first one uploaded. Returns the expected swarms.
fn check_dash_browsers(
    r: &Value,
    stream_file: &Path,
    expect_p2p: bool,
    max_timeouts: usize,
) -> Vec<DashSwarm> {
    let prefix = Compat::Pml22.pml_peer_id_prefix();
    let browsers: Vec<&Value> = r["browsers"].as_array().unwrap().iter().collect();
    assert!(browsers.len() >= 2, "need 2 browsers");
    let swarms = dash_swarms(Compat::Pml22, s(&r["streamUrl"]), stream_file);
    let main = swarms
        .iter()
        .filter(|w| w.stream_type == StreamType::Main)
        .max_by_key(|w| w.bandwidth)
        .unwrap();
    let expected: Vec<DashSwarm> = std::iter::once(main.clone())
        .chain(
            swarms
                .iter()
                .filter(|w| w.stream_type == StreamType::Secondary)
                .take(1)
                .cloned(),
        )
        .collect();
    let want: BTreeSet<&str> = expected.iter().map(|w| w.info_hash.as_str()).collect();

    let mut own: Vec<BTreeSet<String>> = Vec::new();
    for b in &browsers {
        let label = s(&b["label"]);
        assert_eq!(s(&b["player"]), "shaka", "{label}");
        assert!(
            b["problems"].as_array().unwrap().is_empty(),
            "{label}: {}",
            b["problems"]
        );
        assert!(!b["fatal"].as_bool().unwrap(), "{label}: {}", b["errors"]);
        // None towards an element; between browsers, at most `max_timeouts` (see `element_run`).
        assert_segment_errors(r, b, max_timeouts);
        let announced = announced(b);
        assert_eq!(
            announced, want,
            "{label} announced {announced:?}; the crate computes {expected:?} for the pinned \
             video and the audio (all: {swarms:?})"
        );
        let ids: BTreeSet<String> = want
            .iter()
            .map(|h| s(&b["ownPeerIds"][*h]).to_owned())
            .collect();
        for id in &ids {
            assert!(
                id.len() == 20 && id.starts_with(prefix),
                "{label}: own peer id {id:?}"
            );
        }
        own.push(ids);
    }
    let own_all: BTreeSet<&str> = own.iter().flatten().map(String::as_str).collect();
    // Tracker side: only these swarms, only 2.2 peer ids (element peers in compat=pml-2.2 too).
    for a in r["tracker"]["announces"].as_array().unwrap() {
        assert!(
            want.contains(s(&a["info_hash"])),
            "tracker: announce outside the expected swarms {want:?}: {a}"
        );
        assert!(
            s(&a["peer_id"]).starts_with(prefix),
            "tracker: peer id without {prefix}: {a}"
        );
    }
    if expect_p2p {
        for (k, b) in browsers.iter().enumerate().skip(1) {
            let label = s(&b["label"]);
            let from_browsers: u64 = b["downloadedFromPeer"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(p, _)| own_all.contains(p.as_str()) && !own[k].contains(p.as_str()))
                .map(|(_, v)| n(v))
                .sum();
            assert!(
                from_browsers > 0 && n(&b["p2pBytes"]) > 0,
                "{label} got no P2P bytes from another browser: {}",
                b["downloadedFromPeer"]
            );
            assert!(
                b["segmentLog"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| s(&e["src"]) == "p2p" && own_all.contains(s(&e["peer"]))),
                "{label}: no whole segment from another browser"
            );
        }
        assert!(
            n(&browsers[0]["uploadBytes"]) > 0,
            "{} uploaded nothing",
            s(&browsers[0]["label"])
        );
    }
    expected
}

/// DASH VOD: three Shaka Player 4.16.9 + p2p-media-loader-shaka 2.2.2 browsers in one swarm
/// (`check_dash_browsers`).
#[test]
fn browser_baseline_dash() {
    if !prerequisites() {
        return;
    }
    let r = run(&RunSpec {
        name: "dash",
        stream: DASH_MPD,
        browsers: 3,
        pml: &["22"],
        until_p2p: 3,
        duration: 40,
        externals: &[],
        late_externals: &[],
        until_externals: false,
        tracker_cmd: None,
        live_window: None,
        hls: None,
        extra: &[],
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    // Shaka asks PML for the whole 30-s VOD within about a second, so on a loaded 2-core
    // machine one browser-to-browser transfer may miss PML's 2-s bytes-receiving timeout (PML
    // then re-fetches over HTTP). That is PML's behaviour between two browsers, not ours:
    // tolerate one per browser, fail on anything else. (This assertion failed once in a
    // full-suite run; its message was not kept.)
    let swarms = check_dash_browsers(&r, &fixtures().join(DASH_MPD), true, 1);
    for b in r["browsers"].as_array().unwrap() {
        let (h, p) = (n(&b["httpBytes"]), n(&b["p2pBytes"]));
        eprintln!(
            "{}: http {h} p2p {p} ({:.1}% P2P), uploaded {}, segments {}",
            s(&b["label"]),
            100.0 * p as f64 / (h + p).max(1) as f64,
            n(&b["uploadBytes"]),
            b["segments"]
        );
    }
    eprintln!("dash swarms: {swarms:?}");
}

/// Live DASH: the runner serves `live/dash/manifest.mpd` as a dynamic MPD (availabilityStartTime
/// such that 6 segments are out when the origin starts, one more every 2 s). Two Shaka browsers:
/// the swarms of the live URL are the crate's; segments load (P2P not required: both fetch the
/// live edge together, as in `browser_baseline_live`).
#[test]
fn browser_baseline_dash_live() {
    if !prerequisites() {
        return;
    }
    let r = run(&RunSpec {
        name: "dash-live",
        stream: LIVE_DASH_MPD,
        browsers: 2,
        pml: &["22"],
        until_p2p: 0,
        duration: 8,
        externals: &[],
        late_externals: &[],
        until_externals: false,
        tracker_cmd: None,
        live_window: None,
        hls: None,
        extra: &[],
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    check_dash_browsers(&r, &fixtures().join(DASH_MPD), false, 0);
    for b in r["browsers"].as_array().unwrap() {
        let live = b["segmentLog"].as_array().unwrap().len();
        assert!(live >= 3, "{}: only {live} live segments", b["label"]);
    }
}

// ------------------------------------------------------------------ the element as a peer

const ALT_MASTER: &str = "alt/master.m3u8";

/// `examples/interop_peer`, built once per test process (`cargo test --test interop` does not
/// build examples) with the same profile as this test.
fn interop_peer_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let bin = target.join(profile).join("examples/interop_peer");
        if is_newer_than_sources(&bin) {
            return bin;
        }
        let mut c = Command::new(cargo);
        // Not the variables cargo set for this test (CARGO_PKG_*, CARGO_MANIFEST_DIR, ...): they
        // change the nested build's fingerprints and rebuild the whole crate.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k == "OUT_DIR" {
                c.env_remove(&k);
            }
        }
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--example", "interop_peer"])
            .env("CARGO_TARGET_DIR", &target);
        if profile == "release" {
            c.arg("--release");
        }
        let o = c.output().expect("cargo build --example interop_peer");
        assert!(
            o.status.success(),
            "building interop_peer: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
}

/// `bin` exists and is newer than every file under `src/`, the example and `Cargo.toml`.
fn is_newer_than_sources(bin: &Path) -> bool {
    fn newest(p: &Path) -> std::time::SystemTime {
        let m = std::fs::metadata(p).unwrap();
        if m.is_dir() {
            std::fs::read_dir(p)
                .unwrap()
                .flatten()
                .map(|e| newest(&e.path()))
                .max()
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
        } else {
            m.modified().unwrap()
        }
    }
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["src", "examples/interop_peer.rs", "Cargo.toml", "build.rs"]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.exists())
        .all(|p| newest(&p) < built)
}

/// Pins the element to the fixture's highest level (730400 bit/s), the one the pages pin.
const PIN_MAX: &str = "--prop min-bitrate=700000 --prop start-bitrate=100000000";
/// The PeerTube fixture's 360p (670 775 bit/s; 180p is 269 759).
const PIN_MAX_PEERTUBE: &str = "--prop min-bitrate=600000 --prop start-bitrate=100000000";
/// The same for the DASH fixture: the 640x360 Representation (600 kbit/s video, 664 kbit/s with
/// the audio), not the 320x180 one (200/264 kbit/s).
const PIN_MAX_DASH: &str = "--prop min-bitrate=500000 --prop start-bitrate=100000000";

/// `examples/interop_peer` with `args`, pinned to the highest level of `stream`'s fixture
/// (`p2pdashsrc` for an MPD, else `p2phlssrc`: the example picks by URL).
fn peer_cmd(stream: &str, args: &str) -> String {
    let pin = if stream.ends_with(".mpd") {
        PIN_MAX_DASH
    } else if stream.contains("streaming-playlists") {
        PIN_MAX_PEERTUBE
    } else {
        PIN_MAX
    };
    format!("exec {} {args} {pin}", interop_peer_bin().display())
}

/// What one external `interop_peer` printed: its `EVENT` objects, its final `DIGEST` per pad,
/// whether it reached EOS, and the swarms (info-hash -> type) of its `FINAL` stats.
struct ElementLog {
    events: Vec<Value>,
    digests: BTreeMap<String, Value>,
    eos: bool,
    swarms: BTreeMap<String, String>,
    text: String,
}

fn element_log(r: &Value, index: u64) -> ElementLog {
    let e = r["externals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["index"].as_u64() == Some(index))
        .unwrap_or_else(|| panic!("no external {index}: {}", r["externals"]));
    let text = std::fs::read_to_string(s(&e["log"])).unwrap();
    let mut log = ElementLog {
        events: Vec::new(),
        digests: BTreeMap::new(),
        eos: false,
        swarms: BTreeMap::new(),
        text: String::new(),
    };
    for line in text.lines() {
        if let Some(j) = line.strip_prefix("EVENT ") {
            log.events.push(serde_json::from_str(j).unwrap());
        } else if let Some(j) = line.strip_prefix("DIGEST ") {
            let d: Value = serde_json::from_str(j).unwrap();
            log.digests.insert(s(&d["pad"]).to_owned(), d);
        } else if line == "EOS" {
            log.eos = true;
        } else if let Some(f) = line.strip_prefix("FINAL ") {
            // swarms=(structure)< "swarm\,\ info-hash\=\(string\)H\,\ type\=\(string\)T\,..." >
            let f = f.replace('\\', "");
            for part in f.split("info-hash=(string)").skip(1) {
                let hash = part.split(',').next().unwrap().to_owned();
                let ty = part
                    .split("type=(string)")
                    .nth(1)
                    .and_then(|t| t.split(',').next())
                    .unwrap_or_default()
                    .to_owned();
                log.swarms.insert(hash, ty);
            }
        }
    }
    log.text = text;
    log
}

impl ElementLog {
    /// Remote peer ids it got whole segments from over P2P, with bytes (all swarms).
    fn p2p_from(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for e in &self.events {
            if s(&e["name"]) == "p2pmedia-segment-loaded" && s(&e["source"]) == "p2p" {
                *m.entry(s(&e["peer-id"]).to_owned()).or_default() += n(&e["bytes"]);
            }
        }
        m
    }
    fn digest_summary(&self) -> BTreeMap<String, (u64, String, bool)> {
        self.digests
            .iter()
            .map(|(p, d)| {
                (
                    p.clone(),
                    (
                        n(&d["bytes"]),
                        s(&d["sha1"]).to_owned(),
                        d["eos"].as_bool().unwrap(),
                    ),
                )
            })
            .collect()
    }
}

/// The element's peer ids, per info-hash, in order of their first announce: the runner starts
/// external k before external k+1, so [0] is the first element to join that swarm.
fn element_ids(r: &Value) -> BTreeMap<String, Vec<String>> {
    let others: BTreeSet<&str> = r["tracker"]["otherPeerIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in r["tracker"]["announces"].as_array().unwrap() {
        let id = s(&a["peer_id"]);
        if others.contains(id) {
            let v = m.entry(s(&a["info_hash"]).to_owned()).or_default();
            if !v.iter().any(|x| x == id) {
                v.push(id.to_owned());
            }
        }
    }
    m
}

/// One element-with-browsers run and its core assertions, for a family:
/// * externals: 0 = element E0 (joins first, `--stay`s as a seeder, `max-peers=2`), 1 =
///   reference element with `p2p-enabled=false` (HTTP only), 2 = element E1 started 3 s after
///   browser 1 is ready;
/// * browser 0 and browser 1 join after E0 and fill its two peer slots, so E1 cannot take
///   everything from E0 (it did in about 1 run in 4 before: elements weight peers by measured
///   speed, as PML 2.3 does) and must get segments from the browsers;
/// * every element announce is in a swarm the browsers announce (same info-hashes);
/// * offers both ways: a browser answers an element's offer, an element answers a browser's;
/// * browser 0 (joined after E0) gets P2P bytes from an element's peer id in every swarm and at
///   least one whole segment from an element (E0 or E1: PML picks the peer);
/// * E1 (joined after the browsers) gets whole segments over P2P from a browser's peer id;
/// * E0's and E1's output (SHA-1 of every src pad) equals the HTTP-only reference, all at EOS;
/// * no fatal player error, no launch problems, no segment error towards an element (a PML
///   bytes-receiving-timeout towards an element was tolerated before issue 12), at most one
///   bytes-receiving-timeout between the two browsers.
fn element_run(name: &str, pml: &str, compat_prop: &str, stream: &str) -> (Value, Vec<ElementLog>) {
    element_run_via(name, pml, compat_prop, stream, None, &[])
}

/// [`element_run`] through another tracker (`tracker_cmd`, see [`RunSpec`]): without its
/// record, the checks that read it (identities, who answered whom) are left out, and an
/// element is a peer id that is not a browser's.
fn element_run_via(
    name: &str,
    pml: &str,
    compat_prop: &str,
    stream: &str,
    tracker_cmd: Option<String>,
    extra: &[String],
) -> (Value, Vec<ElementLog>) {
    let r = run(&RunSpec {
        name,
        stream,
        browsers: 2,
        pml: &[pml],
        until_p2p: 2,
        duration: 40,
        externals: &[
            peer_cmd(
                stream,
                &format!("--stay --duration 22 --prop max-peers=2 {compat_prop}"),
            ),
            peer_cmd(stream, "--prop p2p-enabled=false"),
        ],
        // 3 s after browser 1 launched: both browsers are E0's two peers by then.
        late_externals: &[(
            1,
            format!(
                "sleep 3; {}",
                peer_cmd(stream, &format!("--stay --duration 14 {compat_prop}"))
            ),
        )],
        until_externals: true,
        tracker_cmd,
        live_window: None,
        hls: None,
        extra,
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    // Our tracker, or one that writes the same record (the PeerTube emulation's).
    let recorded = r["tracker"]["announces"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    let logs: Vec<ElementLog> = (0..3).map(|k| element_log(&r, k)).collect();
    let browsers = r["browsers"].as_array().unwrap();
    let prefix = compat_of(pml).pml_peer_id_prefix();
    for b in browsers {
        let label = s(&b["label"]);
        assert!(!b["fatal"].as_bool().unwrap(), "{label}: {}", b["errors"]);
        // None towards an element; one between the two browsers (PML's own behaviour on a
        // loaded machine, see `browser_baseline_dash`).
        assert_segment_errors(&r, b, 1);
        assert!(
            b["problems"].as_array().unwrap().is_empty(),
            "{label}: {}",
            b["problems"]
        );
    }

    let browser_ids: BTreeSet<&str> = browsers
        .iter()
        .flat_map(|b| b["ownPeerIds"].as_object().unwrap().values().map(s))
        .collect();
    let ids = if recorded {
        element_ids(&r)
    } else {
        BTreeMap::new()
    };
    let elements: BTreeSet<&str> = ids.values().flatten().map(String::as_str).collect();
    if recorded {
        // Same info-hashes: the element announces exactly the swarms the browsers announce.
        let browser_hashes: BTreeSet<&str> = browsers.iter().flat_map(announced).collect();
        let element_hashes: BTreeSet<&str> = ids.keys().map(String::as_str).collect();
        assert_eq!(
            element_hashes, browser_hashes,
            "element vs browser info-hashes (tracker record)"
        );
        for (h, v) in &ids {
            assert_eq!(v.len(), 2, "{h}: two elements expected, got {v:?}");
            for id in v {
                assert!(
                    id.len() == 20 && id.starts_with(prefix),
                    "element peer id {id:?}"
                );
            }
        }

        // Offers/answers both ways, from the tracker record.
        let answers: Vec<(&str, &str)> = r["tracker"]["announces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["answer"].as_bool() == Some(true))
            .map(|a| (s(&a["peer_id"]), s(&a["to_peer_id"])))
            .collect();
        assert!(
            answers
                .iter()
                .any(|(from, to)| browser_ids.contains(from) && elements.contains(to)),
            "no browser answered an element offer: {answers:?}"
        );
        assert!(
            answers
                .iter()
                .any(|(from, to)| elements.contains(from) && browser_ids.contains(to)),
            "no element answered a browser offer: {answers:?}"
        );
    }
    let is_element = |id: &str| {
        if recorded {
            elements.contains(id)
        } else {
            !browser_ids.contains(id)
        }
    };

    // Browser 0 joined after E0 (and before E1): P2P bytes from an element's peer id in every
    // swarm (without a tracker record: from some element), and at least one whole segment
    // from an element (E0 or E1: PML picks the peer).
    let b0 = &browsers[0];
    for (h, v) in &ids {
        let got: u64 = v
            .iter()
            .map(|id| n(&b0["downloadedFromPeer"][id.as_str()]))
            .sum();
        assert!(
            got > 0,
            "{}: nothing from the elements {v:?} of swarm {h}: {}",
            s(&b0["label"]),
            b0["downloadedFromPeer"]
        );
    }
    let from_elements: u64 = b0["downloadedFromPeer"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(id, _)| is_element(id))
        .map(|(_, b)| n(b))
        .sum();
    assert!(
        from_elements > 0,
        "{}: nothing from an element: {}",
        s(&b0["label"]),
        b0["downloadedFromPeer"]
    );
    assert!(
        b0["segmentLog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| s(&e["src"]) == "p2p" && is_element(s(&e["peer"]))),
        "{}: no whole segment from an element",
        s(&b0["label"])
    );

    // E1 joined after the browsers: whole segments over P2P from a browser's peer id.
    let from = logs[2].p2p_from();
    let from_browsers: u64 = from
        .iter()
        .filter(|(p, _)| browser_ids.contains(p.as_str()))
        .map(|(_, b)| b)
        .sum();
    assert!(
        from_browsers > 0,
        "element 1 (joined after the browsers) got no P2P segment from a browser: {from:?}\n{}",
        logs[2].events.len()
    );

    // Bit-exact: the elements that traded over P2P pushed exactly what HTTP-only playback does.
    let reference = logs[1].digest_summary();
    assert!(
        !reference.is_empty() && reference.values().all(|(b, _, eos)| *b > 0 && *eos),
        "reference (p2p-enabled=false) incomplete: {reference:?}\n{}",
        logs[1]
            .text
            .lines()
            .filter(|l| !l.starts_with("STATS"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for k in [0, 2] {
        assert!(logs[k].eos, "element external {k} never reached EOS");
        assert_eq!(
            logs[k].digest_summary(),
            reference,
            "element external {k}: output differs from HTTP-only playback"
        );
    }
    eprintln!(
        "{name}: elements {ids:?}; E1 got P2P from {from:?}; browser 0 from {}",
        b0["downloadedFromPeer"]
    );
    (r, logs)
}

/// Element ⇄ 2.3.1 browsers on the VOD (see `element_run`), plus the identity check of the
/// browsers' swarm (`check_family`, which also takes the element's peer ids into account).
#[test]
fn element_vod_pml23() {
    if !prerequisites() {
        return;
    }
    let (r, _) = element_run("element-vod-23", "23", "", VOD_MASTER);
    // `element_run` already allowed one upload-latency timeout per browser; agree with it.
    check_family(&r, "23", &fixtures().join(VOD_MASTER), false, 1);
}

/// Element ⇄ 2.3.1 browsers as in `element_vod_pml23`, through aquatic_ws instead of
/// bittorrent-tracker (issue 14): the tracker people deploy for performance, with its own rules.
#[test]
fn element_vod_pml23_through_aquatic_ws() {
    if !prerequisites() {
        return;
    }
    let Some(bin) = aquatic::aquatic_bin() else {
        return;
    };
    let cmd = format!(
        "printf 'log_level = \"warn\"\\n[network]\\naddress = \"127.0.0.1:%s\"\\n' \"$TRACKER_PORT\" \
         > \"$INTEROP_OUT/aquatic.toml\" && exec '{}' -c \"$INTEROP_OUT/aquatic.toml\"",
        bin.display()
    );
    element_run_via(
        "element-vod-23-aquatic",
        "23",
        "",
        VOD_MASTER,
        Some(cmd),
        &[],
    );
}

/// The same against 2.2.2 browsers, the element in `compat=pml-2.2`.
#[test]
fn element_vod_pml22() {
    if !prerequisites() {
        return;
    }
    let (r, _) = element_run("element-vod-22", "22", "--prop compat=pml-2.2", VOD_MASTER);
    check_family(&r, "22", &fixtures().join(VOD_MASTER), false, 1);
}

/// The same against P2P Media Loader 0.6.2 browsers (hls.js 0.14.17), the element in
/// `compat=pml-0.6`: JSON commands with string ids, completion by byte count, the raw SHA-1
/// info-hash of `"2" + <master>+V<i>` (compared with the browsers' through the tracker record
/// in `check_family`), one `-WW0006-` peer id per element.
#[test]
fn element_vod_pml06() {
    if !prerequisites() {
        return;
    }
    let (r, _) = element_run("element-vod-06", "06", "--prop compat=pml-0.6", VOD_MASTER);
    check_family(&r, "06", &fixtures().join(VOD_MASTER), false, 1);
}

/// Live with P2P Media Loader 0.6.2 browsers: element E0 (first, for 16 s, consuming as fast
/// as it can), two 0.6.2 browsers, element E1 (once E0 has left, consuming in real time as a
/// player does), all `compat=pml-0.6` on a live window of 12 segments: the elements announce
/// the browsers' info-hash with one `-WW0006-` peer id each, segments move between elements
/// and browsers over the JSON protocol (ids `<master>+V0+<media sequence>`) with no segment
/// error towards an element, and the late element takes whole segments from the browsers.
/// E1 joins after E0 has gone and plays in real time because otherwise "element from browser"
/// was left to chance: with E0 around E1 took everything from E0, and a fast consumer finds
/// every segment urgent and fetches the live edge itself, before the browsers.
#[test]
fn element_live_pml06() {
    if !prerequisites() {
        return;
    }
    let stream = long_fixture();
    let element = |extra: &str| peer_cmd(stream, &format!("--stay --prop compat=pml-0.6 {extra}"));
    let r = run(&RunSpec {
        name: "element-live-06",
        stream,
        browsers: 2,
        pml: &["06"],
        until_p2p: 0,
        duration: 40,
        externals: &[element("--duration 16")],
        late_externals: &[(1, format!("sleep 20; {}", element("--sync --duration 18")))],
        until_externals: true,
        tracker_cmd: None,
        live_window: Some(12),
        hls: None,
        extra: &[],
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    let logs: Vec<ElementLog> = (0..2).map(|k| element_log(&r, k)).collect();
    let browsers = r["browsers"].as_array().unwrap();
    let ids = element_ids(&r);
    let browser_hashes: BTreeSet<&str> = browsers.iter().flat_map(announced).collect();
    assert_eq!(
        ids.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        browser_hashes,
        "element vs browser info-hashes"
    );
    let elements: BTreeSet<&str> = ids.values().flatten().map(String::as_str).collect();
    assert_eq!(elements.len(), 2, "{ids:?}");
    assert!(elements
        .iter()
        .all(|id| id.len() == 20 && id.starts_with("-WW0006-")));
    let browser_ids: BTreeSet<&str> = browsers
        .iter()
        .flat_map(|b| b["ownPeerIds"].as_object().unwrap().values().map(s))
        .collect();
    let mut to_browsers = 0;
    for b in browsers {
        let label = s(&b["label"]);
        assert!(!b["fatal"].as_bool().unwrap(), "{label}: {}", b["errors"]);
        assert_segment_errors(&r, b, 1);
        to_browsers += b["downloadedFromPeer"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(id, _)| elements.contains(id.as_str()))
            .map(|(_, v)| n(v))
            .sum::<u64>();
    }
    let from_browsers: u64 = logs
        .iter()
        .flat_map(|l| l.p2p_from())
        .filter(|(id, _)| browser_ids.contains(id.as_str()))
        .map(|(_, b)| b)
        .sum();
    let late: u64 = logs[1].p2p_from().values().sum();
    eprintln!(
        "element-live-06: elements {ids:?}; browsers got {to_browsers} B from elements, \
         elements {from_browsers} B from browsers; E1 {late} B over P2P: {:?}",
        logs[1].p2p_from()
    );
    assert!(late > 0, "the late element took nothing from the swarm");
    assert_eq!(
        logs[1].p2p_from().values().sum::<u64>(),
        logs[1]
            .p2p_from()
            .iter()
            .filter(|(id, _)| browser_ids.contains(id.as_str()))
            .map(|(_, b)| b)
            .sum::<u64>(),
        "E1 took P2P bytes from E0, which had left"
    );
    assert!(to_browsers > 0, "no browser got anything from an element");
    assert!(from_browsers > 0, "no element got anything from a browser");
    for (k, l) in logs.iter().enumerate() {
        assert!(
            !l.text.contains("ERROR "),
            "element {k} posted an error:\n{}",
            l.text
        );
    }
}

/// Alternate audio (video-only variants + an EXT-X-MEDIA audio rendition with a URI): the
/// element and the browsers meet in the `secondary` swarm too (same info-hash, data channels),
/// and segments move there from the element to a browser (browser -> element is printed).
#[test]
fn element_alternate_audio() {
    if !prerequisites() {
        return;
    }
    let (r, logs) = element_run("element-alt-23", "23", "", ALT_MASTER);
    let secondary: BTreeSet<String> = logs[0]
        .swarms
        .iter()
        .filter(|(_, t)| t.as_str() == "secondary")
        .map(|(h, _)| h.clone())
        .collect();
    assert_eq!(
        secondary.len(),
        1,
        "element 0 swarms {:?}: one secondary expected",
        logs[0].swarms
    );
    let sec = secondary.iter().next().unwrap();
    assert_eq!(
        logs[2].swarms.get(sec).map(String::as_str),
        Some("secondary")
    );
    let ids = element_ids(&r);
    let sec_elements: BTreeSet<&str> = ids[sec].iter().map(String::as_str).collect();
    let browsers = r["browsers"].as_array().unwrap();
    for b in browsers {
        assert!(
            b["ownPeerIds"].get(sec.as_str()).is_some(),
            "{} did not announce the audio swarm {sec}: {}",
            s(&b["label"]),
            b["ownPeerIds"]
        );
    }
    let sec_browsers: BTreeSet<&str> = browsers
        .iter()
        .map(|b| s(&b["ownPeerIds"][sec.as_str()]))
        .collect();
    // Browser side: secondary segments from an element's peer id.
    let to_browsers: usize = browsers
        .iter()
        .flat_map(|b| b["segmentLog"].as_array().unwrap())
        .filter(|e| {
            s(&e["src"]) == "p2p"
                && s(&e["type"]) == "secondary"
                && sec_elements.contains(s(&e["peer"]))
        })
        .count();
    // Element side: secondary segments from a browser's peer id.
    let to_elements: usize = logs
        .iter()
        .flat_map(|l| &l.events)
        .filter(|e| {
            s(&e["name"]) == "p2pmedia-segment-loaded"
                && s(&e["source"]) == "p2p"
                && s(&e["info-hash"]) == sec
                && sec_browsers.contains(s(&e["peer-id"]))
        })
        .count();
    eprintln!("audio swarm {sec}: {to_browsers} segments element->browser, {to_elements} browser->element");
    assert!(
        to_browsers > 0,
        "no audio segment from an element to a browser"
    );
    // The other direction is not asserted: element 1 may take every audio segment from element
    // 0 (seen in 1 run of 4: 16/16), which is its choice, not an interop failure. The browsers
    // and the elements must still have connected in the audio swarm.
    let connected = logs.iter().flat_map(|l| &l.events).any(|e| {
        s(&e["name"]) == "p2pmedia-peer-connected"
            && s(&e["info-hash"]) == sec
            && sec_browsers.contains(s(&e["peer-id"]))
    });
    assert!(
        connected,
        "no element connected to a browser in the audio swarm"
    );
}

/// DASH: the element (`p2pdashsrc`, `compat=pml-2.2`) and Shaka Player 4.16.9 +
/// p2p-media-loader-shaka 2.2.2 browsers in the same swarms (`element_run`: segments both ways,
/// output equal to HTTP-only playback), and the browsers' info-hashes are the crate's
/// (`check_dash_browsers`, main and audio swarms).
#[test]
fn element_dash_pml22() {
    if !prerequisites() {
        return;
    }
    let (r, logs) = element_run("element-dash-22", "22", "--prop compat=pml-2.2", DASH_MPD);
    let swarms = check_dash_browsers(&r, &fixtures().join(DASH_MPD), false, 1);
    // The element joined both swarms the browsers did (main + audio).
    for k in [0, 2] {
        let joined: BTreeSet<&str> = logs[k].swarms.keys().map(String::as_str).collect();
        for w in &swarms {
            assert!(
                joined.contains(w.info_hash.as_str()),
                "element external {k} not in {w:?}: {:?}",
                logs[k].swarms
            );
        }
    }
}

/// DASH with P2P Media Loader 0.6.2 (Shaka Player 2.5.1 + p2p-media-loader-shaka 0.6.2): the
/// element (`p2pdashsrc compat=pml-0.6`) trades with the browsers both ways (`element_run`),
/// in the one swarm they announce: video only, `<MPD URL>+V<Shaka 2.x stream id>` (the
/// 640x360 Representation is stream 1), segments named by their start in the Period,
/// `toFixed(3)`.
#[test]
fn element_dash_pml06() {
    if !prerequisites() {
        return;
    }
    let (r, _) = element_run("element-dash-06", "06", "--prop compat=pml-0.6", DASH_MPD);
    let url = s(&r["streamUrl"]);
    let want = stream_swarm(
        Compat::Pml06,
        &swarm_id_from_url(&url::Url::parse(url).unwrap(), None),
        StreamType::Main,
        &StreamProperties::default(),
        1,
    );
    assert_eq!(
        want.stream_swarm_id,
        format!("{}+V1", url.split('?').next().unwrap())
    );
    for b in r["browsers"].as_array().unwrap() {
        let announced = announced(b);
        assert_eq!(
            announced,
            BTreeSet::from([want.info_hash.as_str()]),
            "{}: {}",
            s(&b["label"]),
            b["swarmIds"]
        );
    }
}

// ------------------------------------------------------------------ PeerTube (issue 13)

/// A PeerTube-emulated VOD (`tests/interop/peertube-fixture.sh`, peertube.md §5): one
/// single-file fMP4 per resolution in 4-s byte ranges, the master listing 180p first, its
/// `segments-sha256.json`. Paths under `fixtures()`.
struct PeerTubeVideo {
    master: String,
    sha: String,
}

fn peertube_video() -> &'static PeerTubeVideo {
    static PT: OnceLock<PeerTubeVideo> = OnceLock::new();
    PT.get_or_init(|| {
        let dir = fixtures().join("pt");
        let t = Instant::now();
        let o = Command::new(interop_dir().join("peertube-fixture.sh"))
            .arg(&dir)
            .arg("30")
            .output()
            .expect("run tests/interop/peertube-fixture.sh");
        assert!(
            o.status.success(),
            "peertube-fixture.sh: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let j: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("peertube.json")).unwrap())
                .unwrap();
        eprintln!(
            "PeerTube fixture generated in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        PeerTubeVideo {
            master: format!("pt/{}", s(&j["master"])),
            sha: format!("pt/{}", s(&j["sha"])),
        }
    })
}

/// Runner arguments of a PeerTube run: the hash file for the pages, the tracker's one path,
/// the browsers that lie.
fn peertube_args(v: &PeerTubeVideo, liars: &str) -> Vec<String> {
    let mut extra = vec![
        "--sha".to_owned(),
        v.sha.clone(),
        "--tracker-path".to_owned(),
        "/tracker/socket".to_owned(),
    ];
    if !liars.is_empty() {
        extra.extend(["--liar".to_owned(), liars.to_owned()]);
    }
    extra
}

/// PeerTube's tracker (`/tracker/socket` only, an info-hash whitelist for `era`; an unknown
/// hash closes the socket and blocks the address for 3 minutes).
fn peertube_tracker(era: &str) -> String {
    format!(
        "exec node '{}' --era {era}",
        interop_dir().join("peertube-tracker.mjs").display()
    )
}

/// The element as PeerTube's web player is configured: the swarm id is the master playlist
/// URL, every segment is checked against the published hashes.
fn peertube_props(v: &PeerTubeVideo, compat: &str) -> String {
    format!(
        "--prop compat={compat} --prop swarm-id=\"$STREAM_URL\" \
         --prop segment-hashes-url=\"$ORIGIN_URL/{}\"",
        v.sha
    )
}

/// Nobody was refused by the PeerTube tracker: the elements announced only listed hashes.
fn assert_no_tracker_rejections(r: &Value) {
    let rejected = &r["tracker"]["rejections"];
    assert!(
        rejected.as_array().is_some_and(|a| a.is_empty()),
        "the PeerTube tracker refused: {rejected}"
    );
}

/// One PeerTube era with `element_run_via` (segments both ways, output bit-exact), through
/// PeerTube's tracker, which must never have refused an element's announce.
fn element_peertube(name: &str, pml: &str, compat: &str, era: &str) {
    let v = peertube_video();
    let (r, _) = element_run_via(
        name,
        pml,
        &peertube_props(v, compat),
        &v.master,
        Some(peertube_tracker(era)),
        &peertube_args(v, ""),
    );
    assert_no_tracker_rejections(&r);
}

/// PeerTube from about v3.4 to v7.0: its fork of PML 0.6 (`@peertube/p2p-media-loader-*`
/// 1.0.20, hls.js 1.5.20, commands as text messages) configured as PeerTube's player, its
/// tracker with the info-hash whitelist; the element in `compat=pml-0.6` with `swarm-id` =
/// master URL and `segment-hashes-url`.
#[test]
fn element_peertube_fork_era() {
    if prerequisites() {
        element_peertube("peertube-fork", "pt", "pml-0.6", "fork");
    }
}

/// PeerTube ≥ 7.1: upstream PML 2.2 with `swarmId` = the master URL and the same hash checks;
/// the element in `compat=pml-2.2` with `swarm-id`.
#[test]
fn element_peertube_pml22_era() {
    if prerequisites() {
        element_peertube("peertube-22", "pt22", "pml-2.2", "pml22");
    }
}

/// Two fork-era browsers that send garbage of the right length when they upload (the page's
/// `liar=1`), an element joining after them with `segment-hashes-url`: every segment it asks
/// of them fails its SHA-256, is announced as rejected naming the liar, the liar is dropped,
/// and the element's output is bit-exact to HTTP-only playback.
#[test]
fn element_catches_a_peertube_liar_by_hash() {
    if !prerequisites() {
        return;
    }
    let v = peertube_video();
    let extra = peertube_args(v, "0,1");
    let stream = v.master.as_str();
    let element = format!(
        "sleep 2; {}",
        peer_cmd(
            stream,
            &format!("--stay --duration 20 {}", peertube_props(v, "pml-0.6"))
        )
    );
    let r = run(&RunSpec {
        name: "peertube-liar",
        stream,
        browsers: 2,
        pml: &["pt"],
        until_p2p: 0,
        duration: 40,
        externals: &[peer_cmd(stream, "--prop p2p-enabled=false")],
        late_externals: &[(1, element)],
        until_externals: true,
        tracker_cmd: Some(peertube_tracker("fork")),
        live_window: None,
        hls: None,
        extra: &extra,
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    assert_no_tracker_rejections(&r);
    let reference = element_log(&r, 0);
    let element = element_log(&r, 1);
    let liars: BTreeSet<&str> = r["browsers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["liar"].as_bool() == Some(true))
        .flat_map(|b| b["ownPeerIds"].as_object().unwrap().values().map(s))
        .collect();
    assert_eq!(liars.len(), 2, "{}", r["browsers"]);
    let rejected: Vec<&Value> = element
        .events
        .iter()
        .filter(|e| s(&e["name"]) == "p2pmedia-segment-rejected")
        .collect();
    eprintln!("peertube-liar: element rejected {rejected:?}");
    assert!(
        rejected.iter().any(|e| liars.contains(s(&e["peer-id"]))
            && s(&e["reason"]).contains("does not match its published SHA-256")),
        "no segment from a liar was rejected by hash: {rejected:?}"
    );
    assert!(
        element
            .p2p_from()
            .keys()
            .all(|p| !liars.contains(p.as_str())),
        "a liar's segment was used: {:?}",
        element.p2p_from()
    );
    assert!(element.eos, "the element never reached EOS");
    assert_eq!(
        element.digest_summary(),
        reference.digest_summary(),
        "output differs from HTTP-only playback"
    );
}

// ------------------------------------------------------------------ issue 15: mode=seeder

/// Bytes (http, p2p) of an external element's last `FINAL`/`STATS` line, and that line.
fn element_bytes(log: &ElementLog) -> (u64, u64, String) {
    let line = log
        .text
        .lines()
        .rev()
        .find(|l| l.starts_with("FINAL ") || l.starts_with("STATS "))
        .unwrap_or_default()
        .to_owned();
    let g = |key: &str| -> u64 {
        line.split(&format!("{key}=(guint64)"))
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (g("http-bytes"), g("p2p-bytes"), line)
}

/// One seeder (`mode=seeder`, started first), two element players and one PML 2.3.1 browser
/// on a live stream: the players and the browser take at least 80 % of their bytes from the
/// swarm, and the seeder fetched no segment twice. The browser plays behind the live edge as
/// PML means it to (`liveSyncDurationCount` given, see below): at the edge PML fetches every
/// segment over HTTP first, whoever holds it (`bench/seeder.sh` measures both).
#[test]
fn seeder_feeds_element_players_and_a_browser_live() {
    if !prerequisites() {
        return;
    }
    let stream = long_fixture();
    let seeder = peer_cmd(
        stream,
        "--stay --duration 100 --prop mode=seeder \
         --prop extra-headers=h,x-interop-peer=seeder",
    );
    let player = |delay: u32| {
        format!(
            "sleep {delay}; {}",
            peer_cmd(stream, "--sync --stay --duration 85")
        )
    };
    let r = run(&RunSpec {
        name: "seeder-live",
        stream,
        browsers: 1,
        pml: &["23"],
        until_p2p: 0,
        // A browser fills its first 15 s of buffer over HTTP (high demand), whatever the
        // swarm holds: 90 s of playback make that start a small part of what it plays.
        duration: 90,
        externals: &[seeder, player(3), player(5)],
        late_externals: &[],
        until_externals: false,
        tracker_cmd: None,
        // PML's hls.js integration plays as far behind the live edge as the window allows
        // (liveSyncDurationCount near its length) and fetches a segment over HTTP first once
        // it is within 15 s of the playhead: with a 12-segment window (24 s) a new segment
        // can come from the swarm before it is that close (the browser-swarm harness's
        // window too).
        live_window: Some(12),
        // What P2P Media Loader sets itself on the first level update (min(fragments - 1,
        // 120 s / target)), given up front: PML sets it only when it wins a race with hls.js's
        // start position (in bench/seeder.sh half the browsers lost it and played at the
        // edge, where PML fetches every segment over HTTP first, seeder or not).
        hls: Some(r#"{"liveSyncDurationCount":11}"#),
        extra: &[],
    });
    assert!(r["infraError"].is_null(), "{}", r["infraError"]);
    let logs: Vec<ElementLog> = (0..3).map(|k| element_log(&r, k)).collect();
    // The seeder: each segment file from the origin at most once.
    let mut by_seeder: BTreeMap<String, u64> = BTreeMap::new();
    let origin_log = std::fs::read_to_string(work_dir().join("seeder-live/origin.jsonl")).unwrap();
    for line in origin_log.lines() {
        let j: Value = serde_json::from_str(line).unwrap();
        if j["peer"].as_str() == Some("seeder") && s(&j["path"]).ends_with(".ts") {
            *by_seeder.entry(s(&j["path"]).to_owned()).or_default() += 1;
        }
    }
    assert!(!by_seeder.is_empty(), "the seeder fetched nothing");
    assert!(
        by_seeder.values().all(|n| *n == 1),
        "the seeder fetched a segment twice: {by_seeder:?}"
    );
    let (_, _, seeder_line) = element_bytes(&logs[0]);
    assert!(
        seeder_line.contains("mode=(string)seeder"),
        "seeder stats: {seeder_line}"
    );
    let mut shares = Vec::new();
    for (k, log) in logs.iter().enumerate().skip(1) {
        let (http, p2p, line) = element_bytes(log);
        let share = p2p as f64 / (http + p2p).max(1) as f64;
        shares.push(format!("element {k}: {:.0} %", 100.0 * share));
        assert!(
            share >= 0.8,
            "element player {k}: {:.2} from the swarm: {line}",
            share
        );
    }
    for b in r["browsers"].as_array().unwrap() {
        let (http, p2p) = (n(&b["httpBytes"]), n(&b["p2pBytes"]));
        let share = p2p as f64 / (http + p2p).max(1) as f64;
        shares.push(format!("{}: {:.0} %", s(&b["label"]), 100.0 * share));
        assert!(!b["fatal"].as_bool().unwrap(), "{}", b["errors"]);
        assert!(
            share >= 0.8,
            "{}: {:.2} from the swarm (http {http}, p2p {p2p}): {}",
            s(&b["label"]),
            share,
            b["downloadedFromPeer"]
        );
    }
    eprintln!(
        "seeder-live: seeder fetched {} segment files once each; P2P shares {shares:?}",
        by_seeder.len()
    );
}
