//! A WebTorrent tracker as a child process: the real bittorrent-tracker 11.2.3
//! (`tests/tracker/server.mjs`, [`TrackerProcess::start`]) or the strict tracker that enforces
//! the rules of aquatic_ws, wt-tracker and OpenWebTorrent at once (`tests/tracker/strict.mjs`,
//! [`TrackerProcess::start_strict`]: a test using it fails if our client broke any rule). Started
//! on a port (0 = any), its stdout lines collected for assertions, killed by PID on
//! `kill()`/drop. Install: `npm ci --ignore-scripts --prefix tests/tracker`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct TrackerProcess {
    child: Child,
    // Held so the server's stdin stays open; it exits when this closes.
    _stdin: Option<ChildStdin>,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// The strict tracker: dropping it checks that nobody broke a rule.
    strict: bool,
    pub port: u16,
}

pub fn tracker_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tracker")
}

/// `false` = skip (only when explicitly allowed); a missing install otherwise fails the test.
pub fn node_available() -> bool {
    let installed = tracker_dir()
        .join("node_modules/bittorrent-tracker/server.js")
        .exists();
    if installed {
        return true;
    }
    if std::env::var_os("P2PMEDIA_SKIP_NODE_TESTS").is_some() {
        eprintln!("skipping: tests/tracker/node_modules missing and P2PMEDIA_SKIP_NODE_TESTS set");
        return false;
    }
    panic!(
        "bittorrent-tracker is not installed: run `npm ci --ignore-scripts --prefix tests/tracker` \
         (or set P2PMEDIA_SKIP_NODE_TESTS=1 to skip)"
    );
}

impl TrackerProcess {
    /// bittorrent-tracker on `port` (0 = any free port) with the announce interval `interval_ms`.
    pub fn start(port: u16, interval_ms: u64) -> TrackerProcess {
        let t = Self::spawn("server.mjs", &[port.to_string(), interval_ms.to_string()]);
        assert!(port == 0 || t.port == port);
        t
    }

    /// The strict tracker. Dropping it, unless the test is already failing, panics if any
    /// client broke a rule: see [`TrackerProcess::violations`].
    /// `interval_ms` means what it means to [`TrackerProcess::start`]: bittorrent-tracker's
    /// `interval` option, of which it asks WebSocket clients to re-announce every fifth; so
    /// does this one. Peers are evicted after 1.5 of those intervals (as aquatic_ws does) but
    /// never sooner than 30 s: the element re-announces at most every 5 s whatever it is asked,
    /// and a short test interval must not empty the swarm between its announces.
    pub fn start_strict(port: u16, interval_ms: u64) -> TrackerProcess {
        let interval = interval_ms / 5;
        let evict = (interval * 3 / 2).max(30_000);
        let mut t = Self::spawn(
            "strict.mjs",
            &[port.to_string(), interval.to_string(), evict.to_string()],
        );
        assert!(port == 0 || t.port == port);
        t.strict = true;
        t
    }

    /// A tracker that fails on purpose, for failover tests: `fail` answers every announce with
    /// a failure reason, `blackhole` accepts TCP and never answers the WebSocket handshake.
    pub fn start_broken(mode: &str) -> TrackerProcess {
        Self::spawn(
            "strict.mjs",
            &["0".into(), "120000".into(), "0".into(), mode.into()],
        )
    }

    fn spawn(script: &str, args: &[String]) -> TrackerProcess {
        let mut child = Command::new("node")
            .arg(tracker_dir().join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run node");
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*sink;
                m.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        let mut t = TrackerProcess {
            _stdin: child.stdin.take(),
            child,
            lines,
            reader: Some(reader),
            strict: false,
            port: 0,
        };
        let l = t.wait_line(|l| l.starts_with("LISTENING "), Duration::from_secs(10));
        t.port = l["LISTENING ".len()..].trim().parse().unwrap();
        t
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().clone()
    }

    /// Wait for a line matching `pred` (including lines already printed).
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let (m, cv) = &*self.lines;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(l) = g.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "tracker never printed the expected line; got {g:#?}"
            );
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }

    /// Raw JSON of every client message the tracker received. Waits until its output has been
    /// quiet for a moment: the reader thread may lag behind events the client already saw.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut n = self.lines().len();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(150));
            let m = self.lines().len();
            if m == n {
                break;
            }
            n = m;
        }
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("IN "))
            .filter_map(|l| l.split_once(' '))
            .map(|(_, json)| serde_json::from_str(json).expect("client sent invalid JSON"))
            .collect()
    }

    /// `EVENT <kind> <info_hash hex> <peer_id hex>` lines as (kind, info_hash, peer_id).
    pub fn events(&self) -> Vec<(String, String, String)> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("EVENT "))
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                    it.next()?.to_string(),
                ))
            })
            .collect()
    }

    /// `VIOLATION <rule> <conn> <detail>` lines of the strict tracker: rules a client broke.
    pub fn violations(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with("VIOLATION "))
            .collect()
    }

    /// For a test that breaks rules on purpose: dropping the tracker no longer checks.
    pub fn allow_violations(&mut self) {
        self.strict = false;
    }

    /// Stop the process (by PID, via the `Child` handle), reap it and read the rest of what it
    /// printed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for TrackerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // What the tracker saw last, for the failing test's output.
            let lines = self.lines();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("tracker's last lines:\n{}", tail.join("\n"));
        } else if self.strict {
            let v = self.violations();
            assert!(v.is_empty(), "the strict tracker saw rules broken: {v:#?}");
        }
    }
}

/// Lower-case hex of `bytes` (the tracker prints binary ids this way).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
