//! The embedding examples run as written: `examples/player.rs` (the built example binary) and
//! `examples/player.py` (python3 + PyGObject, the plugin from `GST_PLUGIN_PATH=target/debug`),
//! each against a loopback origin serving the 10-s `seq` fixture (5 segments), in real time.
//! They must exit 0 at EOS after printing status lines, and `--reject-every N` must really veto
//! segments: the element fetches a vetoed segment again, so the origin serves it twice.
//! A dead loopback tracker keeps P2P on (validate-segment is a P2P-path hook) without leaving
//! 127.0.0.1.
//!
//! Needs the example built: `cargo build --examples` (scripts/test.sh's `--all-targets` build
//! and a plain `cargo test` do it).

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fixtures::{fixtures, SEQ_MEDIA};
use common::origin::{dead_base_url, Origin};

/// Every run is bounded: killed (by PID) past this.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// target/debug (this test binary is target/debug/deps/examples-…).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    fn status_lines(&self) -> Vec<&str> {
        self.out
            .lines()
            .filter(|l| l.starts_with('[') && l.contains("s] ") && l.contains(" | http "))
            .collect()
    }

    /// The figure after `key` on the `end of stream:` line.
    fn final_figure(&self, key: &str) -> u64 {
        let end = self
            .out
            .lines()
            .find_map(|l| l.strip_prefix("end of stream: "))
            .unwrap_or_else(|| panic!("no 'end of stream:' line\n{self}"));
        let rest = &end[end
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {end}"))
            + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.out, self.err
        )
    }
}

fn run(mut cmd: Command) -> Run {
    let t0 = Instant::now();
    let registry = std::env::temp_dir().join(format!(
        "p2pmedia-examples-registry-{}.bin",
        std::process::id()
    ));
    let mut child = cmd
        .env("GST_REGISTRY", &registry)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if t0.elapsed() > RUN_LIMIT {
            let _ = child.kill(); // by PID
            let _ = child.wait();
            let r = Run {
                code: None,
                out: out.join().unwrap(),
                err: err.join().unwrap(),
            };
            panic!("{cmd:?} still running after {RUN_LIMIT:?}: killed\n{r}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let r = Run {
        code,
        out: out.join().unwrap(),
        err: err.join().unwrap(),
    };
    eprintln!(
        "{:?} took {:.1} s\n{r}",
        cmd.get_program(),
        t0.elapsed().as_secs_f64()
    );
    r
}

fn rust_player(args: &[&str]) -> Command {
    let bin = target_dir().join("examples/player");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --examples` first",
        bin.display()
    );
    let mut c = Command::new(bin);
    c.args(args);
    c
}

fn python_player(args: &[&str]) -> Command {
    let so = target_dir().join("libgstp2pmedia.so");
    assert!(
        so.exists(),
        "{} missing: run `cargo build` first",
        so.display()
    );
    // Debian's Python, where python3-gi installs (a pyenv or venv python3 on PATH has no `gi`).
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("python3");
    let mut c = Command::new(python);
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/player.py"))
        .args(args)
        .env("GST_PLUGIN_PATH", target_dir());
    c
}

/// The segments of the fixture and how often the origin served each.
fn segment_requests(o: &Origin) -> Vec<(String, usize)> {
    fixtures()
        .segment_uris(SEQ_MEDIA)
        .into_iter()
        .map(|u| {
            let p = format!("seq/{u}");
            let n = o.requests(&p);
            (p, n)
        })
        .collect()
}

/// Plays to the end: exit 0, status lines, every segment fetched once over HTTP, no veto.
fn plays_to_the_end(player: fn(&[&str]) -> Command) {
    let o = Origin::serve_dir(&fixtures().root);
    let tracker = dead_base_url().replace("http://", "ws://");
    let url = o.url(SEQ_MEDIA);
    let r = run(player(&[&url, "--tracker", &tracker]));
    assert_eq!(r.code, Some(0), "{r}");
    // 10 s of media in real time: several status lines (at least one, whatever the load).
    assert!(!r.status_lines().is_empty(), "no status line\n{r}");
    assert!(r.out.contains("with playbin3"), "{r}");
    let segs = segment_requests(&o);
    assert_eq!(segs.len(), 5);
    assert!(segs.iter().all(|(_, n)| *n == 1), "{segs:?}\n{r}");
    assert_eq!(r.final_figure("rejected "), 0, "{r}");
    // The element's stats and bus messages, as printed: 5 segments over HTTP.
    assert_eq!(r.final_figure("MiB "), 5, "http segments from stats\n{r}");
    assert_eq!(r.final_figure("loaded "), 5, "segment-loaded messages\n{r}");
    assert!(!r.out.contains("rejected segment"), "{r}");
}

/// `--reject-every 2`: the first delivery of the 2nd and 4th segments (of 5, in the order the
/// validator sees them) is vetoed; each is fetched again from the origin, accepted the second
/// time, and playback still ends normally with all 5 segments.
fn rejects_when_asked(player: fn(&[&str]) -> Command) {
    let o = Origin::serve_dir(&fixtures().root);
    let tracker = dead_base_url().replace("http://", "ws://");
    let url = o.url(SEQ_MEDIA);
    let r = run(player(&[
        &url,
        "--tracker",
        &tracker,
        "--reject-every",
        "2",
    ]));
    assert_eq!(r.code, Some(0), "{r}");
    assert!(!r.status_lines().is_empty(), "no status line\n{r}");
    let vetoes = r
        .out
        .lines()
        .filter(|l| l.starts_with("rejected segment"))
        .count();
    assert_eq!(vetoes, 2, "expected 2 vetoes of 5 segments\n{r}");
    assert_eq!(r.final_figure("rejected ") as usize, vetoes, "{r}");
    let segs = segment_requests(&o);
    let refetched = segs.iter().filter(|(_, n)| *n == 2).count();
    assert_eq!(
        refetched, 2,
        "vetoed segments not fetched again: {segs:?}\n{r}"
    );
    let served: usize = segs.iter().map(|(_, n)| n).sum();
    assert_eq!(served, 7, "{segs:?}\n{r}");
    // The element counts the vetoed downloads too; all 5 segments were loaded in the end.
    assert_eq!(r.final_figure("MiB "), 7, "http segments from stats\n{r}");
    assert_eq!(r.final_figure("loaded "), 5, "segment-loaded messages\n{r}");
}

#[test]
fn rust_player_plays_to_the_end() {
    plays_to_the_end(rust_player);
}

#[test]
fn rust_player_rejects_segments_when_asked() {
    rejects_when_asked(rust_player);
}

#[test]
fn python_player_plays_to_the_end() {
    plays_to_the_end(python_player);
}

#[test]
fn python_player_rejects_segments_when_asked() {
    rejects_when_asked(python_player);
}

#[test]
fn both_players_exit_non_zero_with_a_message_on_an_error() {
    // Nothing listens there: the manifest cannot be fetched.
    let url = format!("{}/nothing.m3u8", dead_base_url());
    for cmd in [
        rust_player(&[&url, "--no-p2p"]),
        python_player(&[&url, "--no-p2p"]),
    ] {
        let r = run(cmd);
        assert_eq!(r.code, Some(1), "{r}");
        assert!(r.err.contains("error:"), "{r}");
    }
    // And 2 on a usage error (no URL).
    for cmd in [rust_player(&[]), python_player(&[])] {
        let r = run(cmd);
        assert_eq!(r.code, Some(2), "{r}");
    }
}
