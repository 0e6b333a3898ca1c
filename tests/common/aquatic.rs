//! aquatic_ws, the Rust WebTorrent tracker, as a child process on 127.0.0.1: started with a
//! config file written here (its own defaults otherwise: 120-s announce interval, peers evicted
//! after 180 s, at most 10 offers per announce, 16-KiB frames), killed by PID on drop.
//! `scripts/test.sh` installs the pinned version (`install_aquatic_ws` in scripts/common.sh) and
//! sets `AQUATIC_WS`; without it the binary is looked for in that cache. Unlike the node
//! trackers it does not notice its parent dying: a test killed by its watchdog leaves it
//! running until CI's bounded run ends.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Must match `AQUATIC_VERSION` in scripts/common.sh.
const VERSION: &str = "0.9.0";

pub struct AquaticProcess {
    child: Child,
    config: PathBuf,
    pub port: u16,
}

/// The aquatic_ws binary; `None` = skip (only when explicitly allowed), a missing install
/// otherwise fails the test.
pub fn aquatic_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("AQUATIC_WS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or("/root".into())).join(".cache")
                });
            cache.join(format!("p2pmedia/aquatic_ws-{VERSION}/bin/aquatic_ws"))
        });
    if bin.exists() {
        return Some(bin);
    }
    if std::env::var_os("P2PMEDIA_SKIP_AQUATIC").is_some() {
        eprintln!(
            "skipping: no aquatic_ws at {} and P2PMEDIA_SKIP_AQUATIC set",
            bin.display()
        );
        return None;
    }
    panic!(
        "aquatic_ws is not installed at {}: run scripts/test.sh (or `. scripts/common.sh; \
         install_aquatic_ws`), or set P2PMEDIA_SKIP_AQUATIC=1 to skip",
        bin.display()
    );
}

impl AquaticProcess {
    pub fn start(bin: &std::path::Path) -> AquaticProcess {
        // The port is picked here and released before aquatic_ws binds it: if another process
        // took it meanwhile, aquatic_ws exits (address in use) and we try another.
        for _ in 0..5 {
            if let Some(t) = Self::try_start(bin) {
                return t;
            }
        }
        panic!("aquatic_ws did not start on any of 5 ports");
    }

    fn try_start(bin: &std::path::Path) -> Option<AquaticProcess> {
        // aquatic_ws takes its address from the config file only: a free port, picked here.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let config = std::env::temp_dir().join(format!(
            "p2pmedia-aquatic-{}-{port}.toml",
            std::process::id()
        ));
        std::fs::write(
            &config,
            format!(
                "log_level = \"warn\"\nsocket_workers = 1\nswarm_workers = 1\n\
                 [network]\naddress = \"127.0.0.1:{port}\"\n"
            ),
        )
        .expect("write the aquatic_ws config");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run aquatic_ws");
        let mut t = AquaticProcess {
            child,
            config,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = t.child.try_wait() {
                eprintln!("aquatic_ws on port {port} exited at start: {status}");
                return None;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Still ours: a bind failure would have ended it by now.
                std::thread::sleep(Duration::from_millis(100));
                return matches!(t.child.try_wait(), Ok(None)).then_some(t);
            }
            assert!(
                Instant::now() < deadline,
                "aquatic_ws never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for AquaticProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}
