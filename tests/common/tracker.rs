//! The real WebTorrent tracker (bittorrent-tracker 11.2.3, `tests/tracker/server.mjs`) as a
//! child process: started on a port (0 = any), its stdout lines collected for assertions,
//! killed by PID on `kill()`/drop. Install: `npm ci --ignore-scripts --prefix tests/tracker`.
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
    /// Start on `port` (0 = any free port) with the announce interval `interval_ms`.
    pub fn start(port: u16, interval_ms: u64) -> TrackerProcess {
        let mut child = Command::new("node")
            .arg(tracker_dir().join("server.mjs"))
            .arg(port.to_string())
            .arg(interval_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run node");
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
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
            port: 0,
        };
        let l = t.wait_line(|l| l.starts_with("LISTENING "), Duration::from_secs(10));
        t.port = l["LISTENING ".len()..].trim().parse().unwrap();
        assert!(port == 0 || t.port == port);
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

    /// Stop the process (by PID, via the `Child` handle) and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TrackerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lower-case hex of `bytes` (the tracker prints binary ids this way).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
