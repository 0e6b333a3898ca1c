//! HLS fixtures generated with ffmpeg at test time, once per test binary.
//!
//! Everything is short (10 s), small (320x180, 640x360) and cut in 2-s segments with a key
//! frame at every segment start, so a whole test binary's fixtures take a few seconds.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};

use super::origin::LiveSpec;

pub const FPS: u32 = 25;
pub const SEG_SECS: u32 = 2;
/// Duration of every VOD fixture.
pub const VOD_SECS: u32 = 10;
/// Video frames in a VOD fixture.
pub const VOD_FRAMES: usize = (FPS * VOD_SECS) as usize;

/// 2 variants (320x180, 640x360), video + AAC muxed in MPEG-TS, master playlist.
pub const TS_MASTER: &str = "ts/master.m3u8";
/// Same content as fMP4 (EXT-X-MAP init per variant).
pub const FMP4_MASTER: &str = "fmp4/master.m3u8";
/// Single variant, EXT-X-MEDIA-SEQUENCE:100.
pub const SEQ_MEDIA: &str = "seq/index.m3u8";
pub const SEQ_FIRST: u64 = 100;
/// `-hls_flags single_file`: every segment is an EXT-X-BYTERANGE of `bytes/index.ts`.
pub const BYTES_MEDIA: &str = "bytes/index.m3u8";
pub const BYTES_FILE: &str = "bytes/index.ts";
/// fMP4 single file: EXT-X-MAP with BYTERANGE, then media byte ranges of `fmp4bytes/index.m4s`.
pub const FMP4_BYTES_MEDIA: &str = "fmp4bytes/index.m3u8";
pub const FMP4_BYTES_FILE: &str = "fmp4bytes/index.m4s";
/// 6 s of encode A, EXT-X-DISCONTINUITY, 6 s of encode B (timestamps restart).
pub const DISC_MEDIA: &str = "disc/index.m3u8";
pub const DISC_SECS: u32 = 12;
/// AES-128, key at `aes/key.bin`; explicit IV written by ffmpeg.
pub const AES_IV_MEDIA: &str = "aes/iv/index.m3u8";
/// AES-128 without an IV attribute: the IV is the media sequence number (starts at 5).
pub const AES_NOIV_MEDIA: &str = "aes/noiv/index.m3u8";
pub const AES_NOIV_FIRST: u64 = 5;
/// Plaintext of the `aes/noiv` segments, same names.
pub const AES_PLAIN_DIR: &str = "aes/plain";
pub const AES_KEY: &str = "aes/key.bin";
/// Key rotation over the `aes/plain` segments: key 1 with the sequence-number IV, then key 2
/// with an explicit IV, then METHOD=NONE for the last segment.
pub const AES_ROTATION_MEDIA: &str = "aes/rot/index.m3u8";
pub const AES_KEY2: &str = "aes/key2.bin";
/// Master with an EXT-X-MEDIA audio rendition (own playlist) and a video-only variant.
pub const ALT_MASTER: &str = "alt/master.m3u8";
/// Languages of the `alt` fixture's WebVTT subtitles (`alt/subs/<lang>/index.m3u8`).
pub const SUB_LANGS: [&str; 2] = ["fr", "de"];
/// Segments for the live fixture (1-s segments), served as a sliding window by the origin.
pub const LIVE_MEDIA: &str = "live/index.m3u8";
/// The same as fMP4 (EXT-X-MAP), served at `livefmp4/index.m3u8`.
pub const LIVE_FMP4_MEDIA: &str = "livefmp4/index.m3u8";
pub const LIVE_SEGMENTS: usize = 10;
pub const LIVE_WINDOW: usize = 3;

pub struct Fixtures {
    pub root: PathBuf,
}

impl Fixtures {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn read_string(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).unwrap()
    }

    /// The live fixture as a sliding window: 3 segments at once, then one per second, then
    /// ENDLIST.
    pub fn live_spec(&self) -> LiveSpec {
        let segments = (0..LIVE_SEGMENTS)
            .map(|i| (format!("seg{i:03}.ts"), 1.0))
            .collect();
        LiveSpec {
            segments,
            window: LIVE_WINDOW,
            target_duration: 1,
            version: 3,
            endlist: true,
            extra_header: String::new(),
        }
    }

    /// [`Self::live_spec`] for the fMP4 copy (EXT-X-MAP in every refresh).
    pub fn live_spec_fmp4(&self) -> LiveSpec {
        LiveSpec {
            segments: (0..LIVE_SEGMENTS)
                .map(|i| (format!("seg{i:03}.m4s"), 1.0))
                .collect(),
            version: 7,
            extra_header: "#EXT-X-MAP:URI=\"init.mp4\"\n".into(),
            ..self.live_spec()
        }
    }

    /// Segment URIs (relative) listed in a media playlist, in order.
    pub fn segment_uris(&self, media: &str) -> Vec<String> {
        self.read_string(media)
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    }
}

/// The fixtures, generated on first use.
pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        prune_stale(&base, "hls-fixtures-");
        let root = base.join(format!("hls-fixtures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let t0 = std::time::Instant::now();
        generate(&root);
        eprintln!(
            "fixtures generated in {:.1} s under {}",
            t0.elapsed().as_secs_f64(),
            root.display()
        );
        Fixtures { root }
    })
}

/// Remove fixture dirs left by test processes that no longer run (statics are never
/// dropped, so a process cannot clean up after itself).
pub(super) fn prune_stale(base: &Path, prefix: &str) {
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(prefix) {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

pub(super) fn ffmpeg(cwd: &Path, args: &[&str]) {
    std::fs::create_dir_all(cwd).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run ffmpeg (is it installed?)");
    assert!(
        out.status.success(),
        "ffmpeg {:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(super) fn video_in(secs: u32, pattern: &str) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("{pattern}=size=320x180:rate={FPS}:duration={secs}"),
    ]
}

pub(super) fn audio_in(secs: u32, freq: u32) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("sine=frequency={freq}:sample_rate=48000:duration={secs}"),
    ]
}

/// x264 ultrafast, yuv420p (testsrc would give High 4:4:4 otherwise), one key frame per
/// `gop_secs` exactly so every segment starts with an IDR.
pub(super) fn x264(gop_secs: u32) -> Vec<String> {
    x264_frames(FPS * gop_secs)
}

/// [`x264`] with a key frame every `gop` frames (LL-HLS parts shorter than a second).
pub(super) fn x264_frames(gop: u32) -> Vec<String> {
    let g = gop.to_string();
    [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        &g,
        "-keyint_min",
        &g,
        "-sc_threshold",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(super) fn aac() -> Vec<String> {
    ["-c:a", "aac", "-b:a", "64k", "-ac", "2"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn hls(seg_secs: u32) -> Vec<String> {
    let t = seg_secs.to_string();
    ["-f", "hls", "-hls_time", &t, "-hls_playlist_type", "vod"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

pub(super) fn run(cwd: &Path, parts: &[Vec<String>], tail: &[&str]) {
    let mut args: Vec<String> = parts.iter().flatten().cloned().collect();
    args.extend(tail.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(cwd, &refs);
}

fn multi_variant(root: &Path, dir: &str, fmp4: bool) {
    let cwd = root.join(dir);
    let mut tail = vec![
        "-filter_complex",
        "[0:v]split=2[v0][v1];[v1]scale=640:360[v1o]",
        "-map",
        "[v0]",
        "-map",
        "[v1o]",
        "-map",
        "1:a",
        "-map",
        "1:a",
        "-b:v:0",
        "300k",
        "-b:v:1",
        "800k",
    ];
    let mut hls_args = hls(SEG_SECS);
    if fmp4 {
        hls_args.extend(
            [
                "-hls_segment_type",
                "fmp4",
                "-hls_fmp4_init_filename",
                "init.mp4",
                "-hls_segment_filename",
                "v%v/seg%03d.m4s",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
    } else {
        hls_args.extend(
            ["-hls_segment_filename", "v%v/seg%03d.ts"]
                .iter()
                .map(|s| s.to_string()),
        );
    }
    tail.extend([
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        "v:0,a:0 v:1,a:1",
        "v%v/index.m3u8",
    ]);
    let parts = [
        video_in(VOD_SECS, "testsrc2"),
        audio_in(VOD_SECS, 440),
        x264(SEG_SECS),
        aac(),
        hls_args,
    ];
    run(&cwd, &parts, &tail);
}

fn single(root: &Path, dir: &str, extra: &[&str]) {
    run(
        &root.join(dir),
        &[
            video_in(VOD_SECS, "testsrc2"),
            audio_in(VOD_SECS, 440),
            x264(SEG_SECS),
            aac(),
            hls(SEG_SECS),
        ],
        extra,
    );
}

fn discontinuity(root: &Path) {
    let half = DISC_SECS / 2;
    let d = root.join("disc");
    for (sub, pattern, freq) in [("a", "testsrc2", 440), ("b", "smptebars", 880)] {
        run(
            &d.join(sub),
            &[
                video_in(half, pattern),
                audio_in(half, freq),
                x264(SEG_SECS),
                aac(),
                hls(SEG_SECS),
            ],
            &["-hls_segment_filename", "seg%03d.ts", "index.m3u8"],
        );
    }
    // Both encodes start at the same timestamps, so the join needs the discontinuity tag.
    let n = (half / SEG_SECS) as usize;
    let mut pl = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{SEG_SECS}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    for sub in ["a", "b"] {
        if sub == "b" {
            pl.push_str("#EXT-X-DISCONTINUITY\n");
        }
        for i in 0..n {
            writeln!(pl, "#EXTINF:{SEG_SECS}.000000,\n{sub}/seg{i:03}.ts").unwrap();
        }
    }
    pl.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(d.join("index.m3u8"), pl).unwrap();
}

/// AES-128-CBC with PKCS#7 padding (the HLS segment encryption).
pub fn aes128_cbc_encrypt(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let cipher = aes::Aes128::new(GenericArray::from_slice(key));
    let pad = 16 - data.len() % 16;
    let mut buf = data.to_vec();
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    let mut prev = *iv;
    for block in buf.chunks_mut(16) {
        for (b, p) in block.iter_mut().zip(prev.iter()) {
            *b ^= p;
        }
        let ga = GenericArray::from_mut_slice(block);
        cipher.encrypt_block(ga);
        prev.copy_from_slice(block);
    }
    buf
}

fn aes_fixtures(root: &Path) {
    let d = root.join("aes");
    std::fs::create_dir_all(&d).unwrap();
    // A fixed key keeps failures reproducible.
    let key: [u8; 16] = *b"p2pmedia-testkey";
    std::fs::write(d.join("key.bin"), key).unwrap();
    let key_path = d.join("key.bin");
    let info = format!(
        "../key.bin\n{}\n000102030405060708090a0b0c0d0e0f\n",
        key_path.display()
    );
    std::fs::write(d.join("iv.keyinfo"), info).unwrap();
    single(
        root,
        "aes/iv",
        &[
            "-hls_key_info_file",
            "../iv.keyinfo",
            "-hls_segment_filename",
            "seg%03d.ts",
            "index.m3u8",
        ],
    );
    // ffmpeg always writes an IV attribute, so encrypt the no-IV variant here with the
    // IV the spec mandates: the segment's media sequence number, big-endian.
    let first = AES_NOIV_FIRST.to_string();
    single(
        root,
        AES_PLAIN_DIR,
        &[
            "-start_number",
            &first,
            "-hls_segment_filename",
            "seg%03d.ts",
            "index.m3u8",
        ],
    );
    let plain = d.join("plain");
    let noiv = d.join("noiv");
    std::fs::create_dir_all(&noiv).unwrap();
    let pl = std::fs::read_to_string(plain.join("index.m3u8")).unwrap();
    let mut seq = AES_NOIV_FIRST;
    let mut out = String::new();
    for line in pl.lines() {
        if !line.is_empty() && !line.starts_with('#') {
            let mut iv = [0u8; 16];
            iv[8..].copy_from_slice(&seq.to_be_bytes());
            let data = std::fs::read(plain.join(line)).unwrap();
            std::fs::write(noiv.join(line), aes128_cbc_encrypt(&key, &iv, &data)).unwrap();
            seq += 1;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("#EXT-X-MEDIA-SEQUENCE") {
            out.push_str("#EXT-X-KEY:METHOD=AES-128,URI=\"../key.bin\"\n");
        }
    }
    std::fs::write(noiv.join("index.m3u8"), out).unwrap();

    // Key rotation: two keys, then clear.
    let key2: [u8; 16] = *b"p2pmedia-key-two";
    std::fs::write(d.join("key2.bin"), key2).unwrap();
    let iv2: [u8; 16] = *b"explicit-iv-0002";
    let rot = d.join("rot");
    std::fs::create_dir_all(&rot).unwrap();
    let uris: Vec<String> = pl
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{SEG_SECS}\n#EXT-X-MEDIA-SEQUENCE:{AES_NOIV_FIRST}\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    for (i, uri) in uris.iter().enumerate() {
        let seq = AES_NOIV_FIRST + i as u64;
        let data = std::fs::read(plain.join(uri)).unwrap();
        let body = match i {
            0 => {
                out.push_str("#EXT-X-KEY:METHOD=AES-128,URI=\"../key.bin\"\n");
                None
            }
            2 => {
                out.push_str(&format!(
                    "#EXT-X-KEY:METHOD=AES-128,URI=\"../key2.bin\",IV=0x{}\n",
                    iv2.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ));
                None
            }
            4 => {
                out.push_str("#EXT-X-KEY:METHOD=NONE\n");
                Some(data.clone())
            }
            _ => None,
        };
        let body = body.unwrap_or_else(|| {
            if i < 2 {
                let mut iv = [0u8; 16];
                iv[8..].copy_from_slice(&seq.to_be_bytes());
                aes128_cbc_encrypt(&key, &iv, &data)
            } else if i < 4 {
                aes128_cbc_encrypt(&key2, &iv2, &data)
            } else {
                data
            }
        });
        std::fs::write(rot.join(uri), body).unwrap();
        writeln!(out, "#EXTINF:{SEG_SECS}.000000,\n{uri}").unwrap();
    }
    out.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(rot.join("index.m3u8"), out).unwrap();
}

/// WebVTT subtitles for the `alt` fixture: `alt/subs/<lang>/index.m3u8`, one 2-s segment per
/// media segment, a cue per second naming its language and second.
fn subtitles(d: &Path) {
    for lang in SUB_LANGS {
        let dir = d.join("subs").join(lang);
        std::fs::create_dir_all(&dir).unwrap();
        let mut list = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{SEG_SECS}\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        );
        for i in 0..VOD_SECS / SEG_SECS {
            let mut vtt =
                String::from("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n");
            for s in i * SEG_SECS..(i + 1) * SEG_SECS {
                writeln!(vtt, "\n00:00:{s:02}.100 --> 00:00:{s:02}.900\n{lang} {s}").unwrap();
            }
            std::fs::write(dir.join(format!("seg{i}.vtt")), vtt).unwrap();
            writeln!(list, "#EXTINF:{SEG_SECS}.000,\nseg{i}.vtt").unwrap();
        }
        list.push_str("#EXT-X-ENDLIST\n");
        std::fs::write(dir.join("index.m3u8"), list).unwrap();
    }
}

fn alt_audio(root: &Path) {
    let d = root.join("alt");
    subtitles(&d);
    let mut v = vec![
        video_in(VOD_SECS, "testsrc2"),
        x264(SEG_SECS),
        hls(SEG_SECS),
    ];
    v.push(vec!["-an".into()]);
    run(
        &d.join("video"),
        &v,
        &["-hls_segment_filename", "seg%03d.ts", "index.m3u8"],
    );
    run(
        &d.join("audio"),
        &[audio_in(VOD_SECS, 440), aac(), hls(SEG_SECS)],
        &["-hls_segment_filename", "seg%03d.ts", "index.m3u8"],
    );
    std::fs::write(
        d.join("master.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:3\n\
         #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/index.m3u8\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180,CODECS=\"avc1.42c00d,mp4a.40.2\",AUDIO=\"aud\"\n\
         video/index.m3u8\n",
    )
    .unwrap();
}

fn live(root: &Path) {
    // 1-s segments keep the live test short; the origin publishes them over time.
    let secs = LIVE_SEGMENTS as u32;
    run(
        &root.join("live"),
        &[
            video_in(secs, "testsrc2"),
            audio_in(secs, 440),
            x264(1),
            aac(),
            hls(1),
        ],
        &["-hls_segment_filename", "seg%03d.ts", "vod.m3u8"],
    );
    run(
        &root.join("livefmp4"),
        &[
            video_in(secs, "testsrc2"),
            audio_in(secs, 440),
            x264(1),
            aac(),
            hls(1),
        ],
        &[
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
            "-hls_segment_filename",
            "seg%03d.m4s",
            "vod.m3u8",
        ],
    );
}

fn generate(root: &Path) {
    // Two cores: run the encodes in a few parallel groups.
    let r = root.to_path_buf();
    let jobs: Vec<Box<dyn FnOnce() + Send>> = vec![
        Box::new({
            let r = r.clone();
            move || multi_variant(&r, "ts", false)
        }),
        Box::new({
            let r = r.clone();
            move || multi_variant(&r, "fmp4", true)
        }),
        Box::new({
            let r = r.clone();
            move || {
                single(
                    &r,
                    "seq",
                    &[
                        "-start_number",
                        "100",
                        "-hls_segment_filename",
                        "seg%03d.ts",
                        "index.m3u8",
                    ],
                );
                single(&r, "bytes", &["-hls_flags", "single_file", "index.m3u8"]);
                single(
                    &r,
                    "fmp4bytes",
                    &[
                        "-hls_segment_type",
                        "fmp4",
                        "-hls_flags",
                        "single_file",
                        "index.m3u8",
                    ],
                );
            }
        }),
        Box::new({
            let r = r.clone();
            move || {
                discontinuity(&r);
                live(&r);
            }
        }),
        Box::new({
            let r = r.clone();
            move || {
                aes_fixtures(&r);
                alt_audio(&r);
            }
        }),
    ];
    let handles: Vec<_> = jobs.into_iter().map(thread::spawn).collect();
    for h in handles {
        if let Err(e) = h.join() {
            std::panic::resume_unwind(e);
        }
    }
}
