//! DASH front-end of a session: the MPD's tracks (one video and one audio adaptation set,
//! ABR over each one's Representations), each Representation flattened over all Periods into
//! one media playlist for the shared fetch loop, `sidx` fetches for SegmentBase, and live MPD
//! refreshes. Every decision about the MPD itself is delegated to the pure `manifest::dash`.
//!
//! Period boundaries: the same track continues in the next Period (matched by adaptation set
//! id, else by position among its kind; Representation by id, else by position). Its first
//! segment is marked discontinuous, so the fetch loop sends DISCONT and the new init segment.
//! Segment numbers restart per Period, so each segment's `sequence` is made unique and
//! increasing as `Period@start seconds << 32 | number`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use url::Url;

use super::context::{lock, Shared};
use super::origin::http_error;
use super::stream::{NewStream, Opened};
use super::{manifest_error, EngineError, ErrorKind, CAT};
use crate::abr;
use crate::manifest::dash::{self as mpd, AdaptationSet, Mpd, Period, SegmentSource};
use crate::media::{MediaPlaylist, Resource, Segment, StreamType, Variant};
use crate::p2p::dash_streams::shaka_streams;
use crate::p2p::identity::{StreamProperties, StreamType as P2pStreamType};

/// Segment indexes kept (SegmentBase); each is small, a few per Representation.
const MAX_CACHED_INDEXES: usize = 64;

#[derive(Default)]
pub(super) struct DashFront {
    state: Mutex<Option<DashState>>,
    /// One MPD reload at a time: the audio and video fetch loops both ask for one.
    reloading: tokio::sync::Mutex<()>,
}

struct DashState {
    /// Where MPD updates come from: `Location` if the MPD gave one, else its final URL.
    reload_url: Url,
    bytes: Bytes,
    fetched_at: Instant,
    mpd: Arc<Mpd>,
    tracks: Vec<Track>,
    /// Fetched `sidx` boxes by index resource.
    indexes: HashMap<Resource, Bytes>,
}

/// One output stream: an adaptation set picked in the first Period played, followed through
/// the other Periods.
#[derive(Debug, Clone)]
struct Track {
    kind: StreamType,
    adaptation_set_id: Option<String>,
    /// Position among the adaptation sets of its kind.
    position: usize,
    /// Representation ids of the first Period (the variants' order).
    representation_ids: Vec<String>,
}

/// Wall clock in Unix seconds: live DASH availability is defined against it.
fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl DashFront {
    /// Fetches and parses the MPD and describes the streams to play.
    pub async fn open(&self, shared: &Shared, location: &Url) -> Result<Opened, EngineError> {
        let (bytes, final_url) = shared
            .fetch_manifest(location)
            .await
            .inspect_err(|e| gst::warning!(CAT, "MPD {location}: {}", e.message))?;
        let now = now_unix();
        let parsed = mpd::parse(&bytes, &final_url, now)
            .map_err(|e| manifest_error(e, &final_url))
            .inspect_err(|e| gst::warning!(CAT, "{}", e.message))?;
        let live_start = parsed.live_start(now);
        let period_index = match live_start {
            Some(t) => parsed
                .periods
                .iter()
                .rposition(|p| p.start <= t)
                .unwrap_or(0),
            None => 0,
        };
        let Some(period) = parsed.periods.get(period_index) else {
            return Err(format_error(format!("MPD {final_url} has no Period")));
        };
        gst::info!(
            CAT,
            "MPD {final_url}: {}, {} Period(s), live start {live_start:?}: tracks from Period {}",
            if parsed.dynamic { "dynamic" } else { "static" },
            parsed.periods.len(),
            period_index
        );
        let identities = shaka_streams(period);
        let mut tracks = Vec::new();
        let mut streams = Vec::new();
        for kind in [StreamType::Video, StreamType::Audio] {
            let Some((as_index, set)) = pick_adaptation_set(period, kind) else {
                continue;
            };
            let variants: Vec<Variant> = set
                .representations
                .iter()
                .map(|r| Variant {
                    bandwidth: r.bandwidth,
                    codecs: r.codecs.clone(),
                    resolution: r.width.zip(r.height),
                    frame_rate: r.frame_rate,
                    ..Variant::with_uri(final_url.clone())
                })
                .collect();
            if variants.is_empty() {
                continue;
            }
            let bandwidths: Vec<u64> = variants.iter().map(|v| v.bandwidth).collect();
            let current =
                abr::select_variant(&bandwidths, shared.origin.estimate_bps(), &shared.abr());
            gst::info!(
                CAT,
                "{kind:?}: adaptation set {as_index} (id {:?}), {} Representation(s); starting \
                 on {current} ({} bit/s)",
                set.id,
                variants.len(),
                bandwidths[current]
            );
            let swarms = (0..variants.len())
                .map(|i| {
                    identities
                        .iter()
                        .find(|s| s.adaptation_set == as_index && s.representation == i)
                        .map(|s| (s.stream_type, s.props.clone(), s.position))
                        .unwrap_or_else(|| {
                            let bitrate = variants[i].bandwidth;
                            let props = StreamProperties {
                                bitrate,
                                ..Default::default()
                            };
                            (P2pStreamType::Main, props, i)
                        })
                })
                .collect();
            streams.push(NewStream {
                kind,
                language: set.lang.clone(),
                variants,
                current,
                playlist: None,
                swarms,
                track: tracks.len(),
            });
            tracks.push(Track {
                kind,
                adaptation_set_id: set.id.clone(),
                position: period
                    .adaptation_sets
                    .iter()
                    .take(as_index)
                    .filter(|a| a.stream_type == kind)
                    .count(),
                representation_ids: set.representations.iter().map(|r| r.id.clone()).collect(),
            });
        }
        if streams.is_empty() {
            let encrypted = period.adaptation_sets.iter().any(|a| a.encrypted);
            return Err(EngineError {
                kind: if encrypted {
                    ErrorKind::Unsupported
                } else {
                    ErrorKind::Format
                },
                message: if encrypted {
                    format!("MPD {final_url}: every audio/video adaptation set is DRM-protected")
                } else {
                    format!("MPD {final_url} lists no audio or video Representation")
                },
                debug: String::new(),
            });
        }
        *lock(&self.state) = Some(DashState {
            reload_url: parsed.location.clone().unwrap_or_else(|| final_url.clone()),
            bytes,
            fetched_at: Instant::now(),
            mpd: Arc::new(parsed),
            tracks,
            indexes: HashMap::new(),
        });
        Ok(Opened {
            manifest_url: final_url,
            streams,
            live_start,
        })
    }

    /// The media playlist of Representation `index` of `track`, over every Period.
    pub async fn playlist(
        &self,
        shared: &Shared,
        track: usize,
        index: usize,
    ) -> Result<MediaPlaylist, EngineError> {
        let (mpd, track) = {
            let st = lock(&self.state);
            let st = st
                .as_ref()
                .ok_or_else(|| format_error("MPD not loaded".into()))?;
            let track = st
                .tracks
                .get(track)
                .cloned()
                .ok_or_else(|| format_error(format!("no track {track}")))?;
            (st.mpd.clone(), track)
        };
        let mut segments: Vec<Segment> = Vec::new();
        for (p, period) in mpd.periods.iter().enumerate() {
            let Some(set) = find_adaptation_set(period, &track) else {
                continue;
            };
            let Some(rep) = find_representation(set, &track, index) else {
                continue;
            };
            let period_segments = match &rep.segments {
                SegmentSource::List(s) => s.clone(),
                SegmentSource::NeedsIndex(ctx) => {
                    let index_bytes = self.index(shared, &ctx.index).await?;
                    mpd::segments_from_sidx(&index_bytes, ctx)
                        .map_err(|e| manifest_error(e, &ctx.index.url))?
                }
            };
            let key = (period.start.as_secs() & 0xFFFF_FFFF) << 32;
            let media_offset = signed_ns(rep.presentation_time_offset) - signed_ns(period.start);
            for (i, mut s) in period_segments.into_iter().enumerate() {
                s.media_offset_ns = Some(media_offset);
                s.sequence = key | (s.sequence & 0xFFFF_FFFF);
                s.discontinuity_sequence = p as u64;
                s.discontinuity |= i == 0 && !segments.is_empty();
                if segments.last().is_some_and(|l| l.sequence >= s.sequence) {
                    continue; // overlapping Periods: keep the timeline increasing
                }
                segments.push(s);
            }
        }
        gst::debug!(
            CAT,
            "{:?} Representation {index}: {} segment(s) over {} Period(s)",
            track.kind,
            segments.len(),
            mpd.periods.len()
        );
        Ok(MediaPlaylist::from_segments(
            mpd.url.clone(),
            mpd.dynamic,
            segments,
            mpd.max_segment_duration,
        ))
    }

    /// Live: brings the MPD up to date (re-fetched every minimumUpdatePeriod, otherwise
    /// re-expanded for the current time: `$Number$` segments appear with time), then returns
    /// the Representation's playlist.
    pub async fn reload(
        &self,
        shared: &Shared,
        track: usize,
        index: usize,
    ) -> Result<MediaPlaylist, EngineError> {
        {
            let _one = self.reloading.lock().await;
            let (url, bytes, due) = {
                let st = lock(&self.state);
                let st = st
                    .as_ref()
                    .ok_or_else(|| format_error("MPD not loaded".into()))?;
                let due = st
                    .mpd
                    .reload_interval()
                    .is_some_and(|every| st.fetched_at.elapsed() >= every);
                (st.reload_url.clone(), st.bytes.clone(), due)
            };
            let (bytes, final_url, fetched) = if due {
                let (b, u) = shared
                    .fetch_manifest(&url)
                    .await
                    .inspect_err(|e| gst::warning!(CAT, "MPD reload {url}: {}", e.message))?;
                gst::debug!(CAT, "MPD reloaded from {u}");
                (b, u, true)
            } else {
                let final_url = lock(&self.state)
                    .as_ref()
                    .map(|s| s.mpd.url.clone())
                    .unwrap_or(url);
                (bytes, final_url, false)
            };
            let parsed = mpd::parse(&bytes, &final_url, now_unix())
                .map_err(|e| manifest_error(e, &final_url))
                .inspect_err(|e| gst::warning!(CAT, "{}", e.message))?;
            let mut st = lock(&self.state);
            if let Some(st) = st.as_mut() {
                if fetched {
                    st.fetched_at = Instant::now();
                    st.bytes = bytes;
                    if let Some(l) = &parsed.location {
                        st.reload_url = l.clone();
                    }
                }
                st.mpd = Arc::new(parsed);
            }
        }
        self.playlist(shared, track, index).await
    }

    /// Live DASH segments become available one segment duration apart.
    pub fn reload_wait(&self, playlist: &MediaPlaylist) -> Duration {
        playlist.target_duration / 2
    }

    async fn index(&self, shared: &Shared, resource: &Resource) -> Result<Bytes, EngineError> {
        if let Some(b) = lock(&self.state)
            .as_ref()
            .and_then(|s| s.indexes.get(resource).cloned())
        {
            return Ok(b);
        }
        let data = shared
            .origin
            .fetch(resource, false)
            .await
            .map_err(http_error)
            .inspect_err(|e| gst::warning!(CAT, "segment index {}: {}", resource.url, e.message))?
            .data;
        gst::debug!(
            CAT,
            "segment index {} {:?}: {} bytes",
            resource.url,
            resource.range,
            data.len()
        );
        if let Some(st) = lock(&self.state).as_mut() {
            if st.indexes.len() >= MAX_CACHED_INDEXES {
                st.indexes.clear();
            }
            st.indexes.insert(resource.clone(), data.clone());
        }
        Ok(data)
    }
}

fn signed_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn format_error(message: String) -> EngineError {
    EngineError {
        kind: ErrorKind::Format,
        message,
        debug: String::new(),
    }
}

/// The adaptation set of `kind` to play: Role "main" first, else the first one; DRM-protected
/// ones are skipped (no decryption here).
fn pick_adaptation_set(period: &Period, kind: StreamType) -> Option<(usize, &AdaptationSet)> {
    let candidates = || {
        period
            .adaptation_sets
            .iter()
            .enumerate()
            .filter(move |(_, a)| a.stream_type == kind && !a.encrypted)
    };
    candidates()
        .find(|(_, a)| a.roles.iter().any(|r| r == "main"))
        .or_else(|| candidates().next())
}

fn find_adaptation_set<'a>(period: &'a Period, track: &Track) -> Option<&'a AdaptationSet> {
    let of_kind = || {
        period
            .adaptation_sets
            .iter()
            .filter(|a| a.stream_type == track.kind && !a.encrypted)
    };
    track
        .adaptation_set_id
        .as_ref()
        .and_then(|id| of_kind().find(|a| a.id.as_ref() == Some(id)))
        .or_else(|| of_kind().nth(track.position))
        .or_else(|| of_kind().next())
}

fn find_representation<'a>(
    set: &'a AdaptationSet,
    track: &Track,
    index: usize,
) -> Option<&'a mpd::Representation> {
    let reps = &set.representations;
    track
        .representation_ids
        .get(index)
        .and_then(|id| reps.iter().find(|r| &r.id == id))
        .or_else(|| reps.get(index.min(reps.len().saturating_sub(1))))
}
