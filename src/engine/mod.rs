//! The tokio shell: fetches manifests and segments, feeds measurements into the pure core
//! (ABR, later the P2P scheduler) and hands whole segments to the element's output queues.

mod context;
mod dash;
mod fetcher;
mod front;
mod hls;
pub mod origin;
pub mod output;
pub mod p2p;
pub mod runtime;
pub mod session;
pub mod stats;
mod stream;
pub mod task;

use std::sync::LazyLock;
use std::time::Duration;

use crate::abr::AbrSettings;
use crate::manifest::ManifestError;
use crate::net::http::HttpConfig;

/// The engine's decisions: manifest loads, variant switches, start positions, segments.
static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "p2pmedia-engine",
        gst::DebugColorFlags::empty(),
        Some("p2pmedia engine: manifests, ABR, segments"),
    )
});

/// Which manifest format a session plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Hls,
    Dash,
}

/// Everything the element's properties configure for one session.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub http: HttpConfig,
    pub abr: AbrSettings,
    /// Read-ahead per output stream, in media time.
    pub max_buffering_time: Duration,
    /// `None`: HTTP only.
    pub p2p: Option<p2p::P2pConfig>,
    /// What a live playlist that stops growing leads to.
    pub live_freeze: LiveFreeze,
}

/// `live-freeze-timeout` / `live-freeze-action`: a live playlist that stops growing gets a
/// warning after 3 target durations, then this action after the timeout.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveFreeze {
    /// `None`: auto, max(30 s, 6 target durations).
    pub timeout: Option<Duration>,
    pub action: LiveFreezeAction,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LiveFreezeAction {
    /// One element error: the stream is dead.
    #[default]
    Error,
    /// End the stream cleanly.
    Eos,
}

impl LiveFreeze {
    /// (warn after, act after) for a playlist of `target` duration. Pure.
    pub fn limits(&self, target: Duration) -> (Duration, Duration) {
        let act = self
            .timeout
            .unwrap_or_else(|| (target * 6).max(Duration::from_secs(30)));
        // Never warn after acting: a short explicit timeout warns at half of it.
        let warn = (target * 3).min(act / 2);
        (warn, act)
    }
}

/// A fatal problem: playback cannot go on. The element turns it into one `element_error!`.
#[derive(Debug, Clone)]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
    pub debug: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The resource is not there (404/410).
    NotFound,
    /// Reading failed: dead origin, persistent 5xx, truncated bodies.
    Read,
    /// Settings that cannot work (bad proxy URL, header).
    Settings,
    /// Playlist or segment data we cannot use (malformed, HTML instead of media, bad key).
    Format,
    /// Valid input we do not support (SAMPLE-AES, ...).
    Unsupported,
    /// A bug: an engine task panicked.
    Internal,
}

/// A manifest we cannot use, as the error the element posts.
fn manifest_error(e: ManifestError, url: &url::Url) -> EngineError {
    let kind = match e {
        ManifestError::Unsupported(_) | ManifestError::UnsupportedDash(_) => ErrorKind::Unsupported,
        _ => ErrorKind::Format,
    };
    EngineError {
        kind,
        message: format!("Invalid manifest {url}: {e}"),
        debug: format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_freeze_limits() {
        let s = Duration::from_secs;
        let auto = LiveFreeze::default();
        assert_eq!(auto.limits(s(2)), (s(6), s(30)));
        assert_eq!(auto.limits(s(10)), (s(30), s(60)));
        let short = LiveFreeze {
            timeout: Some(s(4)),
            action: LiveFreezeAction::Eos,
        };
        // The warning always comes before the action.
        assert_eq!(short.limits(s(2)), (s(2), s(4)));
        assert_eq!(short.limits(s(10)), (s(2), s(4)));
    }
}
