//! HLS (and DASH) VOD streams generated once with ffmpeg (cached under the system temp dir) for
//! the demo and the benchmark. Included with `#[path = "common/stream.rs"] mod stream;`.
//!
//! The test suite has its own, much smaller fixtures (`tests/common/fixtures.rs`); these are
//! longer and closer to a real service: H.264 + AAC in MPEG-TS, a key frame at every segment
//! start, a master playlist.
#![allow(dead_code)] // each example uses part of it

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug)]
pub struct Rendition {
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
}

#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub secs: u32,
    pub seg_secs: u32,
    pub fps: u32,
    /// x264 preset.
    pub preset: &'static str,
    pub renditions: Vec<Rendition>,
}

impl StreamSpec {
    /// The demo's stream: 30 s, a 3-rung ladder (240p, 360p, 720p), 2-s segments.
    pub fn demo() -> Self {
        StreamSpec {
            secs: 30,
            seg_secs: 2,
            fps: 25,
            preset: "veryfast",
            renditions: vec![
                Rendition {
                    width: 426,
                    height: 240,
                    video_kbps: 400,
                },
                Rendition {
                    width: 640,
                    height: 360,
                    video_kbps: 800,
                },
                Rendition {
                    width: 1280,
                    height: 720,
                    video_kbps: 2500,
                },
            ],
        }
    }

    /// The benchmark's stream: 30 s of 720p25 at 3 Mbit/s, 4-s segments, one variant (so
    /// every player plays the same bytes whatever its adaptive logic).
    pub fn bench() -> Self {
        StreamSpec {
            secs: 30,
            seg_secs: 4,
            fps: 25,
            preset: "veryfast",
            renditions: vec![Rendition {
                width: 1280,
                height: 720,
                video_kbps: 3000,
            }],
        }
    }

    /// The swarm benchmark's stream, like the browser harness's 720p level: 720p30 H.264 at
    /// 1.5 Mbit/s + AAC, 2-s segments, one variant (one swarm), 120 s (the VOD runs play the
    /// first 60 s; the live runs slide a window over all of it).
    pub fn swarm() -> Self {
        StreamSpec {
            secs: 120,
            seg_secs: 2,
            fps: 30,
            preset: "veryfast",
            renditions: vec![Rendition {
                width: 1280,
                height: 720,
                video_kbps: 1500,
            }],
        }
    }

    /// The upload benchmark's stream (bench/upload.sh): like `swarm` but 5 Mbit/s in all
    /// (4.8 Mbit/s video + 96 kbit/s AAC + MPEG-TS overhead) and 60 s, played whole.
    pub fn upload() -> Self {
        let mut spec = Self::swarm();
        spec.secs = 60;
        spec.renditions[0].video_kbps = 4800;
        spec
    }

    /// Directory name that changes whenever the spec does.
    fn key(&self) -> String {
        let ladder: Vec<String> = self
            .renditions
            .iter()
            .map(|r| format!("{}x{}@{}", r.width, r.height, r.video_kbps))
            .collect();
        format!(
            "v1-{}s-seg{}-{}fps-{}-{}",
            self.secs,
            self.seg_secs,
            self.fps,
            self.preset,
            ladder.join("_")
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `master.m3u8` and `v<N>/index.m3u8` + `v<N>/seg<NNN>.ts` per rendition.
    Hls,
    /// `manifest.mpd`: fMP4, SegmentTemplate `$Number$`, one video adaptation set with every
    /// rendition and one audio adaptation set.
    Dash,
}

impl Format {
    /// The manifest's path inside the stream directory.
    pub fn manifest(self) -> &'static str {
        match self {
            Format::Hls => "master.m3u8",
            Format::Dash => "manifest.mpd",
        }
    }
}

/// Generates `spec` unless a complete copy is cached; returns its directory (HLS).
pub fn generate(spec: &StreamSpec) -> io::Result<PathBuf> {
    generate_as(spec, Format::Hls)
}

/// Generates `spec` in `format` unless a complete copy is cached; returns its directory.
pub fn generate_as(spec: &StreamSpec, format: Format) -> io::Result<PathBuf> {
    let base = std::env::temp_dir().join("p2pmedia-streams");
    let key = match format {
        Format::Hls => spec.key(),
        Format::Dash => format!("{}-dash", spec.key()),
    };
    let dir = base.join(&key);
    if dir.join(format.manifest()).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&base)?;
    let tmp = base.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    run_ffmpeg(spec, format, &tmp)?;
    // Another process may have finished first; either copy is complete.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(dir)
}

fn run_ffmpeg(spec: &StreamSpec, format: Format, cwd: &Path) -> io::Result<()> {
    let n = spec.renditions.len();
    let top = spec
        .renditions
        .iter()
        .map(|r| r.height)
        .max()
        .unwrap_or(720);
    let top_w = spec
        .renditions
        .iter()
        .map(|r| r.width)
        .max()
        .unwrap_or(1280);
    let gop = (spec.fps * spec.seg_secs).to_string();
    let mut args: Vec<String> = vec![
        "-y".into(),
        "-hide_banner".into(),
        "-loglevel".into(),
        "error".into(),
        "-nostdin".into(),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!(
            "testsrc2=size={top_w}x{top}:rate={}:duration={}",
            spec.fps, spec.secs
        ),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!(
            "sine=frequency=440:sample_rate=48000:duration={}",
            spec.secs
        ),
    ];
    // Split the source once per rendition and scale each copy.
    let mut graph = format!("[0:v]split={n}");
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, r) in spec.renditions.iter().enumerate() {
        graph.push_str(&format!(";[s{i}]scale={}:{}[v{i}]", r.width, r.height));
    }
    args.extend(["-filter_complex".into(), graph]);
    // HLS muxes audio into every variant; DASH has one audio adaptation set.
    for i in 0..n {
        args.extend(["-map".into(), format!("[v{i}]")]);
        if format == Format::Hls || i == 0 {
            args.extend(["-map".into(), "1:a".into()]);
        }
    }
    for (i, r) in spec.renditions.iter().enumerate() {
        args.extend([
            format!("-b:v:{i}"),
            format!("{}k", r.video_kbps),
            format!("-maxrate:v:{i}"),
            format!("{}k", r.video_kbps * 11 / 10),
            format!("-bufsize:v:{i}"),
            format!("{}k", r.video_kbps * 2),
        ]);
    }
    let seg = spec.seg_secs.to_string();
    let mut tail = vec![
        "-c:v",
        "libx264",
        "-preset",
        spec.preset,
        "-pix_fmt",
        "yuv420p",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-ac",
        "2",
    ];
    let map: Vec<String> = (0..n).map(|i| format!("v:{i},a:{i}")).collect();
    let map = map.join(" ");
    match format {
        Format::Hls => tail.extend([
            "-f",
            "hls",
            "-hls_time",
            &seg,
            "-hls_playlist_type",
            "vod",
            "-hls_segment_filename",
            "v%v/seg%03d.ts",
            "-master_pl_name",
            "master.m3u8",
            "-var_stream_map",
            &map,
            "v%v/index.m3u8",
        ]),
        Format::Dash => tail.extend([
            "-f",
            "dash",
            "-seg_duration",
            &seg,
            "-use_template",
            "1",
            "-use_timeline",
            "0",
            "-adaptation_sets",
            "id=0,streams=v id=1,streams=a",
            "manifest.mpd",
        ]),
    }
    args.extend(tail.into_iter().map(String::from));
    let out = Command::new("ffmpeg")
        .args(&args)
        .current_dir(cwd)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("run ffmpeg (is it installed?): {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}
