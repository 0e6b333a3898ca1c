//! A low-latency HLS origin (RFC 8216bis): parts produced in real time from a fixture cut in
//! 0.2-s parts (a key frame each), 1-s segments that are the concatenation of their five
//! parts, blocking playlist reloads (`_HLS_msn`/`_HLS_part`), delta updates (`_HLS_skip`),
//! preload hints, and EXT-X-PROGRAM-DATE-TIME tied to the origin's own clock so that a test
//! can read the latency to the live edge off the element's `timestamp/x-unix` metas.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::dash_fixtures::iso8601;
use super::fixtures::{run, video_in, x264_frames, FPS};
use super::origin::{Origin, RequestRecord, Response};

/// Part duration of the fixture (5 frames at 25 fps, a key frame each).
pub const PART_SECS: f64 = 0.2;
pub const PARTS_PER_SEGMENT: usize = 5;
/// PART-HOLD-BACK the origin advertises (3 part targets, as the spec recommends).
pub const PART_HOLD_BACK: f64 = 0.6;
/// Seconds of the stream already produced when the clock starts (so a window exists).
pub const PREROLL: f64 = 6.0;
/// Complete segments listed.
pub const WINDOW: usize = 6;
/// CAN-SKIP-UNTIL: delta updates skip segments older than this from the end.
pub const SKIP_UNTIL: f64 = 3.0;
/// Length of the fixture.
pub const LL_SECS: u32 = 24;

/// The fixture's parts (ffmpeg-made, once per test binary).
pub struct LlFixture {
    pub dir: PathBuf,
    /// Bytes and duration of each part, in order.
    pub parts: Vec<(Vec<u8>, f64)>,
}

pub fn ll_fixture() -> &'static LlFixture {
    static F: OnceLock<LlFixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("llhls-fixture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let gop = (FPS as f64 * PART_SECS).round() as u32;
        run(
            &dir,
            &[video_in(LL_SECS, "testsrc2"), x264_frames(gop)],
            &[
                "-f",
                "hls",
                "-hls_time",
                "0.2",
                "-hls_playlist_type",
                "vod",
                "-hls_segment_filename",
                "p%03d.ts",
                "parts.m3u8",
            ],
        );
        let parts = read_parts(&dir);
        LlFixture { dir, parts }
    })
}

fn read_parts(dir: &Path) -> Vec<(Vec<u8>, f64)> {
    let list = std::fs::read_to_string(dir.join("parts.m3u8")).unwrap();
    let mut out = Vec::new();
    let mut dur = None;
    for line in list.lines() {
        if let Some(v) = line.strip_prefix("#EXTINF:") {
            dur = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if !line.starts_with('#') && !line.is_empty() {
            let data = std::fs::read(dir.join(line)).unwrap();
            out.push((data, dur.take().unwrap()));
        }
    }
    // Whole segments only: a tail shorter than a segment is dropped.
    out.truncate(out.len() / PARTS_PER_SEGMENT * PARTS_PER_SEGMENT);
    out
}

/// The origin's clock: starts at the first playlist request.
#[derive(Default)]
struct Clock {
    start: Option<(Instant, i64)>,
}

/// One LL-HLS stream served under `/<prefix>/`.
pub struct LlStream {
    parts: Vec<(Vec<u8>, f64)>,
    /// Media end of each part (seconds).
    ends: Vec<f64>,
    clock: Mutex<Clock>,
    /// Blocking reloads answered (asked with `_HLS_msn`), and delta updates.
    pub counts: Mutex<LlCounts>,
}

#[derive(Default, Debug, Clone)]
pub struct LlCounts {
    pub playlist_requests: usize,
    pub blocking: usize,
    pub delta: usize,
    pub part_requests: usize,
    pub segment_requests: usize,
}

impl LlStream {
    fn elapsed(&self) -> (f64, i64) {
        let mut c = self.clock.lock().unwrap();
        let (t0, wall0) = *c.start.get_or_insert_with(|| {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i64;
            (Instant::now(), wall)
        });
        (t0.elapsed().as_secs_f64(), wall0)
    }

    /// Parts available `t` seconds after the clock started.
    fn available(&self, t: f64) -> usize {
        self.ends.iter().take_while(|e| **e - PREROLL <= t).count()
    }

    fn segments(&self) -> usize {
        self.parts.len() / PARTS_PER_SEGMENT
    }

    fn seg_start(&self, i: usize) -> f64 {
        if i == 0 {
            0.0
        } else {
            self.ends[i * PARTS_PER_SEGMENT - 1]
        }
    }

    fn seg_duration(&self, i: usize) -> f64 {
        self.ends[(i + 1) * PARTS_PER_SEGMENT - 1] - self.seg_start(i)
    }

    /// The playlist when `avail` parts exist.
    fn render(&self, avail: usize, wall0: i64, skip: bool) -> String {
        let complete = avail / PARTS_PER_SEGMENT;
        let ended = avail == self.parts.len();
        let first = complete.saturating_sub(WINDOW);
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={PART_HOLD_BACK:.1},\
             CAN-SKIP-UNTIL={SKIP_UNTIL:.1}\n\
             #EXT-X-PART-INF:PART-TARGET={PART_SECS:.1}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
        );
        let mut from = first;
        if skip && complete > 0 {
            let last_end = self.seg_start(complete - 1) + self.seg_duration(complete - 1);
            let skipped = (first..complete)
                .take_while(|i| self.seg_start(*i) + self.seg_duration(*i) < last_end - SKIP_UNTIL)
                .count();
            if skipped > 0 {
                s += &format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n");
                from = first + skipped;
            }
        }
        let part_line = |k: usize| {
            format!(
                "#EXT-X-PART:DURATION={:.5},URI=\"p{k:03}.ts\",INDEPENDENT=YES\n",
                self.parts[k].1
            )
        };
        for i in from..complete {
            let pdt = wall0 + ((self.seg_start(i) - PREROLL) * 1e9) as i64;
            s += &format!(
                "#EXT-X-PROGRAM-DATE-TIME:{}\n",
                iso8601(UNIX_EPOCH + Duration::from_nanos(pdt as u64))
            );
            if i + 2 >= complete && !ended {
                for k in i * PARTS_PER_SEGMENT..(i + 1) * PARTS_PER_SEGMENT {
                    s += &part_line(k);
                }
            }
            s += &format!("#EXTINF:{:.5},\ns{i:03}.ts\n", self.seg_duration(i));
        }
        if ended {
            s += "#EXT-X-ENDLIST\n";
        } else {
            for k in complete * PARTS_PER_SEGMENT..avail {
                s += &part_line(k);
            }
            s += &format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p{avail:03}.ts\"\n");
        }
        s
    }

    fn playlist(&self, req: &RequestRecord) -> Response {
        let (t, wall0) = self.elapsed();
        let q = |k: &str| {
            req.query.as_deref().and_then(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let msn = q("_HLS_msn").and_then(|v| v.parse::<usize>().ok());
        let part = q("_HLS_part").and_then(|v| v.parse::<usize>().ok());
        let skip = q("_HLS_skip").as_deref() == Some("YES");
        {
            let mut c = self.counts.lock().unwrap();
            c.playlist_requests += 1;
            c.blocking += usize::from(msn.is_some());
            c.delta += usize::from(skip);
        }
        if part.is_some() && msn.is_none() {
            return Response::new(400, "text/plain", "_HLS_part without _HLS_msn");
        }
        if let Some(m) = msn {
            let complete = self.available(t) / PARTS_PER_SEGMENT;
            if m > complete + 2 {
                return Response::new(400, "text/plain", "_HLS_msn too far ahead");
            }
            // Part `p` of segment `m` is part number m*5+p (a part past the segment's last
            // is the next segment's first); without `_HLS_part`, all of segment `m`.
            let needed = match part {
                Some(p) => m * PARTS_PER_SEGMENT + p + 1,
                None => (m + 1) * PARTS_PER_SEGMENT,
            }
            .min(self.parts.len());
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                let (t, _) = self.elapsed();
                if self.available(t) >= needed {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let (t, _) = self.elapsed();
        Response::playlist(self.render(self.available(t), wall0, skip))
    }

    /// A part, held until it is produced (a preload hint is asked for before it exists).
    fn part(&self, k: usize) -> Response {
        self.counts.lock().unwrap().part_requests += 1;
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let (t, _) = self.elapsed();
            if self.available(t) > k {
                return Response::new(200, "video/mp2t", self.parts[k].0.clone());
            }
            if Instant::now() >= deadline {
                return Response::new(404, "text/plain", "not produced yet");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn segment(&self, i: usize) -> Response {
        self.counts.lock().unwrap().segment_requests += 1;
        let (t, _) = self.elapsed();
        if self.available(t) < (i + 1) * PARTS_PER_SEGMENT {
            return Response::new(404, "text/plain", "not complete yet");
        }
        Response::new(200, "video/mp2t", self.segment_bytes(i))
    }

    /// Segment `i`: its parts, concatenated.
    pub fn segment_bytes(&self, i: usize) -> Vec<u8> {
        self.parts[i * PARTS_PER_SEGMENT..(i + 1) * PARTS_PER_SEGMENT]
            .iter()
            .flat_map(|(d, _)| d.iter().copied())
            .collect()
    }

    pub fn parts(&self) -> &[(Vec<u8>, f64)] {
        &self.parts
    }

    pub fn counts(&self) -> LlCounts {
        self.counts.lock().unwrap().clone()
    }
}

/// Serves the LL fixture at `/<prefix>/index.m3u8` on `origin`; its clock starts at the first
/// playlist request.
pub fn serve_ll(origin: &Origin, prefix: &str) -> Arc<LlStream> {
    let f = ll_fixture();
    let mut ends = Vec::with_capacity(f.parts.len());
    let mut t = 0.0;
    for (_, d) in &f.parts {
        t += d;
        ends.push(t);
    }
    let stream = Arc::new(LlStream {
        parts: f.parts.clone(),
        ends,
        clock: Mutex::default(),
        counts: Mutex::default(),
    });
    let s = stream.clone();
    origin.route(&format!("{prefix}/index.m3u8"), move |r| s.playlist(r));
    for k in 0..stream.parts.len() {
        let s = stream.clone();
        origin.route(&format!("{prefix}/p{k:03}.ts"), move |_| s.part(k));
    }
    for i in 0..stream.segments() {
        let s = stream.clone();
        origin.route(&format!("{prefix}/s{i:03}.ts"), move |_| s.segment(i));
    }
    stream
}

/// The output is the origin's parts from some part on, in order, byte for byte; returns the
/// first part and how many parts it covers.
pub fn assert_run_of_parts(bytes: &[u8], parts: &[(Vec<u8>, f64)], who: &str) -> (usize, usize) {
    let first = parts
        .iter()
        .position(|(p, _)| bytes.starts_with(p))
        .unwrap_or_else(|| panic!("{who}: the output does not start with a part"));
    let mut at = 0;
    let mut n = 0;
    for (p, _) in &parts[first..] {
        if at == bytes.len() {
            break;
        }
        assert!(
            bytes[at..].starts_with(p) || p.starts_with(&bytes[at..]),
            "{who}: byte {at} differs from part {}",
            first + n
        );
        at += p.len().min(bytes.len() - at);
        n += 1;
    }
    assert_eq!(at, bytes.len(), "{who}: bytes past the stream's end");
    (first, n)
}
