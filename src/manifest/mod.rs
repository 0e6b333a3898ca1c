//! Manifest front-ends (pure, no I/O): HLS playlists and DASH MPDs into the media model.

use std::fmt;

pub mod dash;
pub mod hls;
pub mod sidx;
pub mod start;
pub mod tracks;
pub mod webm;

/// Why a manifest could not be used. Line numbers are 1-based, counted from the `#EXTM3U` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// The body is not an M3U8 playlist at all (HTML error page, empty body, ...).
    NotM3u8,
    /// The playlist is not valid UTF-8.
    NotUtf8,
    /// The playlist exceeds a sanity limit (protects memory against absurd input).
    TooLarge { what: &'static str, limit: usize },
    /// Syntax or structure that cannot be interpreted safely.
    Malformed { line: usize, reason: String },
    /// EXTINF duration that is zero, negative, not a number or absurdly long.
    InvalidDuration { line: usize, value: String },
    /// A URI that cannot be resolved against the playlist URL.
    InvalidUri { line: usize, uri: String },
    /// Valid HLS that this element cannot play (SAMPLE-AES, DRM key formats, I-frame playlists...).
    Unsupported(String),
    /// A master playlist without any (non I-frame) variant stream.
    NoVariants,
    /// A live refresh whose EXT-X-MEDIA-SEQUENCE is lower than the previous one.
    SequenceWentBackwards { old: u64, new: u64 },
    /// A delta update (EXT-X-SKIP) skipped segments the previous playlist does not have.
    DeltaUnresolved { first: u64, count: u64 },
    /// DASH: the body is not a well-formed MPD document (not XML, wrong root, bad attribute syntax).
    NotMpd(String),
    /// DASH: a well-formed MPD that cannot be used: missing required attribute, absurd value
    /// (zero timescale or duration, huge repeat count), too many segments.
    InvalidMpd(String),
    /// DASH: valid MPD features this element cannot play (xlink, hierarchical sidx, WebM index...).
    UnsupportedDash(String),
    /// DASH: a `sidx` (segment index) box that cannot be parsed.
    InvalidSidx(String),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::NotM3u8 => {
                write!(f, "not an HLS playlist: does not start with #EXTM3U")
            }
            ManifestError::NotUtf8 => write!(f, "HLS playlist is not valid UTF-8"),
            ManifestError::TooLarge { what, limit } => {
                write!(f, "HLS playlist too large: more than {limit} {what}")
            }
            ManifestError::Malformed { line, reason } => {
                write!(f, "malformed HLS playlist at line {line}: {reason}")
            }
            ManifestError::InvalidDuration { line, value } => write!(
                f,
                "invalid segment duration {value:?} at line {line} (must be a positive number of seconds)"
            ),
            ManifestError::InvalidUri { line, uri } => {
                write!(f, "invalid URI {uri:?} at line {line}")
            }
            ManifestError::Unsupported(what) => write!(f, "unsupported HLS feature: {what}"),
            ManifestError::NoVariants => {
                write!(f, "master playlist contains no EXT-X-STREAM-INF variant")
            }
            ManifestError::SequenceWentBackwards { old, new } => write!(
                f,
                "live playlist media sequence went backwards ({old} -> {new})"
            ),
            ManifestError::DeltaUnresolved { first, count } => write!(
                f,
                "playlist delta update skipped {count} segment(s) from {first} that the \
                 previous playlist does not have"
            ),
            ManifestError::NotMpd(why) => write!(f, "not a DASH MPD: {why}"),
            ManifestError::InvalidMpd(why) => write!(f, "invalid DASH MPD: {why}"),
            ManifestError::UnsupportedDash(what) => write!(f, "unsupported DASH feature: {what}"),
            ManifestError::InvalidSidx(why) => write!(f, "invalid DASH segment index (sidx): {why}"),
        }
    }
}

impl std::error::Error for ManifestError {}
