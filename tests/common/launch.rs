//! Runs the real `gst-launch-1.0` with the plugin this test binary was built with, bounded in
//! time, as a user does (`GST_PLUGIN_PATH`, and a registry of its own).
#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How a bounded `gst-launch-1.0` run ended.
#[derive(Debug)]
pub struct LaunchRun {
    /// `None`: still running at the limit, and killed (by PID).
    pub code: Option<i32>,
    pub took: Duration,
    /// stdout then stderr.
    pub output: String,
}

/// A directory holding only the plugin this test binary was built with: `cargo test` builds
/// the `cdylib` next to the test binary (`target/<profile>/deps`) and copies it to
/// `target/<profile>` only on `cargo build`, so that copy may be stale. It goes alone into a
/// directory of its own (GST_PLUGIN_PATH=deps would load every `.so` there).
pub fn plugin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let so = exe.parent().unwrap().join("libgstp2pmedia.so");
        assert!(so.exists(), "no {}", so.display());
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Directories of earlier runs whose process is gone.
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("gst-launch-plugin-") {
                if !PathBuf::from("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = base.join(format!("gst-launch-plugin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let to = dir.join("libgstp2pmedia.so");
        // A hard link (same file system, no copy of ~90 MB), else a copy.
        if !to.exists() && std::fs::hard_link(&so, &to).is_err() {
            std::fs::copy(&so, &to).unwrap();
        }
        dir
    })
    .clone()
}

/// `gst-launch-1.0 ARGS`, killed by PID after `limit`. Output goes to files, not pipes: a
/// child blocked on a full pipe would look like a hang.
pub fn gst_launch(args: &[&str], limit: Duration) -> LaunchRun {
    let dir = plugin_dir();
    let registry = dir.join("registry.bin");
    let tag = format!("{}-{:?}", std::process::id(), std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
    let out_path = dir.join(format!("out-{tag}.txt"));
    let err_path = dir.join(format!("err-{tag}.txt"));
    let started = Instant::now();
    let mut child = Command::new("gst-launch-1.0")
        .args(args)
        .env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", &registry)
        .env_remove("GST_DEBUG")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("cannot run gst-launch-1.0");
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code().unwrap_or(-1));
        }
        if started.elapsed() > limit {
            // Child::kill is kill(2) on this child's PID.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let output = format!(
        "{}{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    LaunchRun { code, took, output }
}
