//! The tokio shell: fetches manifests and segments, feeds measurements into the pure core
//! (ABR, later the P2P scheduler) and hands whole segments to the element's output queues.

mod context;
mod dash;
mod fetcher;
mod front;
mod hashes;
mod hls;
pub mod origin;
pub mod output;
pub mod p2p;
pub mod runtime;
mod seed;
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
    /// `mode=seeder`: which variants to seed (`None`: a player).
    pub seeder: Option<SeedVariants>,
    /// `segment-hashes-url`: every segment is checked against these published SHA-256s.
    pub segment_hashes: Option<url::Url>,
    /// LL-HLS: play a live playlist's parts when it has them (`low-latency`).
    pub low_latency: bool,
    /// `audio-language`: preferred audio languages, most preferred first.
    pub audio_languages: Vec<String>,
    /// `text-language`: the subtitles to play, most preferred first (none: only a default
    /// rendition, HLS, or a "main" text adaptation set, DASH).
    pub text_languages: Vec<String>,
}

/// `seed-variants`: the variants (and DASH Representations) a seeder follows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeedVariants {
    #[default]
    All,
    /// Those of these bitrates (BANDWIDTH, bit/s); a stream with none of them seeds its
    /// highest.
    Bitrates(Vec<u64>),
}

impl SeedVariants {
    /// Parses `all` or a comma-separated list of bitrates.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("all") {
            return Ok(SeedVariants::All);
        }
        text.split(',')
            .map(|b| {
                b.trim().parse::<u64>().map_err(|_| {
                    format!("seed-variants: not a bitrate: {b:?} (all, or bit/s values)")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(SeedVariants::Bitrates)
    }

    /// Indices of `bandwidths` to seed, highest bitrate first (never empty if any exist).
    pub fn pick(&self, bandwidths: &[u64]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..bandwidths.len())
            .filter(|i| match self {
                SeedVariants::All => true,
                SeedVariants::Bitrates(b) => b.contains(&bandwidths[*i]),
            })
            .collect();
        if idx.is_empty() {
            idx.extend((0..bandwidths.len()).max_by_key(|i| bandwidths[*i]));
        }
        idx.sort_by_key(|i| std::cmp::Reverse(bandwidths[*i]));
        idx
    }
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
    fn seed_variants_parse_and_pick() {
        assert_eq!(SeedVariants::parse("all"), Ok(SeedVariants::All));
        assert_eq!(SeedVariants::parse(""), Ok(SeedVariants::All));
        let two = SeedVariants::parse("730400, 200000").unwrap();
        assert_eq!(two, SeedVariants::Bitrates(vec![730400, 200000]));
        assert!(SeedVariants::parse("high").is_err());
        let bw = [200000, 730400, 400000];
        assert_eq!(SeedVariants::All.pick(&bw), vec![1, 2, 0]);
        assert_eq!(two.pick(&bw), vec![1, 0]);
        // None listed in this stream (an audio rendition): its highest.
        assert_eq!(SeedVariants::Bitrates(vec![1]).pick(&bw), vec![1]);
        assert_eq!(SeedVariants::All.pick(&[]), Vec::<usize>::new());
    }

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
