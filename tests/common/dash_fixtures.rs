//! MPEG-DASH fixtures generated at test time, once per test binary: ffmpeg's `dash` muxer
//! (fMP4), GStreamer's own `dashsink`, and hand-written MPDs over ffmpeg's media for what the
//! generators cannot write (SegmentBase + indexRange, two Periods, a dynamic MPD).
//!
//! Same media as the HLS fixtures: 320x180 (and 640x360) at 25 fps, AAC 48 kHz stereo, 2-s
//! segments with a key frame at every segment start, 10 s per VOD.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gst::prelude::*;

use super::fixtures::{
    aac, audio_in, ffmpeg, prune_stale, run, video_in, x264, FPS, SEG_SECS, VOD_SECS,
};
use super::origin::{Origin, Response};

/// SegmentTemplate `$Number$` + @duration; 2 video Representations (320x180 300 kbit/s,
/// 640x360 800 kbit/s) and one audio AdaptationSet.
pub const TMPL_MPD: &str = "tmpl/manifest.mpd";
/// SegmentTemplate `$Number$` + SegmentTimeline.
pub const TIMELINE_MPD: &str = "timeline/manifest.mpd";
/// SegmentTemplate `$Time$` + SegmentTimeline.
pub const TIMELINE_TIME_MPD: &str = "timetl/manifest.mpd";
/// SegmentBase with indexRange (a global sidx) and Initialization@range, one fMP4 file per
/// Representation (hand-written MPD over ffmpeg's `-single_file 1 -global_sidx 1` output).
pub const BASE_MPD: &str = "base/manifest.mpd";
/// SegmentList of SegmentURL@media, one file per segment (ffmpeg `-use_template 0`).
pub const LIST_MPD: &str = "list/manifest.mpd";
/// SegmentList of SegmentURL@mediaRange into one file + BaseURL (ffmpeg `-single_file 1`).
pub const LIST_RANGE_MPD: &str = "listrange/manifest.mpd";
/// Two Periods of `PERIOD_SECS` each, different content, both starting at media time 0.
pub const PERIODS_MPD: &str = "periods/manifest.mpd";
pub const PERIOD_SECS: u32 = 6;
/// The `TMPL_MPD` media cut into two Periods (0–6 s, 6–10 s) without re-encoding: the second
/// one starts at segment 4 with presentationTimeOffset = 6 s, so its media timestamps continue.
pub const PERIODS_PTO_MPD: &str = "periodspto/manifest.mpd";
/// GStreamer `dashsink` (muxer=ts: MPEG-TS segments, SegmentTemplate, timescale 1).
pub const DASHSINK_MPD: &str = "dashsink/manifest.mpd";
/// WebM on demand (VP8, 2-s clusters): SegmentBase whose indexRange is the Matroska Cues
/// (ffmpeg's `webm_dash_manifest`, as YouTube-style WebM DASH is written).
pub const WEBM_MPD: &str = "webm/manifest.mpd";
pub const WEBM_FILE: &str = "webm/video.webm";
/// Segments of the live fixture (1-s, `$Number$` from 1); the MPD is rendered per request.
pub const LIVE_DIR: &str = "live";
pub const LIVE_MPD: &str = "live/manifest.mpd";
/// The same live stream described with a SegmentTimeline ($Number$) listing only the
/// segments available at each refresh, within timeShiftBufferDepth.
pub const LIVE_TIMELINE_MPD: &str = "live/timeline.mpd";
pub const LIVE_SEGMENTS: u32 = 30;
/// Video frames of a whole 10-s VOD.
pub const DASH_VOD_FRAMES: usize = (FPS * VOD_SECS) as usize;

pub struct DashFixtures {
    pub root: PathBuf,
}

impl DashFixtures {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn read_string(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).unwrap()
    }

    /// Files (relative to the root) in `dir` whose name starts with `prefix`, sorted.
    pub fn files(&self, dir: &str, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .map(|n| format!("{dir}/{n}"))
            .collect();
        v.sort();
        v
    }

    /// The live MPD as published at `now` for a stream that became available at `ast`.
    pub fn live_mpd(&self, ast: SystemTime, now: SystemTime) -> String {
        self.live_mpd_with(ast, now, false)
    }

    /// [`Self::live_mpd`], with a SegmentTimeline of the available segments if `timeline`.
    pub fn live_mpd_with(&self, ast: SystemTime, now: SystemTime, timeline: bool) -> String {
        let vod = self.read_string(&format!("{LIVE_DIR}/vod.mpd"));
        let mut period = period_block(&vod).to_string();
        if timeline {
            // Segment n (from 1) covers [n-1, n) s and is available from n s on.
            let avail = now
                .duration_since(ast)
                .unwrap()
                .as_secs()
                .min(LIVE_SEGMENTS as u64);
            let first = avail.saturating_sub(9).max(1);
            let template = "duration=\"1000000\" ";
            assert_eq!(period.matches(template).count(), 2, "{period}");
            period = period.replace(template, "").replace(
                "startNumber=\"1\">",
                &format!(
                    "startNumber=\"{first}\">\n\t\t\t\t\t<SegmentTimeline><S t=\"{}\" d=\"1000000\" r=\"{}\" /></SegmentTimeline>",
                    (first - 1) * 1_000_000,
                    avail.saturating_sub(first)
                ),
            );
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
             <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" \
             type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"PT2S\" \
             timeShiftBufferDepth=\"PT10S\" suggestedPresentationDelay=\"PT3S\" maxSegmentDuration=\"PT1S\" \
             minBufferTime=\"PT2S\">\n{}\n</MPD>\n",
            iso8601(ast),
            iso8601(now),
            period
        )
    }
}

/// Serve the live fixture on `o`: the MPD at [`LIVE_MPD`] and [`LIVE_TIMELINE_MPD`]
/// (availabilityStartTime = now − `behind`) and every media segment only once it is
/// available (end of its 1-s slot after availabilityStartTime), 404 before. Returns the
/// availabilityStartTime.
pub fn serve_live(o: &Origin, f: &'static DashFixtures, behind: Duration) -> SystemTime {
    let ast = SystemTime::now() - behind;
    for (path, timeline) in [(LIVE_MPD, false), (LIVE_TIMELINE_MPD, true)] {
        o.route(path, move |_| {
            Response::new(
                200,
                "application/dash+xml",
                f.live_mpd_with(ast, SystemTime::now(), timeline),
            )
        });
    }
    route_live_segments(o, f, ast, SystemTime::now);
    ast
}

/// [`serve_live`] on a server whose clock is `skew` behind the machine's: the MPD (at
/// [`LIVE_MPD`]), its availabilityStartTime and each segment's availability are on that
/// clock, and the MPD names `/time` (`UTCTiming` http-iso) where it tells its time. Returns
/// the availabilityStartTime (server clock).
pub fn serve_live_skewed(
    o: &Origin,
    f: &'static DashFixtures,
    behind: Duration,
    skew: Duration,
) -> SystemTime {
    let server_now = move || SystemTime::now() - skew;
    let ast = server_now() - behind;
    let time_url = o.url("time");
    o.route("time", move |_| {
        Response::new(200, "text/plain", iso8601(server_now()))
    });
    o.route(LIVE_MPD, move |_| {
        let mpd = f.live_mpd_with(ast, server_now(), false).replace(
            "</MPD>",
            &format!(
                "<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{time_url}\"/>\n</MPD>"
            ),
        );
        Response::new(200, "application/dash+xml", mpd)
    });
    route_live_segments(o, f, ast, server_now);
    ast
}

/// Every live media segment, served once `now()` (the server's clock) reaches the end of its
/// 1-s slot after `ast`, 404 before.
fn route_live_segments(
    o: &Origin,
    f: &'static DashFixtures,
    ast: SystemTime,
    now: impl Fn() -> SystemTime + Clone + Send + Sync + 'static,
) {
    for rel in f.files(LIVE_DIR, "chunk-") {
        // chunk-<rep>-<number>.m4s
        let n: u64 = rel
            .rsplit('-')
            .next()
            .and_then(|s| s.strip_suffix(".m4s"))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected live segment name {rel}"));
        let available_at = ast + Duration::from_secs(n);
        let body = f.read(&rel);
        let now = now.clone();
        o.route(&rel, move |_| {
            if now() >= available_at {
                Response::new(200, "video/mp4", body.clone())
            } else {
                Response::new(404, "text/plain", "not yet available\n")
            }
        });
    }
}

/// The DASH fixtures, generated on first use.
pub fn dash_fixtures() -> &'static DashFixtures {
    static F: OnceLock<DashFixtures> = OnceLock::new();
    F.get_or_init(|| {
        let root = fresh_root("dash-fixtures-");
        let t0 = std::time::Instant::now();
        generate(&root);
        eprintln!(
            "DASH fixtures generated in {:.1} s under {}",
            t0.elapsed().as_secs_f64(),
            root.display()
        );
        DashFixtures { root }
    })
}

/// A 30-s SegmentTemplate VOD (one video + one audio Representation, 2-s segments, 15 per
/// stream) for the P2P swarm tests, at `swarm/manifest.mpd`.
pub const SWARM_MPD: &str = "swarm/manifest.mpd";
pub const SWARM_SECS: u32 = 30;

pub fn dash_swarm_fixture() -> &'static DashFixtures {
    static F: OnceLock<DashFixtures> = OnceLock::new();
    F.get_or_init(|| {
        let root = fresh_root("dash-swarm-fixtures-");
        run(
            &root.join("swarm"),
            &[
                video_in(SWARM_SECS, "testsrc2"),
                audio_in(SWARM_SECS, 440),
                x264(SEG_SECS),
                aac(),
                dash_args(SEG_SECS),
            ],
            &["-use_template", "1", "-use_timeline", "0", "manifest.mpd"],
        );
        DashFixtures { root }
    })
}

fn fresh_root(prefix: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    prune_stale(&base, prefix);
    let root = base.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// `-f dash` with `seg` -second segments, video and audio in their own AdaptationSets.
fn webm_segment_base(root: &Path) {
    let dir = root.join("webm");
    run(
        &dir,
        &[
            video_in(VOD_SECS, "testsrc2"),
            [
                "-c:v",
                "libvpx",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "300k",
                "-g",
                "50",
                "-keyint_min",
                "50",
                "-f",
                "webm",
                "-dash",
                "1",
                "-cluster_time_limit",
                "2000",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ],
        &["video.webm"],
    );
    ffmpeg(
        &dir,
        &[
            "-f",
            "webm_dash_manifest",
            "-i",
            "video.webm",
            "-c",
            "copy",
            "-map",
            "0",
            "-f",
            "webm_dash_manifest",
            "-adaptation_sets",
            "id=0,streams=0",
            "manifest.mpd",
        ],
    );
}

fn dash_args(seg: u32) -> Vec<String> {
    [
        "-f",
        "dash",
        "-seg_duration",
        &seg.to_string(),
        "-adaptation_sets",
        "id=0,streams=v id=1,streams=a",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// 10 s of video + audio through ffmpeg's DASH muxer into `dir`, with `tail` appended.
fn single(root: &Path, dir: &str, secs: u32, pattern: &str, tail: &[&str]) {
    run(
        &root.join(dir),
        &[
            video_in(secs, pattern),
            audio_in(secs, 440),
            x264(SEG_SECS),
            aac(),
            dash_args(SEG_SECS),
        ],
        tail,
    );
}

fn periods_pto(root: &Path) {
    let tmpl = std::fs::read_to_string(root.join(TMPL_MPD)).unwrap();
    let block = period_block(&tmpl);
    let body = &block[block.find('>').unwrap() + 1..];
    assert_eq!(body.matches("startNumber=\"1\"").count(), 3, "{body}");
    assert_eq!(body.matches("timescale=\"1000000\"").count(), 3, "{body}");
    let first_seg = 3 * SEG_SECS;
    let second = body.replace(
        "startNumber=\"1\"",
        &format!(
            "startNumber=\"{}\" presentationTimeOffset=\"{}\"",
            first_seg / SEG_SECS + 1,
            first_seg as u64 * 1_000_000
        ),
    );
    let mpd = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" \
         type=\"static\" mediaPresentationDuration=\"PT{VOD_SECS}S\" maxSegmentDuration=\"PT{SEG_SECS}S\" minBufferTime=\"PT4S\">\n\
         \t<Period id=\"p0\" start=\"PT0S\" duration=\"PT{first_seg}S\">\n\t\t<BaseURL>../tmpl/</BaseURL>{body}\n\
         \t<Period id=\"p1\" start=\"PT{first_seg}S\" duration=\"PT{}S\">\n\t\t<BaseURL>../tmpl/</BaseURL>{second}\n\
         </MPD>\n",
        VOD_SECS - first_seg
    );
    let dir = root.join("periodspto");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manifest.mpd"), mpd).unwrap();
}

fn abr_template(root: &Path) {
    run(
        &root.join("tmpl"),
        &[
            video_in(VOD_SECS, "testsrc2"),
            audio_in(VOD_SECS, 440),
            x264(SEG_SECS),
            aac(),
        ],
        &[
            "-filter_complex",
            "[0:v]split=2[v0][v1];[v1]scale=640:360[v1o]",
            "-map",
            "[v0]",
            "-map",
            "[v1o]",
            "-map",
            "1:a",
            "-b:v:0",
            "300k",
            "-b:v:1",
            "800k",
            "-f",
            "dash",
            "-seg_duration",
            &SEG_SECS.to_string(),
            "-adaptation_sets",
            "id=0,streams=v id=1,streams=a",
            "-use_template",
            "1",
            "-use_timeline",
            "0",
            "manifest.mpd",
        ],
    );
}

/// `$Time$` + SegmentTimeline. ffmpeg names the first audio segment after its negative
/// (priming) start time (`chunk-1--1024.m4s`) while the timeline says `t="0"`; rename the
/// files to what the MPD's timeline addresses.
fn timeline_time(root: &Path) {
    let dir = root.join("timetl");
    single(
        root,
        "timetl",
        VOD_SECS,
        "testsrc2",
        &[
            "-use_template",
            "1",
            "-use_timeline",
            "1",
            "-media_seg_name",
            "chunk-$RepresentationID$-$Time$.m4s",
            "manifest.mpd",
        ],
    );
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap();
    for (rep, times) in timeline_times(&mpd).into_iter().enumerate() {
        let prefix = format!("chunk-{rep}-");
        let mut files: Vec<(i64, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter_map(|n| {
                let t: i64 = n
                    .strip_prefix(&prefix)?
                    .strip_suffix(".m4s")?
                    .parse()
                    .ok()?;
                Some((t, n))
            })
            .collect();
        files.sort();
        assert_eq!(
            files.len(),
            times.len(),
            "rep {rep}: {files:?} vs {times:?}"
        );
        for ((_, name), t) in files.iter().zip(times) {
            let want = format!("{prefix}{t}.m4s");
            if *name != want {
                std::fs::rename(dir.join(name), dir.join(want)).unwrap();
            }
        }
    }
}

/// Segment start times of every SegmentTimeline in `mpd`, in document order.
pub fn timeline_times(mpd: &str) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    for tl in mpd.split("<SegmentTimeline>").skip(1) {
        let tl = tl.split("</SegmentTimeline>").next().unwrap();
        let mut t = 0u64;
        let mut times = Vec::new();
        for s in tl.split("<S ").skip(1) {
            let attr = |name: &str| -> Option<u64> {
                let i = s
                    .find(&format!(" {name}=\""))
                    .or_else(|| s.starts_with(&format!("{name}=\"")).then_some(0))?;
                let v = &s[i..];
                let v = &v[v.find('"')? + 1..];
                v[..v.find('"')?].parse().ok()
            };
            if let Some(st) = attr("t") {
                t = st;
            }
            let d = attr("d").expect("S@d");
            for _ in 0..=attr("r").unwrap_or(0) {
                times.push(t);
                t += d;
            }
        }
        out.push(times);
    }
    out
}

/// Top-level ISO BMFF boxes of `data`: (type, offset, size).
pub fn top_level_boxes(data: &[u8]) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let mut o = 0usize;
    while o + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[o..o + 4].try_into().unwrap()) as u64;
        let typ = String::from_utf8_lossy(&data[o + 4..o + 8]).into_owned();
        if size == 1 {
            size = u64::from_be_bytes(data[o + 8..o + 16].try_into().unwrap());
        } else if size == 0 {
            size = (data.len() - o) as u64;
        }
        assert!(size >= 8, "bad box size at {o}");
        out.push((typ, o as u64, size));
        o += size as usize;
    }
    out
}

/// SegmentBase: ffmpeg writes a SegmentList of mediaRanges even with a global sidx; replace
/// each one with `<SegmentBase indexRange=sidx><Initialization range=ftyp+moov/>`.
fn segment_base(root: &Path) {
    let dir = root.join("base");
    single(
        root,
        "base",
        VOD_SECS,
        "testsrc2",
        &[
            "-use_template",
            "0",
            "-single_file",
            "1",
            "-global_sidx",
            "1",
            "ffmpeg.mpd",
        ],
    );
    let src = std::fs::read_to_string(dir.join("ffmpeg.mpd")).unwrap();
    let mut out = String::new();
    let mut base_url = None;
    let mut skipping = false;
    for line in src.lines() {
        let t = line.trim();
        if let Some(u) = t
            .strip_prefix("<BaseURL>")
            .and_then(|r| r.strip_suffix("</BaseURL>"))
        {
            base_url = Some(u.to_string());
        }
        if t.starts_with("<SegmentList") {
            let file: &String = base_url.as_ref().expect("BaseURL before SegmentList");
            let boxes = top_level_boxes(&std::fs::read(dir.join(file)).unwrap());
            let (_, sidx_at, sidx_len) = boxes
                .iter()
                .find(|(t, _, _)| t == "sidx")
                .unwrap_or_else(|| panic!("{file} has no sidx: {boxes:?}"))
                .clone();
            assert!(
                boxes.iter().position(|b| b.0 == "sidx") < boxes.iter().position(|b| b.0 == "moof"),
                "{file}: sidx after the first moof"
            );
            writeln!(
                out,
                "\t\t\t\t<SegmentBase indexRange=\"{}-{}\">\n\t\t\t\t\t<Initialization range=\"0-{}\" />\n\t\t\t\t</SegmentBase>",
                sidx_at,
                sidx_at + sidx_len - 1,
                sidx_at - 1
            )
            .unwrap();
            skipping = true;
            continue;
        }
        if skipping {
            if t.starts_with("</SegmentList>") {
                skipping = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(out.matches("<SegmentBase").count() == 2, "{out}");
    std::fs::write(dir.join("manifest.mpd"), out).unwrap();
}

/// `<Period …>…</Period>` of an ffmpeg MPD.
pub fn period_block(mpd: &str) -> &str {
    let a = mpd.find("<Period").expect("a Period");
    let b = mpd.find("</Period>").expect("end of Period") + "</Period>".len();
    &mpd[a..b]
}

/// Two Periods: testsrc2/440 Hz, then smptebars/880 Hz, each encoded on its own (so both
/// start at media time 0), each with its own BaseURL.
fn multi_period(root: &Path) {
    let dir = root.join("periods");
    let mut periods = String::new();
    for (i, (sub, pattern, freq)) in [("a", "testsrc2", 440), ("b", "smptebars", 880)]
        .into_iter()
        .enumerate()
    {
        run(
            &dir.join(sub),
            &[
                video_in(PERIOD_SECS, pattern),
                audio_in(PERIOD_SECS, freq),
                x264(SEG_SECS),
                aac(),
                dash_args(SEG_SECS),
            ],
            &["-use_template", "1", "-use_timeline", "0", "manifest.mpd"],
        );
        let mpd = std::fs::read_to_string(dir.join(sub).join("manifest.mpd")).unwrap();
        let block = period_block(&mpd);
        let body = &block[block.find('>').unwrap() + 1..];
        write!(
            periods,
            "\t<Period id=\"p{i}\" start=\"PT{}S\" duration=\"PT{PERIOD_SECS}S\">\n\t\t<BaseURL>{sub}/</BaseURL>{body}\n",
            i as u32 * PERIOD_SECS
        )
        .unwrap();
    }
    let mpd = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" \
         type=\"static\" mediaPresentationDuration=\"PT{}S\" maxSegmentDuration=\"PT{SEG_SECS}S\" minBufferTime=\"PT4S\">\n\
         {periods}</MPD>\n",
        2 * PERIOD_SECS
    );
    std::fs::write(dir.join("manifest.mpd"), mpd).unwrap();
}

/// GStreamer's `dashsink` over an ffmpeg-encoded MP4 (no GStreamer H.264 encoder needed).
/// muxer=ts: with muxer=mp4, dashsink 1.22 stalls after the first segment (files stay empty).
fn dashsink(root: &Path) {
    let dir = root.join("dashsink");
    std::fs::create_dir_all(&dir).unwrap();
    run(
        &dir,
        &[
            video_in(VOD_SECS, "smptebars"),
            audio_in(VOD_SECS, 660),
            x264(SEG_SECS),
            aac(),
        ],
        &["src.mp4"],
    );
    super::init();
    let desc = format!(
        "dashsink name=ds mpd-root-path={root} mpd-filename=manifest.mpd target-duration={SEG_SECS} \
         muxer=ts send-keyframe-requests=false \
         filesrc location={root}/src.mp4 ! qtdemux name=d \
         d.video_0 ! queue ! h264parse ! ds.video_0 \
         d.audio_0 ! queue ! aacparse ! ds.audio_0",
        root = dir.display()
    );
    let pipeline = gst::parse::launch(&desc).expect("dashsink pipeline");
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("dashsink: EOS or ERROR within 30 s");
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(msg.type_(), gst::MessageType::Eos, "dashsink: {msg:?}");
    std::fs::remove_file(dir.join("src.mp4")).unwrap();
}

fn live(root: &Path) {
    run(
        &root.join(LIVE_DIR),
        &[
            video_in(LIVE_SEGMENTS, "testsrc2"),
            audio_in(LIVE_SEGMENTS, 440),
            x264(1),
            aac(),
            dash_args(1),
        ],
        &[
            "-use_template",
            "1",
            "-use_timeline",
            "0",
            "-init_seg_name",
            "init-$RepresentationID$.m4s",
            "-media_seg_name",
            "chunk-$RepresentationID$-$Number$.m4s",
            "vod.mpd",
        ],
    );
}

fn generate(root: &Path) {
    let r = root.to_path_buf();
    let jobs: Vec<Box<dyn FnOnce() + Send>> = vec![
        Box::new({
            let r = r.clone();
            move || {
                abr_template(&r);
                periods_pto(&r);
                single(
                    &r,
                    "timeline",
                    VOD_SECS,
                    "testsrc2",
                    &["-use_template", "1", "-use_timeline", "1", "manifest.mpd"],
                );
            }
        }),
        Box::new({
            let r = r.clone();
            move || {
                timeline_time(&r);
                segment_base(&r);
                webm_segment_base(&r);
            }
        }),
        Box::new({
            let r = r.clone();
            move || {
                single(
                    &r,
                    "list",
                    VOD_SECS,
                    "testsrc2",
                    &["-use_template", "0", "-use_timeline", "0", "manifest.mpd"],
                );
                single(
                    &r,
                    "listrange",
                    VOD_SECS,
                    "testsrc2",
                    &["-use_template", "0", "-single_file", "1", "manifest.mpd"],
                );
            }
        }),
        Box::new({
            let r = r.clone();
            move || {
                multi_period(&r);
                live(&r);
            }
        }),
        Box::new({
            let r = r.clone();
            move || dashsink(&r)
        }),
    ];
    let handles: Vec<_> = jobs.into_iter().map(thread::spawn).collect();
    for h in handles {
        if let Err(e) = h.join() {
            std::panic::resume_unwind(e);
        }
    }
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` (xs:dateTime in UTC).
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    let secs = d.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_millis()
    )
}
