//! The swarm actor: one tokio task per stream swarm that drives the pure
//! [`crate::swarm::Swarm`] and does its I/O — HTTP requests, data-channel messages, tracker
//! announces and WebRTC signalling — and answers the fetch loop's segment requests. Every
//! decision is the core's; this file only carries them out and logs them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::link::{Link, LinkEvent, LinkSink};
use super::{HubShared, P2pEvent, Role};
use crate::abr;
use crate::engine::output::OutputQueue;
use crate::engine::task;
use crate::media::MediaPlaylist;
use crate::net::rtc::{sdp_remote_addr, DataChannelConn, PendingOffer};
use crate::net::tracker::{InfoHash, OfferId, PeerId, TrackerEvent, TrackerId};
use crate::p2p::identity::{Compat, StreamType};
use crate::p2p::WireFamily;
use crate::payload::hashes::SegmentHashes;
use crate::schedule::{PeerKey, Source, TransferId};
use crate::swarm::{Output, Remote, Swarm, SwarmConfig, SwarmEvent};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "p2pmedia-swarm",
        gst::DebugColorFlags::empty(),
        Some("p2pmedia swarm: peers, transfers and where each segment came from"),
    )
});

/// How long a data channel may take to open after signalling.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Our offers being created or awaiting an answer, over all trackers (PML makes 5 per
/// tracker and announce). Bounds the PeerConnections a flapping tracker can make us open.
const MAX_OPEN_OFFERS: usize = 10;
/// Connections being set up at once when `max-peers` is 0 (unlimited): still bounded.
const MAX_CONNECTING: usize = 32;
/// How often the playhead is read.
const TICK_MS: u64 = 200;
/// HTTP progress reports at most this often.
const PROGRESS_MS: u64 = 200;

/// A segment handed to the fetch loop.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub data: Bytes,
    /// Came from a peer: if it turns out not to decode, call [`SwarmHandle::reject`].
    pub from_peer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The swarm gave up on it (HTTP retries exhausted, nobody has it).
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
    /// The fetch loop stopped waiting (seek, flush, its own timeout).
    Cancel {
        sequence: u64,
    },
    Verified {
        sequence: u64,
    },
    Given {
        sequence: u64,
        data: Bytes,
    },
    Rejected {
        sequence: u64,
        reason: String,
    },
    Tracker(TrackerEvent),
    OffersReady {
        tracker: TrackerId,
        /// How many were asked for (all counted in flight until now).
        asked: usize,
        offers: Vec<(OfferId, Box<dyn PendingOffer>, String)>,
    },
    Connected {
        peer_id: PeerId,
        conn: Box<dyn DataChannelConn>,
        role: Role,
        setup: Duration,
    },
    ConnectFailed {
        peer_id: PeerId,
    },
    Link(LinkEvent),
    HttpProgress {
        xfer: TransferId,
        received: u64,
    },
    HttpDone {
        xfer: TransferId,
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
    store_bytes: Arc<AtomicU64>,
    /// Running totals of this swarm, for `stats`.
    totals: Arc<SwarmTotals>,
    /// 0 while in use; otherwise the token of the pending release.
    released: Arc<AtomicU64>,
}

static RELEASE_TOKENS: AtomicU64 = AtomicU64::new(1);

/// One swarm's running totals, written by its actor.
#[derive(Debug, Default)]
pub struct SwarmTotals {
    pub upload_bytes: AtomicU64,
    /// Segments stored from the origin.
    pub http_segments: AtomicU64,
    /// Uploads sent to their last byte.
    pub served_segments: AtomicU64,
}

impl SwarmHandle {
    pub fn set_segments(&self, playlist: Arc<MediaPlaylist>) {
        let _ = self.tx.send(SwarmMsg::Segments(playlist));
    }

    /// The segment with this media sequence number (of the playlist last given to
    /// `set_segments`), from the store, a peer or the origin as the swarm decides.
    pub async fn load(&self, sequence: u64) -> Result<Loaded, LoadError> {
        /// Tells the actor when the caller stops waiting before an answer.
        struct Waiting<'a>(&'a mpsc::UnboundedSender<SwarmMsg>, u64, bool);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    let _ = self.0.send(SwarmMsg::Cancel { sequence: self.1 });
                }
            }
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(SwarmMsg::Load { sequence, reply })
            .map_err(|_| LoadError::Gone)?;
        let mut waiting = Waiting(&self.tx, sequence, false);
        let result = rx.await.unwrap_or(Err(LoadError::Gone));
        waiting.2 = true;
        result
    }

    /// A bridged family's swarm (`Policy::Mirror`): the segment the player just used, as the
    /// origin or a peer of the played family's swarm sent it; stored and served here.
    pub fn give(&self, sequence: u64, data: Bytes) {
        let _ = self.tx.send(SwarmMsg::Given { sequence, data });
    }

    /// The segment decoded: peer data of an encrypted stream may be shared on.
    pub fn verified(&self, sequence: u64) {
        let _ = self.tx.send(SwarmMsg::Verified { sequence });
    }

    /// The segment did not decrypt or decode: drop it, drop the peer that sent it, and let
    /// the next `load` fetch it from the origin.
    pub fn reject(&self, sequence: u64, reason: String) {
        let _ = self.tx.send(SwarmMsg::Rejected { sequence, reason });
    }

    pub(super) fn tracker_event(&self, ev: TrackerEvent) {
        let _ = self.tx.send(SwarmMsg::Tracker(ev));
    }

    pub fn peer_count(&self) -> usize {
        self.peers.load(Relaxed)
    }

    pub fn store_bytes(&self) -> u64 {
        self.store_bytes.load(Relaxed)
    }

    pub fn totals(&self) -> &SwarmTotals {
        &self.totals
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
    stream_type: StreamType,
    compat: Compat,
    family: WireFamily,
    mirror: bool,
    playhead: Arc<OutputQueue>,
) -> SwarmHandle {
    // Display: 2.x hashes as they are, 0.6's binary ones in hex.
    let info_hash_str = info_hash.to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let peers = Arc::new(AtomicUsize::new(0));
    let store_bytes = Arc::new(AtomicU64::new(0));
    let totals = Arc::new(SwarmTotals::default());
    let handle = SwarmHandle {
        tx: tx.clone(),
        info_hash,
        info_hash_str: info_hash_str.clone(),
        stream_type,
        peers: peers.clone(),
        store_bytes: store_bytes.clone(),
        totals: totals.clone(),
        released: Arc::new(AtomicU64::new(0)),
    };
    let now = hub.origin.now_ms();
    let c = &hub.config;
    let peer_id = match hub.peer_id {
        Some(id) if !compat.peer_id_per_swarm() => id,
        _ => PeerId::random_with_prefix(compat.pml_peer_id_prefix()),
    };
    let config = SwarmConfig {
        scheduler: if mirror {
            crate::schedule::SchedulerConfig::mirror()
        } else {
            c.scheduler.clone()
        },
        upload: c.upload,
        max_peers: c.max_peers,
        max_upload_rate: c.max_upload_rate,
        max_segment_bytes: c.max_segment_bytes,
        store_limit: c.store_limit,
        max_message_size: crate::p2p::wire::MAX_MESSAGE_SIZE,
        upload_chunk_size: crate::swarm::UPLOAD_CHUNK_SIZE,
        label: info_hash_str.clone(),
        validator: hub.validator.clone(),
        family,
    };
    let actor = Actor {
        swarm: Swarm::new(config, rand::random(), now),
        mirror,
        hub,
        info_hash,
        info_hash_str,
        peer_id,
        pending: None,
        http: HashMap::new(),
        links: HashMap::new(),
        by_id: HashMap::new(),
        connecting: HashMap::new(),
        offers: HashMap::new(),
        offers_in_flight: 0,
        next_key: 1,
        tx,
        playhead,
        peer_count: peers,
        store_bytes,
        totals,
        uploaded: 0,
    };
    let (hub, info_hash) = (actor.hub.clone(), actor.info_hash_str.clone());
    task::spawn("swarm actor", actor.run(rx), move |reason| {
        // Its channel is closed now: every load answers `Gone` and the fetch loop uses HTTP.
        gst::warning!(
            CAT,
            "{info_hash}: swarm actor panicked, P2P off for it: {reason}"
        );
        hub.notify(P2pEvent::SwarmFailed { info_hash, reason });
    });
    handle
}

/// The next table of `segment-hashes-url`, or never without one.
async fn next_table(
    rx: &mut Option<tokio::sync::watch::Receiver<Arc<SegmentHashes>>>,
) -> Option<Arc<SegmentHashes>> {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                // The book is gone (session ending): nothing more will come.
                std::future::pending::<()>().await;
            }
            Some(rx.borrow_and_update().clone())
        }
        None => std::future::pending().await,
    }
}

struct Actor {
    hub: Arc<HubShared>,
    /// A bridged family's swarm (`Policy::Mirror`).
    mirror: bool,
    swarm: Swarm<Bytes>,
    info_hash: InfoHash,
    info_hash_str: String,
    peer_id: PeerId,
    pending: Option<(u64, oneshot::Sender<Result<Loaded, LoadError>>)>,
    http: HashMap<TransferId, JoinHandle<()>>,
    links: HashMap<PeerKey, (PeerId, Link)>,
    by_id: HashMap<PeerId, PeerKey>,
    /// Connections being set up (signalling, then waiting for the channel), each holding a
    /// `max-peers` slot until its task reports back — which its [`SetupSlot`] guarantees.
    connecting: HashMap<PeerId, tokio::task::AbortHandle>,
    /// Our offers sent and awaiting an answer; they hold `max-peers` slots too.
    offers: HashMap<OfferId, Box<dyn PendingOffer>>,
    /// Offers being created (see [`OfferBatch`]).
    offers_in_flight: usize,
    next_key: u64,
    tx: mpsc::UnboundedSender<SwarmMsg>,
    playhead: Arc<OutputQueue>,
    peer_count: Arc<AtomicUsize>,
    store_bytes: Arc<AtomicU64>,
    totals: Arc<SwarmTotals>,
    /// Upload bytes already added to the element's stats.
    uploaded: u64,
}

impl Actor {
    fn now(&self) -> u64 {
        self.hub.origin.now_ms()
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<SwarmMsg>) {
        gst::debug!(CAT, "{}: joining as {}", self.info_hash_str, self.peer_id);
        self.hub.tracker.join(self.info_hash, self.peer_id);
        let mut next_tick = self.now();
        let mut hashes = self.hub.hashes.as_ref().map(|b| b.subscribe());
        if let Some(h) = hashes.as_mut() {
            let table = h.borrow_and_update().clone();
            self.swarm.handle_segment_hashes(self.now(), table);
        }
        loop {
            let now = self.now();
            let wake = self
                .swarm
                .poll_timeout()
                .map_or(next_tick, |t| t.min(next_tick));
            let sleep = Duration::from_millis(wake.saturating_sub(now));
            tokio::select! {
                msg = rx.recv() => match msg {
                    None | Some(SwarmMsg::Shutdown) => break,
                    Some(m) => self.handle(m),
                },
                Some(table) = next_table(&mut hashes) => {
                    let now = self.now();
                    self.swarm.handle_segment_hashes(now, table);
                }
                _ = tokio::time::sleep(sleep) => {}
            }
            // Timers run whatever woke us: a steady stream of messages must not starve them.
            let now = self.now();
            if self.swarm.poll_timeout().is_some_and(|t| t <= now) {
                self.swarm.handle_timeout(now);
            }
            if now >= next_tick {
                if let Some(pos) = self.playhead.position() {
                    self.swarm.handle_playhead(now, pos.as_millis() as u64);
                }
                next_tick = now + TICK_MS;
            }
            self.carry_out();
        }
        self.stop();
    }

    fn stop(&mut self) {
        gst::debug!(CAT, "{}: leaving", self.info_hash_str);
        self.hub.tracker.leave(self.info_hash);
        for (_, h) in self.http.drain() {
            h.abort();
        }
        for (_, (_, link)) in self.links.drain() {
            link.close();
        }
        self.offers.clear();
        for (_, task) in self.connecting.drain() {
            task.abort();
        }
        self.peer_count.store(0, Relaxed);
        self.store_bytes.store(0, Relaxed);
        if let Some((_, reply)) = self.pending.take() {
            let _ = reply.send(Err(LoadError::Gone));
        }
    }

    fn handle(&mut self, msg: SwarmMsg) {
        let now = self.now();
        match msg {
            SwarmMsg::Segments(p) => {
                // A live table lags the playlist: have it fetched again until it lists the
                // newest segment (until then peers are not asked for what it lacks).
                if let (Some(book), Some(newest)) = (&self.hub.hashes, p.segments.last()) {
                    book.want(&newest.resource);
                }
                self.swarm.handle_playlist(now, &p)
            }
            SwarmMsg::Load { sequence, reply } => {
                // A new request replaces one the fetch loop stopped waiting for (seek).
                self.pending = Some((sequence, reply));
                self.swarm.handle_load(now, sequence);
            }
            SwarmMsg::Cancel { sequence } => {
                if self.pending.as_ref().is_some_and(|(s, _)| *s == sequence) {
                    self.pending = None;
                    self.swarm.handle_load_cancel(now);
                }
            }
            SwarmMsg::Verified { sequence } => self.swarm.handle_segment_verified(now, sequence),
            SwarmMsg::Given { sequence, data } => {
                self.swarm.handle_segment_given(now, sequence, data)
            }
            SwarmMsg::Rejected { sequence, reason } => {
                self.swarm.handle_segment_rejected(now, sequence, &reason)
            }
            SwarmMsg::Tracker(ev) => self.tracker_event(now, ev),
            SwarmMsg::OffersReady {
                tracker,
                asked,
                offers,
            } => {
                self.offers_in_flight = self.offers_in_flight.saturating_sub(asked);
                let ids: Vec<OfferId> = offers.iter().map(|(id, ..)| *id).collect();
                let mut list = Vec::with_capacity(offers.len());
                for (id, pending, sdp) in offers {
                    self.offers.insert(id, pending);
                    list.push((id, sdp));
                }
                // A stopped tracker task would never expire them: close them now.
                if !self.hub.tracker.announce(&tracker, self.info_hash, list) {
                    for id in ids {
                        self.offers.remove(&id);
                    }
                }
            }
            SwarmMsg::Connected {
                peer_id,
                conn,
                role,
                setup,
            } => self.connected(now, peer_id, conn, role, setup),
            SwarmMsg::ConnectFailed { peer_id } => {
                gst::debug!(
                    CAT,
                    "{}: connection to {peer_id} failed",
                    self.info_hash_str
                );
                self.connecting.remove(&peer_id);
                self.log_slots();
            }
            SwarmMsg::Link(LinkEvent::Message { key, msg, .. }) => {
                self.swarm.handle_peer_message(now, key, &msg)
            }
            SwarmMsg::Link(LinkEvent::Drained { key, bytes }) => {
                self.swarm.handle_peer_drained(now, key, bytes)
            }
            SwarmMsg::Link(LinkEvent::Closed { key }) => {
                if let Some((peer_id, link)) = self.links.remove(&key) {
                    self.by_id.remove(&peer_id);
                    link.close();
                    self.notify_closed(peer_id);
                }
                self.swarm.handle_peer_closed(now, key);
            }
            SwarmMsg::HttpProgress { xfer, received } => {
                self.swarm.handle_http_progress(now, xfer, received)
            }
            SwarmMsg::HttpDone { xfer, result } => {
                if self.http.remove(&xfer).is_none() {
                    return; // aborted meanwhile
                }
                match result {
                    Ok(data) => self.swarm.handle_http_done(now, xfer, data),
                    Err(e) => {
                        gst::debug!(
                            CAT,
                            "{}: HTTP transfer {xfer:?} failed: {e}",
                            self.info_hash_str
                        );
                        self.swarm.handle_http_failed(now, xfer)
                    }
                }
            }
            SwarmMsg::Shutdown => {}
        }
    }

    /// Does what the swarm decided.
    fn carry_out(&mut self) {
        while let Some(out) = self.swarm.poll_output() {
            match out {
                Output::Transmit { peer, data } => {
                    if let Some((_, link)) = self.links.get(&peer) {
                        link.send(Bytes::from(data));
                    }
                }
                Output::HttpFetch {
                    xfer,
                    sequence,
                    resource,
                } => {
                    gst::debug!(
                        CAT,
                        "{}: GET segment {sequence} ({})",
                        self.info_hash_str,
                        resource.url
                    );
                    let (tx, origin) = (self.tx.clone(), self.hub.origin.clone());
                    let task = task::spawn_logged("swarm http", async move {
                        let (last, seen, total) =
                            (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
                        let (progress_tx, clock) = (tx.clone(), origin.clone());
                        // Counted across the HTTP client's own retries (each restarts at 0), so
                        // a retry that receives bytes is alive too.
                        let progress = move |received: u64| {
                            let before = seen.swap(received, Relaxed);
                            let grown = received.checked_sub(before).unwrap_or(received);
                            let received = total.fetch_add(grown, Relaxed) + grown;
                            let now = clock.now_ms();
                            if now.saturating_sub(last.load(Relaxed)) >= PROGRESS_MS {
                                last.store(now, Relaxed);
                                let _ = progress_tx.send(SwarmMsg::HttpProgress { xfer, received });
                            }
                        };
                        let result = origin
                            .fetch_with_progress(&resource, true, &progress)
                            .await
                            .map(|f| f.data)
                            .map_err(|e| e.to_string());
                        let _ = tx.send(SwarmMsg::HttpDone { xfer, result });
                    });
                    self.http.insert(xfer, task);
                }
                Output::HttpAbort { xfer } => {
                    if let Some(h) = self.http.remove(&xfer) {
                        h.abort();
                    }
                }
                Output::Deliver {
                    sequence,
                    data,
                    source,
                } => {
                    gst::debug!(
                        CAT,
                        "{}: segment {sequence} ({} bytes) to the player from {}",
                        self.info_hash_str,
                        data.len(),
                        self.source_name(source)
                    );
                    if self.pending.as_ref().is_some_and(|(s, _)| *s == sequence) {
                        if let Some((_, reply)) = self.pending.take() {
                            let from_peer = matches!(source, Source::P2p(_));
                            let _ = reply.send(Ok(Loaded { data, from_peer }));
                        }
                    }
                }
                Output::LoadFailed { sequence } => {
                    gst::info!(CAT, "{}: gave up on segment {sequence}", self.info_hash_str);
                    if self.pending.as_ref().is_some_and(|(s, _)| *s == sequence) {
                        if let Some((_, reply)) = self.pending.take() {
                            let _ = reply.send(Err(LoadError::Failed));
                        }
                    }
                }
                Output::Disconnect { peer } => {
                    if let Some((peer_id, link)) = self.links.remove(&peer) {
                        self.by_id.remove(&peer_id);
                        link.close();
                        self.notify_closed(peer_id);
                    }
                }
                Output::Event(ev) => self.event(ev),
            }
        }
        let stats = self.swarm.stats();
        self.hub.origin.stats.p2p_stall(stats.longest_p2p_gap_ms);
        let up = stats.upload_bytes;
        if up > self.uploaded {
            self.hub.origin.stats.add_p2p_upload(up - self.uploaded);
            self.uploaded = up;
        }
        self.peer_count.store(self.swarm.peer_count(), Relaxed);
        self.store_bytes.store(stats.store_bytes, Relaxed);
        let element = &self.hub.origin.stats;
        let t = &self.totals;
        let seeded = t.http_segments.swap(stats.http_segments, Relaxed);
        element
            .seeded_segments
            .fetch_add(stats.http_segments.saturating_sub(seeded), Relaxed);
        let served = t.served_segments.swap(stats.served_segments, Relaxed);
        element
            .served_segments
            .fetch_add(stats.served_segments.saturating_sub(served), Relaxed);
        t.upload_bytes.store(stats.upload_bytes, Relaxed);
    }

    fn source_name(&self, source: Source) -> String {
        match source {
            Source::Http => "the origin".into(),
            Source::P2p(k) => match self.links.get(&k) {
                Some((id, _)) => format!("peer {id}"),
                None => format!("peer {k:?} (gone)"),
            },
        }
    }

    fn event(&mut self, ev: SwarmEvent) {
        let name = &self.info_hash_str;
        match ev {
            SwarmEvent::Stored {
                id,
                bytes,
                source,
                elapsed_ms,
            } => {
                if self.mirror {
                    // Handed over by the played family's swarm, which reported it already.
                    gst::debug!(CAT, "{name}: serving segment {id} ({bytes} bytes)");
                    return;
                }
                gst::debug!(
                    CAT,
                    "{name}: stored segment {id} ({bytes} bytes, {elapsed_ms} ms) from {}",
                    self.source_name(source)
                );
                let peer_id = match source {
                    Source::Http => None,
                    Source::P2p(k) => {
                        self.hub.origin.stats.add_p2p(bytes);
                        self.hub.origin.sample(
                            abr::Source::P2p,
                            bytes,
                            Duration::from_millis(elapsed_ms.max(1)),
                        );
                        self.links.get(&k).map(|(id, _)| id.to_string())
                    }
                };
                self.hub.notify(P2pEvent::SegmentLoaded {
                    info_hash: name.clone(),
                    id,
                    bytes,
                    peer_id,
                });
            }
            SwarmEvent::Rejected { id, source, reason } => {
                gst::warning!(
                    CAT,
                    "{name}: segment {id} from {} rejected: {reason}",
                    self.source_name(source)
                );
                let peer_id = match source {
                    Source::Http => None,
                    Source::P2p(k) => self.links.get(&k).map(|(id, _)| id.to_string()),
                };
                self.hub.notify(P2pEvent::SegmentRejected {
                    info_hash: name.clone(),
                    id,
                    peer_id,
                    reason,
                });
            }
            SwarmEvent::PeerAdded { peer } => {
                gst::debug!(CAT, "{name}: peer {peer:?} added");
            }
            SwarmEvent::PeerRemoved { peer, reason } => {
                gst::debug!(
                    CAT,
                    "{name}: peer {} removed: {reason}",
                    self.source_name(Source::P2p(peer))
                );
            }
            SwarmEvent::Decision(cmd) => {
                gst::log!(CAT, "{name}: scheduler: {cmd:?}");
            }
            SwarmEvent::WastedHttp { id, bytes } => {
                gst::debug!(CAT, "{name}: threw away {bytes} HTTP bytes of segment {id}");
            }
        }
    }

    fn notify_closed(&self, peer_id: PeerId) {
        self.hub.notify(P2pEvent::PeerClosed {
            info_hash: self.info_hash_str.clone(),
            peer_id: peer_id.to_string(),
        });
    }

    /// A peer the swarm dropped for misbehaving comes back (maybe under a new id from the
    /// same address): refused before any PeerConnection is made.
    fn banned(&self, now: u64, peer_id: &PeerId, sdp: &str) -> bool {
        let remote = Remote {
            id: peer_id.0,
            addr: sdp_remote_addr(sdp),
        };
        self.swarm.is_banned(now, &remote)
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
                // `max-peers` holds for answers too (the offer's own slot is free again now);
                // dropping `pending` closes that connection.
                if self.knows(&peer_id) || !self.has_room() || self.banned(now, &peer_id, &sdp) {
                    gst::debug!(
                        CAT,
                        "{}: answer from {peer_id} dropped (known, banned or no room)",
                        self.info_hash_str
                    );
                    return;
                }
                // The setup time counts from here: the answer is in.
                let answered = Instant::now();
                self.connect(peer_id, Role::Offerer, async move {
                    let conn = pending.accept_answer(&sdp).await.ok()?;
                    Some((conn, answered))
                });
            }
            TrackerEvent::Offer {
                tracker,
                peer_id,
                offer_id,
                sdp,
                ..
            } => {
                // Cheap refusal: no PeerConnection is made for an offer we cannot take.
                if self.knows(&peer_id) || !self.has_room() || self.banned(now, &peer_id, &sdp) {
                    gst::log!(
                        CAT,
                        "{}: offer from {peer_id} ignored (known, banned or no room)",
                        self.info_hash_str
                    );
                    return;
                }
                let (hub, info_hash) = (self.hub.clone(), self.info_hash);
                self.connect(peer_id, Role::Answerer, async move {
                    let (conn, answer) = hub.rtc.accept_offer(&sdp).await.ok()?;
                    hub.tracker
                        .answer(&tracker, info_hash, peer_id, offer_id, answer)
                        .then(|| (conn, Instant::now()))
                });
            }
            TrackerEvent::OfferExpired { offer_id, .. } => {
                // Dropping it closes its PeerConnection.
                self.offers.remove(&offer_id);
            }
            TrackerEvent::AnswerNotSent { peer_id, .. } => {
                // The offering peer will never see our answer: free the slot now rather
                // than at the open timeout.
                if let Some(task) = self.connecting.get(&peer_id) {
                    task.abort();
                }
            }
            TrackerEvent::Announced {
                complete,
                incomplete,
                ..
            } => {
                gst::debug!(
                    CAT,
                    "{}: tracker counts {complete:?} complete, {incomplete:?} incomplete",
                    self.info_hash_str
                );
                self.swarm.handle_tracker_counts(
                    now,
                    complete.unwrap_or(0),
                    incomplete.unwrap_or(0),
                );
            }
            TrackerEvent::Warning { .. } | TrackerEvent::TrackerState { .. } => {}
        }
    }

    /// Finishes signalling in the background, waits for the channel to open and reports back.
    /// `signalling` gives the connection and the instant its answer was received or sent.
    fn connect<F>(&mut self, peer_id: PeerId, role: Role, signalling: F)
    where
        F: std::future::Future<Output = Option<(Box<dyn DataChannelConn>, Instant)>>
            + Send
            + 'static,
    {
        // Created before the task so that even a task that never runs reports back.
        let mut slot = SetupSlot {
            tx: self.tx.clone(),
            peer_id,
            role,
            conn: None,
        };
        let label = format!("{}: {peer_id} ({})", self.info_hash_str, role.as_str());
        let task = task::spawn_logged("swarm connect", async move {
            let slot_ref = &mut slot;
            // Bounded as a whole: a hung signalling step must not hold a `max-peers` slot.
            let open = async move {
                match signalling.await {
                    Some((conn, answered)) if conn.wait_open(OPEN_TIMEOUT).await.is_ok() => {
                        let setup = answered.elapsed();
                        // Which phase a slow setup spent its time in (a lost DTLS flight
                        // costs a 1-s retransmission, a lost SCTP INIT another).
                        gst::debug!(
                            CAT,
                            "{label}: open {:.1} ms after the answer ({})",
                            setup.as_secs_f64() * 1e3,
                            conn.setup_phases().describe(answered)
                        );
                        Some((conn, setup))
                    }
                    _ => None,
                }
            };
            slot_ref.conn = tokio::time::timeout(OPEN_TIMEOUT, open)
                .await
                .ok()
                .flatten();
            // `slot` reports on drop, here or on a panic or abort above.
            drop(slot);
        });
        self.connecting.insert(peer_id, task.abort_handle());
        self.log_slots();
    }

    fn knows(&self, peer_id: &PeerId) -> bool {
        self.by_id.contains_key(peer_id) || self.connecting.contains_key(peer_id)
    }

    /// Slots taken besides open peers: connections being set up and our offers, sent or
    /// being made.
    fn slots_taken(&self) -> usize {
        self.connecting.len() + self.offers.len() + self.offers_in_flight
    }

    /// Room for one more connection under `max-peers` (and [`MAX_CONNECTING`] if unlimited).
    fn has_room(&self) -> bool {
        self.swarm.has_room(self.slots_taken()) && self.connecting.len() < MAX_CONNECTING
    }

    fn log_slots(&self) {
        gst::log!(
            CAT,
            "{}: slots: {} peers, {} connecting, {} offers sent, {} being made",
            self.info_hash_str,
            self.swarm.peer_count(),
            self.connecting.len(),
            self.offers.len(),
            self.offers_in_flight
        );
    }

    /// Every announce needs an answer (it is what keeps us listed), even with no offers.
    fn make_offers(&mut self, tracker: TrackerId, count: usize) {
        let max = self.hub.config.max_peers;
        let busy = self.swarm.peer_count() + self.slots_taken();
        let open = self.offers.len() + self.offers_in_flight;
        let mut room = count.min(MAX_OPEN_OFFERS.saturating_sub(open));
        if max != 0 {
            // At most half the free slots: the rest stay open for peers' offers, or pending
            // offers (alive up to the offer timeout) would shut incoming peers out.
            room = room.min(max.saturating_sub(busy).div_ceil(2));
        }
        gst::debug!(
            CAT,
            "{}: making {room} of {count} offers for {tracker}",
            self.info_hash_str
        );
        self.offers_in_flight += room;
        let mut batch = OfferBatch {
            tx: self.tx.clone(),
            tracker: Some(tracker),
            asked: room,
            offers: Vec::with_capacity(room),
        };
        let (hub, label) = (self.hub.clone(), self.info_hash_str.clone());
        // A watched task that is never aborted: webrtc-rs leaks the UDP sockets of a
        // PeerConnection whose setup is cancelled, so an offer being built runs to its end
        // and is dropped (closed) there; no new one starts once the actor is gone. Its end
        // comes early then: the wait for ICE gathering (up to the gather timeout) stops when
        // the actor's channel closes. Otherwise every stopped session would keep a
        // PeerConnection for seconds, and rapid start/stop cycles piled up hundreds of them
        // (each ~0.5 MB of heap, which glibc then keeps: RSS grew ~200 KiB per cycle).
        task::spawn_logged("swarm offers", async move {
            for _ in 0..batch.asked {
                if batch.tx.is_closed() {
                    break;
                }
                let gone = batch.tx.clone();
                let made = hub
                    .rtc
                    .create_offer_until(Box::pin(async move { gone.closed().await }))
                    .await;
                match made {
                    Ok((pending, sdp)) => batch.offers.push((OfferId::random(), pending, sdp)),
                    // `Closed`: the swarm stopped while it gathered ICE candidates.
                    Err(e) => gst::debug!(CAT, "{label}: offer not made: {e:?}"),
                }
            }
            // `batch` reports on drop, here or on a panic or abort above.
        });
    }

    fn connected(
        &mut self,
        now: u64,
        peer_id: PeerId,
        conn: Box<dyn DataChannelConn>,
        role: Role,
        setup: Duration,
    ) {
        self.connecting.remove(&peer_id);
        let key = PeerKey(self.next_key);
        let remote = Remote {
            id: peer_id.0,
            addr: conn.remote_addr(),
        };
        if self.by_id.contains_key(&peer_id) || !self.swarm.handle_peer_opened(now, key, remote) {
            gst::debug!(
                CAT,
                "{}: closing surplus connection to {peer_id}",
                self.info_hash_str
            );
            task::spawn_logged("swarm close", async move { conn.close().await });
            return;
        }
        self.next_key += 1;
        gst::debug!(
            CAT,
            "{}: connected to {peer_id} as {key:?}, {}, open {:.1} ms after the answer",
            self.info_hash_str,
            role.as_str(),
            setup.as_secs_f64() * 1e3
        );
        let tx = self.tx.clone();
        let sink: LinkSink = Arc::new(move |ev| tx.send(SwarmMsg::Link(ev)).is_ok());
        let link = Link::start(conn, key, sink);
        self.links.insert(key, (peer_id, link));
        self.by_id.insert(peer_id, key);
        self.hub.notify(P2pEvent::PeerConnected {
            info_hash: self.info_hash_str.clone(),
            peer_id: peer_id.to_string(),
            role,
            setup,
        });
    }
}

/// A connection being set up; reports the outcome to the actor when dropped — also when the
/// task panics or is aborted — so its `max-peers` slot is always released.
struct SetupSlot {
    tx: mpsc::UnboundedSender<SwarmMsg>,
    peer_id: PeerId,
    role: Role,
    /// The open connection and its setup time (answer → open).
    conn: Option<(Box<dyn DataChannelConn>, Duration)>,
}

impl Drop for SetupSlot {
    fn drop(&mut self) {
        let peer_id = self.peer_id;
        let _ = self.tx.send(match self.conn.take() {
            Some((conn, setup)) => SwarmMsg::Connected {
                peer_id,
                conn,
                role: self.role,
                setup,
            },
            None => SwarmMsg::ConnectFailed { peer_id },
        });
    }
}

/// Offers being made; hands over what was made (maybe nothing) when dropped, whatever ended
/// the task, so the actor's in-flight count always comes down and every announce is answered.
struct OfferBatch {
    tx: mpsc::UnboundedSender<SwarmMsg>,
    tracker: Option<TrackerId>,
    asked: usize,
    offers: Vec<(OfferId, Box<dyn PendingOffer>, String)>,
}

impl Drop for OfferBatch {
    fn drop(&mut self) {
        if let Some(tracker) = self.tracker.take() {
            let _ = self.tx.send(SwarmMsg::OffersReady {
                tracker,
                asked: self.asked,
                offers: std::mem::take(&mut self.offers),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Issue 11 row 6: a setup task that panics or is aborted still gives its slot back.
    #[test]
    fn setup_slot_reports_after_panic_and_abort() {
        rt().block_on(async {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let peer_id = PeerId::random_with_prefix("-PR0100-");
            let slot = SetupSlot {
                tx: tx.clone(),
                peer_id,
                role: Role::Answerer,
                conn: None,
            };
            let task = tokio::spawn(async move {
                let _slot = slot;
                panic!("boom in signalling");
            });
            assert!(task.await.unwrap_err().is_panic());
            assert!(
                matches!(rx.recv().await, Some(SwarmMsg::ConnectFailed { peer_id: p }) if p == peer_id)
            );

            let slot = SetupSlot {
                tx,
                peer_id,
                role: Role::Answerer,
                conn: None,
            };
            let task = tokio::spawn(async move {
                let _slot = slot;
                std::future::pending::<()>().await;
            });
            tokio::task::yield_now().await;
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
            assert!(matches!(
                rx.recv().await,
                Some(SwarmMsg::ConnectFailed { .. })
            ));
        });
    }

    /// Offers being made are always handed back (maybe none), so the in-flight count comes
    /// down and the announce is answered, even when making them panicked.
    #[test]
    fn offer_batch_reports_after_panic() {
        rt().block_on(async {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let batch = OfferBatch {
                tx,
                tracker: Some(TrackerId::new("ws://127.0.0.1:1")),
                asked: 3,
                offers: Vec::new(),
            };
            let task = tokio::spawn(async move {
                let _batch = batch;
                panic!("boom in create_offer");
            });
            assert!(task.await.unwrap_err().is_panic());
            match rx.recv().await {
                Some(SwarmMsg::OffersReady { asked, offers, .. }) => {
                    assert_eq!(asked, 3);
                    assert!(offers.is_empty());
                }
                _ => panic!("no OffersReady"),
            }
        });
    }
}
