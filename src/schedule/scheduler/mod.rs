//! Per-stream download scheduler (one instance per PML swarm), sans-IO.
//!
//! Feed it with `handle_*` calls (each takes `now_ms`), then drain [`Scheduler::poll_command`]
//! and arm a timer for [`Scheduler::poll_timeout`] (call [`Scheduler::handle_timeout`] when it
//! fires). The algorithm is PML 2.3's `HybridLoader` (`Policy::Pml`), our deadline-aware
//! variant (`Policy::Ours`) or a seeder's (`Policy::Seed`); see `process_pml` /
//! `process_ours` / `process_seed`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::config::{Policy, SchedulerConfig};
use super::peers::{Avail, Peers};
use super::rng::Rng;
use super::{Command, PeerKey, SegmentId, SegmentInfo, Source, TransferError, TransferId};

mod ours;
mod pml;
mod queue;
mod seed;

#[derive(Debug, Clone)]
struct Transfer {
    id: SegmentId,
    source: Source,
    started_ms: u64,
    last_bytes_ms: u64,
    bytes: u64,
    total: Option<u64>,
    /// Already moved to another peer once (no ping-pong).
    switched: bool,
    /// Smoothed rate between recent progress reports (bytes/ms; 0 = unknown).
    recent_rate: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    http_attempts: u32,
    last_failure_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Playback {
    position_ms: u64,
    rate: f64,
    /// Whether the position advances by itself (playing, not stalled/paused).
    playing: bool,
    at_ms: u64,
}

/// One entry of the forward queue (a segment not stored yet, inside some window).
#[derive(Debug, Clone, Copy)]
struct Item {
    id: SegmentId,
    high_demand: bool,
    http_window: bool,
    p2p_window: bool,
    /// Time until the playhead reaches the segment's start.
    until_ms: u64,
    avail: Avail,
}

#[derive(Debug)]
pub struct Scheduler {
    cfg: SchedulerConfig,
    rng: Rng,
    now_ms: u64,
    created_ms: u64,
    live: bool,
    /// Sorted by id (playlist order).
    segments: Vec<SegmentInfo>,
    playback: Playback,
    last_requested: Option<SegmentId>,
    pending_request: Option<SegmentId>,
    stored: BTreeSet<SegmentId>,
    transfers: BTreeMap<TransferId, Transfer>,
    by_segment: BTreeMap<SegmentId, TransferId>,
    next_xfer: u64,
    peers: Peers,
    failures: BTreeMap<SegmentId, Failures>,
    http_active: usize,
    p2p_active: usize,
    /// complete + incomplete from the tracker, including ourselves.
    swarm_total: Option<u64>,
    next_random_ms: u64,
    http_fetch_ewma_ms: Option<f64>,
    storage_free_ratio: f64,
    out: VecDeque<Command>,
    dirty: bool,
    /// Next moment the queue must be re-evaluated without any input (window/urgency edges).
    next_wake_ms: Option<u64>,
    delivered_any: bool,
    /// When each segment was first seen held by a neighbour (spread jitter reference).
    first_seen: BTreeMap<SegmentId, u64>,
    /// Per-instance salt of the spread jitter.
    salt: u64,
    /// Longest wait between two bytes of one P2P download, or from its last byte to its
    /// inactivity timeout (the wait for the first byte excluded): how long a peer's upload
    /// towards us stalled, whatever the cause (SCTP recovery, its pacing).
    longest_p2p_gap_ms: u64,
    /// `Policy::Seed` with `seed_download_rate`: no new download before this.
    seed_next_ms: u64,
    /// `Policy::Seed`: segments fetched once already (a seeder never fetches one twice, even
    /// after its store let it go).
    seeded: BTreeSet<SegmentId>,
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig, seed: u64, now_ms: u64) -> Self {
        let first_tick = now_ms.saturating_add(cfg.random_http_interval_ms);
        let mut rng = Rng::new(seed);
        let salt = rng.next_u64();
        Scheduler {
            cfg,
            rng,
            first_seen: BTreeMap::new(),
            salt,
            longest_p2p_gap_ms: 0,
            seeded: BTreeSet::new(),
            seed_next_ms: 0,
            now_ms,
            created_ms: now_ms,
            live: false,
            segments: Vec::new(),
            playback: Playback {
                position_ms: 0,
                rate: 1.0,
                playing: false,
                at_ms: now_ms,
            },
            last_requested: None,
            pending_request: None,
            stored: BTreeSet::new(),
            transfers: BTreeMap::new(),
            by_segment: BTreeMap::new(),
            next_xfer: 0,
            peers: Peers::default(),
            failures: BTreeMap::new(),
            http_active: 0,
            p2p_active: 0,
            swarm_total: None,
            next_random_ms: first_tick,
            http_fetch_ewma_ms: None,
            storage_free_ratio: 1.0,
            out: VecDeque::new(),
            dirty: true,
            next_wake_ms: None,
            delivered_any: false,
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    /// Change knobs at runtime (PML `applyDynamicConfig`).
    pub fn set_config(&mut self, now_ms: u64, cfg: SchedulerConfig) {
        self.tick(now_ms);
        self.cfg = cfg;
    }

    // ------------------------------------------------------------------ inputs

    /// The stream's current segment list (full replacement; live playlists slide).
    pub fn handle_segments(&mut self, now_ms: u64, live: bool, segments: &[SegmentInfo]) {
        self.tick(now_ms);
        self.live = live;
        self.segments = segments.to_vec();
        self.segments.sort_unstable_by_key(|s| s.id);
        self.segments.dedup_by_key(|s| s.id);
        let segs = &self.segments;
        self.first_seen
            .retain(|id, _| segs.binary_search_by_key(id, |s| s.id).is_ok());
        if live && !self.segments.is_empty() {
            // By membership, not by id order: a rebased timeline reuses lower ids.
            let segs = &self.segments;
            self.seeded
                .retain(|id| segs.binary_search_by_key(id, |s| s.id).is_ok());
        }
    }

    /// Playback position on the segments' timeline. `playing` = the position advances at
    /// `rate` by itself (false before start, while stalled or paused).
    pub fn handle_playback(&mut self, now_ms: u64, position_ms: u64, rate: f64, playing: bool) {
        self.tick(now_ms);
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        self.playback = Playback {
            position_ms,
            rate,
            playing,
            at_ms: now_ms,
        };
    }

    /// The player wants this segment next; a `Deliver` follows once it is stored.
    pub fn handle_player_request(&mut self, now_ms: u64, id: SegmentId) {
        self.tick(now_ms);
        self.last_requested = Some(id);
        self.pending_request = Some(id);
        if let Some(f) = self.failures.get_mut(&id) {
            // PML clears the attempt history when the player re-requests a segment.
            if f.http_attempts >= self.cfg.http_error_retries {
                *f = Failures::default();
            }
        }
    }

    /// The player no longer waits for its pending request (seek away, shutdown).
    pub fn handle_player_cancel(&mut self, now_ms: u64) {
        self.tick(now_ms);
        self.pending_request = None;
    }

    /// Tracker announce reply counts (they include ourselves, as trackers count the announcer).
    pub fn handle_swarm_counts(&mut self, now_ms: u64, complete: u64, incomplete: u64) {
        self.tick(now_ms);
        self.swarm_total = Some(complete.saturating_add(incomplete));
    }

    /// The tracker could not be reached (or rejected us): don't wait for promised peers.
    pub fn handle_tracker_unavailable(&mut self, now_ms: u64) {
        self.tick(now_ms);
        if self.swarm_total.is_none() {
            self.swarm_total = Some(1);
        }
    }

    pub fn handle_peer_connected(&mut self, now_ms: u64, peer: PeerKey) {
        self.tick(now_ms);
        self.peers.connect(peer);
    }

    /// A `SegmentsAnnouncement` (full snapshot: `l` loaded, `p` HTTP-loading).
    pub fn handle_peer_announce(
        &mut self,
        now_ms: u64,
        peer: PeerKey,
        loaded: &[SegmentId],
        http_loading: &[SegmentId],
    ) {
        self.now_ms = self.now_ms.max(now_ms);
        // Most announcements only concern segments we already have or that are behind us:
        // re-plan only when a segment we still need changed availability.
        let start = self.queue_start_id();
        let (stored, segs) = (&self.stored, &self.segments);
        let relevant = |id: SegmentId| {
            id >= start && !stored.contains(&id) && segs.binary_search_by_key(&id, |s| s.id).is_ok()
        };
        if self.peers.announce(peer, loaded, http_loading, relevant) {
            self.dirty = true;
        }
    }

    /// First id the queue can start at (ids below are never needed again).
    fn queue_start_id(&self) -> SegmentId {
        let pos = self.position_at(self.now_ms);
        let first_unplayed = self
            .segments
            .get(self.segments.partition_point(|s| s.end_ms() <= pos))
            .map_or(SegmentId::MAX, |s| s.id);
        match (self.last_requested, self.pending_request) {
            (_, Some(p)) => p.min(first_unplayed),
            (Some(l), None) => l.min(first_unplayed),
            (None, None) => first_unplayed,
        }
    }

    pub fn handle_peer_disconnected(&mut self, now_ms: u64, peer: PeerKey) {
        self.tick(now_ms);
        if self.peers.disconnect(peer).is_none() {
            return;
        }
        let gone: Vec<TransferId> = self
            .transfers
            .iter()
            .filter(|(_, t)| t.source == Source::P2p(peer))
            .map(|(x, _)| *x)
            .collect();
        for x in gone {
            self.finish(x);
        }
    }

    /// Bytes received so far for a transfer (`total` once known, e.g. from `SegmentData.s`).
    pub fn handle_transfer_progress(
        &mut self,
        now_ms: u64,
        xfer: TransferId,
        received: u64,
        total: Option<u64>,
    ) {
        self.now_ms = self.now_ms.max(now_ms);
        if let Some(t) = self.transfers.get_mut(&xfer) {
            if received > t.bytes {
                if t.bytes > 0 && matches!(t.source, Source::P2p(_)) {
                    self.longest_p2p_gap_ms = self
                        .longest_p2p_gap_ms
                        .max(now_ms.saturating_sub(t.last_bytes_ms));
                }
                if now_ms > t.last_bytes_ms && t.bytes > 0 {
                    let inst = (received - t.bytes) as f64 / (now_ms - t.last_bytes_ms) as f64;
                    t.recent_rate = if t.recent_rate > 0.0 {
                        0.5 * t.recent_rate + 0.5 * inst
                    } else {
                        inst
                    };
                }
                t.last_bytes_ms = now_ms;
            }
            t.bytes = t.bytes.max(received);
            if total.is_some() {
                t.total = total;
            }
        }
    }

    /// A transfer completed with `bytes` of data. Returns the segment and source so the caller
    /// can store the data; `None` for a transfer the scheduler no longer tracks (ignore data).
    pub fn handle_transfer_done(
        &mut self,
        now_ms: u64,
        xfer: TransferId,
        bytes: u64,
    ) -> Option<(SegmentId, Source)> {
        self.tick(now_ms);
        let t = self.finish(xfer)?;
        let dur = now_ms.saturating_sub(t.started_ms).max(1);
        match t.source {
            Source::Http => {
                let d = dur as f64;
                self.http_fetch_ewma_ms = Some(match self.http_fetch_ewma_ms {
                    Some(e) => e * 0.7 + d * 0.3,
                    None => d,
                });
            }
            Source::P2p(peer) => {
                if let Some(p) = self.peers.get_mut(peer) {
                    p.timeouts = 0;
                    let tp = bytes as f64 / dur as f64;
                    p.throughput = if p.throughput > 0.0 {
                        p.throughput * 0.7 + tp * 0.3
                    } else {
                        tp
                    };
                }
            }
        }
        self.failures.remove(&t.id);
        self.stored.insert(t.id);
        if self.cfg.policy == Policy::Seed {
            self.seeded.insert(t.id);
            if let (Source::Http, rate @ 1..) = (t.source, self.cfg.seed_download_rate) {
                // Each download's bytes cost their time at the rate, from when it started.
                let cost = bytes.saturating_mul(1000) / rate;
                self.seed_next_ms = self.seed_next_ms.max(t.started_ms).saturating_add(cost);
            }
        }
        Some((t.id, t.source))
    }

    /// A transfer failed. Returns its segment id if the scheduler tracked it.
    pub fn handle_transfer_failed(
        &mut self,
        now_ms: u64,
        xfer: TransferId,
        err: TransferError,
    ) -> Option<SegmentId> {
        self.tick(now_ms);
        let t = self.finish(xfer)?;
        match (t.source, err) {
            (Source::Http, _) => self.note_http_failure(t.id, now_ms),
            (Source::P2p(peer), TransferError::PeerAbsent) => self.peers.forget_loaded(peer, t.id),
            (Source::P2p(_), _) => {}
        }
        Some(t.id)
    }

    /// The segment became available without a transfer of ours (e.g. found in the store).
    pub fn handle_segment_stored(&mut self, now_ms: u64, id: SegmentId) {
        self.tick(now_ms);
        self.stored.insert(id);
    }

    /// The store evicted these segments.
    pub fn handle_segments_evicted(&mut self, now_ms: u64, ids: &[SegmentId]) {
        self.tick(now_ms);
        for id in ids {
            self.stored.remove(id);
        }
    }

    /// Free share of the storage counting only segments ahead of the playhead (PML memory
    /// pressure: ≤ 10 % → P2P window shrinks to the HTTP window, ≤ 5 % → no prefetch).
    pub fn handle_storage_free_ratio(&mut self, now_ms: u64, ratio: f64) {
        self.tick(now_ms);
        self.storage_free_ratio = if ratio.is_finite() { ratio } else { 1.0 };
    }

    /// Timer expiry (any time at or after `poll_timeout()`; early calls are harmless).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.tick(now_ms);
        let now = self.now_ms;

        // Inactivity timeouts.
        let expired: Vec<(TransferId, Source, SegmentId, u64)> = self
            .transfers
            .iter()
            .filter(|(_, t)| now >= t.last_bytes_ms.saturating_add(self.inactivity_ms(t.source)))
            .map(|(x, t)| {
                (
                    *x,
                    t.source,
                    t.id,
                    if t.bytes > 0 { t.last_bytes_ms } else { now },
                )
            })
            .collect();
        for (xfer, source, id, last_bytes_ms) in expired {
            // A P2P download that stalled into its timeout after some bytes: the stall counts.
            if matches!(source, Source::P2p(_)) {
                self.longest_p2p_gap_ms = self
                    .longest_p2p_gap_ms
                    .max(now.saturating_sub(last_bytes_ms));
            }
            self.finish(xfer);
            self.out.push_back(Command::Abort { xfer, id, source });
            match source {
                Source::Http => self.note_http_failure(id, now),
                Source::P2p(peer) => {
                    if let Some(p) = self.peers.get_mut(peer) {
                        p.timeouts += 1;
                        p.throughput = 0.0;
                        if p.timeouts >= self.cfg.p2p_error_retries {
                            self.out.push_back(Command::DisconnectPeer { peer });
                        }
                    }
                }
            }
        }

        let clear = self.cfg.failed_attempts_clear_ms;
        self.failures
            .retain(|_, f| now < f.last_failure_ms.saturating_add(clear));

        if now >= self.next_random_ms {
            self.load_random_through_http();
            let peers = self.peers.len() as f64;
            let base = self.cfg.random_http_interval_ms as f64;
            let jitter = match self.cfg.policy {
                // PML: 1000 + random·1000·connectedPeers.
                Policy::Pml => self.rng.next_f64() * base * peers,
                // Ours: the probability already scales with the swarm; keep the tick rate.
                Policy::Ours | Policy::Seed | Policy::Mirror => self.rng.next_f64() * base,
            };
            self.next_random_ms = now.saturating_add((base + jitter) as u64);
        }
    }

    // ------------------------------------------------------------------ outputs

    pub fn poll_command(&mut self) -> Option<Command> {
        if self.dirty {
            self.process();
        }
        self.out.pop_front()
    }

    /// Absolute time (ms) at which `handle_timeout` must be called.
    pub fn poll_timeout(&mut self) -> Option<u64> {
        if self.dirty {
            self.process();
        }
        let mut t = self.next_random_ms;
        for tr in self.transfers.values() {
            t = t.min(
                tr.last_bytes_ms
                    .saturating_add(self.inactivity_ms(tr.source)),
            );
        }
        for f in self.failures.values() {
            t = t.min(
                f.last_failure_ms
                    .saturating_add(self.cfg.failed_attempts_clear_ms),
            );
        }
        if let Some(w) = self.next_wake_ms {
            t = t.min(w);
        }
        Some(t.max(self.now_ms))
    }

    // ------------------------------------------------------------------ queries

    /// Ids currently loading over HTTP (the `p` list of our announcement).
    /// See `Scheduler::longest_p2p_gap_ms` (the field).
    pub fn longest_p2p_gap_ms(&self) -> u64 {
        self.longest_p2p_gap_ms
    }

    pub fn http_loading_ids(&self) -> Vec<SegmentId> {
        self.transfers
            .values()
            .filter(|t| t.source == Source::Http)
            .map(|t| t.id)
            .collect()
    }

    pub fn connected_peers(&self) -> usize {
        self.peers.len()
    }

    pub fn is_stored(&self, id: SegmentId) -> bool {
        self.stored.contains(&id)
    }

    pub fn active_transfers(&self) -> (usize, usize) {
        (self.http_active, self.p2p_active)
    }

    // ------------------------------------------------------------------ internals

    fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.dirty = true;
    }

    fn inactivity_ms(&self, s: Source) -> u64 {
        match s {
            Source::Http => self.cfg.http_not_receiving_bytes_timeout_ms,
            Source::P2p(_) => self.cfg.p2p_not_receiving_bytes_timeout_ms,
        }
    }

    fn note_http_failure(&mut self, id: SegmentId, now: u64) {
        let f = self.failures.entry(id).or_default();
        f.http_attempts += 1;
        f.last_failure_ms = now;
        if f.http_attempts >= self.cfg.http_error_retries && self.pending_request == Some(id) {
            self.pending_request = None;
            self.out.push_back(Command::PlayerError { id });
        }
    }

    fn http_exhausted(&self, id: SegmentId) -> bool {
        self.failures
            .get(&id)
            .is_some_and(|f| f.http_attempts >= self.cfg.http_error_retries)
    }

    fn http_allowed(&self) -> bool {
        self.now_ms
            >= self
                .created_ms
                .saturating_add(self.cfg.http_download_initial_timeout_ms)
    }

    /// Forget a transfer (no command emitted). Returns it if it was tracked.
    fn finish(&mut self, xfer: TransferId) -> Option<Transfer> {
        let t = self.transfers.remove(&xfer)?;
        self.by_segment.remove(&t.id);
        match t.source {
            Source::Http => {
                self.http_active = self.http_active.saturating_sub(1);
                // PML announces when an HTTP download starts, succeeds or fails.
                self.out.push_back(Command::Announce);
            }
            Source::P2p(peer) => {
                self.p2p_active = self.p2p_active.saturating_sub(1);
                if let Some(p) = self.peers.get_mut(peer) {
                    p.busy = false;
                }
            }
        }
        self.dirty = true;
        Some(t)
    }

    fn abort(&mut self, xfer: TransferId) {
        if let Some(t) = self.finish(xfer) {
            if let (Source::P2p(peer), true) = (t.source, t.bytes > 0) {
                // We abort slow downloads: remember how slow, so peer choice avoids it.
                let dur = t.last_bytes_ms.saturating_sub(t.started_ms).max(1);
                let tp = t.bytes as f64 / dur as f64;
                if let Some(p) = self.peers.get_mut(peer) {
                    p.throughput = if p.throughput > 0.0 {
                        p.throughput * 0.7 + tp * 0.3
                    } else {
                        tp
                    };
                }
            }
            self.out.push_back(Command::Abort {
                xfer,
                id: t.id,
                source: t.source,
            });
        }
    }

    fn new_xfer(&mut self) -> TransferId {
        self.next_xfer += 1;
        TransferId(self.next_xfer)
    }

    fn start_http(&mut self, id: SegmentId) {
        if self.by_segment.contains_key(&id) || self.stored.contains(&id) {
            return;
        }
        let xfer = self.new_xfer();
        let now = self.now_ms;
        self.transfers.insert(
            xfer,
            Transfer {
                id,
                source: Source::Http,
                started_ms: now,
                last_bytes_ms: now,
                bytes: 0,
                total: None,
                switched: false,
                recent_rate: 0.0,
            },
        );
        self.by_segment.insert(id, xfer);
        self.http_active += 1;
        self.out.push_back(Command::HttpFetch { xfer, id });
        self.out.push_back(Command::Announce);
    }

    /// Request `id` from an idle peer that has it; weighted by measured throughput, unproven
    /// peers get 10 % of the best weight (PML 2.3 `p2p/loader.ts`). False if nobody qualifies.
    fn start_p2p(&mut self, id: SegmentId) -> bool {
        self.start_p2p_excluding(id, None)
    }

    fn start_p2p_excluding(&mut self, id: SegmentId, exclude: Option<PeerKey>) -> bool {
        if self.by_segment.contains_key(&id) || self.stored.contains(&id) {
            return false;
        }
        let cands: Vec<(PeerKey, f64)> = self
            .peers
            .idle_holders(id)
            .filter(|(k, _)| Some(**k) != exclude)
            .map(|(k, s)| (*k, s.throughput))
            .collect();
        if cands.is_empty() {
            return false;
        }
        let best = cands.iter().map(|c| c.1).fold(0.0, f64::max);
        let base = if best > 0.0 { best * 0.1 } else { 1.0 };
        let weights: Vec<f64> = cands
            .iter()
            .map(|c| if c.1 > 0.0 { c.1 } else { base })
            .collect();
        let sum: f64 = weights.iter().sum();
        let mut r = self.rng.next_f64() * sum;
        let mut pick = cands[cands.len() - 1].0;
        for (c, w) in cands.iter().zip(&weights) {
            if r < *w {
                pick = c.0;
                break;
            }
            r -= w;
        }
        let xfer = self.new_xfer();
        let now = self.now_ms;
        self.transfers.insert(
            xfer,
            Transfer {
                id,
                source: Source::P2p(pick),
                started_ms: now,
                last_bytes_ms: now,
                bytes: 0,
                total: None,
                switched: false,
                recent_rate: 0.0,
            },
        );
        self.by_segment.insert(id, xfer);
        self.p2p_active += 1;
        if let Some(p) = self.peers.get_mut(pick) {
            p.busy = true;
        }
        self.out.push_back(Command::P2pRequest {
            xfer,
            peer: pick,
            id,
        });
        true
    }

    fn process(&mut self) {
        self.dirty = false;
        self.next_wake_ms = None;
        if let Some(id) = self.pending_request {
            if self.stored.contains(&id) {
                self.pending_request = None;
                self.delivered_any = true;
                self.out.push_back(Command::Deliver { id });
            }
        }
        if self.cfg.policy == Policy::Seed {
            self.process_seed();
            self.dirty = false;
            return;
        }
        if self.cfg.policy == Policy::Mirror {
            // Everything it holds was handed over; nothing is ever fetched.
            self.dirty = false;
            return;
        }
        let pos = self.position_at(self.now_ms);

        let queue = self.build_queue(pos);

        // Loading requests that left the queue (played, evicted from the playlist) are aborted.
        let pending = self.pending_request;
        let stale: Vec<TransferId> = self
            .transfers
            .iter()
            .filter(|(_, t)| Some(t.id) != pending && !queue.iter().any(|i| i.id == t.id))
            .map(|(x, _)| *x)
            .collect();
        for x in stale {
            self.abort(x);
        }

        match self.cfg.policy {
            Policy::Pml => self.process_pml(&queue),
            Policy::Ours => self.process_ours(&queue),
            Policy::Seed | Policy::Mirror => {} // returned above
        }
        // Commands emitted above changed state that the next pass must see, but nothing new
        // arrived from outside: don't loop.
        self.dirty = false;
    }

    fn loading(&self, id: SegmentId) -> Option<(TransferId, Source)> {
        let x = *self.by_segment.get(&id)?;
        self.transfers.get(&x).map(|t| (x, t.source))
    }

    /// Abort the furthest HTTP (or P2P) download queued after position `idx`.
    fn abort_last_after(&mut self, queue: &[Item], idx: usize, http: bool) -> bool {
        for item in queue[idx + 1..].iter().rev() {
            if let Some((x, src)) = self.loading(item.id) {
                if (src == Source::Http) == http {
                    self.abort(x);
                    return true;
                }
            }
        }
        false
    }

    fn has_idle_holder(&self, id: SegmentId) -> bool {
        self.peers.idle_holders(id).next().is_some()
    }

    /// Start HTTP if a slot is free or can be freed from a later queue item.
    fn try_http(&mut self, queue: &[Item], idx: usize) -> bool {
        if !self.http_allowed() {
            return false;
        }
        let lim = self.cfg.simultaneous_http_downloads;
        let mut free = self.http_active < lim;
        if !free && self.abort_last_after(queue, idx, true) {
            // Aborting a later download freed a slot.
            free = self.http_active < lim;
        }
        if free {
            if let Some((x, Source::P2p(_))) = self.loading(queue[idx].id) {
                self.abort(x);
            }
            self.start_http(queue[idx].id);
            return true;
        }
        false
    }

    /// Start P2P if a slot is free or can be freed from a later queue item (only aborting
    /// when some idle peer actually holds the segment).
    fn try_p2p(&mut self, queue: &[Item], idx: usize) -> bool {
        let id = queue[idx].id;
        let lim = self.cfg.simultaneous_p2p_downloads;
        if self.p2p_active < lim {
            return self.start_p2p(id);
        }
        if self.has_idle_holder(id)
            && self.abort_last_after(queue, idx, false)
            && self.p2p_active < lim
        {
            return self.start_p2p(id);
        }
        false
    }

    /// PML `loadRandomThroughHttp` (hybrid-loader.ts:423-514): split the CDN work across the
    /// swarm by fetching random segments nobody around has, with probability ≈ k/(peers+1).
    fn load_random_through_http(&mut self) {
        let lim = self.cfg.simultaneous_http_downloads;
        if self.http_active >= lim || self.peers.is_empty() || !self.http_allowed() {
            return;
        }
        // A seeder fetches everything already, in its own order.
        if self.storage_free_ratio <= 0.10
            || matches!(self.cfg.policy, Policy::Seed | Policy::Mirror)
        {
            return;
        }
        let pos = self.position_at(self.now_ms);
        let queue = self.build_queue(pos);
        let cands: Vec<(SegmentId, bool)> = queue
            .iter()
            .filter(|i| {
                i.http_window
                    && !(i.p2p_window && (i.avail.loaded > 0 || i.avail.http_loading > 0))
                    && self.loading(i.id).is_none()
                    && !self.http_exhausted(i.id)
            })
            .map(|i| (i.id, i.high_demand))
            .collect();
        if cands.is_empty() {
            return;
        }
        match self.cfg.policy {
            Policy::Pml => self.random_pml(&cands),
            Policy::Ours | Policy::Seed | Policy::Mirror => self.random_ours(cands),
        }
    }
}

#[cfg(test)]
mod tests;
