//! The swarm actor: one tokio task per stream swarm. It owns the pure scheduler and one
//! `PeerSession` per connection, and turns their commands into HTTP requests, data-channel
//! messages, tracker announces and answers to the fetch loop's segment requests.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::link::{Link, LOW_WATER};
use super::{HubShared, P2pEvent, SegmentCheck};
use crate::abr;
use crate::engine::output::OutputQueue;
use crate::engine::runtime::RUNTIME;
use crate::media::{MediaPlaylist, Segment};
use crate::net::rtc::{DataChannelConn, PendingOffer};
use crate::net::tracker::{InfoHash, OfferId, PeerId, TrackerEvent, TrackerId};
use crate::p2p::identity::StreamType;
use crate::p2p::peer::{DisconnectReason, DownloadRequest, Event, Output, PeerConfig, PeerSession};
use crate::payload::sniff::sniff;
use crate::schedule::{
    Command, PeerKey, Scheduler, SegmentInfo, Source, StreamId, TransferError, TransferId,
};

/// How long a data channel may take to open after signalling.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Regular wake-up: playhead, storage pressure, upload budget.
const TICK_MS: u64 = 200;
/// Rounds of output/command exchange per wake-up.
const MAX_PUMP_ROUNDS: usize = 64;

/// A segment handed to the fetch loop.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub data: Bytes,
    /// Came from a peer: if it turns out not to decode, fetch it again from the origin.
    pub from_peer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The scheduler gave up on it (HTTP retries exhausted, nobody has it).
    Failed,
    /// The swarm stopped.
    Gone,
}

pub(crate) enum SwarmMsg {
    Segments(Arc<MediaPlaylist>),
    /// The segment with this media sequence number.
    Load {
        sequence: u64,
        reply: oneshot::Sender<Result<Loaded, LoadError>>,
    },
    Tracker(TrackerEvent),
    OffersReady {
        tracker: TrackerId,
        offers: Vec<(OfferId, Box<dyn PendingOffer>, String)>,
    },
    Connected {
        peer_id: PeerId,
        conn: Box<dyn DataChannelConn>,
    },
    ConnectFailed {
        peer_id: PeerId,
    },
    PeerMessage {
        key: PeerKey,
        msg: Bytes,
    },
    PeerClosed {
        key: PeerKey,
    },
    WriterDrained {
        key: PeerKey,
    },
    HttpDone {
        xfer: TransferId,
        id: u64,
        result: Result<Bytes, String>,
    },
    Shutdown,
}

/// The fetch loop's and the hub's handle on a swarm actor.
#[derive(Clone)]
pub struct SwarmHandle {
    tx: mpsc::UnboundedSender<SwarmMsg>,
    pub info_hash: InfoHash,
    pub info_hash_str: String,
    pub stream_type: StreamType,
    peers: Arc<AtomicUsize>,
    /// 0 while in use; otherwise the token of the pending release.
    released: Arc<AtomicU64>,
}

static RELEASE_TOKENS: AtomicU64 = AtomicU64::new(1);

impl SwarmHandle {
    pub fn set_segments(&self, playlist: Arc<MediaPlaylist>) {
        let _ = self.tx.send(SwarmMsg::Segments(playlist));
    }

    /// The segment with this media sequence number (of the playlist last given to
    /// `set_segments`), from the store, a peer or the origin as the scheduler decides.
    pub async fn load(&self, sequence: u64) -> Result<Loaded, LoadError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(SwarmMsg::Load { sequence, reply })
            .map_err(|_| LoadError::Gone)?;
        rx.await.unwrap_or(Err(LoadError::Gone))
    }

    pub(super) fn tracker_event(&self, ev: TrackerEvent) {
        let _ = self.tx.send(SwarmMsg::Tracker(ev));
    }

    pub fn peer_count(&self) -> usize {
        self.peers.load(Relaxed)
    }

    pub fn same_swarm(&self, other: &SwarmHandle) -> bool {
        self.info_hash == other.info_hash
    }

    pub(super) fn keep(&self) {
        self.released.store(0, Relaxed);
    }

    pub(super) fn release(&self) -> u64 {
        let token = RELEASE_TOKENS.fetch_add(1, Relaxed);
        self.released.store(token, Relaxed);
        token
    }

    pub(super) fn released_since(&self, token: u64) -> bool {
        self.released.load(Relaxed) == token
    }

    pub(super) fn shutdown(&self) {
        let _ = self.tx.send(SwarmMsg::Shutdown);
    }
}

pub(super) fn spawn(
    hub: Arc<HubShared>,
    info_hash: InfoHash,
    info_hash_str: String,
    stream_type: StreamType,
    stream: StreamId,
    playhead: Arc<OutputQueue>,
) -> SwarmHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let peers = Arc::new(AtomicUsize::new(0));
    let handle = SwarmHandle {
        tx: tx.clone(),
        info_hash,
        info_hash_str,
        stream_type,
        peers: peers.clone(),
        released: Arc::new(AtomicU64::new(0)),
    };
    let seed: u64 = rand::random();
    let now = hub.origin.now_ms();
    let peer_id = PeerId::random_with_prefix(hub.config.compat.pml_peer_id_prefix());
    let actor = Actor {
        sched: Scheduler::new(hub.config.scheduler.clone(), seed, now),
        hub,
        info_hash,
        info_hash_str: handle.info_hash_str.clone(),
        peer_id,
        stream,
        segments: HashMap::new(),
        by_sequence: HashMap::new(),
        live: false,
        ever_live: false,
        pending: None,
        http: HashMap::new(),
        peers: HashMap::new(),
        by_id: HashMap::new(),
        connecting: HashSet::new(),
        offers: HashMap::new(),
        next_key: 1,
        seed,
        tx,
        playhead,
        peer_count: peers,
    };
    RUNTIME.spawn(actor.run(rx));
    handle
}

struct Peer {
    peer_id: PeerId,
    session: PeerSession,
    link: Link,
    download: Option<(TransferId, u64, u64)>,
}

struct Actor {
    hub: Arc<HubShared>,
    info_hash: InfoHash,
    info_hash_str: String,
    peer_id: PeerId,
    stream: StreamId,
    sched: Scheduler,
    /// Media segments by PML id.
    segments: HashMap<u64, Segment>,
    /// Media sequence number → PML id, for the fetch loop's requests.
    by_sequence: HashMap<u64, u64>,
    live: bool,
    /// Seen without ENDLIST at some point: ids stay sequence numbers.
    ever_live: bool,
    pending: Option<(u64, oneshot::Sender<Result<Loaded, LoadError>>)>,
    http: HashMap<TransferId, JoinHandle<()>>,
    peers: HashMap<PeerKey, Peer>,
    by_id: HashMap<PeerId, PeerKey>,
    connecting: HashSet<PeerId>,
    offers: HashMap<OfferId, Box<dyn PendingOffer>>,
    next_key: u64,
    seed: u64,
    tx: mpsc::UnboundedSender<SwarmMsg>,
    playhead: Arc<OutputQueue>,
    peer_count: Arc<AtomicUsize>,
}

impl Actor {
    fn now(&self) -> u64 {
        self.hub.origin.now_ms()
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<SwarmMsg>) {
        self.hub.tracker.join(self.info_hash, self.peer_id);
        let mut next_tick = self.now();
        loop {
            let now = self.now();
            let wake = self.next_deadline().map_or(next_tick, |t| t.min(next_tick));
            let sleep = Duration::from_millis(wake.saturating_sub(now));
            tokio::select! {
                msg = rx.recv() => match msg {
                    None | Some(SwarmMsg::Shutdown) => break,
                    Some(m) => self.handle(m),
                },
                _ = tokio::time::sleep(sleep) => {}
            }
            // Timers run whatever woke us: a steady stream of messages must not starve them
            // (a silent peer's 2-s timeout would never fire).
            let now = self.now();
            self.run_timers(now);
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK_MS;
            }
            self.pump();
        }
        self.stop();
    }

    fn next_deadline(&mut self) -> Option<u64> {
        let sched = self.sched.poll_timeout();
        let peers = self.peers.values().filter_map(|p| p.session.poll_timeout());
        sched.into_iter().chain(peers).min()
    }

    fn run_timers(&mut self, now: u64) {
        if self.sched.poll_timeout().is_some_and(|t| t <= now) {
            self.sched.handle_timeout(now);
        }
        for p in self.peers.values_mut() {
            if p.session.poll_timeout().is_some_and(|t| t <= now) {
                p.session.on_timer(now);
            }
        }
    }

    fn stop(&mut self) {
        self.hub.tracker.leave(self.info_hash);
        for (_, h) in self.http.drain() {
            h.abort();
        }
        for (_, p) in self.peers.drain() {
            p.link.close();
        }
        self.offers.clear();
        self.hub.store().remove_stream(self.stream);
        self.peer_count.store(0, Relaxed);
        if let Some((_, reply)) = self.pending.take() {
            let _ = reply.send(Err(LoadError::Gone));
        }
    }

    /// Periodic inputs: playhead, storage pressure.
    fn tick(&mut self, now: u64) {
        if let Some(pos) = self.playhead.position() {
            let pos_ms = pos.as_millis() as u64;
            self.sched.handle_playback(now, pos_ms, 1.0, true);
            let evicted = self.hub.store().set_playhead(self.stream, pos_ms);
            self.note_evicted(now, &evicted);
        }
        let ratio = self.hub.store().free_ratio_ahead();
        self.sched.handle_storage_free_ratio(now, ratio);
    }

    fn note_evicted(&mut self, now: u64, evicted: &[(StreamId, u64)]) {
        let ours: Vec<u64> = evicted
            .iter()
            .filter(|(s, _)| *s == self.stream)
            .map(|(_, id)| *id)
            .collect();
        if !ours.is_empty() {
            self.sched.handle_segments_evicted(now, &ours);
        }
    }

    fn handle(&mut self, msg: SwarmMsg) {
        let now = self.now();
        match msg {
            SwarmMsg::Segments(p) => self.set_segments(now, &p),
            SwarmMsg::Load { sequence, reply } => {
                let Some(&id) = self.by_sequence.get(&sequence) else {
                    let _ = reply.send(Err(LoadError::Failed));
                    return;
                };
                let stored = self.hub.store().get(self.stream, id).cloned();
                if let Some(data) = stored {
                    let _ = reply.send(Ok(Loaded {
                        data,
                        from_peer: false,
                    }));
                    return;
                }
                self.pending = Some((id, reply));
                self.sched.handle_player_request(now, id);
            }
            SwarmMsg::Tracker(ev) => self.tracker_event(now, ev),
            SwarmMsg::OffersReady { tracker, offers } => {
                let mut list = Vec::with_capacity(offers.len());
                for (id, pending, sdp) in offers {
                    self.offers.insert(id, pending);
                    list.push((id, sdp));
                }
                self.hub.tracker.announce(&tracker, self.info_hash, list);
            }
            SwarmMsg::Connected { peer_id, conn } => self.connected(now, peer_id, conn),
            SwarmMsg::ConnectFailed { peer_id } => {
                self.connecting.remove(&peer_id);
            }
            SwarmMsg::PeerMessage { key, msg } => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.session.on_message(&msg, now);
                }
            }
            SwarmMsg::PeerClosed { key } => self.remove_peer(now, key),
            SwarmMsg::WriterDrained { key } => self.push_uploads(key),
            SwarmMsg::HttpDone { xfer, id, result } => {
                self.http.remove(&xfer);
                match result.and_then(|d| self.check(id, d, false)) {
                    Ok(data) => {
                        self.store(now, id, data.clone());
                        self.sched
                            .handle_transfer_done(now, xfer, data.len() as u64);
                        self.sched.handle_segment_stored(now, id);
                    }
                    Err(_) => {
                        self.sched
                            .handle_transfer_failed(now, xfer, TransferError::Http);
                    }
                }
            }
            SwarmMsg::Shutdown => {}
        }
    }

    fn set_segments(&mut self, now: u64, p: &MediaPlaylist) {
        self.live = !p.end_list;
        self.ever_live |= self.live;
        self.segments.clear();
        self.by_sequence.clear();
        let mut infos = Vec::with_capacity(p.segments.len());
        for (i, s) in p.segments.iter().enumerate() {
            // hls.js keeps the ids of segments it knew while live when ENDLIST arrives;
            // renumbering by position would give stored segments another segment's id.
            let id = match (self.ever_live, s.start_seconds) {
                (true, None) => Some(s.sequence),
                _ => super::segment_id(p, i),
            };
            let Some(id) = id else {
                continue;
            };
            self.by_sequence.insert(s.sequence, id);
            if s.gap {
                continue;
            }
            infos.push(SegmentInfo {
                id,
                start_ms: s.start.as_millis() as u64,
                duration_ms: s.duration.as_millis() as u64,
                size_hint: s.resource.range.map(|r| r.length),
            });
            self.segments.insert(id, s.clone());
        }
        let window = self.hub.config.scheduler.high_demand_time_window_ms;
        self.hub
            .store()
            .configure_stream(self.stream, self.live, window);
        self.sched.handle_segments(now, self.live, &infos);
    }

    /// Data we would hand downstream and share must look like media (unless encrypted:
    /// then the fetch loop checks it after decryption).
    fn check(&self, id: u64, data: Bytes, from_peer: bool) -> Result<Bytes, String> {
        let Some(seg) = self.segments.get(&id) else {
            return Ok(data);
        };
        if let Some(r) = seg.resource.range {
            if data.len() as u64 != r.length {
                return Err(format!(
                    "segment {id}: {} bytes, byte range says {}",
                    data.len(),
                    r.length
                ));
            }
        }
        if seg.key.is_none() && sniff(&data).is_none() {
            return Err(format!("segment {id}: not media"));
        }
        if let Some(validate) = &self.hub.validator {
            let check = SegmentCheck {
                info_hash: &self.info_hash_str,
                id,
                url: seg.resource.url.as_str(),
                from_peer,
            };
            if !validate(&check, &data) {
                return Err(format!("segment {id}: rejected by the application"));
            }
        }
        Ok(data)
    }

    fn store(&mut self, now: u64, id: u64, data: Bytes) {
        let (start, end) = match self.segments.get(&id) {
            Some(s) => (s.start.as_millis() as u64, s.end().as_millis() as u64),
            None => return,
        };
        let evicted = self.hub.store().insert(self.stream, id, start, end, data);
        if let Ok(evicted) = evicted {
            self.note_evicted(now, &evicted);
        }
    }

    fn tracker_event(&mut self, now: u64, ev: TrackerEvent) {
        match ev {
            TrackerEvent::NeedOffers { tracker, count, .. } => self.make_offers(tracker, count),
            TrackerEvent::Answer {
                peer_id,
                offer_id,
                sdp,
                ..
            } => {
                let Some(pending) = self.offers.remove(&offer_id) else {
                    return;
                };
                if self.knows(&peer_id) {
                    return; // dropping `pending` closes that connection
                }
                self.connect(
                    peer_id,
                    async move { pending.accept_answer(&sdp).await.ok() },
                );
            }
            TrackerEvent::Offer {
                tracker,
                peer_id,
                offer_id,
                sdp,
                ..
            } => {
                if self.knows(&peer_id) || self.full() {
                    return;
                }
                let (hub, info_hash) = (self.hub.clone(), self.info_hash);
                self.connect(peer_id, async move {
                    let (conn, answer) = hub.rtc.accept_offer(&sdp).await.ok()?;
                    hub.tracker
                        .answer(&tracker, info_hash, peer_id, offer_id, answer)
                        .then_some(conn)
                });
            }
            TrackerEvent::OfferExpired { offer_id, .. } => {
                self.offers.remove(&offer_id);
            }
            TrackerEvent::Announced {
                complete,
                incomplete,
                ..
            } => {
                self.sched
                    .handle_swarm_counts(now, complete.unwrap_or(0), incomplete.unwrap_or(0));
            }
            TrackerEvent::AnswerNotSent { .. }
            | TrackerEvent::Warning { .. }
            | TrackerEvent::TrackerState { .. } => {}
        }
    }

    /// Finishes signalling in the background, waits for the channel to open and reports back.
    fn connect<F>(&mut self, peer_id: PeerId, signalling: F)
    where
        F: std::future::Future<Output = Option<Box<dyn DataChannelConn>>> + Send + 'static,
    {
        self.connecting.insert(peer_id);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let conn = match signalling.await {
                Some(conn) if conn.wait_open(OPEN_TIMEOUT).await.is_ok() => Some(conn),
                _ => None,
            };
            let _ = tx.send(match conn {
                Some(conn) => SwarmMsg::Connected { peer_id, conn },
                None => SwarmMsg::ConnectFailed { peer_id },
            });
        });
    }

    fn knows(&self, peer_id: &PeerId) -> bool {
        self.by_id.contains_key(peer_id) || self.connecting.contains(peer_id)
    }

    fn full(&self) -> bool {
        let max = self.hub.config.max_peers;
        max > 0 && self.peers.len() + self.connecting.len() >= max
    }

    /// Every announce needs an answer (it is what keeps us listed), even with no offers.
    fn make_offers(&mut self, tracker: TrackerId, count: usize) {
        let room = match self.hub.config.max_peers {
            0 => count,
            max => count.min(max.saturating_sub(self.peers.len() + self.connecting.len())),
        };
        let (tx, hub) = (self.tx.clone(), self.hub.clone());
        tokio::spawn(async move {
            let mut offers = Vec::with_capacity(room);
            for _ in 0..room {
                if let Ok((pending, sdp)) = hub.rtc.create_offer().await {
                    offers.push((OfferId::random(), pending, sdp));
                }
            }
            let _ = tx.send(SwarmMsg::OffersReady { tracker, offers });
        });
    }

    fn connected(&mut self, now: u64, peer_id: PeerId, conn: Box<dyn DataChannelConn>) {
        self.connecting.remove(&peer_id);
        if self.by_id.contains_key(&peer_id) {
            tokio::spawn(async move { conn.close().await });
            return;
        }
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        let link = Link::start(conn, key, self.tx.clone());
        let config = PeerConfig {
            not_receiving_bytes_timeout_ms: self
                .hub
                .config
                .scheduler
                .p2p_not_receiving_bytes_timeout_ms,
            error_retries: self.hub.config.scheduler.p2p_error_retries,
            ..PeerConfig::default()
        };
        let mut session = PeerSession::new(config, self.seed ^ key.0);
        if self.hub.config.upload {
            let (l, p) = self.announcement();
            session.announce(&l, &p);
        }
        self.peers.insert(
            key,
            Peer {
                peer_id,
                session,
                link,
                download: None,
            },
        );
        self.by_id.insert(peer_id, key);
        self.peer_count.store(self.peers.len(), Relaxed);
        self.sched.handle_peer_connected(now, key);
        self.hub.notify(P2pEvent::PeerConnected {
            info_hash: self.info_hash_str.clone(),
            peer_id: peer_id.to_string(),
        });
    }

    fn remove_peer(&mut self, now: u64, key: PeerKey) {
        let Some(p) = self.peers.remove(&key) else {
            return;
        };
        self.by_id.remove(&p.peer_id);
        if let Some((xfer, _, _)) = p.download {
            self.sched
                .handle_transfer_failed(now, xfer, TransferError::PeerFailed);
        }
        p.link.close();
        self.peer_count.store(self.peers.len(), Relaxed);
        self.sched.handle_peer_disconnected(now, key);
        self.hub.notify(P2pEvent::PeerClosed {
            info_hash: self.info_hash_str.clone(),
            peer_id: p.peer_id.to_string(),
        });
    }

    fn announcement(&self) -> (Vec<i64>, Vec<i64>) {
        let loaded = self
            .hub
            .store()
            .ids(self.stream)
            .into_iter()
            .map(|i| i as i64)
            .collect();
        let loading = self
            .sched
            .http_loading_ids()
            .into_iter()
            .map(|i| i as i64)
            .collect();
        (loaded, loading)
    }

    fn announce_all(&mut self) {
        if !self.hub.config.upload {
            return;
        }
        let (l, p) = self.announcement();
        for peer in self.peers.values_mut() {
            peer.session.announce(&l, &p);
        }
    }

    /// Runs scheduler commands and peer outputs until neither has anything left.
    /// Runs peer outputs and scheduler commands until neither has anything left. Peer events
    /// go first: a download that timed out must reach the scheduler as *that* transfer's
    /// failure before a new request to the same peer is made.
    fn pump(&mut self) {
        // Bounded: a feedback loop between the two must never freeze the actor.
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut busy = false;
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for key in keys {
                while let Some(out) = self
                    .peers
                    .get_mut(&key)
                    .and_then(|p| p.session.poll_output())
                {
                    busy = true;
                    self.peer_output(key, out);
                }
                self.push_uploads(key);
            }
            while let Some(cmd) = self.sched.poll_command() {
                busy = true;
                self.execute(cmd);
            }
            let changed = self.hub.store().take_changed();
            if changed.contains(&self.stream) {
                busy = true;
                self.announce_all();
            }
            if !busy {
                break;
            }
        }
    }

    fn push_uploads(&mut self, key: PeerKey) {
        let now = self.now();
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        while p.link.backlog() < LOW_WATER * 2 && self.hub.upload_allowed(now) {
            let Some(chunk) = p.session.poll_upload_chunk() else {
                break;
            };
            self.hub.debit_upload(chunk.len());
            self.hub.origin.stats.add_p2p_upload(chunk.len() as u64);
            p.link.send(Bytes::from(chunk));
        }
    }

    fn execute(&mut self, cmd: Command) {
        let now = self.now();
        match cmd {
            Command::HttpFetch { xfer, id } => {
                let Some(seg) = self.segments.get(&id) else {
                    self.sched
                        .handle_transfer_failed(now, xfer, TransferError::Http);
                    return;
                };
                let (tx, origin, resource) = (
                    self.tx.clone(),
                    self.hub.origin.clone(),
                    seg.resource.clone(),
                );
                let task = tokio::spawn(async move {
                    let result = origin
                        .fetch(&resource, true)
                        .await
                        .map(|f| f.data)
                        .map_err(|e| e.to_string());
                    let _ = tx.send(SwarmMsg::HttpDone { xfer, id, result });
                });
                self.http.insert(xfer, task);
            }
            Command::P2pRequest { xfer, peer, id } => {
                let cap = self.hub.config.max_segment_bytes;
                let size = self
                    .segments
                    .get(&id)
                    .and_then(|s| s.resource.range)
                    .map(|r| r.length);
                let Some(p) = self.peers.get_mut(&peer) else {
                    self.sched
                        .handle_transfer_failed(now, xfer, TransferError::PeerFailed);
                    return;
                };
                let req = DownloadRequest {
                    id: id as i64,
                    byte_offset: 0,
                    total_bytes: size,
                    max_segment_bytes: size.unwrap_or(cap),
                };
                match p.session.request(req, now) {
                    Ok(_) => p.download = Some((xfer, id, now)),
                    // Busy or closed: not this peer now (PeerFailed would count a strike).
                    Err(_) => {
                        self.sched
                            .handle_transfer_failed(now, xfer, TransferError::PeerAbsent);
                    }
                }
            }
            Command::Abort { xfer, source, .. } => match source {
                Source::Http => {
                    if let Some(h) = self.http.remove(&xfer) {
                        h.abort();
                    }
                }
                Source::P2p(peer) => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        if p.download.is_some_and(|(x, _, _)| x == xfer) {
                            p.session.cancel_download();
                            p.download = None;
                        }
                    }
                }
            },
            Command::Deliver { id } => {
                if self.pending.as_ref().is_some_and(|(p, _)| *p == id) {
                    let data = self.hub.store().get(self.stream, id).cloned();
                    if let (Some((_, reply)), Some(data)) = (self.pending.take(), data) {
                        let _ = reply.send(Ok(Loaded {
                            data,
                            from_peer: false,
                        }));
                    }
                }
            }
            Command::PlayerError { id } => {
                if self.pending.as_ref().is_some_and(|(p, _)| *p == id) {
                    if let Some((_, reply)) = self.pending.take() {
                        let _ = reply.send(Err(LoadError::Failed));
                    }
                }
            }
            Command::DisconnectPeer { peer } => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.session.disconnect(DisconnectReason::Local);
                }
                self.remove_peer(now, peer);
            }
            Command::Announce => self.announce_all(),
        }
    }

    fn peer_output(&mut self, key: PeerKey, out: Output) {
        let now = self.now();
        let ev = match out {
            Output::Send(msg) => {
                if let Some(p) = self.peers.get(&key) {
                    p.link.send(Bytes::from(msg));
                }
                return;
            }
            Output::Event(ev) => ev,
        };
        match ev {
            Event::PeerAnnounced {
                loaded,
                http_loading,
            } => {
                let l: Vec<u64> = loaded
                    .into_iter()
                    .filter_map(|i| u64::try_from(i).ok())
                    .collect();
                let p: Vec<u64> = http_loading
                    .into_iter()
                    .filter_map(|i| u64::try_from(i).ok())
                    .collect();
                self.sched.handle_peer_announce(now, key, &l, &p);
            }
            Event::DownloadProgress {
                received, expected, ..
            } => {
                if let Some((xfer, _, _)) = self.peers.get(&key).and_then(|p| p.download) {
                    self.sched
                        .handle_transfer_progress(now, xfer, received, Some(expected));
                }
            }
            Event::SegmentReceived { id, data } => {
                let Some((xfer, want, started)) =
                    self.peers.get_mut(&key).and_then(|p| p.download.take())
                else {
                    return;
                };
                let data = Bytes::from(data);
                match (id as u64 == want)
                    .then_some(())
                    .ok_or(String::new())
                    .and_then(|_| self.check(want, data, true))
                {
                    Ok(data) => {
                        let n = data.len() as u64;
                        self.hub.origin.stats.add_p2p(n);
                        self.hub.origin.sample(
                            abr::Source::P2p,
                            n,
                            Duration::from_millis(now.saturating_sub(started).max(1)),
                        );
                        self.store(now, want, data);
                        let peer_id = self.peers.get(&key).map(|p| p.peer_id.to_string());
                        self.hub.notify(P2pEvent::SegmentLoaded {
                            info_hash: self.info_hash_str.clone(),
                            id: want,
                            bytes: n,
                            peer_id,
                        });
                        self.sched.handle_transfer_done(now, xfer, n);
                        self.sched.handle_segment_stored(now, want);
                    }
                    Err(_) => {
                        // A peer that sends what is not media is not worth keeping.
                        self.sched
                            .handle_transfer_failed(now, xfer, TransferError::PeerFailed);
                        self.remove_peer(now, key);
                    }
                }
            }
            Event::SegmentAbsent { .. } => {
                if let Some((xfer, _, _)) = self.peers.get_mut(&key).and_then(|p| p.download.take())
                {
                    self.sched
                        .handle_transfer_failed(now, xfer, TransferError::PeerAbsent);
                }
            }
            Event::DownloadFailed { .. } => {
                if let Some((xfer, _, _)) = self.peers.get_mut(&key).and_then(|p| p.download.take())
                {
                    self.sched
                        .handle_transfer_failed(now, xfer, TransferError::PeerFailed);
                }
            }
            Event::UploadRequested { id, request_id, .. } => {
                let data = if self.hub.config.upload {
                    u64::try_from(id)
                        .ok()
                        .and_then(|id| self.hub.store().get(self.stream, id).cloned())
                } else {
                    None
                };
                if let Some(p) = self.peers.get_mut(&key) {
                    match data {
                        Some(d) => {
                            p.session.upload(request_id, Arc::new(d));
                        }
                        None => {
                            p.session.upload_absent(request_id);
                        }
                    }
                }
            }
            Event::UploadCancelled { .. } => {}
            Event::Disconnect { .. } => self.remove_peer(now, key),
        }
    }
}
