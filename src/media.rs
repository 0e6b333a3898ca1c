//! The media model: what a manifest (HLS or DASH) says, reduced to what the engine needs.
//! Pure data, no I/O. Times are `Duration`s from the start of the presentation timeline.

use std::time::Duration;
use url::Url;

/// A byte range inside a resource: `length` bytes starting at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

impl ByteRange {
    /// Value for an HTTP `Range` header (`bytes=first-last`).
    pub fn http_header(&self) -> String {
        format!(
            "bytes={}-{}",
            self.offset,
            self.offset + self.length.saturating_sub(1)
        )
    }
}

/// A resource on the origin, optionally a byte range of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    pub url: Url,
    pub range: Option<ByteRange>,
}

/// EXT-X-KEY METHOD=AES-128: whole-segment AES-128-CBC with PKCS#7 padding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Aes128Key {
    pub uri: Url,
    /// Explicit IV; `None` means "the media sequence number, big-endian, in 16 bytes".
    pub iv: Option<[u8; 16]>,
}

impl Aes128Key {
    pub fn iv_for(&self, sequence: u64) -> [u8; 16] {
        self.iv.unwrap_or_else(|| {
            let mut iv = [0u8; 16];
            iv[8..].copy_from_slice(&sequence.to_be_bytes());
            iv
        })
    }
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub resource: Resource,
    /// Start on the stream's timeline (sum of the previous durations, carried across live refreshes).
    pub start: Duration,
    pub duration: Duration,
    /// HLS media sequence number (EXT-X-MEDIA-SEQUENCE + position); DASH: segment number.
    pub sequence: u64,
    /// EXT-X-DISCONTINUITY before this segment.
    pub discontinuity: bool,
    /// Discontinuity sequence this segment belongs to.
    pub discontinuity_sequence: u64,
    pub key: Option<Aes128Key>,
    /// Initialisation section (EXT-X-MAP / DASH init) that must precede this segment's bytes.
    pub init: Option<Resource>,
    /// Key that encrypts `init` itself: the AES-128 EXT-X-KEY in force where the EXT-X-MAP tag
    /// appeared (always with an explicit IV, RFC 8216 4.3.2.5). Usually `None`.
    pub init_key: Option<Aes128Key>,
    /// EXT-X-GAP: no media; never fetched.
    pub gap: bool,
    /// DASH only (`None` for HLS): the presentation start in seconds computed in f64 exactly as
    /// Shaka Player computes `SegmentReference.startTime`, the input of P2P Media Loader's DASH
    /// segment id `trunc(start_seconds / 0.5)`. `start` is the exact value; this one reproduces
    /// Shaka's rounding so ids computed near a 0.5 s boundary agree with browsers.
    pub start_seconds: Option<f64>,
    /// DASH only: the start within its Period as Shaka Player 2.x computes it (f64):
    /// `(Number − startNumber) × duration / timescale`, or `(t − PTO) / timescale` on a
    /// timeline; PML 0.6 names DASH segments `…+<this>.toFixed(3)`. `None` where unknown.
    pub start_in_period_seconds: Option<f64>,
    /// DASH only: media time (what the fMP4 `tfdt` says) minus presentation time, in ns:
    /// `presentationTimeOffset − Period@start`. Demuxers timestamp fMP4 from `tfdt`, so the
    /// element maps its output segment by it. `None`: the container's times are `start`'s.
    pub media_offset_ns: Option<i64>,
    /// Wall-clock time of the segment's first sample, ns since the Unix epoch: HLS
    /// EXT-X-PROGRAM-DATE-TIME, tagged on the segment or carried from the one before it by its
    /// duration (not across a discontinuity). `None` when the playlist says nothing.
    pub program_date_time_ns: Option<i64>,
}

impl Segment {
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }

    /// Shaka's f64 start time for DASH segments, else `start` in seconds.
    pub fn start_seconds_f64(&self) -> f64 {
        self.start_seconds.unwrap_or(self.start.as_secs_f64())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// EXT-X-PLAYLIST-TYPE:VOD or ENDLIST present: the list is complete.
    Vod,
    /// EVENT without ENDLIST: grows, never slides.
    Event,
    /// Sliding window.
    Live,
}

/// A media playlist (one rendition of one stream).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// Final URL the playlist was fetched from (after redirects): base for relative URIs.
    pub url: Url,
    pub kind: PlaylistKind,
    pub target_duration: Duration,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub end_list: bool,
    pub segments: Vec<Segment>,
    /// Set by `manifest::hls::update` when the refreshed playlist neither overlapped nor directly
    /// continued the previous one (segments were missed), so its start times are only a guess
    /// anchored at the previous end: expect a timestamp discontinuity.
    pub lost_sync: bool,
    /// Low-latency HLS (EXT-X-SERVER-CONTROL, EXT-X-PART-INF, EXT-X-PART, ...); `None` for
    /// playlists that say nothing of it (and for DASH).
    pub low_latency: Option<Box<LowLatency>>,
}

/// What a low-latency HLS playlist adds to a media playlist (RFC 8216bis 4.4.3.7-8, 4.4.5).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LowLatency {
    /// EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD: `_HLS_msn`/`_HLS_part` reloads wait for news.
    pub can_block_reload: bool,
    /// PART-HOLD-BACK: how far from the live edge (end of the last part) playback starts.
    pub part_hold_back: Option<Duration>,
    /// CAN-SKIP-UNTIL: `_HLS_skip=YES` gets a delta update skipping segments older than this
    /// from the end.
    pub can_skip_until: Option<Duration>,
    /// EXT-X-PART-INF PART-TARGET; `None`: the playlist has no parts.
    pub part_target: Option<Duration>,
    /// Parts listed, by the media sequence number of their parent segment, ascending. The last
    /// entry may be the segment still being produced (no EXTINF yet: `sequence` is one past
    /// the last segment).
    pub parts: Vec<PartList>,
    /// EXT-X-PRELOAD-HINT TYPE=PART: the part the server is producing next.
    pub preload_hint: Option<Resource>,
    /// EXT-X-RENDITION-REPORT: the other renditions' live edges, for switching without a
    /// playlist reload first.
    pub rendition_reports: Vec<RenditionReport>,
    /// EXT-X-SKIP SKIPPED-SEGMENTS of a delta update not merged yet (`manifest::hls::update`
    /// fills them from the previous playlist); always 0 in a merged playlist.
    pub skipped_segments: u64,
}

/// The parts of one parent segment.
#[derive(Debug, Clone, PartialEq)]
pub struct PartList {
    pub sequence: u64,
    pub parts: Vec<Part>,
}

/// One EXT-X-PART.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub resource: Resource,
    pub duration: Duration,
    /// INDEPENDENT=YES: starts with an independent frame, playback may start here.
    pub independent: bool,
    pub gap: bool,
}

/// One EXT-X-RENDITION-REPORT.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionReport {
    pub uri: Url,
    pub last_msn: Option<u64>,
    pub last_part: Option<u64>,
}

impl LowLatency {
    /// The parts of segment `sequence`, if listed.
    pub fn parts_of(&self, sequence: u64) -> Option<&[Part]> {
        self.parts
            .iter()
            .find(|p| p.sequence == sequence)
            .map(|p| p.parts.as_slice())
    }
}

impl MediaPlaylist {
    /// A playlist built from segments rather than parsed (DASH): a live one slides, a VOD one
    /// is complete. The target duration is the longest segment, else `fallback_target`.
    pub fn from_segments(
        url: Url,
        live: bool,
        segments: Vec<Segment>,
        fallback_target: Duration,
    ) -> Self {
        let target_duration = segments
            .iter()
            .map(|s| s.duration)
            .max()
            .unwrap_or(fallback_target);
        MediaPlaylist {
            url,
            kind: if live {
                PlaylistKind::Live
            } else {
                PlaylistKind::Vod
            },
            target_duration,
            media_sequence: segments.first().map_or(0, |s| s.sequence),
            discontinuity_sequence: segments.first().map_or(0, |s| s.discontinuity_sequence),
            end_list: !live,
            segments,
            lost_sync: false,
            low_latency: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Video,
    Audio,
    Subtitles,
    /// EXT-X-MEDIA TYPE=CLOSED-CAPTIONS: carried inside the video stream, never has a URI.
    ClosedCaptions,
}

/// EXT-X-STREAM-INF: one variant of the main stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: Url,
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    pub codecs: Option<String>,
    pub resolution: Option<(u64, u64)>,
    pub frame_rate: Option<f64>,
    pub video_range: Option<String>,
    pub audio_group: Option<String>,
    pub subtitles_group: Option<String>,
    /// Place among the master playlist's variant entries (EXT-X-STREAM-INF with a URI) before
    /// audio-only ones are dropped: P2P Media Loader 0.6's `V<n>` (its m3u8 parser's list).
    pub master_index: usize,
}

impl Variant {
    /// A variant known only by its playlist URL (a lone media playlist, an audio rendition).
    pub fn with_uri(uri: Url) -> Self {
        Variant {
            uri,
            bandwidth: 0,
            average_bandwidth: None,
            codecs: None,
            resolution: None,
            frame_rate: None,
            video_range: None,
            audio_group: None,
            subtitles_group: None,
            master_index: 0,
        }
    }
}

/// EXT-X-MEDIA: an alternate rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub stream_type: MediaType,
    pub group_id: String,
    pub name: String,
    pub language: Option<String>,
    pub channels: Option<String>,
    pub default: bool,
    pub autoselect: bool,
    /// `None`: the rendition is muxed into the variant's own segments.
    pub uri: Option<Url>,
}

/// A master playlist. A lone media playlist is wrapped as one variant with unknown bandwidth.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterPlaylist {
    pub url: Url,
    pub variants: Vec<Variant>,
    pub renditions: Vec<Rendition>,
}
