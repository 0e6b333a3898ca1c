//! An in-memory mesh of [`Swarm`]s for tests and the simulator: a fake origin, a fake tracker,
//! fake data-channel links and a player per node, in virtual time. Deterministic for a seed.
//!
//! What it models, and why:
//! * **Links** are ordered and reliable (SCTP): a message leaves the sender at its share of the
//!   sender's uplink (the uplink is split evenly between the links busy at that moment), then
//!   takes both nodes' one-way latency. Loss costs one round trip per lost packet (fast
//!   retransmit), except a loss among a message's last packets, which waits for the
//!   retransmission timeout (400-ms minimum RTO: webrtc-rs with patches/, and Chrome's dcsctp)
//!   and holds back everything after it on that link. Downlinks are not modelled for P2P (they
//!   are the larger side).
//! * **Payload scale**: stored segments are `payload_scale` times smaller than the bytes they
//!   stand for, so 1,000 peers fit in memory and time; transfer times use the nominal size.
//! * **Origin**: per-request latency and an optional per-request rate; progress every 250 ms.
//! * **Tracker**: each announce connects to a few random members after a setup delay; it can
//!   be down for a while (restart).
//! * **Player**: the element's fetch loop and a sink: asks for the next segment while less
//!   than `max_buffer_ms` is buffered, decrypts (AES-128, real) and checks what it gets,
//!   reports the playhead, falls back to a direct origin GET when the swarm gives up, and
//!   counts stalls (the playhead waiting) and wrong bytes.
//! * **Misbehaving nodes** run an honest `Swarm` whose outgoing traffic the mesh corrupts:
//!   liars (garbage, plausible MPEG-TS, short data), drip (one payload byte per 1.9 s), silent
//!   (no payload), never-reads (takes nothing off its links), announcement flood.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use super::{Output, Remote, Swarm, SwarmConfig};
use crate::media::{Aes128Key, MediaPlaylist, PlaylistKind, Resource, Segment};
use crate::p2p::wire::{self, Command as WireCommand};
use crate::p2p::WireFamily;
use crate::payload::decrypt::aes128_cbc_decrypt;
use crate::payload::hashes::SegmentHashes;
use crate::payload::sniff::sniff;
use crate::payload::verify::{Place, Plausibility};
use crate::schedule::{PeerKey, Rng, Source, TransferId};

const KEY: [u8; 16] = *b"p2pmedia-meshkey";
const PROGRESS_MS: u64 = 250;
const PACKET: u64 = 1200;

/// How a node misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// Payload replaced by random bytes of the same size.
    LiarGarbage,
    /// Payload replaced by MPEG-TS-looking bytes (sync byte every 188) of the same size.
    LiarPlausibleTs,
    /// Only the first half of each payload message, then the rest of the protocol as usual.
    LiarShort,
    /// Payload trickles at one byte every 1.9 s (just under PML's 2-s timeout).
    Drip,
    /// Announces and answers requests, but never sends payload.
    Silent,
    /// Never takes anything off its links (the sender's queue fills).
    NeverReads,
    /// Sends a 100,000-id announcement to every neighbour every 100 ms.
    AnnounceFlood,
    /// Serves well-formed media that is another segment's (three earlier): its "origin" lies
    /// to it, so it stores and shares stale bytes under the right ids.
    LiarStale,
    /// Asks every neighbour for a segment and cancels at once, 50 times a second.
    RequestCancelLoop,
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub join_ms: u64,
    /// Leaves then (and stays away unless `rejoin_ms`).
    pub leave_ms: Option<u64>,
    /// Joins again this long after leaving, as a new peer.
    pub rejoin_after_ms: Option<u64>,
    pub up_kbps: u64,
    /// Downlink, for HTTP (P2P downloads are bounded by the senders' uplinks).
    pub down_kbps: u64,
    pub latency_ms: u64,
    pub behaviour: Behaviour,
    /// Counted in results (misbehaving nodes usually are not).
    pub measured: bool,
    /// Runs the seeder's scheduler (`Policy::Seed`), as `mode=seeder` does; its player still
    /// plays, as the element's output does.
    pub seeder: bool,
}

impl NodeSpec {
    pub fn new(join_ms: u64) -> Self {
        NodeSpec {
            join_ms,
            leave_ms: None,
            rejoin_after_ms: None,
            up_kbps: 10_000,
            down_kbps: 100_000,
            latency_ms: 10,
            behaviour: Behaviour::Honest,
            measured: true,
            seeder: false,
        }
    }
}

/// What the player reports as its playhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayheadReport {
    /// Where playback is.
    Exact,
    /// The element before this was fixed: the start of the fragment its pad task took last
    /// (the next one as soon as a push returned), frozen between segments.
    LastTaken,
}

#[derive(Clone, Debug)]
pub struct MeshConfig {
    pub seed: u64,
    pub live: bool,
    pub segment_ms: u64,
    pub bitrate_kbps: u64,
    pub vod_segments: u64,
    /// Live: segments in the playlist window (all published ones exist from t = 0).
    pub live_window: u64,
    /// Live: playback starts this far behind the newest segment's end.
    pub live_delay_ms: u64,
    pub max_buffer_ms: u64,
    /// End of the run.
    pub duration_ms: u64,
    pub payload_scale: u64,
    pub origin_latency_ms: u64,
    /// Per-request origin rate; None = unlimited.
    pub origin_kbps: Option<u64>,
    pub loss: f64,
    /// Extra round trip added to every link (on top of the nodes' latencies).
    pub rtt_ms: u64,
    pub rto_ms: u64,
    pub setup_ms: (u64, u64),
    pub offers: usize,
    pub max_conns: usize,
    pub announce_interval_ms: u64,
    pub encrypted: bool,
    /// A discontinuity every this many segments (0: none), each with its own timeline, as a
    /// looping live stream or ad breaks have.
    pub discontinuity_every: u64,
    /// false: HTTP only (no tracker, no peers).
    pub p2p: bool,
    pub playhead_interval_ms: u64,
    pub playhead_report: PlayheadReport,
    /// Print every HTTP start, delivery and dropped peer (debugging the scheduler).
    pub trace: bool,
    /// The tracker accepts no announces in these intervals (restarts).
    pub tracker_down: Vec<(u64, u64)>,
    /// Every node checks segments against published SHA-256s (PeerTube's hash file).
    pub segment_hashes: bool,
    pub swarm: SwarmConfig,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            seed: 1,
            live: false,
            segment_ms: 2000,
            bitrate_kbps: 1500,
            vod_segments: 15,
            live_window: 6,
            live_delay_ms: 8000,
            max_buffer_ms: 30_000,
            duration_ms: 40_000,
            payload_scale: 1,
            origin_latency_ms: 5,
            origin_kbps: None,
            loss: 0.0,
            rtt_ms: 0,
            rto_ms: 400,
            setup_ms: (300, 600),
            offers: 5,
            max_conns: 30,
            announce_interval_ms: 120_000,
            encrypted: false,
            discontinuity_every: 0,
            p2p: true,
            playhead_interval_ms: 250,
            playhead_report: PlayheadReport::Exact,
            trace: false,
            tracker_down: Vec::new(),
            segment_hashes: false,
            swarm: SwarmConfig::default(),
        }
    }
}

/// What one node saw.
#[derive(Debug, Clone, Default)]
pub struct NodeResult {
    pub measured: bool,
    pub behaviour: Option<Behaviour>,
    pub join_ms: u64,
    pub left: bool,
    pub http_bytes: u64,
    pub p2p_bytes: u64,
    pub upload_bytes: u64,
    /// HTTP bytes downloaded and thrown away.
    pub wasted_http_bytes: u64,
    pub startup_ms: Option<u64>,
    pub stalls: u32,
    pub stall_ms: u64,
    pub longest_stall_ms: u64,
    pub segments_played: u64,
    /// Delivered segments whose bytes differ from the origin's (after decryption).
    pub wrong_segments: u64,
    /// Deliveries the player could not decode (reported back to the swarm).
    pub rejected_by_player: u64,
    pub load_failures: u64,
    /// Segments the player skipped (fell out of the live window).
    pub skipped: u64,
    pub peers_max: usize,
    pub peers_dropped: u64,
    /// Why peers were removed, and how often.
    pub removed_for: BTreeMap<String, u64>,
    /// Largest backlog towards any one peer.
    pub backlog_max: usize,
    /// Connections refused because the peer was banned.
    pub refused_banned: u64,
    /// P2P bytes stored, by the node they came from.
    pub received_from: BTreeMap<u32, u64>,
    /// Origin GETs this node's swarm made, per segment sequence.
    pub origin_gets: BTreeMap<u64, u32>,
}

#[derive(Debug, Clone, Default)]
pub struct MeshResult {
    pub nodes: Vec<NodeResult>,
    /// GETs the origin answered, per segment sequence.
    pub origin_gets: BTreeMap<u64, u32>,
    /// Bytes of the distinct segments that existed for the viewers (denominator of origin ×).
    pub unique_bytes: u64,
    pub events: u64,
}

#[derive(Debug)]
enum Ev {
    Join(u32),
    Leave(u32),
    Refresh(u32, u32),
    Announce(u32, u32),
    ConnOpen(u32, u32, u32, u32),
    Msg {
        from: u32,
        finc: u32,
        to: u32,
        tinc: u32,
        data: Vec<u8>,
    },
    Drained {
        from: u32,
        finc: u32,
        to: u32,
        bytes: usize,
    },
    DripRelease {
        from: u32,
        finc: u32,
        to: u32,
    },
    HttpProgress(u32, u32, TransferId),
    HttpDone(u32, u32, TransferId),
    DirectDone(u32, u32, u64),
    Timer(u32, u32, u64),
    Tick(u32, u32),
    Flood(u32, u32),
}

struct Entry {
    t: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.t, o.seq).cmp(&(self.t, self.seq))
    }
}

#[derive(Default)]
struct Link {
    busy_until: u64,
    last_deliver: u64,
    /// Drip: messages held back, released a byte at a time.
    held: VecDeque<Vec<u8>>,
    dripping: bool,
}

struct HttpFlow {
    sequence: u64,
    total: u64,
    started: u64,
    dur: u64,
}

#[derive(Default)]
struct Player {
    /// What the origin's (decrypted) segments taught, to judge decrypted peer data.
    plausibility: Plausibility,
    next_seq: u64,
    requested: Option<u64>,
    buffered_end: u64,
    pos: u64,
    pos_at: u64,
    started: bool,
    playing: bool,
    finished: bool,
    stall_since: u64,
}

struct Node {
    spec: NodeSpec,
    inc: u32,
    swarm: Option<Swarm<Bytes>>,
    neighbors: BTreeSet<u32>,
    links: HashMap<u32, Link>,
    http: HashMap<TransferId, HttpFlow>,
    timer_at: Option<u64>,
    player: Player,
    /// First and last sequence of the playlist this node last loaded.
    window: (u64, u64),
    /// When the current incarnation joined.
    joined_at: u64,
    res: NodeResult,
    /// Swarm stats of earlier incarnations.
    carried: super::SwarmStats,
}

pub struct Mesh {
    cfg: MeshConfig,
    rng: Rng,
    now: u64,
    seq: u64,
    heap: BinaryHeap<Entry>,
    nodes: Vec<Node>,
    origin_gets: BTreeMap<u64, u32>,
    playlist: Option<(u64, MediaPlaylist)>,
    events: u64,
    first_seq_min: Option<u64>,
    /// Segment bytes by sequence: (what the origin serves, the plaintext).
    cache: HashMap<u64, (Bytes, Bytes)>,
    /// The flooders' announcement, encoded once.
    flood: Option<Vec<Vec<u8>>>,
}

impl Mesh {
    pub fn new(cfg: MeshConfig, specs: Vec<NodeSpec>) -> Self {
        let rng = Rng::new(cfg.seed ^ 0x6d65_7368);
        let mut m = Mesh {
            cfg,
            rng,
            now: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            nodes: Vec::new(),
            origin_gets: BTreeMap::new(),
            playlist: None,
            events: 0,
            first_seq_min: None,
            cache: HashMap::new(),
            flood: None,
        };
        for (i, spec) in specs.into_iter().enumerate() {
            m.push(spec.join_ms, Ev::Join(i as u32));
            if let Some(t) = spec.leave_ms {
                m.push(t, Ev::Leave(i as u32));
            }
            m.nodes.push(Node {
                res: NodeResult {
                    measured: spec.measured,
                    behaviour: Some(spec.behaviour),
                    join_ms: spec.join_ms,
                    ..NodeResult::default()
                },
                spec,
                inc: 0,
                swarm: None,
                neighbors: BTreeSet::new(),
                links: HashMap::new(),
                http: HashMap::new(),
                timer_at: None,
                player: Player::default(),
                window: (0, 0),
                joined_at: 0,
                carried: Default::default(),
            });
        }
        m
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Entry {
            t: t.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    pub fn run(mut self) -> MeshResult {
        while let Some(e) = self.heap.pop() {
            if e.t > self.cfg.duration_ms {
                break;
            }
            self.now = e.t;
            self.events += 1;
            self.dispatch(e.ev);
        }
        self.now = self.cfg.duration_ms;
        self.finish()
    }

    // ------------------------------------------------------------------ stream model

    /// Nominal bytes of segment `n` (bitrate × duration, ±15 % per segment).
    pub fn nominal_bytes(cfg: &MeshConfig, n: u64) -> u64 {
        let base = cfg.bitrate_kbps * 1000 / 8 * cfg.segment_ms / 1000;
        let mut h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ cfg.seed;
        h ^= h >> 29;
        let jitter = (h % 301) as i64 - 150;
        (base as i64 + base as i64 * jitter / 1000).max(188) as u64
    }

    /// Segment `n`'s discontinuity sequence and the first segment of that discontinuity.
    pub fn discontinuity(cfg: &MeshConfig, n: u64) -> (u64, u64) {
        match cfg.discontinuity_every {
            0 => (0, 0),
            every => (n / every, n / every * every),
        }
    }

    /// The plaintext of segment `n`: MPEG-TS packets whose payload names the segment, the
    /// first a PES header with the segment's PTS (10 s + its start, as packagers offset it;
    /// each discontinuity starts a timeline of its own, an hour apart).
    pub fn plaintext(cfg: &MeshConfig, n: u64) -> Vec<u8> {
        let len = (Self::nominal_bytes(cfg, n) / cfg.payload_scale.max(1)).max(188);
        let len = len.div_ceil(188) * 188;
        let mut v = vec![0u8; len as usize];
        for (p, pkt) in v.chunks_mut(188).enumerate() {
            pkt[0] = 0x47;
            pkt[1] = 0x01;
            pkt[2] = 0x00;
            pkt[3] = 0x10 | (p as u8 & 0x0f);
            let tag = n.wrapping_mul(31).wrapping_add(p as u64).to_le_bytes();
            for (k, b) in pkt[4..].iter_mut().enumerate() {
                *b = tag[k % 8];
            }
        }
        let (disc, first) = Self::discontinuity(cfg, n);
        let pts = (10_000 + (n - first) * cfg.segment_ms + disc * 3_600_000) * 90;
        v[1] = 0x41; // payload unit start
        v[4..13].copy_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5]);
        v[13] = 0x21 | (((pts >> 30) as u8 & 0x07) << 1);
        v[14] = (pts >> 22) as u8;
        v[15] = (((pts >> 15) as u8) << 1) | 1;
        v[16] = (pts >> 7) as u8;
        v[17] = ((pts as u8) << 1) | 1;
        v
    }

    fn iv(n: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&n.to_be_bytes());
        iv
    }

    /// The published SHA-256 of every segment the run can list, as PeerTube's file has them.
    fn hash_table(cfg: &MeshConfig) -> Arc<SegmentHashes> {
        use sha2::{Digest as _, Sha256};
        let count = if cfg.live {
            cfg.duration_ms / cfg.segment_ms.max(1) + cfg.live_window + 10
        } else {
            cfg.vod_segments
        };
        let table: serde_json::Map<String, serde_json::Value> = (0..count)
            .map(|n| {
                let d = Sha256::digest(Self::origin_bytes(cfg, n));
                let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                (format!("seg{n}.ts"), hex.into())
            })
            .collect();
        let json = serde_json::to_vec(&table).unwrap_or_default();
        Arc::new(SegmentHashes::parse(&json).unwrap_or_default())
    }

    /// What the origin serves for segment `n`.
    fn origin_bytes(cfg: &MeshConfig, n: u64) -> Vec<u8> {
        let plain = Self::plaintext(cfg, n);
        if !cfg.encrypted {
            return plain;
        }
        use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
        let mut buf = plain.clone();
        buf.resize(plain.len() + 16, 0);
        let enc = cbc::Encryptor::<aes::Aes128>::new(&KEY.into(), &Self::iv(n).into());
        let len = enc
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .map(|c| c.len())
            .unwrap_or(0);
        buf.truncate(len);
        buf
    }

    /// (origin bytes, plaintext) of segment `n`, made once.
    fn bytes(&mut self, n: u64) -> (Bytes, Bytes) {
        let cfg = &self.cfg;
        self.cache
            .entry(n)
            .or_insert_with(|| {
                (
                    Bytes::from(Self::origin_bytes(cfg, n)),
                    Bytes::from(Self::plaintext(cfg, n)),
                )
            })
            .clone()
    }

    /// Highest published live segment at `now` (the first `live_window` exist at t = 0).
    fn live_edge(&self) -> u64 {
        let c = &self.cfg;
        (self.now + c.live_window * c.segment_ms) / c.segment_ms - 1
    }

    fn current_playlist(&mut self) -> MediaPlaylist {
        let (first, last, end_list) = if self.cfg.live {
            let edge = self.live_edge();
            (edge + 1 - self.cfg.live_window, edge, false)
        } else {
            (0, self.cfg.vod_segments - 1, true)
        };
        if let Some((f, p)) = &self.playlist {
            if *f == first && p.segments.last().map(|s| s.sequence) == Some(last) {
                return p.clone();
            }
        }
        let d = self.cfg.segment_ms;
        let segments = (first..=last)
            .map(|n| Segment {
                resource: Resource {
                    url: Url::parse(&format!("http://origin.invalid/seg{n}.ts"))
                        .expect("static URL"),
                    range: None,
                },
                start: Duration::from_millis(n * d),
                duration: Duration::from_millis(d),
                sequence: n,
                discontinuity: n > 0 && Self::discontinuity(&self.cfg, n).1 == n,
                discontinuity_sequence: Self::discontinuity(&self.cfg, n).0,
                key: self.cfg.encrypted.then(|| Aes128Key {
                    uri: Url::parse("http://origin.invalid/key").expect("static URL"),
                    iv: None,
                }),
                init: None,
                init_key: None,
                gap: false,
                start_seconds: None,
                media_offset_ns: None,
                program_date_time_ns: None,
                start_in_period_seconds: None,
            })
            .collect();
        let p = MediaPlaylist {
            url: Url::parse("http://origin.invalid/index.m3u8").expect("static URL"),
            kind: if self.cfg.live {
                PlaylistKind::Live
            } else {
                PlaylistKind::Vod
            },
            target_duration: Duration::from_millis(d),
            media_sequence: first,
            discontinuity_sequence: Self::discontinuity(&self.cfg, first).0,
            end_list,
            segments,
            lost_sync: false,
            low_latency: None,
        };
        self.playlist = Some((first, p.clone()));
        p
    }

    // ------------------------------------------------------------------ events

    fn alive(&self, i: u32, inc: u32) -> bool {
        let n = &self.nodes[i as usize];
        n.inc == inc && n.swarm.is_some()
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Join(i) => self.on_join(i),
            Ev::Leave(i) => self.on_leave(i),
            Ev::Refresh(i, inc) => {
                if self.alive(i, inc) {
                    let p = self.current_playlist();
                    let now = self.now;
                    self.nodes[i as usize].window = window_of(&p);
                    self.swarm(i).handle_playlist(now, &p);
                    self.player_step(i);
                    self.after(i);
                    // A seeder polls its playlist four times a segment (the engine's
                    // `SEED_RELOAD_DIVISOR`): it should hear of a segment before the viewers.
                    let period = if self.nodes[i as usize].spec.seeder {
                        self.cfg.segment_ms / 4
                    } else {
                        self.cfg.segment_ms
                    };
                    if self.cfg.live {
                        self.push(now + period.max(1), Ev::Refresh(i, inc));
                    }
                }
            }
            Ev::Announce(i, inc) => {
                if self.alive(i, inc) {
                    self.announce(i);
                    let t = self.now + self.cfg.announce_interval_ms;
                    self.push(t, Ev::Announce(i, inc));
                }
            }
            Ev::ConnOpen(a, ainc, b, binc) => self.on_conn_open(a, ainc, b, binc),
            Ev::Msg {
                from,
                finc,
                to,
                tinc,
                data,
            } => {
                if self.alive(to, tinc)
                    && self.alive(from, finc)
                    && self.nodes[to as usize].neighbors.contains(&from)
                {
                    let now = self.now;
                    self.swarm(to)
                        .handle_peer_message(now, PeerKey(from as u64), &data);
                    self.after(to);
                }
            }
            Ev::Drained {
                from,
                finc,
                to,
                bytes,
            } => {
                if self.alive(from, finc) {
                    let now = self.now;
                    self.swarm(from)
                        .handle_peer_drained(now, PeerKey(to as u64), bytes);
                    self.after(from);
                }
            }
            Ev::DripRelease { from, finc, to } => self.on_drip(from, finc, to),
            Ev::HttpProgress(i, inc, xfer) => {
                if !self.alive(i, inc) {
                    return;
                }
                let now = self.now;
                let Some((total, started, dur)) = self.nodes[i as usize]
                    .http
                    .get(&xfer)
                    .map(|f| (f.total, f.started, f.dur))
                else {
                    return;
                };
                let got = total * now.saturating_sub(started) / dur.max(1);
                self.swarm(i).handle_http_progress(now, xfer, got);
                self.after(i);
                if now + PROGRESS_MS < started + dur {
                    self.push(now + PROGRESS_MS, Ev::HttpProgress(i, inc, xfer));
                }
            }
            Ev::HttpDone(i, inc, xfer) => {
                if !self.alive(i, inc) {
                    return;
                }
                let Some(f) = self.nodes[i as usize].http.remove(&xfer) else {
                    return;
                };
                let lie = self.nodes[i as usize].spec.behaviour == Behaviour::LiarStale;
                let data = match (lie, f.sequence.checked_sub(3)) {
                    (true, Some(old)) => self.bytes(old).0,
                    _ => self.bytes(f.sequence).0,
                };
                let now = self.now;
                self.swarm(i).handle_http_done(now, xfer, data);
                self.after(i);
            }
            Ev::DirectDone(i, inc, sequence) => {
                if !self.alive(i, inc) {
                    return;
                }
                let data = self.bytes(sequence).0;
                self.nodes[i as usize].res.http_bytes += data.len() as u64;
                self.on_deliver(i, sequence, data, Source::Http);
                self.after(i);
            }
            Ev::Timer(i, inc, at) => {
                if self.alive(i, inc) && self.nodes[i as usize].timer_at == Some(at) {
                    self.nodes[i as usize].timer_at = None;
                    let now = self.now;
                    self.swarm(i).handle_timeout(now);
                    self.after(i);
                }
            }
            Ev::Tick(i, inc) => {
                if self.alive(i, inc) {
                    self.player_step(i);
                    let p = &self.nodes[i as usize].player;
                    let seg = self.cfg.segment_ms;
                    let pos = match self.cfg.playhead_report {
                        PlayheadReport::Exact => p.pos,
                        PlayheadReport::LastTaken => {
                            (p.pos / seg * seg + seg).min(p.buffered_end.saturating_sub(seg))
                        }
                    };
                    let now = self.now;
                    self.swarm(i).handle_playhead(now, pos);
                    self.after(i);
                    let t = now + self.cfg.playhead_interval_ms;
                    self.push(t, Ev::Tick(i, inc));
                }
            }
            Ev::Flood(i, inc)
                if self.nodes[i as usize].spec.behaviour == Behaviour::RequestCancelLoop =>
            {
                if !self.alive(i, inc) {
                    return;
                }
                let neigh: Vec<u32> = self.nodes[i as usize].neighbors.iter().copied().collect();
                let id = self.rng.below(self.cfg.vod_segments.max(1)) as i64;
                let request_id = self.rng.below(1 << 30) as i64;
                for j in neigh {
                    for cmd in [
                        WireCommand::SegmentRequest {
                            id,
                            request_id,
                            byte_offset: 0,
                        },
                        WireCommand::CancelSegmentRequest { id, request_id },
                    ] {
                        for m in wire::encode_command(&cmd, wire::MAX_MESSAGE_SIZE) {
                            self.send(i, j, m);
                        }
                    }
                }
                self.push(self.now + 20, Ev::Flood(i, inc));
            }
            Ev::Flood(i, inc) => {
                if self.alive(i, inc) && !self.nodes[i as usize].neighbors.is_empty() {
                    let msgs = self.flood.get_or_insert_with(|| {
                        wire::encode_command(
                            &WireCommand::SegmentsAnnouncement {
                                loaded: (0..100_000).collect(),
                                http_loading: Vec::new(),
                            },
                            wire::MAX_MESSAGE_SIZE,
                        )
                    });
                    let msgs = msgs.clone();
                    let neigh: Vec<u32> =
                        self.nodes[i as usize].neighbors.iter().copied().collect();
                    for j in neigh {
                        for m in &msgs {
                            self.send(i, j, m.clone());
                        }
                    }
                }
                if self.alive(i, inc) {
                    self.push(self.now + 100, Ev::Flood(i, inc));
                }
            }
        }
    }

    fn swarm(&mut self, i: u32) -> &mut Swarm<Bytes> {
        self.nodes[i as usize]
            .swarm
            .as_mut()
            .expect("alive node has a swarm")
    }

    fn on_join(&mut self, i: u32) {
        let now = self.now;
        let n = &mut self.nodes[i as usize];
        n.inc += 1;
        let inc = n.inc;
        let mut cfg = self.cfg.swarm.clone();
        cfg.label = format!("node{i}");
        if n.spec.seeder {
            cfg.scheduler = crate::schedule::SchedulerConfig::seed();
        }
        let mut swarm = Swarm::new(
            cfg,
            self.cfg.seed.wrapping_mul(1000) + i as u64 * 7 + inc as u64,
            now,
        );
        if self.cfg.segment_hashes {
            swarm.handle_segment_hashes(now, Self::hash_table(&self.cfg));
        }
        n.swarm = Some(swarm);
        n.player = Player::default();
        n.timer_at = None;
        n.joined_at = now;
        let p = self.current_playlist();
        let first = if self.cfg.live {
            let edge = self.live_edge();
            let back = self.cfg.live_delay_ms.div_ceil(self.cfg.segment_ms);
            (edge + 1).saturating_sub(back).max(p.media_sequence)
        } else {
            0
        };
        self.first_seq_min = Some(self.first_seq_min.map_or(first, |f| f.min(first)));
        let pl = &mut self.nodes[i as usize].player;
        pl.next_seq = first;
        pl.pos = first * self.cfg.segment_ms;
        pl.buffered_end = pl.pos;
        pl.pos_at = now;
        self.nodes[i as usize].window = window_of(&p);
        self.swarm(i).handle_playlist(now, &p);
        if self.cfg.p2p {
            self.push(now, Ev::Announce(i, inc));
        } else {
            self.swarm(i).handle_tracker_unavailable(now);
        }
        if self.cfg.live {
            let phase = self.rng.below(self.cfg.segment_ms);
            self.push(now + phase, Ev::Refresh(i, inc));
        }
        self.push(now + self.cfg.playhead_interval_ms, Ev::Tick(i, inc));
        if matches!(
            self.nodes[i as usize].spec.behaviour,
            Behaviour::AnnounceFlood | Behaviour::RequestCancelLoop
        ) {
            self.push(now + 1000, Ev::Flood(i, inc));
        }
        self.player_step(i);
        self.after(i);
    }

    fn on_leave(&mut self, i: u32) {
        let now = self.now;
        if self.nodes[i as usize].swarm.is_none() {
            return;
        }
        self.close_player(i);
        let n = &mut self.nodes[i as usize];
        if let Some(s) = n.swarm.take() {
            add_stats(&mut n.carried, s.stats());
        }
        n.res.left = true;
        n.http.clear();
        n.links.clear();
        let neigh: Vec<u32> = std::mem::take(&mut n.neighbors).into_iter().collect();
        for j in neigh {
            self.nodes[j as usize].neighbors.remove(&i);
            self.nodes[j as usize].links.remove(&i);
            if self.nodes[j as usize].swarm.is_some() {
                self.swarm(j).handle_peer_closed(now, PeerKey(i as u64));
                self.after(j);
            }
        }
        if let Some(after) = self.nodes[i as usize].spec.rejoin_after_ms {
            self.push(now + after, Ev::Join(i));
            if let Some(l) = self.nodes[i as usize].spec.leave_ms {
                let stay = l
                    .saturating_sub(self.nodes[i as usize].spec.join_ms)
                    .max(1000);
                self.push(now + after + stay, Ev::Leave(i));
            }
        }
    }

    fn tracker_up(&self) -> bool {
        !self
            .cfg
            .tracker_down
            .iter()
            .any(|&(a, b)| self.now >= a && self.now < b)
    }

    fn announce(&mut self, i: u32) {
        let now = self.now;
        if !self.tracker_up() {
            self.swarm(i).handle_tracker_unavailable(now);
            self.after(i);
            // Retry soon, as the tracker client reconnects with backoff.
            let inc = self.nodes[i as usize].inc;
            self.push(now + 5000, Ev::Announce(i, inc));
            return;
        }
        let members: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&j| j != i && self.nodes[j as usize].swarm.is_some())
            .collect();
        let total = members.len() as u64 + 1;
        self.swarm(i).handle_tracker_counts(now, 0, total);
        self.after(i);
        let mut cands: Vec<u32> = members
            .into_iter()
            .filter(|j| !self.nodes[i as usize].neighbors.contains(j))
            .collect();
        let mut picked = 0;
        while picked < self.cfg.offers && !cands.is_empty() {
            let k = self.rng.below(cands.len() as u64) as usize;
            let j = cands.swap_remove(k);
            let (a, b) = self.cfg.setup_ms;
            let t = now + self.rng.range(a, b);
            let (ai, bi) = (self.nodes[i as usize].inc, self.nodes[j as usize].inc);
            self.push(t, Ev::ConnOpen(i, ai, j, bi));
            picked += 1;
        }
    }

    fn on_conn_open(&mut self, a: u32, ainc: u32, b: u32, binc: u32) {
        if !self.alive(a, ainc) || !self.alive(b, binc) {
            return;
        }
        let (na, nb) = (&self.nodes[a as usize], &self.nodes[b as usize]);
        if na.neighbors.contains(&b)
            || na.neighbors.len() >= self.cfg.max_conns
            || nb.neighbors.len() >= self.cfg.max_conns
        {
            return;
        }
        let now = self.now;
        let (ra, rb) = (self.remote(a), self.remote(b));
        if !self.swarm(a).handle_peer_opened(now, PeerKey(b as u64), rb) {
            self.after(a);
            return;
        }
        if !self.swarm(b).handle_peer_opened(now, PeerKey(a as u64), ra) {
            self.swarm(a).handle_peer_closed(now, PeerKey(b as u64));
            self.after(a);
            self.after(b);
            return;
        }
        self.nodes[a as usize].neighbors.insert(b);
        self.nodes[b as usize].neighbors.insert(a);
        for (x, y) in [(a, b), (b, a)] {
            let n = &mut self.nodes[x as usize];
            n.links.insert(y, Link::default());
            n.res.peers_max = n.res.peers_max.max(n.neighbors.len());
        }
        self.after(a);
        self.after(b);
    }

    /// Node `i` as its peers see it: a fresh peer id per incarnation (a rejoin is a new id),
    /// one address for the node's whole life.
    fn remote(&self, i: u32) -> Remote {
        let mut id = [0u8; 20];
        id[..4].copy_from_slice(&i.to_be_bytes());
        id[4..8].copy_from_slice(&self.nodes[i as usize].inc.to_be_bytes());
        let addr = std::net::Ipv4Addr::from(0x0b00_0000 | i); // public: bans hold
        Remote {
            id,
            addr: Some(addr.into()),
        }
    }

    /// Drain node `i`'s outputs and re-arm its timer.
    fn after(&mut self, i: u32) {
        loop {
            let Some(out) = self.nodes[i as usize]
                .swarm
                .as_mut()
                .and_then(|s| s.poll_output())
            else {
                break;
            };
            match out {
                Output::Transmit { peer, data } => self.send(i, peer.0 as u32, data),
                Output::HttpFetch { xfer, sequence, .. } => self.http_start(i, xfer, sequence),
                Output::HttpAbort { xfer } => {
                    self.nodes[i as usize].http.remove(&xfer);
                }
                Output::Deliver {
                    sequence,
                    data,
                    source,
                } => self.on_deliver(i, sequence, data, source),
                Output::LoadFailed { sequence } => {
                    // The element's fetch loop then asks the origin itself.
                    let n = &mut self.nodes[i as usize];
                    n.res.load_failures += 1;
                    let inc = n.inc;
                    *self.origin_gets.entry(sequence).or_default() += 1;
                    let t = self.now + self.http_duration(i, sequence);
                    self.push(t, Ev::DirectDone(i, inc, sequence));
                }
                Output::Disconnect { peer } => self.disconnect(i, peer.0 as u32),
                Output::Event(ev) => {
                    let res = &mut self.nodes[i as usize].res;
                    match &ev {
                        super::SwarmEvent::PeerRemoved { reason, .. } => {
                            res.peers_dropped += 1;
                            *res.removed_for.entry(reason.clone()).or_default() += 1;
                        }
                        super::SwarmEvent::Stored {
                            source: Source::P2p(k),
                            bytes,
                            ..
                        } => *res.received_from.entry(k.0 as u32).or_default() += bytes,
                        _ => {}
                    }
                    if self.cfg.trace {
                        let p = &self.nodes[i as usize].player;
                        println!(
                            "trace t={} node={i} pos={} buffered_end={} {ev:?}",
                            self.now, p.pos, p.buffered_end
                        );
                    }
                }
            }
        }
        let n = &mut self.nodes[i as usize];
        let Some(s) = n.swarm.as_mut() else {
            return;
        };
        for j in n.neighbors.iter() {
            n.res.backlog_max = n.res.backlog_max.max(s.backlog(PeerKey(*j as u64)));
        }
        if let Some(t) = s.poll_timeout() {
            let t = t.max(self.now + 1);
            if n.timer_at.is_none_or(|cur| t < cur) {
                n.timer_at = Some(t);
                let inc = n.inc;
                self.push(t, Ev::Timer(i, inc, t));
            }
        }
    }

    fn disconnect(&mut self, a: u32, b: u32) {
        let now = self.now;
        self.nodes[a as usize].neighbors.remove(&b);
        self.nodes[a as usize].links.remove(&b);
        if self.nodes[b as usize].neighbors.remove(&a) {
            self.nodes[b as usize].links.remove(&a);
            if self.nodes[b as usize].swarm.is_some() {
                self.swarm(b).handle_peer_closed(now, PeerKey(a as u64));
                self.after(b);
            }
        }
    }

    fn http_duration(&self, i: u32, sequence: u64) -> u64 {
        let nominal = Self::nominal_bytes(&self.cfg, sequence);
        let down = self.nodes[i as usize].spec.down_kbps;
        let kbps = self.cfg.origin_kbps.map_or(down, |k| k.min(down)).max(1);
        let transfer = nominal * 8 / kbps;
        2 * self.cfg.origin_latency_ms + transfer
    }

    fn http_start(&mut self, i: u32, xfer: TransferId, sequence: u64) {
        *self.origin_gets.entry(sequence).or_default() += 1;
        *self.nodes[i as usize]
            .res
            .origin_gets
            .entry(sequence)
            .or_default() += 1;
        let total = self.bytes(sequence).0.len() as u64;
        let dur = self.http_duration(i, sequence).max(1);
        let now = self.now;
        let inc = self.nodes[i as usize].inc;
        self.nodes[i as usize].http.insert(
            xfer,
            HttpFlow {
                sequence,
                total,
                started: now,
                dur,
            },
        );
        if dur > PROGRESS_MS {
            self.push(now + PROGRESS_MS, Ev::HttpProgress(i, inc, xfer));
        }
        self.push(now + dur, Ev::HttpDone(i, inc, xfer));
    }

    // ------------------------------------------------------------------ links

    fn send(&mut self, from: u32, to: u32, data: Vec<u8>) {
        let behaviour = self.nodes[from as usize].spec.behaviour;
        let payload = is_payload(&self.cfg.swarm.family, &data);
        let data = match (behaviour, payload) {
            (Behaviour::LiarGarbage, true) => {
                let mut v = data;
                for b in v.iter_mut() {
                    *b = (self.rng.next_u64() & 0xff) as u8;
                }
                // Never let garbage look like a command chunk.
                if let Some(b) = v.first_mut() {
                    *b = 0x00;
                }
                v
            }
            (Behaviour::LiarPlausibleTs, true) => {
                let mut v = data;
                for (k, b) in v.iter_mut().enumerate() {
                    *b = if k % 188 == 0 {
                        0x47
                    } else {
                        (self.rng.next_u64() & 0xff) as u8
                    };
                }
                v
            }
            (Behaviour::LiarShort, true) => {
                let half = data.len() / 2;
                data[..half.max(1)].to_vec()
            }
            (Behaviour::Silent, true) => return,
            _ => data,
        };
        let Some(link) = self.nodes[from as usize].links.get_mut(&to) else {
            return;
        };
        if behaviour == Behaviour::Drip {
            let start = !link.dripping;
            link.held.push_back(data);
            link.dripping = true;
            if start {
                let finc = self.nodes[from as usize].inc;
                self.push(self.now, Ev::DripRelease { from, finc, to });
            }
            return;
        }
        self.transmit(from, to, data, payload);
    }

    fn on_drip(&mut self, from: u32, finc: u32, to: u32) {
        if !self.alive(from, finc) {
            return;
        }
        let Some(link) = self.nodes[from as usize].links.get_mut(&to) else {
            return;
        };
        let Some(front) = link.held.pop_front() else {
            link.dripping = false;
            return;
        };
        let payload = is_payload(&self.cfg.swarm.family, &front);
        let (msg, wait) = if payload && front.len() > 1 {
            let rest = front[1..].to_vec();
            link.held.push_front(rest);
            (front[..1].to_vec(), 1900)
        } else {
            (front, if payload { 1900 } else { 0 })
        };
        // The swarm counts what it queued: report the whole message drained as it is taken.
        self.transmit(from, to, msg, payload);
        self.push(self.now + wait, Ev::DripRelease { from, finc, to });
    }

    fn transmit(&mut self, from: u32, to: u32, data: Vec<u8>, payload: bool) {
        let now = self.now;
        let scale = if payload { self.cfg.payload_scale } else { 1 };
        let nominal = data.len() as u64 * scale;
        let lat = self.nodes[from as usize].spec.latency_ms
            + self.nodes[to as usize].spec.latency_ms
            + self.cfg.rtt_ms / 2;
        let up = self.nodes[from as usize].spec.up_kbps.max(1);
        let busy = self.nodes[from as usize]
            .links
            .values()
            .filter(|l| l.busy_until > now)
            .count() as u64;
        let (finc, tinc) = (self.nodes[from as usize].inc, self.nodes[to as usize].inc);
        // Share of the uplink: split with the other busy links.
        let tx_ms = nominal * 8 * (busy + 1) / up;
        let packets = nominal.div_ceil(PACKET).max(1);
        let mut extra = 0;
        if self.cfg.loss > 0.0 {
            // Fast retransmit: losses inside a message cost one round trip (recoveries
            // overlap, and the link keeps sending meanwhile).
            let any = 1.0 - (1.0 - self.cfg.loss).powi(packets.min(i32::MAX as u64) as i32);
            if self.rng.next_f64() < any {
                extra += 2 * lat;
            }
            // A lost tail packet waits for the retransmission timeout.
            let tail = 1.0 - (1.0 - self.cfg.loss).powi(packets.min(2) as i32);
            if self.rng.next_f64() < tail {
                extra += self.cfg.rto_ms;
            }
        }
        let never_reads = self.nodes[to as usize].spec.behaviour == Behaviour::NeverReads;
        let Some(link) = self.nodes[from as usize].links.get_mut(&to) else {
            return;
        };
        if never_reads {
            return; // nothing leaves our queue
        }
        let start = now.max(link.busy_until);
        let finish = start + tx_ms;
        let deliver = (finish + lat + extra).max(link.last_deliver);
        link.busy_until = finish;
        link.last_deliver = deliver;
        let bytes = data.len();
        self.push(
            finish,
            Ev::Drained {
                from,
                finc,
                to,
                bytes,
            },
        );
        self.push(
            deliver,
            Ev::Msg {
                from,
                finc,
                to,
                tinc,
                data,
            },
        );
    }

    // ------------------------------------------------------------------ player

    /// The element's fetch loop: decrypt, then check. Clear peer data was judged by the
    /// swarm; decrypted peer data is judged here against what the origin's segments taught.
    fn on_deliver(&mut self, i: u32, sequence: u64, data: Bytes, source: Source) {
        let now = self.now;
        if self.nodes[i as usize].player.requested != Some(sequence) {
            return;
        }
        let expected = self.bytes(sequence).1;
        let place = Place {
            start_ms: sequence * self.cfg.segment_ms,
            duration_ms: self.cfg.segment_ms,
            discontinuity_sequence: Self::discontinuity(&self.cfg, sequence).0,
        };
        let encrypted = self.cfg.encrypted;
        let n = &mut self.nodes[i as usize];
        let plain = if encrypted {
            aes128_cbc_decrypt(&KEY, &Self::iv(sequence), &data)
                .ok()
                .map(|b| b.to_vec())
        } else {
            Some(data.to_vec())
        };
        if matches!(source, Source::P2p(_)) && encrypted && !n.player.plausibility.anchored(place) {
            // As the fetch loop: a peer's copy that cannot be judged yet is nobody's fault;
            // the origin's copy instead.
            n.res.load_failures += 1;
            let inc = n.inc;
            *self.origin_gets.entry(sequence).or_default() += 1;
            let t = now + self.http_duration(i, sequence);
            self.push(t, Ev::DirectDone(i, inc, sequence));
            return;
        }
        let plain = plain.filter(|p| match source {
            Source::P2p(_) if encrypted => n.player.plausibility.judge(place, p).is_ok(),
            _ => sniff(p).is_some(),
        });
        if let (Some(p), Source::Http, true) = (&plain, source, encrypted) {
            n.player.plausibility.learn(place, p);
        }
        let Some(plain) = plain else {
            // The fetch loop cannot decode it: tell the swarm and ask again.
            n.res.rejected_by_player += 1;
            if let Some(s) = n.swarm.as_mut() {
                s.handle_segment_rejected(now, sequence, "did not decode");
                s.handle_load(now, sequence);
            }
            return;
        };
        if plain[..] != expected[..] {
            n.res.wrong_segments += 1;
        }
        if let Some(s) = n.swarm.as_mut() {
            s.handle_segment_verified(now, sequence);
        }
        let p = &mut n.player;
        p.requested = None;
        p.next_seq = sequence + 1;
        p.buffered_end = (sequence + 1) * self.cfg.segment_ms;
        n.res.segments_played += 1;
        if !p.started {
            p.started = true;
            p.playing = true;
            p.pos_at = now;
            // A rejoin is a new viewer: keep the slowest start.
            let startup = now.saturating_sub(n.joined_at);
            n.res.startup_ms = Some(n.res.startup_ms.map_or(startup, |s| s.max(startup)));
        } else if !p.playing && !p.finished {
            let stall = now.saturating_sub(p.stall_since);
            n.res.stall_ms += stall;
            n.res.longest_stall_ms = n.res.longest_stall_ms.max(stall);
            p.playing = true;
            p.pos_at = now;
        }
        self.player_step(i);
    }

    /// Advance the playhead to now, detect a stall, and ask for the next segment.
    fn player_step(&mut self, i: u32) {
        let now = self.now;
        let seg = self.cfg.segment_ms;
        let vod_end = (!self.cfg.live).then_some(self.cfg.vod_segments);
        let n = &mut self.nodes[i as usize];
        let (window_start, window_end) = n.window;
        let p = &mut n.player;
        if p.started && p.playing {
            let elapsed = now.saturating_sub(p.pos_at);
            let avail = p.buffered_end.saturating_sub(p.pos);
            if elapsed >= avail {
                p.pos = p.buffered_end;
                let ran_out = p.pos_at + avail;
                p.pos_at = now;
                if vod_end.is_some_and(|e| p.next_seq >= e) {
                    p.finished = true;
                    p.playing = false;
                } else {
                    p.playing = false;
                    p.stall_since = ran_out;
                    n.res.stalls += 1;
                }
            } else {
                p.pos += elapsed;
                p.pos_at = now;
            }
        }
        if p.requested.is_some() || p.finished || vod_end.is_some_and(|e| p.next_seq >= e) {
            return;
        }
        if p.buffered_end.saturating_sub(p.pos) >= self.cfg.max_buffer_ms {
            return;
        }
        if self.cfg.live {
            if p.next_seq > window_end {
                return; // not published yet
            }
            if p.next_seq < window_start {
                // Fell out of the window: resume at its start (a skip, as the element does).
                n.res.skipped += window_start - p.next_seq;
                p.next_seq = window_start;
                p.buffered_end = window_start * seg;
                p.pos = p.pos.max(p.buffered_end.saturating_sub(seg));
            }
        }
        let seq = p.next_seq;
        p.requested = Some(seq);
        if let Some(s) = n.swarm.as_mut() {
            s.handle_load(now, seq);
        }
    }

    fn close_player(&mut self, i: u32) {
        let now = self.now;
        self.player_step(i);
        let n = &mut self.nodes[i as usize];
        if n.player.started && !n.player.playing && !n.player.finished {
            let stall = now.saturating_sub(n.player.stall_since);
            n.res.stall_ms += stall;
            n.res.longest_stall_ms = n.res.longest_stall_ms.max(stall);
        }
        n.player.finished = true;
    }

    fn finish(mut self) -> MeshResult {
        for i in 0..self.nodes.len() as u32 {
            if self.nodes[i as usize].swarm.is_some() {
                self.close_player(i);
                let n = &mut self.nodes[i as usize];
                if let Some(s) = n.swarm.as_ref() {
                    let st = s.stats();
                    add_stats(&mut n.carried, st);
                }
            }
            let n = &mut self.nodes[i as usize];
            n.res.http_bytes += n.carried.http_bytes;
            n.res.p2p_bytes += n.carried.p2p_bytes;
            n.res.upload_bytes += n.carried.upload_bytes;
            n.res.wasted_http_bytes += n.carried.wasted_http_bytes;
            n.res.refused_banned += n.carried.refused_banned;
        }
        let (lo, hi) = if self.cfg.live {
            let hi = self.live_edge();
            (self.first_seq_min.unwrap_or(hi), hi)
        } else {
            (0, self.cfg.vod_segments - 1)
        };
        let unique_bytes = (lo..=hi).map(|n| self.bytes(n).0.len() as u64).sum();
        MeshResult {
            nodes: self.nodes.into_iter().map(|n| n.res).collect(),
            origin_gets: self.origin_gets,
            unique_bytes,
            events: self.events,
        }
    }
}

fn window_of(p: &MediaPlaylist) -> (u64, u64) {
    let first = p.segments.first().map_or(0, |s| s.sequence);
    let last = p.segments.last().map_or(0, |s| s.sequence);
    (first, last)
}

fn add_stats(a: &mut super::SwarmStats, b: super::SwarmStats) {
    a.http_bytes += b.http_bytes;
    a.http_segments += b.http_segments;
    a.p2p_bytes += b.p2p_bytes;
    a.p2p_segments += b.p2p_segments;
    a.upload_bytes += b.upload_bytes;
    a.wasted_http_bytes += b.wasted_http_bytes;
    a.rejected_segments += b.rejected_segments;
    a.refused_banned += b.refused_banned;
}

/// Segment bytes rather than a command, by the family's own test.
fn is_payload(family: &WireFamily, data: &[u8]) -> bool {
    match family {
        WireFamily::V2 => !wire::is_command_chunk(data),
        WireFamily::V06 { .. } => !(data.starts_with(b"{\"") && data.ends_with(b"}")),
    }
}
