//! Local swarm plumbing shared by the demo and the swarm benchmark: the real WebTorrent tracker
//! (`tests/tracker/server.mjs`, bittorrent-tracker 11.2.3) as a child process, and the swarm
//! streams served by `tests/common/origin.rs` (a VOD cut of the generated stream, or a live
//! sliding window synthesised over it).
//!
//! Included with `#[path = "common/swarm.rs"] mod swarm;` next to `origin` and `stream`.
#![allow(dead_code)] // each example uses part of it

use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::origin::{LiveSpec, Origin};

/// Milliseconds since the Unix epoch: the one clock every process of a run shares.
pub fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// The tracker child process. Stops (by PID) when dropped; it also exits by itself when its
/// stdin (held here) closes, so it never outlives this process.
pub struct Tracker {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
    /// Every stdout line with its arrival time (unix ms).
    pub lines: Arc<Mutex<Vec<(f64, String)>>>,
}

impl Tracker {
    /// Starts `node tests/tracker/server.mjs 0` and waits for `LISTENING <port>`.
    pub fn start() -> io::Result<Tracker> {
        Self::start_script("server.mjs", &["0"])
    }

    /// The strict tracker (`tests/tracker/strict.mjs`), asking for re-announces every
    /// `interval_ms`; its `IN`/`VIOLATION` lines are in [`Tracker::lines`].
    pub fn start_strict(interval_ms: u64) -> io::Result<Tracker> {
        Self::start_script("strict.mjs", &["0", &interval_ms.to_string()])
    }

    fn start_script(script: &str, args: &[&str]) -> io::Result<Tracker> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tracker");
        if !dir.join("node_modules/bittorrent-tracker").is_dir() {
            return Err(io::Error::other(format!(
                "tracker dependencies missing: npm ci --ignore-scripts --prefix {}",
                dir.display()
            )));
        }
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("start node (installed?): {e}")))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(p) = line.strip_prefix("LISTENING ") {
                    let _ = tx.send(p.trim().parse::<u16>().ok());
                }
                l2.lock().unwrap().push((unix_ms(), line));
            }
        });
        let mut t = Tracker {
            child,
            _stdin: stdin,
            port: 0,
            lines,
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(port)) => t.port = port,
            _ => return Err(io::Error::other("tracker did not print LISTENING in 20 s")),
        }
        Ok(t)
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One media playlist's segments: (URI, duration s, size in bytes).
pub fn media_segments(dir: &Path, playlist: &str) -> io::Result<Vec<(String, f64, u64)>> {
    let text = std::fs::read_to_string(dir.join(playlist))?;
    let base = Path::new(playlist).parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    let mut dur = None;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            dur = d.split(',').next().and_then(|d| d.parse::<f64>().ok());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let size = std::fs::metadata(dir.join(base).join(line))?.len();
            out.push((line.to_string(), dur.take().unwrap_or(0.0), size));
        }
    }
    Ok(out)
}

/// What a swarm stream is served as.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// The first `secs` seconds as a VOD playlist.
    Vod { secs: f64 },
    /// A live sliding window of `window` segments; its clock starts at the first request.
    Live { window: usize },
}

/// Serves the single-variant stream in `dir` (`master.m3u8` → `v0/index.m3u8`) as `kind`.
/// Returns the origin, the master playlist URL and the size in bytes of the VOD cut (0 for live).
pub fn serve(dir: &Path, kind: Kind) -> io::Result<(Origin, String, u64)> {
    let segs = media_segments(dir, "v0/index.m3u8")?;
    let target = segs.iter().map(|s| s.1.ceil() as u32).max().unwrap_or(2);
    let origin = Origin::serve_dir(dir);
    let master = std::fs::read_to_string(dir.join("master.m3u8"))?;
    let (media, size) = match kind {
        Kind::Vod { secs } => {
            let mut acc = 0.0;
            let mut size = 0;
            let mut text = format!(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n\
                 #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            );
            for (uri, d, s) in &segs {
                if acc + 0.01 >= secs {
                    break;
                }
                acc += d;
                size += s;
                text.push_str(&format!("#EXTINF:{d:.6},\n{uri}\n"));
            }
            text.push_str("#EXT-X-ENDLIST\n");
            origin.route("v0/vod.m3u8", move |_| {
                crate::origin::Response::playlist(text.clone())
            });
            ("v0/vod.m3u8", size)
        }
        Kind::Live { window } => {
            origin.live(
                "v0/live.m3u8",
                LiveSpec {
                    segments: segs.iter().map(|(u, d, _)| (u.clone(), *d)).collect(),
                    window,
                    target_duration: target,
                    version: 3,
                    endlist: true,
                    extra_header: String::new(),
                },
            );
            ("v0/live.m3u8", 0)
        }
    };
    let master = master.replace("v0/index.m3u8", media);
    let name = if media.contains("live") {
        "live.m3u8"
    } else {
        "vod.m3u8"
    };
    origin.route(name, move |_| {
        crate::origin::Response::playlist(master.clone())
    });
    let url = origin.url(name);
    Ok((origin, url, size))
}

/// Body bytes the origin sent for media segments (`.ts`/`.m4s`/`.mp4`), and how many distinct
/// segment paths that covers with their file sizes (for live: the unique stream bytes).
pub fn origin_segment_bytes(origin: &Origin, dir: &Path) -> (u64, u64) {
    let mut paths: Vec<String> = origin
        .log()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.ends_with(".ts") || p.ends_with(".m4s") || p.ends_with(".mp4"))
        .collect();
    paths.sort();
    paths.dedup();
    let sent = paths.iter().map(|p| origin.bytes(p)).sum();
    let unique = paths
        .iter()
        .filter_map(|p| std::fs::metadata(dir.join(p.trim_start_matches('/'))).ok())
        .map(|m| m.len())
        .sum();
    (sent, unique)
}

/// A peer's line of output, stamped: (peer index, `unix_ms()`, line); "EXIT" when it ends.
pub type PeerLine = (usize, f64, String);

/// Starts a `bench-play peer` child (stdin and stdout piped, stderr inherited) and a thread that
/// forwards its stdout lines to `tx`. The child exits when its stdin (returned) closes, so the
/// caller keeps it and stops the child by PID.
pub fn spawn_peer(
    cmd: &mut Command,
    i: usize,
    tx: &mpsc::Sender<PeerLine>,
) -> io::Result<(Child, Option<ChildStdin>)> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            let _ = tx.send((i, unix_ms(), line));
        }
        let _ = tx.send((i, unix_ms(), "EXIT".into()));
    });
    let stdin = child.stdin.take();
    Ok((child, stdin))
}
