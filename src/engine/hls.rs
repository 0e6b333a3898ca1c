//! HLS front-end of a session: the master playlist's streams (main variant with ABR, an
//! audio and a subtitles rendition, the others of their group to choose among), media playlist
//! fetches and live reloads. Every decision about playlists is delegated to the pure
//! `manifest::hls` and `manifest::tracks` modules.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use url::Url;

use super::context::{lock, Shared};
use super::stream::{Choice, NewAlternative, NewStream, Opened, Refresh, SwarmSpec};
use super::{manifest_error, EngineError, ErrorKind, CAT};
use crate::abr;
use crate::manifest::hls::{self as m3u8, Playlist};
use crate::manifest::tracks::{pick_audio, pick_subtitles, renditions};
use crate::manifest::ManifestError;
use crate::media::{MediaPlaylist, MediaType, Rendition, Variant};
use crate::p2p::hls_streams::{audio_track_position, audio_track_properties, level_properties};
use crate::p2p::identity::StreamType as P2pStreamType;

/// Playlists at least this big are parsed on tokio's blocking pool: the shared runtime has
/// two workers, and one element re-parsing a huge live playlist must not starve the others.
const BLOCKING_PARSE_BYTES: usize = 64 * 1024;

/// What the HLS front-end remembers between reloads.
#[derive(Default)]
pub(super) struct HlsFront {
    /// Body of the last fetch of each media playlist URL: a reload returning the very same
    /// bytes changes nothing, so it is not parsed again.
    last: Mutex<HashMap<Url, Bytes>>,
}

/// Parses a playlist, off the async workers when it is big.
pub(super) async fn parse_playlist(data: Bytes, url: &Url) -> Result<Playlist, ManifestError> {
    if data.len() < BLOCKING_PARSE_BYTES {
        return m3u8::parse(&data, url);
    }
    let u = url.clone();
    tokio::task::spawn_blocking(move || m3u8::parse(&data, &u))
        .await
        .unwrap_or_else(|e| {
            Err(ManifestError::Malformed {
                line: 0,
                reason: format!("playlist parser failed: {e}"),
            })
        })
}

/// Reads the master (or lone media) playlist and describes the streams to play.
pub(super) async fn open(shared: &Shared, location: &Url) -> Result<Opened, EngineError> {
    let (playlist, final_url) = fetch_playlist(shared, location).await?;
    let master = match playlist {
        Playlist::Master(m) => m,
        // A lone media playlist: one variant of unknown bandwidth.
        Playlist::Media(p) => {
            gst::info!(CAT, "{final_url}: a lone media playlist");
            let variant = Variant::with_uri(final_url.clone());
            let swarms = vec![SwarmSpec {
                lone: true,
                ..SwarmSpec::new(P2pStreamType::Main, level_properties(&variant), 0)
            }];
            return Ok(Opened {
                manifest_url: final_url,
                streams: vec![NewStream {
                    kind: MediaType::Video,
                    language: None,
                    variants: vec![variant],
                    current: 0,
                    playlist: Some(p),
                    swarms,
                    track: 0,
                    alternatives: Vec::new(),
                    chosen: 0,
                }],
                live_start: None,
            });
        }
    };
    if master.variants.is_empty() {
        return Err(EngineError {
            kind: ErrorKind::Format,
            message: format!("Master playlist {final_url} lists no variant streams"),
            debug: String::new(),
        });
    }
    let bandwidths: Vec<u64> = master.variants.iter().map(|v| v.bandwidth).collect();
    let first = abr::select_variant(&bandwidths, shared.origin.estimate_bps(), &shared.abr());
    gst::info!(
        CAT,
        "{final_url}: master playlist, {} variant(s), {} rendition(s); starting on variant {first} \
         ({} bit/s)",
        master.variants.len(),
        master.renditions.len(),
        bandwidths[first]
    );
    let swarms = master
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| SwarmSpec {
            v06_index: Some(v.master_index),
            ..SwarmSpec::new(P2pStreamType::Main, level_properties(v), i)
        })
        .collect();
    let mut streams = vec![NewStream {
        kind: MediaType::Video,
        language: None,
        variants: master.variants.clone(),
        current: first,
        playlist: None,
        swarms,
        track: 0,
        alternatives: Vec::new(),
        chosen: 0,
    }];
    if let Some(audio) = pick_audio(
        &master,
        &master.variants[first],
        &shared.config.audio_languages,
    ) {
        gst::info!(
            CAT,
            "alternate audio: {:?} ({:?}) from group {:?}",
            audio.name,
            audio.language,
            audio.group_id
        );
        let group = renditions(&master, MediaType::Audio, &audio.group_id);
        streams.push(selectable(&group, audio, 1, |r| {
            let props = audio_track_properties(&master, r);
            let position = audio_track_position(&master, r);
            vec![SwarmSpec::new(P2pStreamType::Secondary, props, position)]
        }));
    }
    if let Some(text) = pick_subtitles(
        &master,
        &master.variants[first],
        &shared.config.text_languages,
    ) {
        gst::info!(
            CAT,
            "subtitles: {:?} ({:?}) from group {:?}",
            text.name,
            text.language,
            text.group_id
        );
        let group = renditions(&master, MediaType::Subtitles, &text.group_id);
        // Text is not shared (P2P Media Loader never does): no swarm.
        streams.push(selectable(&group, text, 2, |_| Vec::new()));
    }
    Ok(Opened {
        manifest_url: final_url,
        streams,
        live_start: None,
    })
}

/// An output stream playing `picked`, with every rendition of its group as an alternative
/// an application may select (`select-streams`); `swarms`: a rendition's swarm identity.
fn selectable(
    group: &[&Rendition],
    picked: &Rendition,
    track: usize,
    swarms: impl Fn(&Rendition) -> Vec<SwarmSpec>,
) -> NewStream {
    let variant = |r: &Rendition| {
        Variant::with_uri(r.uri.clone().expect("renditions() keeps those with a URI"))
    };
    NewStream {
        kind: picked.stream_type,
        language: picked.language.clone(),
        variants: vec![variant(picked)],
        current: 0,
        playlist: None,
        swarms: swarms(picked),
        track,
        // A group of one offers no choice.
        alternatives: group
            .iter()
            .filter(|_| group.len() > 1)
            .map(|r| NewAlternative {
                choice: Choice {
                    name: Some(r.name.clone()).filter(|n| !n.is_empty()),
                    language: r.language.clone(),
                },
                variants: vec![variant(r)],
                swarms: swarms(r),
                track,
            })
            .collect(),
        chosen: group
            .iter()
            .position(|r| std::ptr::eq(*r, picked))
            .unwrap_or(0),
    }
}

async fn fetch_playlist(shared: &Shared, url: &Url) -> Result<(Playlist, Url), EngineError> {
    let (data, final_url) = fetch_bytes(shared, url).await?;
    parse_fetched(data, final_url).await
}

async fn fetch_bytes(shared: &Shared, url: &Url) -> Result<(Bytes, Url), EngineError> {
    shared
        .fetch_manifest(url)
        .await
        .inspect_err(|e| gst::warning!(CAT, "playlist {url}: {}", e.message))
}

async fn parse_fetched(data: Bytes, final_url: Url) -> Result<(Playlist, Url), EngineError> {
    let mut playlist = parse_playlist(data, &final_url)
        .await
        .map_err(|e| manifest_error(e, &final_url))
        .inspect_err(|e| gst::warning!(CAT, "{}", e.message))?;
    // A blocking or delta reload's directives are not part of the playlist's name.
    if let Playlist::Media(p) = &mut playlist {
        p.url = m3u8::without_directives(&p.url);
    }
    if let Playlist::Media(p) = &playlist {
        gst::debug!(
            CAT,
            "{final_url}: {} segment(s) from {}, {}",
            p.segments.len(),
            p.media_sequence,
            if p.is_live() { "live" } else { "complete" }
        );
    }
    Ok((playlist, final_url))
}

pub(super) async fn fetch_media_playlist(
    shared: &Shared,
    url: &Url,
) -> Result<MediaPlaylist, EngineError> {
    let fetched = fetch_playlist(shared, url).await?;
    media_only(fetched)
}

fn media_only(fetched: (Playlist, Url)) -> Result<MediaPlaylist, EngineError> {
    match fetched {
        (Playlist::Media(p), _) => Ok(p),
        (Playlist::Master(_), final_url) => Err(EngineError {
            kind: ErrorKind::Format,
            message: format!("Expected a media playlist at {final_url}, got a master playlist"),
            debug: String::new(),
        }),
    }
}

/// Live variants share sequence numbers: anchor a newly loaded one on our timeline.
pub(super) fn align(current: &MediaPlaylist, new: MediaPlaylist) -> MediaPlaylist {
    m3u8::align(current, new)
}

/// Reloads a live media playlist as RFC 8216 §6.3.4 asks and merges it into `old`.
/// `None`: nothing new (the very same bytes as last time: not even parsed), or the server
/// went backwards, ask again (usually a CDN edge serving a stale copy); if that persists, the
/// encoder restarted its numbering: continue on a new timeline.
///
/// Low-latency HLS: `block` (segment, part) asks a server that can block reloads to answer
/// once that segment (part) is listed; a server that can skip is asked for a delta update,
/// completed from `old` (or, if `old` lacks what it skipped, asked again in full).
pub(super) async fn reload(
    front: &HlsFront,
    shared: &Shared,
    old: &MediaPlaylist,
    backwards: &mut u32,
    block: Option<(u64, Option<u64>)>,
) -> Result<Option<(MediaPlaylist, Refresh)>, EngineError> {
    let ll = old.low_latency.as_deref();
    let block = block.filter(|_| ll.is_some_and(|l| l.can_block_reload));
    let mut skip = ll.is_some_and(|l| l.can_skip_until.is_some()) && !old.segments.is_empty();
    loop {
        let url = m3u8::with_directives(&old.url, block, skip);
        let (data, final_url) = fetch_bytes(shared, &url).await?;
        if lock(&front.last).get(&old.url) == Some(&data) {
            gst::trace!(CAT, "{}: same {} bytes as last time", old.url, data.len());
            return Ok(None);
        }
        let fresh = media_only(parse_fetched(data.clone(), final_url).await?)?;
        match m3u8::update(old, fresh.clone()) {
            Ok(updated) => {
                // Remembered once merged only: a playlist that went backwards must be looked
                // at again (the same stale copy three times means an encoder restart).
                let mut last = lock(&front.last);
                // Only the playlists being reloaded are kept (one per stream in practice).
                if last.len() >= 8 {
                    last.clear();
                }
                last.insert(old.url.clone(), data);
                return Ok(Some((updated, Refresh::Continued)));
            }
            Err(e @ ManifestError::DeltaUnresolved { .. }) if skip => {
                gst::info!(CAT, "{}: {e}: reloading it in full", old.url);
                skip = false;
            }
            Err(ManifestError::SequenceWentBackwards { old: was, new }) if *backwards < 3 => {
                *backwards += 1;
                gst::warning!(
                    CAT,
                    "{}: media sequence went back from {was} to {new} ({} time(s)), asking again",
                    old.url,
                    *backwards
                );
                return Ok(None);
            }
            Err(ManifestError::SequenceWentBackwards { old: was, new }) => {
                gst::warning!(
                    CAT,
                    "{}: media sequence still back at {new} (was {was}): the encoder restarted, \
                     continuing on a new timeline",
                    old.url
                );
                // A delta update cannot start a new timeline: it skips what `old` had.
                if skip
                    && fresh
                        .low_latency
                        .as_ref()
                        .is_some_and(|l| l.skipped_segments > 0)
                {
                    skip = false;
                    continue;
                }
                return Ok(Some((m3u8::rebase(old, fresh), Refresh::Rebased)));
            }
            Err(e) => {
                let e = manifest_error(e, &old.url);
                gst::warning!(CAT, "reload: {}", e.message);
                return Err(e);
            }
        }
    }
}
