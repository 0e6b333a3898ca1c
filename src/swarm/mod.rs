//! The swarm of one stream (one PML info-hash), sans-IO, in the shape of quinn-proto's
//! `Connection`: feed it `handle_*(now, …)`, drain [`Swarm::poll_output`], sleep until
//! [`Swarm::poll_timeout`] and call [`Swarm::handle_timeout`].
//!
//! It owns what decides whether P2P helps or hurts: the [`Scheduler`], one [`PeerSession`] per
//! data channel, the segment table (PML segment ids from the playlist), the segment store, the
//! checks on peer data and the upload budget. The tokio engine (`engine::p2p`) and the swarm
//! simulator (`examples/swarm-sim`) drive this one object; neither executes scheduler commands
//! itself.
//!
//! Rules it enforces, whoever drives it:
//! * a transfer that receives bytes is never aborted for inactivity (HTTP progress counts);
//! * peer data that fails a check (size, container, application validator) or later fails to
//!   decrypt/decode downstream ([`Swarm::handle_segment_rejected`]) is dropped, never shared
//!   on, its peer disconnected, and the segment fetched from the origin;
//! * peer data must be the stream's own container, well formed, with timestamps where the
//!   origin's segments put them ([`Plausibility`]; encrypted data is judged by the player after
//!   decryption);
//! * segments from peers are not announced or uploaded until the player has used them
//!   ([`Swarm::handle_segment_verified`]): a liar's data never travels further than one hop;
//! * the bytes queued towards a peer are bounded ([`HIGH_WATER`]): a peer that never reads
//!   costs at most that much memory.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::media::{MediaPlaylist, Resource, Segment};
use crate::p2p::peer::{
    DisconnectReason, DownloadRequest, Event as PeerEvent, Output as PeerOutput, PeerConfig,
    PeerSession, WireFamily,
};
use crate::p2p::segment_id::{dash_segment_id, hls_segment_id, HlsIdScheme};
use crate::p2p::wire06::to_fixed3_millis;
use crate::payload::hashes::{HashVerdict, SegmentHashes};
use crate::payload::sniff::sniff;
use crate::payload::verify::{Doubt, DoubtKind, Place, Plausibility};
use crate::payload::SegmentBuf;
use crate::schedule::{
    Command, PeerKey, Policy, Scheduler, SchedulerConfig, SegmentBytes, SegmentId, SegmentInfo,
    SegmentStore, Source, StreamId, TransferError, TransferId,
};

pub mod mesh;
#[cfg(test)]
mod tests;

/// Payload bytes per upload message. With at most `RtcConfig::send_buffer_limit` (32 KiB)
/// unacknowledged before a message is accepted, at most 48 KiB are in flight towards a peer:
/// Chrome reads each peer connection's UDP socket through a 64 KiB SO_RCVBUF, and a burst
/// bigger than that, arriving while the browser is short of CPU, is dropped and costs SCTP a
/// retransmission timeout (a stall a browser sees as `bytes-receiving-timeout`).
pub const UPLOAD_CHUNK_SIZE: usize = 16 * 1024;
/// Upload chunks are handed out only while less than this is queued towards a peer.
pub const HIGH_WATER: usize = 512 * 1024;
/// A peer whose queue has not moved for this long while holding bytes has stopped reading:
/// it is dropped (its writer task and queue go with it).
pub const STALLED_WRITE_MS: u64 = 10_000;
/// Queued towards one peer at most: upload data stops at [`HIGH_WATER`]; control messages
/// (announcements, answers) beyond this mean the peer is not reading.
pub const MAX_BACKLOG: usize = 2 * HIGH_WATER;
/// How long a peer that misbehaved stays out, by peer id (and by address when it sent bad
/// data or broke the protocol: a liar rejoining under a new id).
pub const BAN_MS: u64 = 10 * 60 * 1000;
/// Bans remembered at most: a flood of fresh ids costs bounded memory (the oldest go first).
const MAX_BANS: usize = 4096;
/// Segments a peer may send with misplaced timestamps before it is dropped: the one fault an
/// honest peer can be blamed for when the origin disagrees with itself.
const MISPLACED_STRIKES: u32 = 3;
/// P2P transfers from one peer abandoned in a row (too slow, silent) before it is dropped:
/// a peer that drips a byte under every timeout must not be asked forever.
const SLOW_STRIKES: u32 = 3;
/// Uploads one peer may cancel per [`REQUEST_WINDOW_MS`]: a request/cancel loop costs us
/// reads and queueing for nothing. Completed requests are not counted: a fast peer catching
/// up on a VOD may fetch many segments a second, and that is what uploads are for.
const MAX_CANCELS_PER_WINDOW: u32 = 60;
const REQUEST_WINDOW_MS: u64 = 10_000;
/// Rounds of peer-output / scheduler-command exchange per input (a feedback loop between
/// the two must never freeze the caller).
const MAX_PUMP_ROUNDS: usize = 64;
/// Ids an announcement may carry at least (else twice the playlist's length).
const MAX_ANNOUNCED_IDS: usize = 1024;
/// The swarm's own store holds one stream.
const STREAM: StreamId = StreamId(0);

/// What a stored segment must be: sized, sliceable, cheap to clone (`bytes::Bytes`).
pub trait SegmentData: SegmentBytes + AsRef<[u8]> + Clone + Send + Sync + 'static {
    fn from_buf(b: SegmentBuf) -> Self;
}

impl SegmentData for bytes::Bytes {
    fn from_buf(b: SegmentBuf) -> Self {
        b.freeze()
    }
}

/// A segment about to be stored (and so used and shared), for an application's veto.
pub struct SegmentCheck<'a> {
    pub info_hash: &'a str,
    pub id: u64,
    pub url: &'a str,
    pub from_peer: bool,
}

/// Returns false to reject the segment (it is then fetched again, from the origin).
pub type SegmentValidator = Arc<dyn Fn(&SegmentCheck<'_>, &[u8]) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct SwarmConfig {
    pub scheduler: SchedulerConfig,
    /// Answer peers' requests and announce what we hold.
    pub upload: bool,
    /// Connections at once; 0 = unlimited (PML has no cap).
    pub max_peers: usize,
    /// Upload budget of this swarm in bytes/s; 0 = unlimited.
    pub max_upload_rate: u64,
    /// Largest segment a peer may claim when the playlist gives no byte range.
    pub max_segment_bytes: u64,
    /// Store limit in bytes.
    pub store_limit: u64,
    /// Largest data-channel message we send (PML `webRtcMaxMessageSize`).
    pub max_message_size: usize,
    /// Largest upload payload message (see `PeerConfig::upload_chunk_size`).
    pub upload_chunk_size: usize,
    /// The info-hash, as the validator and the logs name the swarm.
    pub label: String,
    pub validator: Option<SegmentValidator>,
    /// The peers' protocol family (2.x, or 0.6 with this swarm's stream swarm id); it also
    /// decides how segments are numbered.
    pub family: WireFamily,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            scheduler: SchedulerConfig::ours(),
            upload: true,
            max_peers: 20,
            max_upload_rate: 0,
            max_segment_bytes: 64 << 20,
            store_limit: 256 << 20,
            max_message_size: crate::p2p::wire::MAX_MESSAGE_SIZE,
            upload_chunk_size: UPLOAD_CHUNK_SIZE,
            label: String::new(),
            validator: None,
            family: WireFamily::V2,
        }
    }
}

impl fmt::Debug for SwarmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmConfig")
            .field("scheduler", &self.scheduler)
            .field("upload", &self.upload)
            .field("max_peers", &self.max_peers)
            .field("max_upload_rate", &self.max_upload_rate)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Something for the driver to do.
#[derive(Debug)]
pub enum Output<D> {
    /// Send this message on the peer's data channel (in order). Report it written with
    /// [`Swarm::handle_peer_drained`].
    Transmit { peer: PeerKey, data: Vec<u8> },
    /// GET this segment from the origin; report progress, then done or failed.
    HttpFetch {
        xfer: TransferId,
        sequence: u64,
        resource: Resource,
    },
    /// Drop that request (its result, if it still comes, is ignored).
    HttpAbort { xfer: TransferId },
    /// The segment the player asked for.
    Deliver {
        sequence: u64,
        data: D,
        source: Source,
    },
    /// The segment the player asked for could not be had (HTTP retries exhausted).
    LoadFailed { sequence: u64 },
    /// Close this peer's connection; it is already forgotten.
    Disconnect { peer: PeerKey },
    /// For logs and statistics.
    Event(SwarmEvent),
}

/// What happened, for `GST_DEBUG`, the bus and statistics.
#[derive(Debug, Clone, PartialEq)]
pub enum SwarmEvent {
    /// A segment was stored.
    Stored {
        id: SegmentId,
        bytes: u64,
        source: Source,
        elapsed_ms: u64,
    },
    /// Data was thrown away: failed a check, or the player could not decode it.
    Rejected {
        id: SegmentId,
        source: Source,
        reason: String,
    },
    PeerAdded {
        peer: PeerKey,
    },
    PeerRemoved {
        peer: PeerKey,
        reason: String,
    },
    /// A scheduler decision (start, abort, deliver, give up, disconnect).
    Decision(Command),
    /// HTTP bytes downloaded and then thrown away (aborted, duplicate or rejected).
    WastedHttp {
        id: SegmentId,
        bytes: u64,
    },
}

/// Running totals (bytes of segment payload).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmStats {
    pub http_bytes: u64,
    pub http_segments: u64,
    pub p2p_bytes: u64,
    pub p2p_segments: u64,
    pub upload_bytes: u64,
    /// Uploads sent to their last byte.
    pub served_segments: u64,
    pub wasted_http_bytes: u64,
    pub rejected_segments: u64,
    /// Connections refused because the peer id or address is banned.
    pub refused_banned: u64,
    /// Longest stall inside one P2P download (`Scheduler::longest_p2p_gap_ms`).
    pub longest_p2p_gap_ms: u64,
    /// Bytes held in the segment store now (bounded by `store_limit`).
    pub store_bytes: u64,
}

/// Who is behind a connection, for bans: the PML peer id and, if known, the remote address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Remote {
    pub id: [u8; 20],
    pub addr: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BanKey {
    Id([u8; 20]),
    Addr(IpAddr),
}

/// What a peer did to be dropped: how far the ban reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Slow, silent or not reading: its id is banned (it may be honest but is no use).
    Useless,
    /// Bad data, protocol abuse, floods: its id and address are banned.
    Hostile,
}

struct Peer {
    session: PeerSession,
    download: Option<PeerDownload>,
    /// Bytes handed out as `Transmit` and not yet reported drained.
    backlog: usize,
    /// Since when the backlog has not moved (None: empty).
    backlog_since: Option<u64>,
    /// Transfers from this peer abandoned in a row.
    slow_strikes: u32,
    /// Segments from this peer rejected for their timestamps alone.
    misplaced: u32,
    /// Uploads cancelled in the current window, and when it started.
    cancels: u32,
    cancels_since: u64,
}

#[derive(Clone, Copy)]
struct PeerDownload {
    xfer: TransferId,
    id: SegmentId,
    started_ms: u64,
    /// Bytes received so far, and the size the peer announced.
    received: u64,
    expected: Option<u64>,
}

struct HttpTransfer {
    id: SegmentId,
    started_ms: u64,
    received: u64,
}

/// Token bucket for uploads (`max_upload_rate`).
struct Budget {
    rate: u64,
    tokens: f64,
    at_ms: u64,
}

impl Budget {
    fn refill(&mut self, now: u64) {
        if self.rate == 0 {
            return;
        }
        let elapsed = now.saturating_sub(self.at_ms) as f64 / 1000.0;
        // A quarter second of burst keeps chunks flowing without exceeding the rate.
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.rate as f64 / 4.0);
        self.at_ms = now;
    }

    fn allows(&mut self, now: u64) -> bool {
        self.refill(now);
        self.rate == 0 || self.tokens > 0.0
    }

    fn debit(&mut self, bytes: usize) {
        if self.rate > 0 {
            self.tokens -= bytes as f64;
        }
    }

    /// When the bucket is positive again.
    fn ready_at(&self) -> u64 {
        if self.rate == 0 || self.tokens > 0.0 {
            return self.at_ms;
        }
        let ms = (-self.tokens / self.rate as f64 * 1000.0).ceil() as u64;
        self.at_ms.saturating_add(ms + 1)
    }
}

pub struct Swarm<D> {
    cfg: SwarmConfig,
    sched: Scheduler,
    store: SegmentStore<D>,
    /// Media segments by PML id.
    segments: HashMap<SegmentId, Segment>,
    /// Media sequence number → PML id, for the player's requests.
    by_sequence: HashMap<u64, SegmentId>,
    /// Where each stored segment came from.
    sources: HashMap<SegmentId, Source>,
    /// Peer data the player has not used yet: neither announced nor uploaded.
    unverified: HashSet<SegmentId>,
    /// What the origin's segments taught about the stream, to judge peers' data by.
    plausibility: Plausibility,
    /// Published segment hashes (PeerTube's `segments-sha256.json`), when configured.
    hashes: Option<Arc<SegmentHashes>>,
    /// Segments whose peer data failed downstream: fetched from the origin only.
    origin_only: HashSet<SegmentId>,
    /// Discontinuities the origin has served a segment of: for encrypted segments, which the
    /// fetch loop judges after decryption, the sign that it can (see `Plausibility::anchored`).
    origin_discontinuities: HashSet<u64>,
    live: bool,
    /// Seen without ENDLIST at some point: ids stay sequence numbers (hls.js keeps them).
    ever_live: bool,
    /// The player's request: (sequence, id).
    pending: Option<(u64, SegmentId)>,
    /// A segment given (`handle_segment_given`) before a playlist listing it: stored when
    /// one does, before the scheduler sees it missing (LL-HLS hands over a segment assembled
    /// from its parts as the playlist completing it arrives).
    given_early: Option<(u64, D)>,
    http: HashMap<TransferId, HttpTransfer>,
    peers: BTreeMap<PeerKey, Peer>,
    seed: u64,
    budget: Budget,
    out: VecDeque<Output<D>>,
    now: u64,
    announce_due: bool,
    stats: SwarmStats,
    /// Peers whose session may have output or upload data since the last pump: only those
    /// are visited (a swarm of 30 peers gets thousands of inputs a second).
    touched: Vec<PeerKey>,
    /// Scratch list of peer keys (no allocation per input).
    keys: Vec<PeerKey>,
    /// Banned peer ids and addresses → until when.
    bans: HashMap<BanKey, u64>,
    /// Who each peer was, also after it left (a segment it sent may be rejected later).
    remotes: BTreeMap<PeerKey, Remote>,
    /// Where the next round of uploads starts: each uploading peer gets a chunk in turn.
    upload_cursor: PeerKey,
}

/// PML's externalId of the segment at `index`: DASH from its Shaka start time, HLS as
/// hls.js numbers them (sequence number while live, position once the list has ENDLIST).
/// 0.6 numbers HLS segments by sequence number, live or not (its own m3u8 parser's
/// `mediaSequence + index`), DASH ones by their start within the Period in milliseconds
/// (`start.toFixed(3)` on the wire).
pub fn segment_id(
    playlist: &MediaPlaylist,
    index: usize,
    family: &WireFamily,
) -> Option<SegmentId> {
    let seg = playlist.segments.get(index)?;
    let scheme = match family {
        WireFamily::V2 => HlsIdScheme::HlsJs,
        WireFamily::V06 { .. } => HlsIdScheme::Shaka,
    };
    let id = match (seg.start_seconds, family) {
        (Some(start), WireFamily::V2) => dash_segment_id(start)?,
        (Some(_), WireFamily::V06 { .. }) => to_fixed3_millis(seg.start_in_period_seconds?)?,
        (None, _) => hls_segment_id(
            scheme,
            playlist.end_list,
            playlist.media_sequence,
            index as u64,
        )?,
    };
    u64::try_from(id).ok()
}

impl<D: SegmentData> Swarm<D> {
    pub fn new(cfg: SwarmConfig, seed: u64, now: u64) -> Self {
        let mut store = SegmentStore::new(cfg.store_limit);
        store.configure_stream(STREAM, false, cfg.scheduler.high_demand_time_window_ms);
        Swarm {
            sched: Scheduler::new(cfg.scheduler.clone(), seed, now),
            budget: Budget {
                rate: cfg.max_upload_rate,
                tokens: 0.0,
                at_ms: now,
            },
            cfg,
            store,
            segments: HashMap::new(),
            by_sequence: HashMap::new(),
            sources: HashMap::new(),
            unverified: HashSet::new(),
            plausibility: Plausibility::default(),
            hashes: None,
            origin_only: HashSet::new(),
            origin_discontinuities: HashSet::new(),
            live: false,
            ever_live: false,
            pending: None,
            given_early: None,
            http: HashMap::new(),
            peers: BTreeMap::new(),
            seed,
            out: VecDeque::new(),
            now,
            announce_due: false,
            stats: SwarmStats::default(),
            touched: Vec::new(),
            keys: Vec::new(),
            bans: HashMap::new(),
            remotes: BTreeMap::new(),
            upload_cursor: PeerKey(0),
        }
    }

    // ------------------------------------------------------------------ queries

    pub fn stats(&self) -> SwarmStats {
        SwarmStats {
            longest_p2p_gap_ms: self.sched.longest_p2p_gap_ms(),
            store_bytes: self.store.used_bytes(),
            ..self.stats
        }
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub fn peers(&self) -> impl Iterator<Item = PeerKey> + '_ {
        self.peers.keys().copied()
    }

    /// Whether another connection may be opened, counting `connecting` ones not open yet.
    pub fn has_room(&self, connecting: usize) -> bool {
        self.cfg.max_peers == 0 || self.peers.len() + connecting < self.cfg.max_peers
    }

    /// Ids held and shareable (the `l` of our announcement).
    pub fn stored_ids(&self) -> Vec<SegmentId> {
        let mut ids = self.store.ids(STREAM);
        ids.retain(|id| !self.unverified.contains(id));
        ids
    }

    /// Bytes queued towards `peer` and not reported drained.
    pub fn backlog(&self, peer: PeerKey) -> usize {
        self.peers.get(&peer).map_or(0, |p| p.backlog)
    }

    // ------------------------------------------------------------------ inputs

    /// The newest published segment hashes: from now on every segment, from the origin or a
    /// peer, must match its hash before it is used or shared.
    pub fn handle_segment_hashes(&mut self, now: u64, hashes: Arc<SegmentHashes>) {
        self.now = self.now.max(now);
        self.hashes = Some(hashes);
    }

    /// The stream's current media playlist (full replacement; live playlists slide).
    pub fn handle_playlist(&mut self, now: u64, p: &MediaPlaylist) {
        self.now = self.now.max(now);
        self.live = !p.end_list;
        self.ever_live |= self.live;
        self.segments.clear();
        self.by_sequence.clear();
        let mut infos = Vec::with_capacity(p.segments.len());
        let mut seen: HashMap<SegmentId, u64> = HashMap::with_capacity(p.segments.len());
        let mut shared_ids: HashSet<SegmentId> = HashSet::new();
        for (i, s) in p.segments.iter().enumerate() {
            // hls.js keeps the ids of segments it knew while live when ENDLIST arrives;
            // renumbering by position would give stored segments another segment's id.
            let id = match (self.ever_live, s.start_seconds) {
                (true, None) => Some(s.sequence),
                _ => segment_id(p, i, &self.cfg.family),
            };
            let Some(id) = id else {
                continue;
            };
            // Two segments with one id (DASH: both start in the same half second) cannot be
            // told apart on the wire: neither goes through the swarm.
            if seen.insert(id, s.sequence).is_some() {
                shared_ids.insert(id);
                continue;
            }
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
        for id in &shared_ids {
            self.segments.remove(id);
            self.by_sequence.retain(|_, v| v != id);
        }
        infos.retain(|i| !shared_ids.contains(&i.id));
        let segs = &self.segments;
        self.origin_only.retain(|id| segs.contains_key(id));
        let discs: HashSet<u64> = segs.values().map(|s| s.discontinuity_sequence).collect();
        self.origin_discontinuities.retain(|d| discs.contains(d));
        // The player's request slid out of the playlist: it will not come from here.
        if let Some((sequence, id)) = self.pending {
            if !self.segments.contains_key(&id) {
                self.pending = None;
                self.sched.handle_player_cancel(now);
                self.out.push_back(Output::LoadFailed { sequence });
            }
        }
        self.store.configure_stream(
            STREAM,
            self.live,
            self.cfg.scheduler.high_demand_time_window_ms,
        );
        if self.seeding() && self.live && !self.segments.is_empty() {
            // A seeder keeps the live window (no playhead evicts for it), and no more: what
            // left the playlist goes, by membership (a rebased timeline reuses lower ids).
            let gone: Vec<(StreamId, SegmentId)> = self
                .store
                .ids(STREAM)
                .into_iter()
                .filter(|id| !self.segments.contains_key(id))
                .map(|id| (STREAM, id))
                .collect();
            for (_, id) in &gone {
                self.store.remove(STREAM, *id);
            }
            self.note_evicted(now, &gone);
            self.note_store_room(now);
        }
        self.sched.handle_segments(now, self.live, &infos);
        if let Some((sequence, data)) = self.given_early.take() {
            self.store_given(now, sequence, data);
        }
        self.drive(now);
    }

    /// Seeder (`Policy::Seed`): no playhead, no deadline, every listed segment fetched once.
    /// A bridge's mirror (`Policy::Mirror`) keeps its store the same way: it has no playhead
    /// either.
    fn seeding(&self) -> bool {
        matches!(self.cfg.scheduler.policy, Policy::Seed | Policy::Mirror)
    }

    /// A seeder's store has no playhead to evict by: over `store_limit` (a long DVR window, an
    /// EVENT playlist, the output going through a VOD) the oldest segments go, never `keep`
    /// (just stored: the output may be waiting for it).
    fn seed_evict_over_limit(&mut self, now: u64, keep: SegmentId) {
        if self.store.used_bytes() <= self.store.limit_bytes() {
            return;
        }
        let mut ids = self.store.ids(STREAM);
        ids.sort_unstable();
        let mut gone = Vec::new();
        for id in ids {
            if self.store.used_bytes() <= self.store.limit_bytes() {
                break;
            }
            if id != keep && self.store.remove(STREAM, id) {
                gone.push((STREAM, id));
            }
        }
        self.note_evicted(now, &gone);
    }

    /// A seeder's store has no playhead to evict by: it stops fetching when full, so the
    /// scheduler hears how full it is.
    fn note_store_room(&mut self, now: u64) {
        let limit = self.store.limit_bytes();
        let free = if limit == 0 {
            0.0
        } else {
            1.0 - (self.store.used_bytes() as f64 / limit as f64).min(1.0)
        };
        self.sched.handle_storage_free_ratio(now, free);
    }

    /// The player wants the segment with this media sequence number next. A `Deliver` or
    /// `LoadFailed` for it follows (at once if it is stored). Replaces an earlier request.
    pub fn handle_load(&mut self, now: u64, sequence: u64) {
        self.now = self.now.max(now);
        let Some(&id) = self.by_sequence.get(&sequence) else {
            if self.pending.take().is_some() {
                self.sched.handle_player_cancel(now);
            }
            self.out.push_back(Output::LoadFailed { sequence });
            return;
        };
        if let Some(data) = self.store.get(STREAM, id).cloned() {
            let source = self.sources.get(&id).copied().unwrap_or(Source::Http);
            self.pending = None;
            self.sched.handle_player_cancel(now);
            self.out.push_back(Output::Deliver {
                sequence,
                data,
                source,
            });
            self.drive(now);
            return;
        }
        self.pending = Some((sequence, id));
        self.sched.handle_player_request(now, id);
        self.drive(now);
    }

    /// The player no longer waits for its request (seek, flush, shutdown).
    pub fn handle_load_cancel(&mut self, now: u64) {
        self.pending = None;
        self.sched.handle_player_cancel(now);
        self.drive(now);
    }

    /// A bridge's mirror (`Policy::Mirror`): the segment with this sequence number, as the
    /// swarm of the family the player plays through got it and the player used it. Stored
    /// and served as if fetched here; ignored unless listed, new and of the listed size.
    ///
    /// A segment not listed yet is kept (one at most) for the next playlist: LL-HLS gives
    /// the segment it assembled from parts just before the playlist that completes it.
    pub fn handle_segment_given(&mut self, now: u64, sequence: u64, data: D) {
        self.now = self.now.max(now);
        if !self.by_sequence.contains_key(&sequence) {
            self.given_early = Some((sequence, data));
            return;
        }
        self.store_given(now, sequence, data);
        self.drive(now);
    }

    fn store_given(&mut self, now: u64, sequence: u64, data: D) {
        let Some(&id) = self.by_sequence.get(&sequence) else {
            return;
        };
        if self.store.contains(STREAM, id) || self.check(id, &data, false).is_err() {
            return;
        }
        self.store_segment(now, id, data, Source::Http, 0);
    }

    /// The player decoded the segment it was given: peer data of an encrypted stream may now
    /// be shared.
    pub fn handle_segment_verified(&mut self, now: u64, sequence: u64) {
        if let Some(id) = self.by_sequence.get(&sequence) {
            if self.unverified.remove(id) {
                self.announce_due = true;
            }
        }
        self.drive(now);
    }

    /// The player could not decrypt or decode the segment it was given. Its data is dropped
    /// (and was never shared), a peer that sent it is disconnected, and the next load of
    /// it goes to the origin.
    pub fn handle_segment_rejected(&mut self, now: u64, sequence: u64, reason: &str) {
        self.now = self.now.max(now);
        let Some(&id) = self.by_sequence.get(&sequence) else {
            return;
        };
        let source = self.sources.remove(&id).unwrap_or(Source::Http);
        self.unverified.remove(&id);
        if self.store.remove(STREAM, id) {
            self.sched.handle_segments_evicted(now, &[id]);
        }
        self.stats.rejected_segments += 1;
        self.out.push_back(Output::Event(SwarmEvent::Rejected {
            id,
            source,
            reason: reason.to_string(),
        }));
        if let Source::P2p(peer) = source {
            self.origin_only.insert(id);
            self.drop_peer(
                now,
                peer,
                "sent a segment that did not decode",
                Fault::Hostile,
            );
        }
        self.announce_due = true;
        self.drive(now);
    }

    /// Playback position on the segments' timeline.
    pub fn handle_playhead(&mut self, now: u64, position_ms: u64) {
        if self.seeding() {
            // What a seeder's output plays says nothing of what its peers will ask for.
            return;
        }
        self.sched.handle_playback(now, position_ms, 1.0, true);
        let evicted = self.store.set_playhead(STREAM, position_ms);
        self.note_evicted(now, &evicted);
        let ratio = self.store.free_ratio_ahead();
        self.sched.handle_storage_free_ratio(now, ratio);
        self.drive(now);
    }

    /// Tracker announce reply counts (they include ourselves).
    pub fn handle_tracker_counts(&mut self, now: u64, complete: u64, incomplete: u64) {
        self.sched.handle_swarm_counts(now, complete, incomplete);
        self.drive(now);
    }

    /// No tracker can be reached: don't wait for peers it might have promised.
    pub fn handle_tracker_unavailable(&mut self, now: u64) {
        self.sched.handle_tracker_unavailable(now);
        self.drive(now);
    }

    /// Whether a peer id or address is banned: ask before answering an offer or an answer.
    pub fn is_banned(&self, now: u64, remote: &Remote) -> bool {
        let banned = |k: &BanKey| self.bans.get(k).is_some_and(|until| *until > now);
        banned(&BanKey::Id(remote.id)) || remote.addr.is_some_and(|a| banned(&BanKey::Addr(a)))
    }

    /// A data channel to a peer opened. False (and nothing else happens) when the swarm is
    /// full, the key is taken or the peer is banned: close the connection.
    pub fn handle_peer_opened(&mut self, now: u64, peer: PeerKey, remote: Remote) -> bool {
        if self.is_banned(now, &remote) {
            self.stats.refused_banned += 1;
            return false;
        }
        if self.peers.contains_key(&peer) || !self.has_room(0) {
            return false;
        }
        let config = PeerConfig {
            not_receiving_bytes_timeout_ms: self.cfg.scheduler.p2p_not_receiving_bytes_timeout_ms,
            error_retries: self.cfg.scheduler.p2p_error_retries,
            max_message_size: self.cfg.max_message_size,
            upload_chunk_size: self.cfg.upload_chunk_size,
            family: self.cfg.family.clone(),
            ..PeerConfig::default()
        };
        let mut session = PeerSession::new(config, self.seed ^ peer.0);
        if self.cfg.upload {
            let loaded = to_wire(&self.stored_ids());
            let loading = to_wire(&self.sched.http_loading_ids());
            session.announce(&loaded, &loading);
        }
        self.peers.insert(
            peer,
            Peer {
                session,
                download: None,
                backlog: 0,
                backlog_since: None,
                slow_strikes: 0,
                misplaced: 0,
                cancels: 0,
                cancels_since: now,
            },
        );
        self.remotes.insert(peer, remote);
        // Keys only grow (the engine counts them): the lowest are the longest gone.
        while self.remotes.len() > 4 * MAX_BANS {
            self.remotes.pop_first();
        }
        self.sched.handle_peer_connected(now, peer);
        self.touched.push(peer);
        self.out
            .push_back(Output::Event(SwarmEvent::PeerAdded { peer }));
        self.drive(now);
        true
    }

    /// One data-channel message from a peer.
    pub fn handle_peer_message(&mut self, now: u64, peer: PeerKey, msg: &[u8]) {
        self.now = self.now.max(now);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.session.on_message(msg, now);
            self.touched.push(peer);
        }
        self.drive(now);
    }

    /// The peer's connection closed (by the remote or the transport).
    pub fn handle_peer_closed(&mut self, now: u64, peer: PeerKey) {
        self.remove_peer(now, peer, "connection closed".into());
        self.drive(now);
    }

    /// `bytes` of what was handed out as `Transmit` to `peer` left our queue.
    pub fn handle_peer_drained(&mut self, now: u64, peer: PeerKey, bytes: usize) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.backlog = p.backlog.saturating_sub(bytes);
            p.backlog_since = (p.backlog > 0).then_some(now);
            self.touched.push(peer);
        }
        self.drive(now);
    }

    /// Bytes received so far by an HTTP transfer: keeps it alive while bytes flow.
    pub fn handle_http_progress(&mut self, now: u64, xfer: TransferId, received: u64) {
        if let Some(t) = self.http.get_mut(&xfer) {
            t.received = t.received.max(received);
        }
        self.sched
            .handle_transfer_progress(now, xfer, received, None);
        self.drive(now);
    }

    /// An HTTP transfer finished with these bytes.
    pub fn handle_http_done(&mut self, now: u64, xfer: TransferId, data: D) {
        self.now = self.now.max(now);
        let Some(t) = self.http.remove(&xfer) else {
            return; // aborted: the abort already counted what it had received
        };
        let len = data.byte_len();
        match self.check(t.id, &data, false) {
            Ok(()) => {
                if let Some(seg) = self.segments.get(&t.id) {
                    self.origin_discontinuities
                        .insert(seg.discontinuity_sequence);
                    if seg.key.is_none() {
                        self.plausibility.learn(place(seg), data.as_ref());
                    }
                }
                self.stats.http_bytes += len;
                self.stats.http_segments += 1;
                let elapsed_ms = now.saturating_sub(t.started_ms);
                self.sched.handle_transfer_done(now, xfer, len);
                self.store_segment(now, t.id, data, Source::Http, elapsed_ms);
            }
            Err(Doubt { reason, .. }) => {
                self.waste(t.id, len);
                self.out.push_back(Output::Event(SwarmEvent::Rejected {
                    id: t.id,
                    source: Source::Http,
                    reason,
                }));
                self.sched
                    .handle_transfer_failed(now, xfer, TransferError::Http);
            }
        }
        self.drive(now);
    }

    /// An HTTP transfer failed (status, transport, length).
    pub fn handle_http_failed(&mut self, now: u64, xfer: TransferId) {
        if let Some(t) = self.http.remove(&xfer) {
            self.waste(t.id, t.received);
        }
        self.sched
            .handle_transfer_failed(now, xfer, TransferError::Http);
        self.drive(now);
    }

    /// Timers (any time at or after `poll_timeout()`; early calls are harmless).
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = self.now.max(now);
        if self.sched.poll_timeout().is_some_and(|t| t <= now) {
            self.sched.handle_timeout(now);
        }
        let stalled: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.backlog_since.is_some_and(|t| now >= t + STALLED_WRITE_MS))
            .map(|(k, _)| *k)
            .collect();
        for k in stalled {
            self.drop_peer(now, k, "stopped reading", Fault::Useless);
        }
        let budget_ready = self.budget.rate > 0 && self.budget.ready_at() <= now;
        for (k, p) in self.peers.iter_mut() {
            if p.session.poll_timeout().is_some_and(|t| t <= now) {
                p.session.on_timer(now);
                self.touched.push(*k);
            } else if budget_ready && p.session.is_uploading() {
                // Uploads held back by the budget resume.
                self.touched.push(*k);
            }
        }
        self.drive(now);
    }

    // ------------------------------------------------------------------ outputs

    pub fn poll_output(&mut self) -> Option<Output<D>> {
        self.out.pop_front()
    }

    /// Absolute time (ms) at which `handle_timeout` must be called.
    pub fn poll_timeout(&mut self) -> Option<u64> {
        // The pump stopped at its round limit with work left: come back at once.
        if !self.touched.is_empty() {
            return Some(self.now);
        }
        let sched = self.sched.poll_timeout();
        let peers = self.peers.values().filter_map(|p| {
            let stalled = p.backlog_since.map(|t| t + STALLED_WRITE_MS);
            p.session.poll_timeout().into_iter().chain(stalled).min()
        });
        // Uploads held back by the budget resume when it refills.
        let budget = self
            .peers
            .values()
            .any(|p| p.session.is_uploading() && p.backlog < HIGH_WATER)
            .then(|| self.budget.ready_at())
            .filter(|_| self.budget.rate > 0);
        sched.into_iter().chain(peers).chain(budget).min()
    }

    // ------------------------------------------------------------------ internals

    /// Segment ids worth tracking in announcements: the playlist's, widened by its length on
    /// both sides (everything while no playlist is known).
    fn id_span(&self) -> (SegmentId, SegmentId) {
        let (Some(&lo), Some(&hi)) = (self.segments.keys().min(), self.segments.keys().max())
        else {
            return (0, SegmentId::MAX);
        };
        let margin = (self.segments.len() as u64).max(16);
        (lo.saturating_sub(margin), hi.saturating_add(margin))
    }

    fn note_evicted(&mut self, now: u64, evicted: &[(StreamId, SegmentId)]) {
        if evicted.is_empty() {
            return;
        }
        let ids: Vec<SegmentId> = evicted.iter().map(|(_, id)| *id).collect();
        for id in &ids {
            self.sources.remove(id);
            self.unverified.remove(id);
        }
        self.sched.handle_segments_evicted(now, &ids);
    }

    fn waste(&mut self, id: SegmentId, bytes: u64) {
        if bytes > 0 {
            self.stats.wasted_http_bytes += bytes;
            self.out
                .push_back(Output::Event(SwarmEvent::WastedHttp { id, bytes }));
        }
    }

    /// Data we would hand downstream and share must be the size the playlist says and look
    /// like media (encrypted data is checked by the player after decryption), and pass the
    /// application's validator.
    /// The error says why, and what it says about a peer that sent it ([`DoubtKind`]).
    fn check(&self, id: SegmentId, data: &D, from_peer: bool) -> Result<(), Doubt> {
        let bad = |reason: String| Doubt {
            reason,
            kind: DoubtKind::Malformed,
        };
        let Some(seg) = self.segments.get(&id) else {
            return Err(bad(format!("segment {id} is not in the playlist")));
        };
        let bytes = data.as_ref();
        if let Some(r) = seg.resource.range {
            if bytes.len() as u64 != r.length {
                return Err(bad(format!(
                    "segment {id}: {} bytes, byte range says {}",
                    bytes.len(),
                    r.length
                )));
            }
        }
        if let Some(hashes) = &self.hashes {
            match hashes.verdict(&seg.resource, bytes) {
                HashVerdict::Match => {}
                HashVerdict::Mismatch => {
                    return Err(bad(format!(
                        "segment {id}: does not match its published SHA-256"
                    )))
                }
                // Not listed (yet): a peer's copy cannot be checked, so the origin's instead,
                // and no blame; the origin's copy is used as a player without hashes would.
                HashVerdict::Unknown if from_peer => {
                    return Err(Doubt {
                        reason: format!("segment {id}: no published SHA-256 to check it by"),
                        kind: DoubtKind::Unanchored,
                    })
                }
                HashVerdict::Unknown => {}
            }
        }
        if seg.key.is_none() {
            if from_peer {
                let place = place(seg);
                self.plausibility.judge(place, bytes).map_err(|d| Doubt {
                    reason: format!("segment {id}: {}", d.reason),
                    ..d
                })?;
            } else if sniff(bytes).is_none() {
                return Err(bad(format!("segment {id}: not media")));
            }
        }
        if let Some(validate) = &self.cfg.validator {
            let check = SegmentCheck {
                info_hash: &self.cfg.label,
                id,
                url: seg.resource.url.as_str(),
                from_peer,
            };
            if !validate(&check, bytes) {
                return Err(bad(format!("segment {id}: rejected by the application")));
            }
        }
        Ok(())
    }

    fn store_segment(&mut self, now: u64, id: SegmentId, data: D, source: Source, elapsed: u64) {
        let Some(seg) = self.segments.get(&id) else {
            return;
        };
        let (start, end) = (seg.start.as_millis() as u64, seg.end().as_millis() as u64);
        let bytes = data.byte_len();
        let evicted = self.store.insert(STREAM, id, start, end, data.clone());
        self.sources.insert(id, source);
        if matches!(source, Source::P2p(_)) {
            self.unverified.insert(id);
        }
        self.note_evicted(now, &evicted);
        // Evicted as it went in (live, behind the playhead): not stored after all.
        if evicted.iter().any(|(_, e)| *e == id) {
            self.deliver_unstored(now, id, data, source);
            return;
        }
        self.sched.handle_segment_stored(now, id);
        if self.seeding() {
            self.seed_evict_over_limit(now, id);
            self.note_store_room(now);
        }
        self.out.push_back(Output::Event(SwarmEvent::Stored {
            id,
            bytes,
            source,
            elapsed_ms: elapsed,
        }));
    }

    /// The store could not keep a segment (live, evicted as it went in): a player waiting for
    /// it gets it from these bytes all the same.
    fn deliver_unstored(&mut self, now: u64, id: SegmentId, data: D, source: Source) {
        if let Some((sequence, want)) = self.pending {
            if want == id {
                self.pending = None;
                self.sched.handle_player_cancel(now);
                self.out.push_back(Output::Deliver {
                    sequence,
                    data,
                    source,
                });
            }
        }
    }

    /// Drops a peer for what it did, and bans it (also when it is already gone: its data
    /// may be rejected after it left).
    fn drop_peer(&mut self, now: u64, peer: PeerKey, reason: &str, fault: Fault) {
        if let Some(remote) = self.remotes.get(&peer).copied() {
            self.ban(now, remote, fault);
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.session.disconnect(DisconnectReason::Local);
        }
        if self.remove_peer(now, peer, reason.to_string()) {
            self.out.push_back(Output::Disconnect { peer });
        }
    }

    /// Counts an upload the peer gave up; true if that made it a flood (it is dropped).
    fn count_cancel(&mut self, now: u64, key: PeerKey) -> bool {
        let Some(p) = self.peers.get_mut(&key) else {
            return false;
        };
        if now >= p.cancels_since + REQUEST_WINDOW_MS {
            p.cancels_since = now;
            p.cancels = 0;
        }
        p.cancels += 1;
        if p.cancels <= MAX_CANCELS_PER_WINDOW {
            return false;
        }
        self.drop_peer(now, key, "request flood", Fault::Hostile);
        true
    }

    fn ban(&mut self, now: u64, remote: Remote, fault: Fault) {
        let until = now.saturating_add(BAN_MS);
        self.bans.insert(BanKey::Id(remote.id), until);
        if let (Fault::Hostile, Some(addr)) = (fault, remote.addr) {
            if is_public(addr) {
                self.bans.insert(BanKey::Addr(addr), until);
            }
        }
        if self.bans.len() > MAX_BANS {
            self.bans.retain(|_, until| *until > now);
            while self.bans.len() > MAX_BANS {
                let oldest = self.bans.iter().min_by_key(|(_, u)| **u).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.bans.remove(&k);
                }
            }
        }
    }

    fn remove_peer(&mut self, now: u64, peer: PeerKey, reason: String) -> bool {
        let Some(p) = self.peers.remove(&peer) else {
            return false;
        };
        if let Some(d) = p.download {
            self.sched
                .handle_transfer_failed(now, d.xfer, TransferError::PeerFailed);
        }
        self.sched.handle_peer_disconnected(now, peer);
        self.out
            .push_back(Output::Event(SwarmEvent::PeerRemoved { peer, reason }));
        true
    }

    /// Runs peer outputs and scheduler commands until neither has anything left. Peer events
    /// go first: a download that timed out must reach the scheduler as *that* transfer's
    /// failure before a new request to the same peer is made.
    fn drive(&mut self, now: u64) {
        self.now = self.now.max(now);
        let mut keys = std::mem::take(&mut self.keys);
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut busy = false;
            keys.clear();
            keys.append(&mut self.touched);
            keys.sort_unstable();
            keys.dedup();
            for &key in &keys {
                while let Some(out) = self
                    .peers
                    .get_mut(&key)
                    .and_then(|p| p.session.poll_output())
                {
                    busy = true;
                    self.peer_output(now, key, out);
                }
            }
            busy |= self.push_uploads(now, &keys);
            while let Some(cmd) = self.sched.poll_command() {
                busy = true;
                self.execute(now, cmd);
            }
            if !self.store.take_changed().is_empty() {
                self.announce_due = true;
            }
            if self.announce_due {
                self.announce_due = false;
                busy = true;
                self.announce_all();
            }
            if !busy {
                break;
            }
        }
        self.keys = keys;
    }

    fn announce_all(&mut self) {
        if !self.cfg.upload || self.peers.is_empty() {
            return;
        }
        let loaded = to_wire(&self.stored_ids());
        let loading = to_wire(&self.sched.http_loading_ids());
        for (k, p) in self.peers.iter_mut() {
            p.session.announce(&loaded, &loading);
            self.touched.push(*k);
        }
    }

    /// Under an upload budget, a new upload is taken only if the ones running can still go at
    /// the segments' playback rate: a budget shared so thin that nobody finishes in time
    /// would be spent for nothing. One upload is always allowed. The refused peer hears
    /// "absent" at once and asks elsewhere.
    fn upload_has_room(&self, id: SegmentId) -> bool {
        if self.budget.rate == 0 {
            return true;
        }
        let active = self
            .peers
            .values()
            .filter(|p| p.session.is_uploading())
            .count() as u64;
        let (Some(seg), Some(data)) = (self.segments.get(&id), self.store.get(STREAM, id)) else {
            return true;
        };
        let need = data.byte_len() * 1000 / (seg.duration.as_millis() as u64).max(1);
        active == 0 || (active + 1) * need <= self.budget.rate
    }

    /// Hands out upload chunks to `keys` (sorted) while their queues and the budget allow,
    /// one chunk per peer in turn from where the last round stopped: under a budget, every
    /// uploading peer gets its share. True if any.
    fn push_uploads(&mut self, now: u64, keys: &[PeerKey]) -> bool {
        let mut sent = false;
        let first = keys.partition_point(|k| *k <= self.upload_cursor);
        loop {
            let mut progress = false;
            for &key in keys[first..].iter().chain(&keys[..first]) {
                if !self.budget.allows(now) {
                    return sent;
                }
                let Some(p) = self.peers.get_mut(&key) else {
                    continue;
                };
                if p.backlog >= HIGH_WATER {
                    continue;
                }
                let Some(chunk) = p.session.poll_upload_chunk() else {
                    continue;
                };
                self.budget.debit(chunk.len());
                self.stats.upload_bytes += chunk.len() as u64;
                if !p.session.is_uploading() {
                    self.stats.served_segments += 1;
                }
                if p.backlog == 0 {
                    p.backlog_since = Some(now);
                }
                p.backlog += chunk.len();
                self.out.push_back(Output::Transmit {
                    peer: key,
                    data: chunk,
                });
                // The Completed command queued after the last chunk goes out in order. Only
                // commands can be queued here: `drive` polled every event just before, and
                // taking a chunk queues no event.
                while let Some(PeerOutput::Send(m)) = p.session.poll_output() {
                    p.backlog += m.len();
                    self.out.push_back(Output::Transmit { peer: key, data: m });
                }
                self.upload_cursor = key;
                progress = true;
                sent = true;
            }
            if !progress {
                return sent;
            }
        }
    }

    fn execute(&mut self, now: u64, cmd: Command) {
        if !matches!(cmd, Command::Announce) {
            self.out
                .push_back(Output::Event(SwarmEvent::Decision(cmd.clone())));
        }
        match cmd {
            Command::HttpFetch { xfer, id } => {
                let Some(seg) = self.segments.get(&id) else {
                    self.sched
                        .handle_transfer_failed(now, xfer, TransferError::Http);
                    return;
                };
                self.http.insert(
                    xfer,
                    HttpTransfer {
                        id,
                        started_ms: now,
                        received: 0,
                    },
                );
                self.out.push_back(Output::HttpFetch {
                    xfer,
                    sequence: seg.sequence,
                    resource: seg.resource.clone(),
                });
            }
            Command::P2pRequest { xfer, peer, id } => {
                // Peer data of this segment failed downstream, or could not be judged yet (no
                // origin segment of its discontinuity, clear data only; or the published
                // hashes do not list it yet, a live table lagging the playlist): the origin's
                // copy, until the table catches up.
                let unjudgeable = self.segments.get(&id).is_some_and(|s| {
                    let unlisted = self.hashes.as_ref().is_some_and(|h| !h.knows(&s.resource));
                    unlisted
                        || match s.key {
                            None => !self.plausibility.anchored(place(s)),
                            Some(_) => !self
                                .origin_discontinuities
                                .contains(&s.discontinuity_sequence),
                        }
                });
                if unjudgeable || self.origin_only.contains(&id) {
                    self.sched
                        .handle_transfer_failed(now, xfer, TransferError::PeerAbsent);
                    return;
                }
                let size = self
                    .segments
                    .get(&id)
                    .and_then(|s| s.resource.range)
                    .map(|r| r.length);
                let cap = self.cfg.max_segment_bytes;
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
                self.touched.push(peer);
                match p.session.request(req, now) {
                    Ok(_) => {
                        p.download = Some(PeerDownload {
                            xfer,
                            id,
                            started_ms: now,
                            received: 0,
                            expected: None,
                        })
                    }
                    // Busy or closed: not this peer now (PeerFailed would count a strike).
                    Err(_) => {
                        self.sched
                            .handle_transfer_failed(now, xfer, TransferError::PeerAbsent);
                    }
                }
            }
            Command::Abort { xfer, source, id } => match source {
                Source::Http => {
                    if let Some(t) = self.http.remove(&xfer) {
                        self.waste(id, t.received);
                    }
                    self.out.push_back(Output::HttpAbort { xfer });
                }
                Source::P2p(peer) => {
                    let duration_ms = self
                        .segments
                        .get(&id)
                        .map(|s| s.duration.as_millis() as u64);
                    let mut useless = false;
                    if let Some(p) = self.peers.get_mut(&peer) {
                        if let Some(d) = p.download.filter(|d| d.xfer == xfer) {
                            p.session.cancel_download();
                            p.download = None;
                            self.touched.push(peer);
                            if is_slow(&d, now, duration_ms.unwrap_or(0)) {
                                p.slow_strikes += 1;
                                useless = p.slow_strikes >= SLOW_STRIKES;
                            }
                        }
                    }
                    if useless {
                        let reason = "too slow: transfers abandoned in a row";
                        self.drop_peer(now, peer, reason, Fault::Useless);
                    }
                }
            },
            Command::Deliver { id } => {
                if let Some((sequence, want)) = self.pending {
                    if want == id {
                        match self.store.get(STREAM, id).cloned() {
                            Some(data) => {
                                self.pending = None;
                                let source = self.sources.get(&id).copied().unwrap_or(Source::Http);
                                self.out.push_back(Output::Deliver {
                                    sequence,
                                    data,
                                    source,
                                });
                            }
                            // The scheduler thought it stored; it is not: fetch it again.
                            None => {
                                self.sched.handle_segments_evicted(now, &[id]);
                                self.sched.handle_player_request(now, id);
                            }
                        }
                    }
                }
            }
            Command::PlayerError { id } => {
                if let Some((sequence, want)) = self.pending {
                    if want == id {
                        self.pending = None;
                        self.out.push_back(Output::LoadFailed { sequence });
                    }
                }
            }
            Command::DisconnectPeer { peer } => {
                self.drop_peer(now, peer, "too many timeouts", Fault::Useless);
            }
            Command::Announce => self.announce_due = true,
        }
    }

    fn peer_output(&mut self, now: u64, key: PeerKey, out: PeerOutput) {
        let ev = match out {
            PeerOutput::Send(msg) => {
                let mut over = false;
                if let Some(p) = self.peers.get_mut(&key) {
                    if p.backlog == 0 {
                        p.backlog_since = Some(now);
                    }
                    p.backlog += msg.len();
                    over = p.backlog > MAX_BACKLOG;
                }
                if over {
                    self.drop_peer(now, key, "stopped reading", Fault::Useless);
                    return;
                }
                self.out.push_back(Output::Transmit {
                    peer: key,
                    data: msg,
                });
                return;
            }
            PeerOutput::Event(ev) => ev,
        };
        match ev {
            PeerEvent::PeerAnnounced {
                loaded,
                http_loading,
            } => {
                // A browser announces at most its store (a window of the playlist); far more
                // ids than the playlist holds is a flood that would cost every later
                // announcement's sorting and diffing.
                let cap = (2 * self.segments.len()).max(MAX_ANNOUNCED_IDS);
                if loaded.len() + http_loading.len() > cap {
                    self.drop_peer(
                        now,
                        key,
                        "announced more segments than exist",
                        Fault::Hostile,
                    );
                    return;
                }
                // Keep ids near our playlist, including ones past its end: a live neighbour
                // may announce a segment before our next playlist refresh shows it, and that
                // news must not be lost (the segment would look unavailable, then urgent).
                let (lo, hi) = self.id_span();
                let near = |ids: &[i64]| -> Vec<SegmentId> {
                    from_wire(ids)
                        .into_iter()
                        .filter(|id| (lo..=hi).contains(id))
                        .collect()
                };
                let (l, h) = (near(&loaded), near(&http_loading));
                self.sched.handle_peer_announce(now, key, &l, &h);
            }
            PeerEvent::DownloadProgress {
                received, expected, ..
            } => {
                if let Some(d) = self.peers.get_mut(&key).and_then(|p| p.download.as_mut()) {
                    d.received = received;
                    d.expected = Some(expected);
                    let xfer = d.xfer;
                    self.sched
                        .handle_transfer_progress(now, xfer, received, Some(expected));
                }
            }
            PeerEvent::SegmentReceived { id, data } => {
                let Some(d) = self.peers.get_mut(&key).and_then(|p| p.download.take()) else {
                    return;
                };
                let data = D::from_buf(data);
                let checked = if id as u64 == d.id {
                    self.check(d.id, &data, true)
                } else {
                    Err(Doubt {
                        reason: format!("asked for segment {}, got {id}", d.id),
                        kind: DoubtKind::Malformed,
                    })
                };
                match checked {
                    Ok(()) => {
                        if let Some(p) = self.peers.get_mut(&key) {
                            p.slow_strikes = 0;
                        }
                        let n = data.byte_len();
                        self.stats.p2p_bytes += n;
                        self.stats.p2p_segments += 1;
                        self.sched.handle_transfer_done(now, d.xfer, n);
                        let elapsed = now.saturating_sub(d.started_ms);
                        self.store_segment(now, d.id, data, Source::P2p(key), elapsed);
                    }
                    Err(Doubt {
                        kind: DoubtKind::Unanchored,
                        ..
                    }) => {
                        // Asked before the origin's copy of a segment of its discontinuity came
                        // in, so nothing to judge it by: no blame, the origin's copy instead.
                        self.sched
                            .handle_transfer_failed(now, d.xfer, TransferError::PeerAbsent);
                        self.origin_only.insert(d.id);
                    }
                    Err(Doubt { reason, kind }) => {
                        self.stats.rejected_segments += 1;
                        self.out.push_back(Output::Event(SwarmEvent::Rejected {
                            id: d.id,
                            source: Source::P2p(key),
                            reason,
                        }));
                        self.sched
                            .handle_transfer_failed(now, d.xfer, TransferError::PeerFailed);
                        if kind == DoubtKind::Misplaced {
                            // Media in the wrong place: a stale liar, or an origin that
                            // disagrees with itself. The segment comes from the origin; the
                            // peer goes (by id only) if it keeps doing it.
                            self.origin_only.insert(d.id);
                            let strikes = self.peers.get_mut(&key).map_or(0, |p| {
                                p.misplaced += 1;
                                p.misplaced
                            });
                            if strikes >= MISPLACED_STRIKES {
                                let why = "sent misplaced segments";
                                self.drop_peer(now, key, why, Fault::Useless);
                            }
                        } else {
                            // A peer that sends what is not media is not worth keeping.
                            self.drop_peer(
                                now,
                                key,
                                "sent data that failed the checks",
                                Fault::Hostile,
                            );
                        }
                    }
                }
            }
            PeerEvent::SegmentAbsent { .. } => {
                if let Some(d) = self.peers.get_mut(&key).and_then(|p| p.download.take()) {
                    self.sched
                        .handle_transfer_failed(now, d.xfer, TransferError::PeerAbsent);
                }
            }
            PeerEvent::DownloadFailed { .. } => {
                if let Some(d) = self.peers.get_mut(&key).and_then(|p| p.download.take()) {
                    self.sched
                        .handle_transfer_failed(now, d.xfer, TransferError::PeerFailed);
                }
            }
            PeerEvent::UploadRequested { id, request_id, .. } => {
                let data = u64::try_from(id)
                    .ok()
                    .filter(|id| self.cfg.upload && !self.unverified.contains(id))
                    .filter(|id| self.upload_has_room(*id))
                    .and_then(|id| self.store.get(STREAM, id).cloned());
                if let Some(p) = self.peers.get_mut(&key) {
                    match data {
                        Some(d) => p.session.upload(request_id, Arc::new(d)),
                        None => p.session.upload_absent(request_id),
                    };
                }
            }
            PeerEvent::UploadCancelled { .. } => {
                self.count_cancel(now, key);
            }
            PeerEvent::Disconnect { reason } => {
                let fault = match reason {
                    DisconnectReason::Local => None,
                    // Slow, or a segment over our size limit (a 4K VOD): no lie in either.
                    DisconnectReason::TooManyTimeouts | DisconnectReason::SizeTooLarge => {
                        Some(Fault::Useless)
                    }
                    _ => Some(Fault::Hostile),
                };
                if let (Some(fault), Some(remote)) = (fault, self.remotes.get(&key).copied()) {
                    self.ban(now, remote, fault);
                }
                if self.remove_peer(now, key, format!("protocol: {reason:?}")) {
                    self.out.push_back(Output::Disconnect { peer: key });
                }
            }
        }
    }
}

/// Whether a P2P transfer abandoned at `now` was slower than half the segment's playback
/// rate (or sent no header at all for a second): the peer was of no use, not unlucky.
fn is_slow(d: &PeerDownload, now: u64, duration_ms: u64) -> bool {
    let elapsed = now.saturating_sub(d.started_ms);
    if elapsed < 1_000 {
        return false;
    }
    match d.expected {
        None => true,
        Some(total) => d.received.saturating_mul(2 * duration_ms.max(1)) < total * elapsed,
    }
}

/// Addresses worth banning: one host's. Loopback, private, link-local and unique-local
/// addresses are shared by whole networks (a NAT, a LAN), where one liar must not shut out
/// its neighbours.
fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            !(a.is_loopback()
                || a.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Where `seg` sits on the timeline, for [`Plausibility`].
pub fn place(seg: &Segment) -> Place {
    Place {
        start_ms: seg.start.as_millis() as u64,
        duration_ms: seg.duration.as_millis() as u64,
        discontinuity_sequence: seg.discontinuity_sequence,
    }
}

fn to_wire(ids: &[SegmentId]) -> Vec<i64> {
    ids.iter().filter_map(|&i| i64::try_from(i).ok()).collect()
}

fn from_wire(ids: &[i64]) -> Vec<SegmentId> {
    ids.iter().filter_map(|&i| u64::try_from(i).ok()).collect()
}
