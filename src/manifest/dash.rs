//! MPEG-DASH front-end: MPD bytes → the media model (`crate::media`). Pure: no I/O, no clock
//! (the caller passes `now_unix`), no panics, bounded allocations.
//!
//! XML is parsed by `dash-mpd` (parsing only); everything else is here:
//! * Periods: start/duration as Shaka derives them (next Period@start wins over @duration).
//! * BaseURL: MPD → Period → AdaptationSet → Representation, first BaseURL of each level,
//!   relative to the MPD's final URL.
//! * Addressing, inherited per attribute from Representation → AdaptationSet → Period with
//!   Shaka's precedence SegmentBase > SegmentList > SegmentTemplate:
//!   SegmentTemplate with `$Number$` (+@duration) or SegmentTimeline (`$Time$`/`$Number$`),
//!   SegmentList (+mediaRange), SegmentBase (+indexRange: `SegmentSource::NeedsIndex`, then
//!   [`segments_from_sidx`]). A Representation with none of them is one segment (its BaseURL).
//! * Live: which `$Number$` segments exist is derived from `availabilityStartTime` and
//!   `now_unix` (segment end ≤ now − AST − Period@start, within timeShiftBufferDepth); explicit
//!   timelines/lists are trusted (only the timeShiftBufferDepth window is applied).
//!
//! Every segment carries two starts: `Segment::start` (exact, integer nanoseconds) and
//! `Segment::start_seconds` (f64, computed with the same operations in the same order as Shaka
//! Player 5.1's `SegmentReference.startTime`, which P2P Media Loader turns into the DASH
//! externalId `trunc(start / 0.5)`: see `p2p::segment_id::dash_segment_id`).
//!
//! Not covered (yet): xlink (remote Periods/AdaptationSets: `UnsupportedDash`), MPD patches,
//! alternative BaseURLs/content steering (the first BaseURL of each level is used),
//! availabilityTimeOffset/low-latency chunks (`$SubNumber$`, `S@k`), `S@n`, SegmentTimeline
//! `Pattern`s, SegmentList@startNumber/@presentationTimeOffset (not exposed by dash-mpd 0.20),
//! hierarchical sidx.

use std::time::Duration;

use url::Url;

use super::{sidx, webm, ManifestError};
use crate::media::{ByteRange, MediaPlaylist, MediaType, Resource, Segment};

/// Larger bodies are refused before parsing.
pub const MAX_MPD_BYTES: usize = 32 * 1024 * 1024;
/// Segments materialised per Representation (static: more is an error; live: the newest are kept).
pub const MAX_SEGMENTS: usize = 100_000;
/// Newest segments kept of a live template whose window is larger (no `timeShiftBufferDepth`
/// since an old `availabilityStartTime`): 2.8 h of 1-s segments. The window is re-expanded
/// on every refresh; 100,000 per Representation took seconds and hundreds of MB each time
/// (found by `fuzz/dash_parse`).
pub const MAX_LIVE_SEGMENTS: usize = 10_000;
/// Segments materialised for the whole MPD (bounds memory for MPDs with very many Representations).
pub const MAX_TOTAL_SEGMENTS: usize = 1_000_000;
/// Bounds Periods, AdaptationSets and Representations (each).
pub const MAX_ELEMENTS: usize = 10_000;
/// `%0Nd` widths above this are treated as garbage (the padding would be allocated).
pub const MAX_TEMPLATE_WIDTH: usize = 255;
/// Bytes of URLs (media and initialization) the segments of one MPD, or of one `sidx`, may hold
/// beyond 32 per input byte. Each segment owns copies of its URLs, so a long BaseURL over a
/// template expanding to many segments would otherwise cost `segments × URL length`; real MPDs
/// (100k segments × a few hundred bytes) stay well below.
pub const MAX_SEGMENT_URL_BYTES: usize = 256 * 1024 * 1024;

const NS: i128 = 1_000_000_000;

/// A parsed MPD.
#[derive(Debug, Clone, PartialEq)]
pub struct Mpd {
    /// Final URL the MPD was fetched from (after redirects): base for relative URLs.
    pub url: Url,
    /// `type="dynamic"` (live).
    pub dynamic: bool,
    pub periods: Vec<Period>,
    /// `availabilityStartTime` in Unix seconds.
    pub availability_start: Option<f64>,
    /// `publishTime` in Unix seconds.
    pub publish_time: Option<f64>,
    pub min_update_period: Option<Duration>,
    pub time_shift_buffer_depth: Option<Duration>,
    pub suggested_presentation_delay: Option<Duration>,
    pub media_presentation_duration: Option<Duration>,
    pub min_buffer_time: Option<Duration>,
    /// `@maxSegmentDuration` if larger, else the longest segment seen in this MPD.
    pub max_segment_duration: Duration,
    /// First `Location` element: where to fetch the next MPD update from.
    pub location: Option<Url>,
    /// The `now_unix` this MPD was expanded for (live segment availability).
    pub now_unix: f64,
    /// `UTCTiming` elements (scheme, value) in MPD order: how the caller should synchronise the
    /// `now_unix` it passes (this module never reads a clock).
    pub utc_timing: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub id: Option<String>,
    /// Start on the presentation timeline (dynamic: relative to `availabilityStartTime`).
    pub start: Duration,
    /// `start` as Shaka computes it (f64): the base of every `Segment::start_seconds`.
    pub start_seconds: f64,
    /// Next Period's start − start, else MPD duration − start, else Period@duration.
    pub duration: Option<Duration>,
    pub adaptation_sets: Vec<AdaptationSet>,
}

impl Period {
    pub fn end(&self) -> Option<Duration> {
        self.duration.map(|d| self.start + d)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdaptationSet {
    pub id: Option<String>,
    /// From contentType, else mimeType, else codecs (AdaptationSet, then first Representation).
    /// AdaptationSets that are none of these (e.g. `image` thumbnails) are skipped.
    pub stream_type: MediaType,
    pub lang: Option<String>,
    pub mime_type: Option<String>,
    pub codecs: Option<String>,
    /// First `Label` text.
    pub label: Option<String>,
    /// `Role@value`s ("main", "alternate", "subtitle", "caption"...).
    pub roles: Vec<String>,
    /// A ContentProtection element is present (CENC/DRM: the engine cannot decrypt it).
    pub encrypted: bool,
    pub representations: Vec<Representation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Representation {
    pub id: String,
    pub bandwidth: u64,
    /// Representation@codecs, else the AdaptationSet's.
    pub codecs: Option<String>,
    pub mime_type: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    /// `frameRate` evaluated ("30000/1001" → 29.97…), as Shaka does.
    pub frame_rate: Option<f64>,
    /// Shaka's `stream.hdr` (P2P Media Loader 2.3's `videoRange`): "PQ" for the DASH-IF
    /// `hevc-hdr-pq10` MPD profile with its HEVC codec, else the AdaptationSet's cicp
    /// TransferCharacteristics property (1, 6, 13–15 "SDR", 16 "PQ", 18 "HLG"); `None` when
    /// nothing says.
    pub video_range: Option<String>,
    /// From AudioChannelConfiguration (23003:3 scheme, or a plain integer value).
    pub channels: Option<u32>,
    pub lang: Option<String>,
    pub label: Option<String>,
    /// Initialization segment, also attached to every segment's `init`.
    pub init: Option<Resource>,
    /// SegmentBase index (`sidx`) to fetch: indexRange / RepresentationIndex / template @index.
    pub index: Option<Resource>,
    /// `@presentationTimeOffset / @timescale` of the addressing element (0 if none).
    pub presentation_time_offset: Duration,
    pub segments: SegmentSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SegmentSource {
    /// Expanded segments: SegmentTemplate (number or timeline), SegmentList, or the single
    /// segment of a Representation without addressing. Sorted by start.
    List(Vec<Segment>),
    /// SegmentBase with an index: fetch `ctx.index`, then call [`segments_from_sidx`].
    NeedsIndex(Box<SidxContext>),
}

/// Everything [`segments_from_sidx`] needs besides the index bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct SidxContext {
    /// What to fetch (URL + byte range).
    pub index: Resource,
    /// Where the subsegments are.
    pub media_url: Url,
    /// The index lives in another resource than the media (RepresentationIndex@sourceURL,
    /// SegmentTemplate@index): `first_offset` then counts from the start of the media resource.
    pub index_is_external: bool,
    pub init: Option<Resource>,
    pub period_index: usize,
    pub period_start: Duration,
    pub period_start_seconds: f64,
    /// Subsegments starting at/after it are dropped, the last one is clipped.
    pub period_end: Option<Duration>,
    /// SegmentBase@timescale (scales `presentation_time_offset`; the sidx has its own timescale).
    pub timescale: u64,
    pub presentation_time_offset: u64,
    /// WebM: the index is a Matroska Cues element, read with the initialization range
    /// ([`segments_from_cues`]).
    pub webm: bool,
}

impl Representation {
    /// The expanded segments (empty while `NeedsIndex`).
    pub fn segment_list(&self) -> &[Segment] {
        match &self.segments {
            SegmentSource::List(s) => s,
            SegmentSource::NeedsIndex(_) => &[],
        }
    }

    /// Index of the segment containing presentation time `t`.
    pub fn segment_index_at(&self, t: Duration) -> Option<usize> {
        let segs = self.segment_list();
        let i = segs.partition_point(|s| s.start <= t).checked_sub(1)?;
        (t < segs[i].end()).then_some(i)
    }

    /// Where to start at presentation time `t` (e.g. [`Mpd::live_start`]): the segment containing
    /// it, else the last one starting before it, else 0.
    pub fn start_index_for(&self, t: Duration) -> usize {
        self.segment_list()
            .partition_point(|s| s.start <= t)
            .saturating_sub(1)
    }

    /// This Representation (of one Period) as a media playlist for the HLS-shaped engine.
    /// `None` while the segment index is still to be fetched.
    pub fn to_media_playlist(&self, mpd: &Mpd) -> Option<MediaPlaylist> {
        let SegmentSource::List(segments) = &self.segments else {
            return None;
        };
        Some(MediaPlaylist::from_segments(
            mpd.url.clone(),
            mpd.dynamic,
            segments.clone(),
            mpd.max_segment_duration,
        ))
    }
}

impl Mpd {
    /// How often to re-fetch a live MPD: `minimumUpdatePeriod`, at least 1 s (0 would mean
    /// "poll continuously"). `None` for static MPDs or when the MPD never changes. Note that
    /// `$Number$` templates gain segments with time even if the MPD does not change: call
    /// [`parse`] again on the same bytes with a later `now_unix` about every
    /// `max_segment_duration`.
    pub fn reload_interval(&self) -> Option<Duration> {
        if !self.dynamic {
            return None;
        }
        self.min_update_period
            .map(|d| d.max(Duration::from_secs(1)))
    }

    /// Live edge on the presentation timeline: `now − availabilityStartTime`.
    pub fn live_edge(&self, now_unix: f64) -> Option<Duration> {
        let ast = self.availability_start.filter(|_| self.dynamic)?;
        let edge = now_unix - ast;
        Some(if edge.is_finite() && edge > 0.0 {
            Duration::try_from_secs_f64(edge).unwrap_or(Duration::MAX)
        } else {
            Duration::ZERO
        })
    }

    /// How far behind the live edge to play: `suggestedPresentationDelay` if given, else 3 × the
    /// longest segment (like hlsdemux's 3 target durations, and dashdemux's default); never more
    /// than `timeShiftBufferDepth` (as Shaka).
    pub fn presentation_delay(&self) -> Duration {
        let d = self
            .suggested_presentation_delay
            .unwrap_or_else(|| self.max_segment_duration.saturating_mul(3));
        match self.time_shift_buffer_depth {
            Some(tsbd) => d.min(tsbd),
            None => d,
        }
    }

    /// Where to start a live stream on the presentation timeline: live edge − presentation
    /// delay, not before the start of the timeShiftBufferDepth window. `None` for static MPDs.
    /// Use [`Representation::start_index_for`] to pick the segment.
    pub fn live_start(&self, now_unix: f64) -> Option<Duration> {
        let edge = self.live_edge(now_unix)?;
        let start = edge.saturating_sub(self.presentation_delay());
        Some(match self.time_shift_buffer_depth {
            Some(tsbd) => start.max(edge.saturating_sub(tsbd)),
            None => start,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// Shaka Player's `stream.hdr` (v4.16.9 `dash_parser.js`: `parseRepresentation_` for the
/// profile, `parseAdaptationSet_` for the properties): the DASH-IF UHD `hevc-hdr-pq10` MPD
/// profile with its codec says "PQ"; else the AdaptationSet's `urn:mpeg:mpegB:cicp:
/// TransferCharacteristics` EssentialProperty, then SupplementalProperty, the last one read
/// winning (an unmapped value clears it), as Shaka overwrites.
fn shaka_hdr(
    profiles: &[String],
    codecs: Option<&str>,
    a: &dash_mpd::AdaptationSet,
) -> Option<String> {
    const HEVC_HDR_PQ10: &str = "http://dashif.org/guidelines/dash-if-uhd#hevc-hdr-pq10";
    let codecs = codecs.unwrap_or("");
    if profiles.iter().any(|p| p == HEVC_HDR_PQ10)
        && (codecs.contains("hvc1.2.4.L153.B0") || codecs.contains("hev1.2.4.L153.B0"))
    {
        return Some("PQ".into());
    }
    const TC: &str = "urn:mpeg:mpegB:cicp:TransferCharacteristics";
    // JS `parseInt(value, 10)`: leading digits.
    let cicp = |v: Option<&str>| {
        let v = v.unwrap_or("").trim_start();
        let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
        match digits.parse::<u32>().ok()? {
            1 | 6 | 13 | 14 | 15 => Some("SDR".to_owned()),
            16 => Some("PQ".to_owned()),
            18 => Some("HLG".to_owned()),
            _ => None,
        }
    };
    let mut range = None;
    for p in a.essential_property.iter().filter(|p| p.schemeIdUri == TC) {
        range = cicp(p.value.as_deref());
    }
    for p in a
        .supplemental_property
        .iter()
        .filter(|p| p.schemeIdUri == TC)
    {
        range = cicp(p.value.as_deref());
    }
    range
}

/// Where a live MPD says the time comes from (`UTCTiming`, ISO/IEC 23009-1 5.8.4.11 and
/// DASH-IF IOP 4.7): the first scheme this element can use, in MPD order.
#[derive(Debug, Clone, PartialEq)]
pub enum UtcSource {
    /// `urn:mpeg:dash:utc:direct:2014` (or 2012): the time itself, as of the MPD's fetch.
    Direct(f64),
    /// `urn:mpeg:dash:utc:http-iso:2014` / `http-xsdate:2014` (or 2012): GET it, the body is
    /// an ISO 8601 / xs:dateTime time.
    Http(Url),
}

impl Mpd {
    /// The clock source the MPD names, if one this element supports (`http-head`, `ntp`,
    /// `sntp` and `http-ntp` are not: the machine's clock is used then).
    pub fn utc_source(&self) -> Option<UtcSource> {
        self.utc_timing.iter().find_map(|(scheme, value)| {
            let kind = scheme
                .trim()
                .strip_prefix("urn:mpeg:dash:utc:")?
                .rsplit_once(':')
                .filter(|(_, year)| *year == "2014" || *year == "2012")?
                .0;
            match kind {
                "direct" => parse_utc_time(value).map(UtcSource::Direct),
                "http-iso" | "http-xsdate" => {
                    // Several URLs may be given, space-separated: the first that parses.
                    value
                        .split_whitespace()
                        .find_map(|u| self.url.join(u).ok())
                        .map(UtcSource::Http)
                }
                _ => None,
            }
        })
    }
}

/// An `xs:dateTime` / ISO 8601 time (as UTCTiming servers answer) in Unix seconds.
pub fn parse_utc_time(text: &str) -> Option<f64> {
    let t = text.trim().parse::<dash_mpd::XsDatetime>().ok()?;
    Some(t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
}

/// Parses an MPD fetched from `url` (its final URL after redirects). `now_unix` (seconds since
/// the Unix epoch, wall clock of the caller, ideally corrected by UTCTiming) decides which live
/// `$Number$` segments exist and the timeShiftBufferDepth window; it is ignored for static MPDs.
pub fn parse(bytes: &[u8], url: &Url, now_unix: f64) -> Result<Mpd, ManifestError> {
    if bytes.len() > MAX_MPD_BYTES {
        return Err(invalid(format!("larger than {MAX_MPD_BYTES} bytes")));
    }
    if !now_unix.is_finite() {
        return Err(invalid("now_unix is not a finite number"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| not_mpd("not valid UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_root(text)?;
    check_duration_attributes(text)?;
    // dash-mpd should return errors for every bad input; the unwind guard keeps a bug in it (or
    // an arithmetic overflow we did not pre-screen) from taking the streaming thread down.
    let raw = std::panic::catch_unwind(|| dash_mpd::parse(text))
        .map_err(|_| not_mpd("the XML parser failed on this document"))?
        .map_err(|e| not_mpd(e.to_string()))?;
    Builder::new(url, now_unix, text.len()).build(&raw)
}

/// The URL budget of an input of `input_len` bytes (see [`MAX_SEGMENT_URL_BYTES`]).
fn url_budget(input_len: usize) -> usize {
    input_len
        .saturating_mul(32)
        .saturating_add(MAX_SEGMENT_URL_BYTES)
}

fn too_many_url_bytes(limit: usize) -> ManifestError {
    invalid(format!("segment URLs would take more than {limit} bytes"))
}

/// Segments of a `SegmentSource::NeedsIndex` Representation from its fetched `sidx` bytes
/// (the bytes of `ctx.index`, i.e. starting at the index range offset).
///
/// Byte offsets: the first subsegment starts `first_offset` bytes after the end of the `sidx`
/// box (for an external index: `first_offset` bytes into the media resource).
/// Start times: `period_start + (earliest_presentation_time + Σ durations)/sidx_timescale −
/// presentationTimeOffset/timescale`, and the f64 twin exactly as Shaka's mp4 index parser.
pub fn segments_from_sidx(
    sidx_bytes: &[u8],
    ctx: &SidxContext,
) -> Result<Vec<Segment>, ManifestError> {
    let sidx = sidx::parse(sidx_bytes)?;
    if ctx.timescale == 0 {
        return Err(invalid("SegmentBase@timescale is 0"));
    }
    if sidx.references.iter().any(|r| r.references_index) {
        // Would need more fetches; Shaka refuses these too.
        return Err(ManifestError::UnsupportedDash(
            "hierarchical sidx (reference_type 1)".into(),
        ));
    }
    let anchor = if ctx.index_is_external {
        0
    } else {
        ctx.index.range.map_or(0, |r| r.offset) as u128
            + u128::from(sidx.box_offset)
            + u128::from(sidx.box_size)
    };
    let mut byte = anchor + u128::from(sidx.first_offset);
    let ts = i128::from(sidx.timescale);
    let pto_ns = ticks_to_ns(i128::from(ctx.presentation_time_offset), ctx.timescale);
    let ps_ns = dur_ns(ctx.period_start);
    let end_ns = ctx.period_end.map(dur_ns);
    // Shaka: timestampOffset = periodStart − PTO/timescale; start = unscaled/ts + timestampOffset.
    let timestamp_offset_f =
        ctx.period_start_seconds - ctx.presentation_time_offset as f64 / ctx.timescale as f64;
    let mut unscaled = i128::from(sidx.earliest_presentation_time);
    let mut unscaled_f = sidx.earliest_presentation_time as f64;
    ctx.check_url_budget(sidx.references.len(), sidx_bytes.len())?;
    let mut out = Vec::with_capacity(sidx.references.len());
    for (i, r) in sidx.references.iter().enumerate() {
        let start = ps_ns + unscaled * NS / ts - pto_ns;
        let mut end = ps_ns + (unscaled + i128::from(r.subsegment_duration)) * NS / ts - pto_ns;
        if let Some(pe) = end_ns {
            if start >= pe {
                break;
            }
            end = end.min(pe);
        }
        // The whole range must be addressable: `offset + length` feeds the Range header.
        let offset = u64::try_from(byte)
            .ok()
            .filter(|o| o.checked_add(u64::from(r.referenced_size)).is_some())
            .ok_or_else(|| ManifestError::InvalidSidx("offset overflow".into()))?;
        if end > 0 {
            let range = ByteRange {
                offset,
                length: u64::from(r.referenced_size),
            };
            let start_f = unscaled_f / sidx.timescale as f64 + timestamp_offset_f;
            out.push(ctx.indexed_segment(i, range, (start, end), start_f, out.is_empty()));
        }
        unscaled += i128::from(r.subsegment_duration);
        unscaled_f += f64::from(r.subsegment_duration);
        byte += u128::from(r.referenced_size);
    }
    Ok(out)
}

impl SidxContext {
    /// Every segment of an index owns a copy of the media and init URLs: `count` of them
    /// within the budget an index of `index_len` bytes allows.
    fn check_url_budget(&self, count: usize, index_len: usize) -> Result<(), ManifestError> {
        let per_segment =
            self.media_url.as_str().len() + self.init.as_ref().map_or(0, |r| r.url.as_str().len());
        let budget = url_budget(index_len);
        if per_segment.saturating_mul(count) > budget {
            return Err(too_many_url_bytes(budget));
        }
        Ok(())
    }

    /// Segment `index` (0-based) of the index: `range` of the media, `[start, end)` ns on the
    /// timeline, Shaka's f64 start; `first`: the first kept (a Period boundary after Period 0).
    fn indexed_segment(
        &self,
        index: usize,
        range: ByteRange,
        (start, end): (i128, i128),
        start_seconds: f64,
        first: bool,
    ) -> Segment {
        Segment {
            resource: Resource {
                url: self.media_url.clone(),
                range: Some(range),
            },
            start: ns_to_dur(start),
            duration: ns_to_dur(end - start.max(0)),
            sequence: index as u64 + 1,
            discontinuity: self.period_index > 0 && first,
            discontinuity_sequence: self.period_index as u64,
            key: None,
            init: self.init.clone(),
            init_key: None,
            gap: false,
            start_seconds: Some(start_seconds),
            media_offset_ns: None,
            program_date_time_ns: None,
            start_in_period_seconds: None,
        }
    }
}

/// WebM SegmentBase: one segment per cue point, from its cluster to the next one's (the last
/// to the end of the Segment element: what Shaka Player's open-ended last request gets), timed
/// by the Cues and the Info's TimecodeScale and Duration (Shaka's `webm_segment_index_parser`).
pub fn segments_from_cues(
    init_bytes: &[u8],
    cues_bytes: &[u8],
    ctx: &SidxContext,
) -> Result<Vec<Segment>, ManifestError> {
    let bad = |why: String| ManifestError::InvalidSidx(format!("WebM: {why}"));
    let init = webm::parse_init(init_bytes).map_err(bad)?;
    let cues = webm::parse_cues(cues_bytes).map_err(bad)?;
    if ctx.timescale == 0 {
        return Err(invalid("SegmentBase@timescale is 0"));
    }
    let base = u128::from(init.segment_data_offset)
        + u128::from(
            ctx.init
                .as_ref()
                .and_then(|r| r.range)
                .map_or(0, |r| r.offset),
        );
    let segment_end = init
        .segment_data_size
        .map(|s| base + u128::from(s))
        .ok_or_else(|| {
            ManifestError::UnsupportedDash("WebM Segment of unknown size (live WebM)".into())
        })?;
    let scale = i128::from(init.timecode_scale);
    let scale_f = init.timecode_scale as f64 / 1e9;
    let pto_ns = ticks_to_ns(i128::from(ctx.presentation_time_offset), ctx.timescale);
    let ps_ns = dur_ns(ctx.period_start);
    let timestamp_offset_f =
        ctx.period_start_seconds - ctx.presentation_time_offset as f64 / ctx.timescale as f64;
    let end_ns = ctx.period_end.map(dur_ns);
    // Bounded: a hostile Duration must not overflow the sums below.
    let duration_ns = init
        .duration
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map(|d| (d * init.timecode_scale as f64).min(1e20) as i128);
    ctx.check_url_budget(cues.len(), cues_bytes.len())?;
    let mut out = Vec::with_capacity(cues.len());
    for (i, c) in cues.iter().enumerate() {
        let next = cues.get(i + 1);
        let start = ps_ns + i128::from(c.time) * scale - pto_ns;
        let mut end = match next {
            Some(n) => ps_ns + i128::from(n.time) * scale - pto_ns,
            None => match (duration_ns, end_ns) {
                (Some(d), _) => ps_ns + d - pto_ns,
                (None, Some(pe)) => pe,
                (None, None) => return Err(bad("no Duration and no Period end".into())),
            },
        };
        if let Some(pe) = end_ns {
            if start >= pe {
                break;
            }
            end = end.min(pe);
        }
        let from = base + u128::from(c.cluster_position);
        let to = next.map_or(segment_end, |n| base + u128::from(n.cluster_position));
        let (Ok(offset), Ok(length)) =
            (u64::try_from(from), u64::try_from(to.saturating_sub(from)))
        else {
            return Err(bad("byte offset overflow".into()));
        };
        if length == 0 || offset.checked_add(length).is_none() {
            return Err(bad(format!("cue {i}: empty or overflowing cluster range")));
        }
        if end <= start.max(0) {
            continue;
        }
        let start_f = c.time as f64 * scale_f + timestamp_offset_f;
        let range = ByteRange { offset, length };
        out.push(ctx.indexed_segment(i, range, (start, end), start_f, out.is_empty()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Errors and small helpers
// ---------------------------------------------------------------------------------------------

fn invalid(why: impl Into<String>) -> ManifestError {
    ManifestError::InvalidMpd(why.into())
}

fn not_mpd(why: impl Into<String>) -> ManifestError {
    ManifestError::NotMpd(why.into())
}

fn dur_ns(d: Duration) -> i128 {
    d.as_nanos() as i128
}

/// Negative presentation times (PTO larger than the media time) clamp to 0.
fn ns_to_dur(ns: i128) -> Duration {
    if ns <= 0 {
        return Duration::ZERO;
    }
    let secs = u64::try_from(ns / NS).unwrap_or(u64::MAX);
    Duration::new(secs, (ns % NS) as u32)
}

/// `ticks / timescale` in nanoseconds, rounded towards −∞ (timescale > 0).
fn ticks_to_ns(ticks: i128, timescale: u64) -> i128 {
    ticks.saturating_mul(NS).div_euclid(i128::from(timescale))
}

/// Shaka parses xs:duration into f64 seconds (`intPart + Number(secondsString)`); dash-mpd gives
/// a nanosecond `Duration`. The correctly rounded value of the exact decimal equals Shaka's
/// whenever the duration is written in seconds (`PT12.345S`) or is exactly representable.
fn shaka_seconds(d: Duration) -> f64 {
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
        .parse()
        .unwrap_or(d.as_secs_f64())
}

fn unix_seconds(t: &dash_mpd::XsDatetime) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
}

fn unix_ns(t: &dash_mpd::XsDatetime) -> i128 {
    i128::from(t.timestamp()) * NS + i128::from(t.timestamp_subsec_nanos())
}

/// The document element must be `MPD` (dash-mpd's serde mapping ignores the root's name).
fn check_root(text: &str) -> Result<(), ManifestError> {
    let mut rest = text;
    loop {
        let i = rest.find('<').ok_or_else(|| not_mpd("no XML element"))?;
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix("!--") {
            let end = r
                .find("-->")
                .ok_or_else(|| not_mpd("unterminated comment"))?;
            rest = &r[end + 3..];
        } else if rest.starts_with('?') || rest.starts_with('!') {
            let end = rest
                .find('>')
                .ok_or_else(|| not_mpd("unterminated declaration"))?;
            rest = &rest[end + 1..];
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                .collect();
            let local = name.rsplit(':').next().unwrap_or("");
            return if local == "MPD" {
                Ok(())
            } else {
                Err(not_mpd(format!("root element is <{name}>, not <MPD>")))
            };
        }
    }
}

/// dash-mpd multiplies xs:duration components in u64 without overflow checks (a panic in debug
/// builds, a wrong value in release): refuse duration-looking attribute values with integer
/// components of more than 10 digits (> 300 years) before parsing.
fn check_duration_attributes(text: &str) -> Result<(), ManifestError> {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'=' && (b[i + 1] == b'"' || b[i + 1] == b'\'') {
            let q = b[i + 1];
            let start = i + 2;
            let end = b[start..]
                .iter()
                .position(|c| *c == q)
                .map_or(b.len(), |p| start + p);
            let v = text[start..end].trim();
            let v = v.strip_prefix(['-', '+']).unwrap_or(v);
            if v.starts_with('P')
                && v.len() > 1
                && v[1..]
                    .bytes()
                    .all(|c| c.is_ascii_digit() || b"YMWDTHS.".contains(&c))
            {
                let mut run = 0usize;
                let mut after_dot = false;
                for c in v.bytes() {
                    if c.is_ascii_digit() {
                        run += 1;
                        if run > 10 && !after_dot {
                            return Err(invalid(format!("duration {v:?} out of range")));
                        }
                    } else {
                        after_dot = c == b'.';
                        run = 0;
                    }
                }
            }
            i = end;
        }
        i += 1;
    }
    Ok(())
}

/// `$Identifier[%0Nd]$` substitution as Shaka's `MpdUtils.fillUriTemplate` (ISO/IEC 23009-1
/// 5.3.9.4.4): `$$` → `$`; identifiers without a value, and unknown `$...$`, stay as written.
fn fill_template(
    template: &str,
    rep_id: &str,
    number: Option<u64>,
    bandwidth: Option<u64>,
    time: Option<u64>,
) -> Result<String, ManifestError> {
    const NAMES: [&str; 5] = [
        "RepresentationID",
        "Number",
        "SubNumber",
        "Bandwidth",
        "Time",
    ];
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        // Try to match `Name?(%0<digits>[diouxX])?$` at `after`.
        let name = NAMES.iter().find(|n| after.starts_with(**n)).copied();
        let mut p = name.map_or(0, str::len);
        let mut fmt: Option<(usize, u8)> = None;
        let tail = &after[p..];
        if let Some(f) = tail.strip_prefix("%0") {
            let digits = f.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                if let Some(&conv) = f.as_bytes().get(digits) {
                    if b"diouxX".contains(&conv) {
                        let width = f[..digits].parse::<usize>().unwrap_or(usize::MAX);
                        fmt = Some((width, conv));
                        p += 2 + digits + 1;
                    }
                }
            }
        }
        if !after[p..].starts_with('$') {
            // Not a template identifier: keep the `$` and continue after it.
            out.push('$');
            rest = after;
            continue;
        }
        let matched = &rest[pos..pos + 1 + p + 1];
        rest = &after[p + 1..];
        let Some(name) = name else {
            if fmt.is_none() {
                out.push('$'); // `$$`
            } else {
                out.push_str(matched);
            }
            continue;
        };
        let value = match name {
            "RepresentationID" => {
                // A width is not allowed on $RepresentationID$ (Shaka ignores it).
                out.push_str(rep_id);
                continue;
            }
            "Number" => number,
            "Bandwidth" => bandwidth,
            "Time" => time,
            _ => None, // $SubNumber$ (chunked low-latency) is not generated
        };
        let Some(v) = value else {
            out.push_str(matched);
            continue;
        };
        let (width, conv) = fmt.unwrap_or((1, b'd'));
        if width > MAX_TEMPLATE_WIDTH {
            return Err(invalid(format!("template width {width} in {template:?}")));
        }
        let s = match conv {
            b'o' => format!("{v:o}"),
            b'x' => format!("{v:x}"),
            b'X' => format!("{v:X}"),
            _ => v.to_string(),
        };
        for _ in s.len()..width.max(1) {
            out.push('0');
        }
        out.push_str(&s);
    }
    out.push_str(rest);
    Ok(out)
}

fn join(base: &Url, rel: &str) -> Result<Url, ManifestError> {
    base.join(rel.trim())
        .map_err(|e| invalid(format!("cannot resolve URL {rel:?} against {base}: {e}")))
}

/// `"first-last"` (inclusive) → ByteRange.
fn parse_range(s: &str) -> Result<ByteRange, ManifestError> {
    let bad = || invalid(format!("bad byte range {s:?}"));
    let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if b < a || b == u64::MAX {
        return Err(bad());
    }
    Ok(ByteRange {
        offset: a,
        length: b - a + 1,
    })
}

/// Shaka's `TXml.evalDivision`: "30000/1001" or "25".
fn parse_frame_rate(s: &str) -> Option<f64> {
    let v = match s.split_once('/') {
        Some((a, b)) => a.trim().parse::<f64>().ok()? / b.trim().parse::<f64>().ok()?,
        None => s.trim().parse::<f64>().ok()?,
    };
    (v.is_finite() && v > 0.0).then_some(v)
}

fn parse_channels(acc: &[dash_mpd::AudioChannelConfiguration]) -> Option<u32> {
    acc.iter().find_map(|c| {
        let v = c.value.as_deref()?.trim();
        let scheme = c.schemeIdUri.as_str();
        if scheme.contains("dolby") && scheme.contains("audio_channel_configuration") {
            // Dolby: 16-bit hex mask of speaker groups; Shaka counts bits with per-bit weights,
            // a plain popcount is a close approximation (not used for anything exact).
            u32::from_str_radix(v, 16).ok().map(|m| m.count_ones())
        } else {
            v.parse().ok()
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Segment generators: index-addressable so live windows and caps are applied arithmetically
// before anything is allocated.
// ---------------------------------------------------------------------------------------------

/// Smallest `i` in `lo..hi` with `pred(i)` false, assuming `pred` is true then false.
fn partition_point(mut lo: u64, mut hi: u64, pred: impl Fn(u64) -> bool) -> u64 {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// One run of a SegmentTimeline: `count` segments of `d` ticks from `t`.
#[derive(Debug, Clone)]
struct Run {
    /// Raw media time (before PTO), ticks.
    t: i128,
    d: i128,
    count: u64,
    /// Shaka's f64 `startTime` (already PTO-adjusted, unscaled) of the first segment.
    t_f: f64,
    /// End of the last segment: the next run's start when the timeline has a gap/overlap.
    last_end: i128,
}

/// Expands `S` elements like Shaka's `MpdUtils.createTimeline` (negative `@r` up to the next `S`
/// or the period end; gaps/overlaps stretch the previous segment), but without materialising.
fn timeline_runs(
    ss: &[dash_mpd::S],
    timescale: u64,
    pto: u64,
    period_dur_ns: Option<i128>,
) -> Result<Vec<Run>, ManifestError> {
    let ts = i128::from(timescale);
    let pto_i = i128::from(pto);
    let pto_f = pto as f64;
    let mut runs: Vec<Run> = Vec::new();
    let mut last_end = 0i128; // raw ticks (Shaka: −PTO after adjustment)
    let mut last_end_f = -pto_f;
    for (i, s) in ss.iter().enumerate() {
        if s.d == 0 {
            return Err(invalid("SegmentTimeline S@d is missing or 0"));
        }
        let d = i128::from(s.d);
        if d * NS < ts {
            return Err(invalid(format!(
                "SegmentTimeline S@d {d}/{timescale} is below 1 ns"
            )));
        }
        let start = s.t.map_or(last_end, i128::from);
        let start_f = s.t.map_or(last_end_f, |t| t as f64 - pto_f);
        let r = s.r.unwrap_or(0);
        let repeat: i128 = if r >= 0 {
            i128::from(r)
        } else if let Some(next) = ss.get(i + 1) {
            // Until the next S (which must have @t), as Shaka.
            let Some(nt) = next.t.map(i128::from) else {
                break;
            };
            if start >= nt {
                break;
            }
            (nt - start + d - 1) / d - 1
        } else {
            // Until the period end; unknown (live) end: Shaka ignores such an S.
            let Some(pd) = period_dur_ns else {
                break;
            };
            // ceil((pd·ts/1e9 − (start − PTO)) / d) − 1, in exact integers.
            let num = pd
                .saturating_mul(ts)
                .saturating_sub((start - pto_i).saturating_mul(NS));
            if num <= 0 {
                break;
            }
            let den = d.saturating_mul(NS);
            (num + den - 1) / den - 1
        };
        let count = u64::try_from(repeat + 1)
            .map_err(|_| invalid("SegmentTimeline repeat count out of range"))?;
        if let Some(prev) = runs.last_mut() {
            if start <= prev.t {
                return Err(invalid("SegmentTimeline S@t goes backwards"));
            }
            // An overlap that swallows whole repeats drops them (keeps starts increasing);
            // the remaining gap/overlap stretches/shrinks the previous segment (as Shaka).
            let fit = (start - prev.t + prev.d - 1) / prev.d;
            prev.count = prev.count.min(u64::try_from(fit).unwrap_or(u64::MAX));
            prev.last_end = start;
        }
        let span = d
            .checked_mul(i128::from(count))
            .filter(|s| *s < 1i128 << 100)
            .ok_or_else(|| invalid("SegmentTimeline too long (S@r × S@d overflows)"))?;
        runs.push(Run {
            t: start,
            d,
            count,
            t_f: start_f,
            last_end: start + span,
        });
        last_end = start + span;
        // Shaka accumulates startTime += d in f64; for the follow-up S without @t only the sum
        // matters, which is exact below 2^53 (and close enough beyond).
        last_end_f = start_f + span as f64;
    }
    Ok(runs)
}

/// What a generator produces for index `i` (within one Representation of one Period).
struct Seg {
    start_ns: i128,
    end_ns: i128,
    start_f: f64,
    /// Shaka 2.x's start within the Period (what `start_f` adds the Period start to).
    rel_f: f64,
    number: u64,
    url: Url,
    range: Option<ByteRange>,
}

enum Gen<'a> {
    /// SegmentTemplate@duration with `$Number$`.
    Number {
        template: &'a str,
        base: &'a Url,
        rep_id: &'a str,
        bandwidth: u64,
        start_number: u64,
        /// Segment duration as `dur_num / timescale` nanoseconds (dur_num = d·1e9).
        dur_num: i128,
        timescale: u64,
        d_ticks: f64,
        seg_f: f64,
        ps_ns: i128,
        ps_f: f64,
        count: u64,
    },
    /// SegmentTemplate + SegmentTimeline.
    Timeline {
        template: &'a str,
        base: &'a Url,
        rep_id: &'a str,
        bandwidth: u64,
        start_number: u64,
        runs: Vec<Run>,
        /// Prefix sums of run counts.
        firsts: Vec<u64>,
        timescale: u64,
        pto: u64,
        ps_ns: i128,
        ps_f: f64,
    },
    /// SegmentList (URLs given), times from @duration / timeline / the period.
    List {
        urls: Vec<(Url, Option<ByteRange>)>,
        start_number: u64,
        times: ListTimes,
        ps_ns: i128,
        ps_f: f64,
    },
}

enum ListTimes {
    Duration {
        dur_num: i128,
        timescale: u64,
        /// Shaka's f64 period-relative starts (accumulated `+= d`), one per URL.
        starts_f: Vec<f64>,
    },
    Timeline {
        runs: Vec<Run>,
        firsts: Vec<u64>,
        timescale: u64,
        pto: u64,
    },
    Single {
        period_dur_ns: i128,
    },
}

fn run_of(firsts: &[u64], i: u64) -> usize {
    firsts.partition_point(|f| *f <= i).saturating_sub(1)
}

/// (start, end) of timeline segment `i`, raw ticks.
fn run_times(runs: &[Run], firsts: &[u64], i: u64) -> (i128, i128, usize, u64) {
    let r = run_of(firsts, i);
    let run = &runs[r];
    let j = i - firsts[r];
    let start = run.t + run.d * i128::from(j);
    let end = if j + 1 == run.count {
        run.last_end
    } else {
        start + run.d
    };
    (start, end, r, j)
}

/// Shaka's f64 `startTime` of segment `j` of `run` (accumulated `+= d` like createTimeline).
fn run_start_f(run: &Run, j: u64) -> f64 {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: below it the sums are exact
    let span = (run.d * i128::from(run.count)) as f64;
    if run.t_f.abs() + span < EXACT {
        run.t_f + (run.d * i128::from(j)) as f64
    } else if j <= 4096 {
        let mut x = run.t_f;
        for _ in 0..j {
            x += run.d as f64;
        }
        x
    } else {
        // Exact anyway while values stay below 2^53 (any realistic timeline).
        run.t_f + (run.d * i128::from(j)) as f64
    }
}

impl Gen<'_> {
    fn count(&self) -> u64 {
        match self {
            Gen::Number { count, .. } => *count,
            Gen::Timeline { runs, firsts, .. } => {
                firsts.last().copied().unwrap_or(0) + runs.last().map_or(0, |r| r.count)
            }
            Gen::List { urls, times, .. } => match times {
                ListTimes::Timeline { runs, firsts, .. } => (urls.len() as u64)
                    .min(firsts.last().copied().unwrap_or(0) + runs.last().map_or(0, |r| r.count)),
                _ => urls.len() as u64,
            },
        }
    }

    /// Period-relative (start, end) in ns.
    fn times(&self, i: u64) -> (i128, i128) {
        match self {
            Gen::Number {
                dur_num, timescale, ..
            } => {
                let ts = i128::from(*timescale);
                let k = i128::from(i);
                (
                    k.saturating_mul(*dur_num) / ts,
                    (k + 1).saturating_mul(*dur_num) / ts,
                )
            }
            Gen::Timeline {
                runs,
                firsts,
                timescale,
                pto,
                ..
            }
            | Gen::List {
                times:
                    ListTimes::Timeline {
                        runs,
                        firsts,
                        timescale,
                        pto,
                    },
                ..
            } => {
                let (s, e, _, _) = run_times(runs, firsts, i);
                let p = i128::from(*pto);
                (
                    ticks_to_ns(s - p, *timescale),
                    ticks_to_ns(e - p, *timescale),
                )
            }
            Gen::List {
                times:
                    ListTimes::Duration {
                        dur_num, timescale, ..
                    },
                ..
            } => {
                let ts = i128::from(*timescale);
                let k = i128::from(i);
                (
                    k.saturating_mul(*dur_num) / ts,
                    (k + 1).saturating_mul(*dur_num) / ts,
                )
            }
            Gen::List {
                times: ListTimes::Single { period_dur_ns, .. },
                ..
            } => (0, *period_dur_ns),
        }
    }

    fn make(&self, i: u64) -> Result<Seg, ManifestError> {
        let (rs, re) = self.times(i);
        match self {
            Gen::Number {
                template,
                base,
                rep_id,
                bandwidth,
                start_number,
                d_ticks,
                seg_f,
                ps_ns,
                ps_f,
                ..
            } => {
                let number = start_number.saturating_add(i);
                // $Time$ without a timeline: position × @duration, no PTO (as Shaka).
                let time = (i as f64 * d_ticks).round() as u64;
                let url = join(
                    base,
                    &fill_template(template, rep_id, Some(number), Some(*bandwidth), Some(time))?,
                )?;
                Ok(Seg {
                    start_ns: ps_ns + rs,
                    end_ns: ps_ns + re,
                    // segment_template.js: positionWithinPeriod * segmentDuration + periodStart
                    start_f: i as f64 * seg_f + ps_f,
                    rel_f: i as f64 * seg_f,
                    number,
                    url,
                    range: None,
                })
            }
            Gen::Timeline {
                template,
                base,
                rep_id,
                bandwidth,
                start_number,
                runs,
                firsts,
                timescale,
                ps_ns,
                ps_f,
                ..
            } => {
                let (t, _, r, j) = run_times(runs, firsts, i);
                let number = start_number.saturating_add(i);
                let time = u64::try_from(t).unwrap_or(u64::MAX);
                let url = join(
                    base,
                    &fill_template(template, rep_id, Some(number), Some(*bandwidth), Some(time))?,
                )?;
                Ok(Seg {
                    start_ns: ps_ns + rs,
                    end_ns: ps_ns + re,
                    // TimelineSegmentIndex.get: periodStart + (t − PTO)/timescale
                    start_f: ps_f + run_start_f(&runs[r], j) / *timescale as f64,
                    rel_f: run_start_f(&runs[r], j) / *timescale as f64,
                    number,
                    url,
                    range: None,
                })
            }
            Gen::List {
                urls,
                start_number,
                times,
                ps_ns,
                ps_f,
            } => {
                let (url, range) = urls[i as usize].clone();
                let rel_f = match times {
                    ListTimes::Duration { starts_f, .. } => starts_f[i as usize],
                    ListTimes::Timeline {
                        runs,
                        firsts,
                        timescale,
                        ..
                    } => {
                        let (_, _, r, j) = run_times(runs, firsts, i);
                        run_start_f(&runs[r], j) / *timescale as f64
                    }
                    ListTimes::Single { .. } => 0.0,
                };
                let start_f = ps_f + rel_f;
                Ok(Seg {
                    start_ns: ps_ns + rs,
                    end_ns: ps_ns + re,
                    start_f,
                    rel_f,
                    number: start_number.saturating_add(i),
                    url,
                    range,
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inheritance (Representation → AdaptationSet → Period), per attribute, as Shaka's
// `MpdUtils.inheritAttribute` / `inheritChild`.
// ---------------------------------------------------------------------------------------------

fn first<'a, T, U>(levels: &[Option<&'a T>], f: impl Fn(&'a T) -> Option<U>) -> Option<U> {
    levels.iter().flatten().find_map(|x| f(x))
}

struct Builder<'a> {
    url: &'a Url,
    /// MPD@profiles, split on `,` as Shaka does (no trimming).
    profiles: Vec<String>,
    now_unix: f64,
    now_ns: i128,
    total_segments: usize,
    max_seg: Duration,
    /// Bytes of URLs held by the segments so far, and the most allowed.
    url_bytes: usize,
    url_budget: usize,
}

struct PeriodCtx<'a> {
    index: usize,
    raw: &'a dash_mpd::Period,
    base: Url,
    start: Duration,
    start_f: f64,
    duration: Option<Duration>,
    /// Last Period of a dynamic MPD: may still grow, so segment lists are not fitted to it.
    open: bool,
}

impl PeriodCtx<'_> {
    /// Known end, unless this is the still-growing last Period of a live MPD.
    fn end(&self) -> Option<Duration> {
        if self.open {
            None
        } else {
            self.duration.map(|d| self.start + d)
        }
    }
}

struct LiveCtx {
    /// now − AST, ns on the presentation timeline.
    edge_ns: i128,
    tsbd_ns: Option<i128>,
}

impl<'a> Builder<'a> {
    fn new(url: &'a Url, now_unix: f64, input_len: usize) -> Self {
        Builder {
            url,
            profiles: Vec::new(),
            now_unix,
            // Split so the nanoseconds keep their precision (1.8e18 ns is beyond f64's 2^53).
            now_ns: now_unix.floor() as i128 * NS
                + ((now_unix - now_unix.floor()) * 1e9).round() as i128,
            total_segments: 0,
            max_seg: Duration::ZERO,
            url_bytes: 0,
            url_budget: url_budget(input_len),
        }
    }

    /// Accounts for `bytes` more of URL copies held by segments.
    fn charge_urls(&mut self, bytes: usize) -> Result<(), ManifestError> {
        self.url_bytes = self.url_bytes.saturating_add(bytes);
        if self.url_bytes > self.url_budget {
            return Err(too_many_url_bytes(self.url_budget));
        }
        Ok(())
    }

    fn build(mut self, raw: &dash_mpd::MPD) -> Result<Mpd, ManifestError> {
        let dynamic = match raw.mpdtype.as_deref().map(str::trim) {
            None | Some("static") => false,
            Some("dynamic") => true,
            Some(other) => return Err(invalid(format!("MPD@type {other:?}"))),
        };
        if raw.periods.is_empty() {
            return Err(invalid("no Period"));
        }
        self.profiles = raw
            .profiles
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::to_owned)
            .collect();
        if raw.periods.len() > MAX_ELEMENTS {
            return Err(invalid(format!("more than {MAX_ELEMENTS} Periods")));
        }
        let ast = raw.availabilityStartTime.as_ref();
        let live = if dynamic {
            let ast = ast.ok_or_else(|| invalid("dynamic MPD without availabilityStartTime"))?;
            Some(LiveCtx {
                edge_ns: self.now_ns - unix_ns(ast),
                tsbd_ns: raw.timeShiftBufferDepth.map(dur_ns),
            })
        } else {
            None
        };
        let mpd_base = match raw.base_url.first() {
            Some(b) => join(self.url, &b.base)?,
            None => self.url.clone(),
        };
        let location = raw
            .locations
            .first()
            .map(|l| join(self.url, &l.url))
            .transpose()?;

        // Period timing, as Shaka's parsePeriods_.
        let mut periods = Vec::new();
        let mut prev_end: Option<(Duration, f64)> = Some((Duration::ZERO, 0.0));
        let n = raw.periods.len();
        for (i, p) in raw.periods.iter().enumerate() {
            if p.href.is_some() && p.adaptations.is_empty() {
                if p.href.as_deref() == Some("urn:mpeg:dash:resolve-to-zero:2013") {
                    continue;
                }
                return Err(ManifestError::UnsupportedDash("xlink Period".into()));
            }
            let (start, start_f) = match p.start {
                Some(s) => (s, shaka_seconds(s)),
                None => match prev_end {
                    Some(pe) => pe,
                    // Shaka skips the remaining Periods when one has no known end.
                    None => break,
                },
            };
            let next_start = raw.periods.get(i + 1).and_then(|n| n.start);
            let (duration, duration_f) = if let Some(ns) = next_start {
                let d = ns
                    .checked_sub(start)
                    .ok_or_else(|| invalid("Period@start values go backwards"))?;
                (Some(d), Some(shaka_seconds(ns) - start_f))
            } else if i + 1 == n && raw.mediaPresentationDuration.is_some() {
                let mpd_d = raw.mediaPresentationDuration.unwrap_or_default();
                let d = mpd_d.checked_sub(start).ok_or_else(|| {
                    invalid("last Period starts after the end of the presentation")
                })?;
                (Some(d), Some(shaka_seconds(mpd_d) - start_f))
            } else {
                (p.duration, p.duration.map(shaka_seconds))
            };
            prev_end = duration.map(|d| (start + d, start_f + duration_f.unwrap_or(0.0)));
            let base = match p.BaseURL.first() {
                Some(b) => join(&mpd_base, &b.base)?,
                None => mpd_base.clone(),
            };
            let ctx = PeriodCtx {
                index: periods.len(),
                raw: p,
                base,
                start,
                start_f,
                duration,
                open: dynamic && i + 1 == n,
            };
            if duration == Some(Duration::ZERO) {
                continue;
            }
            periods.push(self.period(&ctx, live.as_ref())?);
        }

        let mpd_max = raw.maxSegmentDuration.unwrap_or_default();
        Ok(Mpd {
            url: self.url.clone(),
            dynamic,
            periods,
            availability_start: ast.map(unix_seconds),
            publish_time: raw.publishTime.as_ref().map(unix_seconds),
            min_update_period: raw.minimumUpdatePeriod,
            time_shift_buffer_depth: raw.timeShiftBufferDepth,
            suggested_presentation_delay: raw.suggestedPresentationDelay,
            media_presentation_duration: raw.mediaPresentationDuration,
            min_buffer_time: raw.minBufferTime,
            max_segment_duration: self.max_seg.max(mpd_max),
            location,
            now_unix: self.now_unix,
            utc_timing: raw
                .UTCTiming
                .iter()
                .map(|u| (u.schemeIdUri.clone(), u.value.clone().unwrap_or_default()))
                .collect(),
        })
    }

    fn period(
        &mut self,
        pc: &PeriodCtx<'_>,
        live: Option<&LiveCtx>,
    ) -> Result<Period, ManifestError> {
        if pc.raw.adaptations.len() > MAX_ELEMENTS {
            return Err(invalid(format!("more than {MAX_ELEMENTS} AdaptationSets")));
        }
        let mut sets = Vec::new();
        for a in &pc.raw.adaptations {
            if a.href.is_some() && a.representations.is_empty() {
                if a.href.as_deref() == Some("urn:mpeg:dash:resolve-to-zero:2013") {
                    continue;
                }
                return Err(ManifestError::UnsupportedDash("xlink AdaptationSet".into()));
            }
            if a.representations.len() > MAX_ELEMENTS {
                return Err(invalid(format!("more than {MAX_ELEMENTS} Representations")));
            }
            let Some(stream_type) = stream_type_of(a) else {
                continue;
            };
            let base = match a.BaseURL.first() {
                Some(b) => join(&pc.base, &b.base)?,
                None => pc.base.clone(),
            };
            let mut reps = Vec::new();
            for r in &a.representations {
                if let Some(rep) = self.representation(pc, a, r, &base, live)? {
                    reps.push(rep);
                }
            }
            if reps.is_empty() {
                continue;
            }
            sets.push(AdaptationSet {
                id: a.id.clone(),
                stream_type,
                lang: a.lang.clone(),
                mime_type: a.mimeType.clone(),
                codecs: a.codecs.clone(),
                label: a.Label.first().map(|l| l.content.clone()),
                roles: a.Role.iter().filter_map(|r| r.value.clone()).collect(),
                encrypted: !a.ContentProtection.is_empty()
                    || a.representations
                        .iter()
                        .any(|r| !r.ContentProtection.is_empty()),
                representations: reps,
            });
        }
        Ok(Period {
            id: pc.raw.id.clone(),
            start: pc.start,
            start_seconds: pc.start_f,
            duration: pc.duration,
            adaptation_sets: sets,
        })
    }

    fn representation(
        &mut self,
        pc: &PeriodCtx<'_>,
        a: &dash_mpd::AdaptationSet,
        r: &dash_mpd::Representation,
        as_base: &Url,
        live: Option<&LiveCtx>,
    ) -> Result<Option<Representation>, ManifestError> {
        if r.href.is_some() {
            return Err(ManifestError::UnsupportedDash(
                "xlink Representation".into(),
            ));
        }
        let id =
            r.id.clone()
                .ok_or_else(|| invalid("Representation without @id"))?;
        let bandwidth = r
            .bandwidth
            .ok_or_else(|| invalid(format!("Representation {id:?} without @bandwidth")))?;
        let base = match r.BaseURL.first() {
            Some(b) => join(as_base, &b.base)?,
            None => as_base.clone(),
        };
        let p = pc.raw;
        let mut rep = Representation {
            id: id.clone(),
            bandwidth,
            codecs: r.codecs.clone().or_else(|| a.codecs.clone()),
            mime_type: r.mimeType.clone().or_else(|| a.mimeType.clone()),
            width: r.width.or(a.width),
            height: r.height.or(a.height),
            frame_rate: r
                .frameRate
                .as_deref()
                .or(a.frameRate.as_deref())
                .and_then(parse_frame_rate),
            video_range: None,
            channels: parse_channels(&r.AudioChannelConfiguration)
                .or_else(|| parse_channels(&a.AudioChannelConfiguration)),
            lang: a.lang.clone().or_else(|| r.lang.clone()),
            label: r
                .Label
                .first()
                .or(a.Label.first())
                .map(|l| l.content.clone()),
            init: None,
            index: None,
            presentation_time_offset: Duration::ZERO,
            segments: SegmentSource::List(Vec::new()),
        };
        rep.video_range = shaka_hdr(&self.profiles, rep.codecs.as_deref(), a);
        let period_dur_ns = pc.duration.map(dur_ns);
        let ps_ns = dur_ns(pc.start);
        let ps_f = pc.start_f;

        // Shaka's precedence among the nearest-inherited addressing elements.
        let bases = [
            r.SegmentBase.as_ref(),
            a.SegmentBase.as_ref(),
            p.SegmentBase.as_ref(),
        ];
        let lists = [
            r.SegmentList.as_ref(),
            a.SegmentList.as_ref(),
            p.SegmentList.as_ref(),
        ];
        let tpls = [
            r.SegmentTemplate.as_ref(),
            a.SegmentTemplate.as_ref(),
            p.SegmentTemplate.as_ref(),
        ];

        let gen = if bases.iter().any(Option::is_some) {
            let timescale = first(&bases, |b| b.timescale).unwrap_or(1);
            if timescale == 0 {
                return Err(invalid(format!("Representation {id:?}: timescale 0")));
            }
            let pto = first(&bases, |b| b.presentationTimeOffset).unwrap_or(0);
            rep.presentation_time_offset = ns_to_dur(i128::from(pto) * NS / i128::from(timescale));
            rep.init = init_resource(first(&bases, |b| b.Initialization.as_ref()), &base)?;
            let ri = first(&bases, |b| b.representation_index.as_ref());
            let range = first(&bases, |b| b.indexRange.as_deref())
                .or_else(|| ri.and_then(|ri| ri.range.as_deref()))
                .map(parse_range)
                .transpose()?;
            let index_url = match ri.and_then(|ri| ri.sourceURL.as_deref()) {
                Some(s) => join(&base, s)?,
                None => base.clone(),
            };
            if range.is_some() || index_url != base {
                let index = Resource {
                    url: index_url.clone(),
                    range,
                };
                rep.index = Some(index.clone());
                rep.segments = SegmentSource::NeedsIndex(Box::new(SidxContext {
                    index,
                    media_url: base.clone(),
                    index_is_external: index_url != base,
                    init: rep.init.clone(),
                    period_index: pc.index,
                    period_start: pc.start,
                    period_start_seconds: ps_f,
                    period_end: pc.end(),
                    timescale,
                    presentation_time_offset: pto,
                    webm: rep
                        .mime_type
                        .as_deref()
                        .is_some_and(|m| m.trim().ends_with("/webm")),
                }));
                return Ok(Some(rep));
            }
            // SegmentBase without index: the whole resource is one segment.
            single_segment(&base, period_dur_ns, ps_ns, ps_f)
        } else if lists.iter().any(Option::is_some) {
            let timescale = first(&lists, |l| l.timescale).unwrap_or(1);
            if timescale == 0 {
                return Err(invalid(format!("Representation {id:?}: timescale 0")));
            }
            rep.init = init_resource(first(&lists, |l| l.Initialization.as_ref()), &base)?;
            // Shaka: the first level with SegmentURL children provides them.
            let seg_urls = lists
                .iter()
                .flatten()
                .map(|l| &l.segment_urls)
                .find(|u| !u.is_empty())
                .map_or(&[][..], Vec::as_slice);
            if seg_urls.len() > MAX_SEGMENTS {
                return Err(too_many(&id));
            }
            let mut urls = Vec::with_capacity(seg_urls.len());
            for su in seg_urls {
                let url = match su.media.as_deref() {
                    Some(m) => join(&base, m)?,
                    None => base.clone(),
                };
                let range = su.mediaRange.as_deref().map(parse_range).transpose()?;
                self.charge_urls(url.as_str().len())?;
                urls.push((url, range));
            }
            // dash-mpd 0.20 does not expose SegmentList@startNumber/@presentationTimeOffset.
            let (start_number, pto) = (1u64, 0u64);
            let duration = first(&lists, |l| l.duration);
            let timeline = first(&lists, |l| l.SegmentTimeline.as_ref());
            let times = if let Some(tl) = timeline {
                let runs = timeline_runs(&tl.segments, timescale, pto, period_dur_ns)?;
                if runs.is_empty() {
                    return Err(invalid(format!(
                        "Representation {id:?}: empty SegmentTimeline"
                    )));
                }
                let firsts = prefix_firsts(&runs);
                ListTimes::Timeline {
                    runs,
                    firsts,
                    timescale,
                    pto,
                }
            } else if let Some(d) = duration {
                if d == 0 || i128::from(d) * NS < i128::from(timescale) {
                    return Err(invalid(format!(
                        "Representation {id:?}: SegmentList@duration {d}/{timescale}"
                    )));
                }
                // segment_list.js: startTime = d·(startNumber−1), then += d per segment.
                let seg_f = d as f64 / timescale as f64;
                let mut acc = seg_f * (start_number as f64 - 1.0);
                let starts_f = urls
                    .iter()
                    .map(|_| {
                        let s = acc;
                        acc += seg_f;
                        s
                    })
                    .collect();
                ListTimes::Duration {
                    dur_num: i128::from(d) * NS,
                    timescale,
                    starts_f,
                }
            } else if urls.len() == 1 {
                let pd = period_dur_ns.ok_or_else(|| {
                    invalid(format!(
                        "Representation {id:?}: one SegmentURL without duration and unknown Period duration"
                    ))
                })?;
                ListTimes::Single { period_dur_ns: pd }
            } else {
                return Err(invalid(format!(
                    "Representation {id:?}: SegmentList without @duration or SegmentTimeline"
                )));
            };
            Some(Gen::List {
                urls,
                start_number,
                times,
                ps_ns,
                ps_f,
            })
        } else if tpls.iter().any(Option::is_some) {
            let timescale = first(&tpls, |t| t.timescale).unwrap_or(1);
            if timescale == 0 {
                return Err(invalid(format!("Representation {id:?}: timescale 0")));
            }
            let pto = first(&tpls, |t| t.presentationTimeOffset).unwrap_or(0);
            rep.presentation_time_offset = ns_to_dur(i128::from(pto) * NS / i128::from(timescale));
            let start_number = first(&tpls, |t| t.startNumber).unwrap_or(1);
            let end_number = first(&tpls, |t| t.endNumber);
            // Init: @initialization template, else an Initialization child.
            if let Some(init) = first(&tpls, |t| t.initialization.as_deref()) {
                let u = fill_template(init, &id, None, Some(bandwidth), None)?;
                rep.init = Some(Resource {
                    url: join(&base, &u)?,
                    range: None,
                });
            } else {
                rep.init = init_resource(first(&tpls, |t| t.Initialization.as_ref()), &base)?;
            }
            let media = first(&tpls, |t| t.media.as_deref());
            let timeline = first(&tpls, |t| t.SegmentTimeline.as_ref());
            let duration = first(&tpls, |t| t.duration);
            // Shaka: an index template wins over timeline/duration.
            if let Some(index_tpl) = first(&tpls, |t| t.index.as_deref()) {
                let u = fill_template(index_tpl, &id, None, Some(bandwidth), None)?;
                let index = Resource {
                    url: join(&base, &u)?,
                    range: None,
                };
                rep.index = Some(index.clone());
                rep.segments = SegmentSource::NeedsIndex(Box::new(SidxContext {
                    index,
                    media_url: base.clone(),
                    index_is_external: true,
                    init: rep.init.clone(),
                    period_index: pc.index,
                    period_start: pc.start,
                    period_start_seconds: ps_f,
                    period_end: pc.end(),
                    timescale,
                    presentation_time_offset: pto,
                    // A template's index is a `sidx` (Shaka reads WebM Cues by SegmentBase only).
                    webm: false,
                }));
                return Ok(Some(rep));
            }
            let media = media.ok_or_else(|| {
                invalid(format!(
                    "Representation {id:?}: SegmentTemplate without @media"
                ))
            })?;
            if let Some(tl) = timeline {
                let runs = timeline_runs(&tl.segments, timescale, pto, period_dur_ns)?;
                let firsts = prefix_firsts(&runs);
                let gen = Gen::Timeline {
                    template: media,
                    base: &base,
                    rep_id: &id,
                    bandwidth,
                    start_number,
                    runs,
                    firsts,
                    timescale,
                    pto,
                    ps_ns,
                    ps_f,
                };
                let segs = self.expand(pc, live, &rep.init, &id, gen, end_number, start_number)?;
                rep.segments = SegmentSource::List(segs);
                return Ok(Some(rep));
            }
            let d = duration.ok_or_else(|| {
                invalid(format!(
                    "Representation {id:?}: SegmentTemplate without @duration or SegmentTimeline"
                ))
            })?;
            if !(d.is_finite() && d > 0.0 && d < 1e18) {
                return Err(invalid(format!(
                    "Representation {id:?}: SegmentTemplate@duration {d}"
                )));
            }
            let dur_num = if d.fract() == 0.0 {
                d as i128 * NS
            } else {
                (d * 1e9).round() as i128
            };
            if dur_num / i128::from(timescale) == 0 {
                return Err(invalid(format!(
                    "Representation {id:?}: segment duration {d}/{timescale} is below 1 ns"
                )));
            }
            // How many segments the period (and, live, the clock) allows.
            let by_period = period_dur_ns.map(|pd| {
                // ceil(pd / seg) = ceil(pd·ts / dur_num)
                let n = pd.saturating_mul(i128::from(timescale));
                u64::try_from((n + dur_num - 1) / dur_num).unwrap_or(u64::MAX)
            });
            let count = match live {
                Some(l) => {
                    let edge_rel = l.edge_ns - ps_ns;
                    // Segments whose end ≤ edge: floor(edge·ts / dur_num).
                    let avail = if edge_rel <= 0 {
                        0
                    } else {
                        u64::try_from(edge_rel.saturating_mul(i128::from(timescale)) / dur_num)
                            .unwrap_or(u64::MAX)
                    };
                    by_period.map_or(avail, |b| b.min(avail))
                }
                None => by_period.ok_or_else(|| {
                    invalid(format!(
                        "Representation {id:?}: static SegmentTemplate@duration needs a Period or MPD duration"
                    ))
                })?,
            };
            // Known even before any segment exists (live start delay).
            self.max_seg = self.max_seg.max(ns_to_dur(dur_num / i128::from(timescale)));
            let gen = Gen::Number {
                template: media,
                base: &base,
                rep_id: &id,
                bandwidth,
                start_number,
                dur_num,
                timescale,
                d_ticks: d,
                seg_f: d / timescale as f64,
                ps_ns,
                ps_f,
                count,
            };
            let segs = self.expand(pc, live, &rep.init, &id, gen, end_number, start_number)?;
            rep.segments = SegmentSource::List(segs);
            return Ok(Some(rep));
        } else {
            // No addressing: the BaseURL is the whole (single-segment) resource.
            single_segment(&base, period_dur_ns, ps_ns, ps_f)
        };
        let Some(gen) = gen else {
            // Single-resource Representation with unknown duration: nothing to schedule.
            return Ok(None);
        };
        let segs = self.expand(pc, live, &rep.init, &id, gen, None, 1)?;
        rep.segments = SegmentSource::List(segs);
        Ok(Some(rep))
    }

    /// Applies period fitting, the live window, endNumber and the caps, then materialises.
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &mut self,
        pc: &PeriodCtx<'_>,
        live: Option<&LiveCtx>,
        init: &Option<Resource>,
        id: &str,
        gen: Gen<'_>,
        end_number: Option<u64>,
        start_number: u64,
    ) -> Result<Vec<Segment>, ManifestError> {
        let mut hi = gen.count();
        if let Some(en) = end_number {
            // @endNumber: the last segment's number (inclusive).
            hi = hi.min(en.saturating_add(1).saturating_sub(start_number));
        }
        let period_dur = if pc.open {
            None
        } else {
            pc.duration.map(dur_ns)
        };
        // Drop segments starting at/after the period end (Shaka fit()/fitTimeline()).
        if let Some(pd) = period_dur {
            hi = partition_point(0, hi, |i| gen.times(i).0 < pd);
        }
        // Drop segments ending before the period start, and (live) outside the time-shift window.
        let window_rel = live.and_then(|l| l.tsbd_ns.map(|t| l.edge_ns - t - dur_ns(pc.start)));
        let lo = partition_point(0, hi, |i| {
            let end = gen.times(i).1;
            end <= 0 || window_rel.is_some_and(|w| end < w)
        });
        let mut lo = lo;
        if live.is_some() && (hi - lo) as u128 > MAX_LIVE_SEGMENTS as u128 {
            lo = hi - MAX_LIVE_SEGMENTS as u64; // keep the newest
        } else if (hi - lo) as u128 > MAX_SEGMENTS as u128 {
            return Err(too_many(id));
        }
        let n = (hi - lo) as usize;
        self.total_segments += n;
        if self.total_segments > MAX_TOTAL_SEGMENTS {
            return Err(invalid(format!(
                "more than {MAX_TOTAL_SEGMENTS} segments in the MPD"
            )));
        }
        let ps = dur_ns(pc.start);
        let pend = period_dur.map(|d| ps + d);
        let init_len = init.as_ref().map_or(0, |r| r.url.as_str().len());
        let mut out = Vec::with_capacity(n);
        for i in lo..hi {
            let s = gen.make(i)?;
            self.charge_urls(s.url.as_str().len() + init_len)?;
            let end = pend.map_or(s.end_ns, |pe| s.end_ns.min(pe));
            let start = ns_to_dur(s.start_ns);
            let duration = ns_to_dur(end).saturating_sub(start);
            self.max_seg = self.max_seg.max(duration);
            out.push(Segment {
                resource: Resource {
                    url: s.url,
                    range: s.range,
                },
                start,
                duration,
                sequence: s.number,
                // First segment of a later Period (not merely the first of a live window).
                discontinuity: pc.index > 0 && i == 0,
                discontinuity_sequence: pc.index as u64,
                key: None,
                init: init.clone(),
                init_key: None,
                gap: false,
                start_seconds: Some(s.start_f),
                media_offset_ns: None,
                program_date_time_ns: None,
                // 0.6 names a swarm after the first Period's streams only; ids of later
                // Periods would repeat the first's (`0.000`, …) in the same swarm.
                start_in_period_seconds: (pc.index == 0).then_some(s.rel_f),
            });
        }
        Ok(out)
    }
}

fn too_many(id: &str) -> ManifestError {
    invalid(format!(
        "Representation {id:?} has more than {MAX_SEGMENTS} segments"
    ))
}

fn prefix_firsts(runs: &[Run]) -> Vec<u64> {
    let mut acc = 0u64;
    runs.iter()
        .map(|r| {
            let f = acc;
            acc = acc.saturating_add(r.count);
            f
        })
        .collect()
}

fn single_segment<'a>(
    base: &Url,
    period_dur_ns: Option<i128>,
    ps_ns: i128,
    ps_f: f64,
) -> Option<Gen<'a>> {
    let pd = period_dur_ns?;
    Some(Gen::List {
        urls: vec![(base.clone(), None)],
        start_number: 1,
        times: ListTimes::Single { period_dur_ns: pd },
        ps_ns,
        ps_f,
    })
}

fn init_resource(
    init: Option<&dash_mpd::Initialization>,
    base: &Url,
) -> Result<Option<Resource>, ManifestError> {
    let Some(init) = init else {
        return Ok(None);
    };
    let url = match init.sourceURL.as_deref() {
        Some(s) => join(base, s)?,
        None => base.clone(),
    };
    let range = init.range.as_deref().map(parse_range).transpose()?;
    Ok(Some(Resource { url, range }))
}

fn codec_type(codecs: &str) -> Option<MediaType> {
    let c = codecs.trim().to_ascii_lowercase();
    const VIDEO: [&str; 10] = [
        "avc1", "avc3", "hvc1", "hev1", "dvh1", "dvhe", "av01", "vp09", "vp8", "vp9",
    ];
    const AUDIO: [&str; 10] = [
        "mp4a", "ac-3", "ec-3", "ac-4", "opus", "flac", "vorbis", "mha1", "dtsc", "mp3",
    ];
    let has = |list: &[&str]| {
        c.split(',')
            .any(|p| list.iter().any(|x| p.trim().starts_with(x)))
    };
    // Muxed audio+video counts as video.
    if has(&VIDEO) {
        Some(MediaType::Video)
    } else if has(&AUDIO) {
        Some(MediaType::Audio)
    } else if c.starts_with("stpp") || c.starts_with("wvtt") {
        Some(MediaType::Subtitles)
    } else {
        None
    }
}

fn stream_type_of(a: &dash_mpd::AdaptationSet) -> Option<MediaType> {
    let rep0 = a.representations.first();
    let content_type = a
        .contentType
        .as_deref()
        .or_else(|| rep0.and_then(|r| r.contentType.as_deref()));
    let mime = a
        .mimeType
        .as_deref()
        .or_else(|| rep0.and_then(|r| r.mimeType.as_deref()))
        .unwrap_or("");
    let codecs = a
        .codecs
        .as_deref()
        .or_else(|| rep0.and_then(|r| r.codecs.as_deref()))
        .unwrap_or("");
    let from_codecs = codec_type(codecs);
    let from_mime = || match mime.split('/').next().unwrap_or("") {
        "video" => Some(MediaType::Video),
        "audio" => Some(MediaType::Audio),
        "text" => Some(MediaType::Subtitles),
        "application" if mime.contains("ttml") || mime.contains("vtt") => {
            Some(MediaType::Subtitles)
        }
        "application" if from_codecs == Some(MediaType::Subtitles) => Some(MediaType::Subtitles),
        _ => None,
    };
    match content_type.map(str::trim) {
        Some("video") => Some(MediaType::Video),
        Some("audio") => Some(MediaType::Audio),
        Some("text") => Some(MediaType::Subtitles),
        Some("image") => None,
        _ => from_mime().or(from_codecs),
    }
}

#[cfg(test)]
mod tests;
