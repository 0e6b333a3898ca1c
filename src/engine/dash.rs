//! DASH front-end of a session: the MPD's tracks (a video, an audio and a text adaptation
//! set, the others of their kind to choose among; ABR over each one's Representations), each
//! Representation flattened over all Periods into one media playlist for the shared fetch
//! loop, `sidx` fetches for SegmentBase, and live MPD refreshes. Every decision about the MPD
//! itself is delegated to the pure `manifest::dash`, the picking of tracks and the flattening
//! of Periods to `manifest::tracks`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use url::Url;

use super::context::{lock, Shared};
use super::origin::http_error;
use super::stream::{Choice, NewAlternative, NewStream, Opened, SwarmSpec};
use super::{manifest_error, EngineError, ErrorKind, CAT};
use crate::abr;
use crate::manifest::dash::{self as mpd, Mpd, SegmentSource};
use crate::manifest::tracks::{self, Track};
use crate::manifest::ManifestError;
use crate::media::{MediaPlaylist, MediaType, Resource};
use crate::net::http::BodyKind;
use crate::p2p::dash_streams::{shaka2_stream_id, shaka_streams_in};
use crate::p2p::identity::{StreamProperties, StreamType as P2pStreamType};

/// How long the `UTCTiming` time source may take to answer.
const UTC_TIMING_WAIT: Duration = Duration::from_secs(3);

/// Segment indexes kept (SegmentBase); each is small, a few per Representation.
const MAX_CACHED_INDEXES: usize = 64;

#[derive(Default)]
pub(super) struct DashFront {
    state: Mutex<Option<DashState>>,
    /// Seconds to add to the machine's clock: what the MPD's `UTCTiming` source says (0
    /// without one). Live availability is computed on the server's clock.
    clock_offset: Mutex<f64>,
    /// One MPD reload at a time: the audio and video fetch loops both ask for one.
    reloading: tokio::sync::Mutex<()>,
}

struct DashState {
    /// Where MPD updates come from: `Location` if the MPD gave one, else its final URL.
    reload_url: Url,
    bytes: Bytes,
    fetched_at: Instant,
    /// When `mpd` was last expanded from `bytes` (for the current time).
    parsed_at: Instant,
    mpd: Arc<Mpd>,
    tracks: Vec<Track>,
    /// Fetched `sidx` boxes by index resource.
    indexes: HashMap<Resource, Bytes>,
}

/// Wall clock in Unix seconds: live DASH availability is defined against it.
fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl DashFront {
    /// The current time in Unix seconds on the server's clock, as far as we know it.
    fn now(&self) -> f64 {
        now_unix() + *lock(&self.clock_offset)
    }

    /// Aligns our clock with the MPD's `UTCTiming` source (DASH-IF IOP 4.7): a live
    /// presentation's segments are available by the server's clock, not the machine's. A
    /// source that fails leaves the machine's clock, with a warning; never an error.
    async fn sync_clock(&self, shared: &Shared, mpd: &Mpd) {
        let Some(source) = mpd.utc_source().filter(|_| mpd.dynamic) else {
            if mpd.dynamic && !mpd.utc_timing.is_empty() {
                gst::info!(
                    CAT,
                    "UTCTiming {:?}: no scheme we support, using the machine's clock",
                    mpd.utc_timing
                );
            }
            return;
        };
        let offset = match &source {
            // The MPD's own idea of "now" as it was generated: good to its fetch time.
            mpd::UtcSource::Direct(t) => Some(t - now_unix()),
            mpd::UtcSource::Http(url) => {
                let before = now_unix();
                // One short try: a time server that does not answer must not hold up the
                // start (the machine's clock is used then).
                let fetched = tokio::time::timeout(UTC_TIMING_WAIT, shared.fetch_manifest(url))
                    .await
                    .unwrap_or_else(|_| {
                        Err(format_error(format!(
                            "no answer within {UTC_TIMING_WAIT:?}"
                        )))
                    });
                match fetched {
                    Ok((body, _)) => {
                        let after = now_unix();
                        let text = String::from_utf8_lossy(&body);
                        let server = mpd::parse_utc_time(&text);
                        if server.is_none() {
                            gst::warning!(
                                CAT,
                                "UTCTiming {url}: not a time: {:?}",
                                text.chars().take(64).collect::<String>()
                            );
                        }
                        server.map(|t| t - (before + after) / 2.0)
                    }
                    Err(e) => {
                        gst::warning!(
                            CAT,
                            "UTCTiming {url}: {}; using the machine's clock",
                            e.message
                        );
                        None
                    }
                }
            }
        };
        if let Some(offset) = offset.filter(|o| o.is_finite()) {
            gst::info!(
                CAT,
                "UTCTiming {source:?}: the server's clock is {offset:+.3} s from ours"
            );
            *lock(&self.clock_offset) = offset;
        }
    }

    /// Fetches and parses the MPD and describes the streams to play.
    pub async fn open(&self, shared: &Shared, location: &Url) -> Result<Opened, EngineError> {
        let (bytes, final_url) = shared
            .fetch_manifest(location)
            .await
            .inspect_err(|e| gst::warning!(CAT, "MPD {location}: {}", e.message))?;
        let mut now = self.now();
        let mut parsed = parse_mpd(bytes.clone(), &final_url, now)
            .await
            .map_err(|e| manifest_error(e, &final_url))
            .inspect_err(|e| gst::warning!(CAT, "{}", e.message))?;
        let was = *lock(&self.clock_offset);
        self.sync_clock(shared, &parsed).await;
        if (*lock(&self.clock_offset) - was).abs() > 0.05 {
            // Which live segments exist depends on the time: expand it on the server's.
            now = self.now();
            parsed = parse_mpd(bytes.clone(), &final_url, now)
                .await
                .map_err(|e| manifest_error(e, &final_url))?;
        }
        let live_start = parsed.live_start(now);
        let period_index = tracks::start_period(&parsed, live_start);
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
        let identities = shaka_streams_in(&parsed, period_index);
        let picked = tracks::pick_tracks(
            period,
            &shared.config.audio_languages,
            &shared.config.text_languages,
        );
        // Per adaptation set: its variants and their swarm identities.
        let describe = |as_index: usize, set: &mpd::AdaptationSet| {
            let kind = set.stream_type;
            let variants = tracks::variants(set, &final_url);
            // Text is not shared (P2P Media Loader never does): no swarm.
            let with_swarms = if kind == MediaType::Subtitles {
                0
            } else {
                variants.len()
            };
            let swarms: Vec<SwarmSpec> = (0..with_swarms)
                .map(|i| {
                    identities
                        .iter()
                        .find(|s| s.adaptation_set == as_index && s.representation == i)
                        .map(|s| SwarmSpec::new(s.stream_type, s.props.clone(), s.position))
                        .unwrap_or_else(|| {
                            let bitrate = variants[i].bandwidth;
                            let props = StreamProperties {
                                bitrate,
                                ..Default::default()
                            };
                            SwarmSpec::new(P2pStreamType::Main, props, i)
                        })
                })
                .enumerate()
                .map(|(i, mut spec)| {
                    // PML 0.6 shares video only, named after Shaka 2.x's stream ids.
                    if kind == MediaType::Video && period_index == 0 {
                        spec.v06_index = shaka2_stream_id(period, as_index, i);
                    }
                    spec
                })
                .collect();
            (variants, swarms)
        };
        let mut streams = Vec::new();
        // The alternatives' tracks, after the picked ones.
        let mut extra_tracks: Vec<Track> = Vec::new();
        for (track, p) in picked.iter().enumerate() {
            let (kind, as_index, set) = (p.track.kind, p.adaptation_set, p.set);
            let (variants, swarms) = describe(as_index, set);
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
            let mut alternatives = Vec::new();
            let mut chosen = 0;
            if kind != MediaType::Video {
                let alts = tracks::alternatives(period, p);
                for alt in alts.into_iter() {
                    let alt_track = if alt.adaptation_set == as_index {
                        chosen = alternatives.len();
                        track
                    } else {
                        extra_tracks.push(alt.track.clone());
                        picked.len() + extra_tracks.len() - 1
                    };
                    let (variants, swarms) = describe(alt.adaptation_set, alt.set);
                    alternatives.push(NewAlternative {
                        choice: Choice {
                            name: alt.set.label.clone().or_else(|| alt.set.id.clone()),
                            language: alt.set.lang.clone(),
                        },
                        variants,
                        swarms,
                        track: alt_track,
                    });
                }
                if alternatives.len() < 2 {
                    alternatives.clear();
                    chosen = 0;
                }
            }
            streams.push(NewStream {
                kind,
                language: set.lang.clone(),
                variants,
                current,
                playlist: None,
                swarms,
                track,
                alternatives,
                chosen,
            });
        }
        let tracks: Vec<Track> = picked
            .into_iter()
            .map(|p| p.track)
            .chain(extra_tracks)
            .collect();
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
            parsed_at: Instant::now(),
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
        let mut parts = Vec::new();
        for (p, period, rep) in track.representations(&mpd, index) {
            let segments = match &rep.segments {
                SegmentSource::List(s) => s.clone(),
                SegmentSource::NeedsIndex(ctx) if ctx.webm => {
                    // Cues count from the Segment's data, which the init range locates.
                    let init = ctx.init.as_ref().ok_or_else(|| {
                        format_error(format!(
                            "WebM Representation {} without an Initialization range",
                            rep.id
                        ))
                    })?;
                    let init_bytes = self.index(shared, init).await?;
                    let index_bytes = self.index(shared, &ctx.index).await?;
                    mpd::segments_from_cues(&init_bytes, &index_bytes, ctx)
                        .map_err(|e| manifest_error(e, &ctx.index.url))?
                }
                SegmentSource::NeedsIndex(ctx) => {
                    let index_bytes = self.index(shared, &ctx.index).await?;
                    mpd::segments_from_sidx(&index_bytes, ctx)
                        .map_err(|e| manifest_error(e, &ctx.index.url))?
                }
            };
            parts.push((p, period, rep, segments));
        }
        let playlist = tracks::flatten(&mpd, parts);
        gst::debug!(
            CAT,
            "{:?} Representation {index}: {} segment(s) over {} Period(s)",
            track.kind,
            playlist.segments.len(),
            mpd.periods.len()
        );
        Ok(playlist)
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
            let (url, bytes, due, recent) = {
                let st = lock(&self.state);
                let st = st
                    .as_ref()
                    .ok_or_else(|| format_error("MPD not loaded".into()))?;
                let due = st
                    .mpd
                    .reload_interval()
                    .is_some_and(|every| st.fetched_at.elapsed() >= every);
                // The audio and video loops reload within moments of each other: one
                // expansion of the same bytes serves both.
                let recent = st.parsed_at.elapsed() < st.mpd.max_segment_duration / 4;
                (st.reload_url.clone(), st.bytes.clone(), due, recent)
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
            let unchanged = !fetched || {
                let st = lock(&self.state);
                st.as_ref().is_some_and(|s| s.bytes == bytes)
            };
            if unchanged && recent {
                // Same document, expanded for (nearly) this very time: nothing to redo.
                gst::trace!(
                    CAT,
                    "MPD unchanged and expanded moments ago: not parsed again"
                );
                if fetched {
                    if let Some(st) = lock(&self.state).as_mut() {
                        st.fetched_at = Instant::now();
                    }
                }
            } else {
                // A live MPD's bytes may not change while its `$Number$` segments still
                // appear with time: the same bytes are expanded again for the new time.
                let parsed = parse_mpd(bytes.clone(), &final_url, self.now())
                    .await
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
                    st.parsed_at = Instant::now();
                    st.mpd = Arc::new(parsed);
                }
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
            .fetch_kind(resource, BodyKind::Index)
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

/// MPDs at least this big are parsed on tokio's blocking pool: the shared runtime has two
/// workers, and one element re-parsing a huge live MPD must not starve the others.
const BLOCKING_PARSE_BYTES: usize = 64 * 1024;

async fn parse_mpd(bytes: Bytes, url: &Url, now: f64) -> Result<Mpd, ManifestError> {
    if bytes.len() < BLOCKING_PARSE_BYTES {
        return mpd::parse(&bytes, url, now);
    }
    let u = url.clone();
    tokio::task::spawn_blocking(move || mpd::parse(&bytes, &u, now))
        .await
        .unwrap_or_else(|e| {
            Err(ManifestError::Malformed {
                line: 0,
                reason: format!("MPD parser failed: {e}"),
            })
        })
}

fn format_error(message: String) -> EngineError {
    EngineError {
        kind: ErrorKind::Format,
        message,
        debug: String::new(),
    }
}
