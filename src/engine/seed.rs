//! `mode=seeder`: every seeded variant (the output's too) gets a follower that keeps its
//! swarm's playlist fresh; the output's fetch loop, paced to real time and never waiting for
//! downstream, reads that playlist instead of reloading it. The swarm itself (`Policy::Seed`)
//! fetches each listed segment from the origin once and serves it; nothing here touches
//! segment data.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::context::{lock, Shared};
use super::front::Front;
use super::stream::StreamState;
use super::{EngineError, ErrorKind, CAT};
use crate::media::MediaPlaylist;

/// Longest pause between attempts at a variant playlist that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A seeder reloads a live playlist this many times as often as a player: it should hear of
/// a new segment, and announce it as loading, before the viewers' random HTTP prefetch (their
/// reloads are a target duration apart) picks it.
const RELOAD_DIVISOR: u32 = 4;

/// How long a seeder waits before reloading `playlist` (see [`RELOAD_DIVISOR`]).
pub(super) fn reload_wait(front: &Front, playlist: &MediaPlaylist, changed: bool) -> Duration {
    (front.reload_wait(playlist, changed) / RELOAD_DIVISOR).max(Duration::from_millis(250))
}

/// Variant indices of a stream a seeder follows, the output's first (its highest).
pub(super) fn seeded(shared: &Shared, bandwidths: &[u64]) -> Vec<usize> {
    shared
        .config
        .seeder
        .as_ref()
        .map(|s| s.pick(bandwidths))
        .unwrap_or_default()
}

/// Follows variant `index` of `stream` for its swarm, for as long as the session runs: the
/// whole playlist once (VOD), or every refresh (live). The follower is the only one that
/// tells a seeder's swarm its playlist (the output's fetch loop, paced to real time, would
/// tell it older ones). `initial`: the playlist the session already has, given to the swarm
/// before this returns its future, so the output's first request finds it. A playlist that
/// cannot be had is retried with backoff and reported once as a warning: the other variants
/// go on.
pub(super) fn follow(
    shared: Arc<Shared>,
    front: Arc<Front>,
    stream: Arc<Mutex<StreamState>>,
    index: usize,
    initial: Option<Arc<MediaPlaylist>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let primed = initial.and_then(|p| {
        let swarm = swarm_of(&shared, &stream, index)?;
        swarm.set_segments(p.clone());
        Some(p)
    });
    follow_from(shared, front, stream, index, primed)
}

fn swarm_of(
    shared: &Shared,
    stream: &Arc<Mutex<StreamState>>,
    index: usize,
) -> Option<super::p2p::SwarmHandle> {
    let (ids, queue) = {
        let st = lock(stream);
        (st.swarm_ids.get(index).cloned(), st.queue.clone())
    };
    // The swarm stays in the hub, never released: a seeder serves until it stops.
    shared.hub.as_ref()?.swarm(&ids?, queue)
}

async fn follow_from(
    shared: Arc<Shared>,
    front: Arc<Front>,
    stream: Arc<Mutex<StreamState>>,
    index: usize,
    primed: Option<Arc<MediaPlaylist>>,
) {
    let (variant, track, kind) = {
        let st = lock(&stream);
        (st.variants[index].clone(), st.track, st.kind)
    };
    let Some(swarm) = swarm_of(&shared, &stream, index) else {
        return;
    };
    let hash = swarm.info_hash_str.clone();
    let mut failures = 0u32;
    let mut warned = false;
    let mut report = |e: &EngineError, failures: &mut u32| {
        *failures += 1;
        gst::warning!(
            CAT,
            "seeder: {kind:?} variant {index} ({} bit/s): {} (attempt {failures})",
            variant.bandwidth,
            e.message
        );
        if !warned {
            warned = true;
            shared.warn(EngineError {
                kind: ErrorKind::Read,
                message: format!("Cannot seed variant {index}: {}", e.message),
                debug: e.debug.clone(),
            });
        }
        MAX_BACKOFF.min(Duration::from_secs(1 << (*failures).min(5)))
    };
    let mut playlist: MediaPlaylist = match primed {
        Some(p) => (*p).clone(),
        None => loop {
            match front.load_playlist(&shared, track, &variant, index).await {
                Ok(p) => break p,
                Err(e) => {
                    let wait = report(&e, &mut failures);
                    tokio::time::sleep(wait).await;
                }
            }
        },
    };
    gst::info!(
        CAT,
        "seeder: {kind:?} variant {index} ({} bit/s), swarm {hash}: {} segments{}",
        variant.bandwidth,
        playlist.segments.len(),
        if playlist.is_live() { ", live" } else { "" }
    );
    swarm.set_segments(Arc::new(playlist.clone()));
    let mut attempts = 0;
    let mut changed = true;
    while playlist.is_live() {
        tokio::time::sleep(reload_wait(&front, &playlist, changed)).await;
        changed = false;
        match front
            .reload(&shared, track, index, &playlist, &mut attempts, None)
            .await
        {
            Ok(Some((p, _))) => {
                changed = p.segments.last().map(|s| s.sequence)
                    != playlist.segments.last().map(|s| s.sequence)
                    || p.end_list != playlist.end_list;
                playlist = p;
                if changed {
                    gst::debug!(
                        CAT,
                        "seeder: {kind:?} variant {index}: up to segment {:?}",
                        playlist.segments.last().map(|s| s.sequence)
                    );
                    let shared_copy = Arc::new(playlist.clone());
                    swarm.set_segments(shared_copy.clone());
                    // The output's fetch loop reads it from here (it does not reload).
                    lock(&stream).playlists.insert(index, shared_copy);
                }
                failures = 0;
            }
            Ok(None) => {}
            Err(e) => {
                let wait = report(&e, &mut failures);
                tokio::time::sleep(wait).await;
            }
        }
    }
}
