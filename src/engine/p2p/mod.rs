//! P2P side of the engine: one hub per element session (tracker client, WebRTC factory) and
//! one swarm actor per stream swarm (variant or audio rendition), which drives the pure
//! [`crate::swarm::Swarm`] with tracker, data-channel, HTTP and timer events and carries out
//! what it decides.

mod link;
mod swarm;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

pub use swarm::{LoadError, SwarmHandle};

use super::hashes::HashBook;
use super::origin::Origin;
use super::output::OutputQueue;
use super::runtime::RUNTIME;
use super::task;
use super::Protocol;
use crate::net::rtc::{RtcConfig, RtcFactory, WebRtcFactory};
use crate::net::tracker::{
    InfoHash, PeerId, TrackerClient, TrackerConfig, TrackerEvent, TrackerHandle,
};
use crate::p2p::identity::{Compat, StreamType};
use crate::p2p::wire06::Ids06;
use crate::p2p::WireFamily;
use crate::schedule::SchedulerConfig;

/// PML 2.3's default trackers.
pub const DEFAULT_TRACKERS: &[&str] = &[
    "wss://tracker.novage.com.ua",
    "wss://tracker.openwebtorrent.com",
];

/// A stream's swarm as the engine names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmKey {
    /// 20 chars as they go to the tracker (see `identity::info_hash`).
    pub info_hash: String,
    /// What was hashed (0.6 peers name segments after it).
    pub stream_swarm_id: String,
    pub stream_type: StreamType,
    pub compat: Compat,
}

/// Everything the element's P2P properties configure.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    pub enabled: bool,
    pub upload: bool,
    pub trackers: Vec<String>,
    pub ice_servers: Vec<String>,
    /// Overrides the manifest URL as swarm id.
    pub swarm_id: Option<String>,
    /// The family played through.
    pub compat: Compat,
    /// Other families whose swarms get every segment played (mirrors: they serve, never
    /// fetch).
    pub bridge: Vec<Compat>,
    pub scheduler: SchedulerConfig,
    /// Connections per swarm; 0 = unlimited (PML has no cap).
    pub max_peers: usize,
    /// Upload budget in bytes/s of each swarm (stream); 0 = unlimited.
    pub max_upload_rate: u64,
    /// Largest segment a peer may claim when the playlist gives no byte range.
    pub max_segment_bytes: u64,
    /// Segment store limit in bytes, per swarm (stream).
    pub store_limit: u64,
    /// `Origin` header for tracker WebSockets (some trackers reject empty origins).
    pub tracker_origin: Option<String>,
    /// Keep a swarm this long after the stream switched away from it (PML: 30 s).
    pub inactive_swarm_timeout: Duration,
}

/// Default upload budget per swarm, bytes/s: strangers on a public tracker must not be able
/// to take a kiosk's whole uplink; 16 Mbit/s still serves three or four 5-Mbit/s viewers.
pub const DEFAULT_MAX_UPLOAD_RATE: u64 = 2_000_000;

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            enabled: true,
            upload: true,
            trackers: DEFAULT_TRACKERS.iter().map(|s| s.to_string()).collect(),
            ice_servers: RtcConfig::default().ice_servers,
            swarm_id: None,
            compat: Compat::Pml23,
            bridge: Vec::new(),
            scheduler: SchedulerConfig::ours(),
            max_peers: 20,
            max_upload_rate: DEFAULT_MAX_UPLOAD_RATE,
            max_segment_bytes: 64 << 20,
            store_limit: 256 << 20,
            tracker_origin: None,
            inactive_swarm_timeout: Duration::from_secs(30),
        }
    }
}

/// Our side of a connection's WebRTC offer/answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Offerer,
    Answerer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Offerer => "offerer",
            Role::Answerer => "answerer",
        }
    }
}

/// What happened in a swarm, for applications (the element posts these on the bus).
#[derive(Debug, Clone)]
pub enum P2pEvent {
    PeerConnected {
        info_hash: String,
        peer_id: String,
        role: Role,
        /// From the answer (received as offerer, sent as answerer) to the data channel open.
        setup: Duration,
    },
    PeerClosed {
        info_hash: String,
        peer_id: String,
    },
    /// A segment was stored: from the origin (`peer_id` None) or from a peer.
    SegmentLoaded {
        info_hash: String,
        id: u64,
        bytes: u64,
        peer_id: Option<String>,
    },
    /// A segment failed a check (size, container, published hash): from a peer, that peer
    /// was dropped; from the origin, it is fetched again.
    SegmentRejected {
        info_hash: String,
        id: u64,
        peer_id: Option<String>,
        reason: String,
    },
    /// The swarm's actor panicked: P2P is off for it, its stream goes on over HTTP.
    SwarmFailed {
        info_hash: String,
        reason: String,
    },
}

pub type P2pObserver = Arc<dyn Fn(P2pEvent) + Send + Sync>;

pub use crate::swarm::{SegmentCheck, SegmentValidator};

/// Per-swarm figures for `stats`.
#[derive(Debug, Clone)]
pub struct SwarmInfo {
    pub info_hash: String,
    pub stream_type: StreamType,
    pub peers: usize,
    /// Bytes in this swarm's segment store (`max-store-size` bounds it).
    pub store_bytes: u64,
    pub upload_bytes: u64,
    /// Segments stored from the origin.
    pub http_segments: u64,
    /// Uploads sent to their last byte.
    pub served_segments: u64,
}

/// One tracker as `stats` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerInfo {
    pub url: String,
    pub state: TrackerState,
    /// The last thing that went wrong with it (connection error, failure reason, ...).
    pub last_error: Option<String>,
    /// Distinct peers that offered or answered through it (counted up to [`MAX_PEERS_SEEN`]).
    pub peers_seen: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerState {
    /// Not connected yet, and nothing went wrong so far.
    Connecting,
    Connected,
    /// The socket failed or closed; the client retries with backoff.
    Disconnected,
}

impl TrackerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackerState::Connecting => "connecting",
            TrackerState::Connected => "connected",
            TrackerState::Disconnected => "disconnected",
        }
    }
}

/// Peer ids remembered per tracker for `peers_seen`: a count for people, not a peer list.
pub const MAX_PEERS_SEEN: usize = 4096;

struct TrackerRecord {
    url: String,
    state: TrackerState,
    last_error: Option<String>,
    peers: HashSet<PeerId>,
}

/// Every tracker's state, from the events the router sees.
#[derive(Default)]
pub(crate) struct TrackerBoard(Mutex<Vec<TrackerRecord>>);

impl TrackerBoard {
    fn new(urls: &[crate::net::tracker::TrackerId]) -> Self {
        TrackerBoard(Mutex::new(
            urls.iter()
                .map(|id| TrackerRecord {
                    url: id.as_str().to_owned(),
                    state: TrackerState::Connecting,
                    last_error: None,
                    peers: HashSet::new(),
                })
                .collect(),
        ))
    }

    fn update(&self, ev: &TrackerEvent) {
        let (tracker, apply): (_, &dyn Fn(&mut TrackerRecord)) = match ev {
            TrackerEvent::TrackerState { tracker, connected } => (tracker, &|r| {
                r.state = if *connected {
                    TrackerState::Connected
                } else {
                    TrackerState::Disconnected
                }
            }),
            TrackerEvent::Warning {
                tracker, message, ..
            } => (tracker, &|r| {
                r.last_error = Some(message.clone());
                // Never connected and already failing (refused, timed out): retrying.
                if r.state == TrackerState::Connecting {
                    r.state = TrackerState::Disconnected;
                }
            }),
            TrackerEvent::Offer {
                tracker, peer_id, ..
            }
            | TrackerEvent::Answer {
                tracker, peer_id, ..
            } => (tracker, &|r| {
                if r.peers.len() < MAX_PEERS_SEEN {
                    r.peers.insert(*peer_id);
                }
            }),
            _ => return,
        };
        let mut board = lock(&self.0);
        if let Some(r) = board.iter_mut().find(|r| r.url == tracker.as_str()) {
            apply(r);
        }
    }

    fn snapshot(&self) -> Vec<TrackerInfo> {
        lock(&self.0)
            .iter()
            .map(|r| TrackerInfo {
                url: r.url.clone(),
                state: r.state,
                last_error: r.last_error.clone(),
                peers_seen: r.peers.len(),
            })
            .collect()
    }

    fn connected(&self) -> usize {
        lock(&self.0)
            .iter()
            .filter(|r| r.state == TrackerState::Connected)
            .count()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Shared by every swarm of one session.
pub(crate) struct HubShared {
    pub config: P2pConfig,
    pub origin: Arc<Origin>,
    pub tracker: TrackerHandle,
    pub rtc: Arc<dyn RtcFactory>,
    pub trackers: TrackerBoard,
    pub observer: Option<P2pObserver>,
    pub validator: Option<SegmentValidator>,
    /// HLS or DASH: 0.6 names their segments differently.
    pub protocol: Protocol,
    /// `segment-hashes-url`'s table: every swarm checks segments against it.
    pub hashes: Option<Arc<HashBook>>,
    /// The one peer id of all the swarms of a family that uses one (0.6).
    pub peer_id: Option<PeerId>,
}

impl HubShared {
    pub fn notify(&self, ev: P2pEvent) {
        if let Some(o) = &self.observer {
            o(ev);
        }
    }
}

pub struct P2pHub {
    shared: Arc<HubShared>,
    swarms: Arc<Mutex<HashMap<InfoHash, SwarmHandle>>>,
    router: tokio::task::JoinHandle<()>,
    /// Release timers: stopped with the hub, not left sleeping.
    timers: task::Group,
}

impl P2pHub {
    pub(crate) fn start(
        config: P2pConfig,
        origin: Arc<Origin>,
        observer: Option<P2pObserver>,
        validator: Option<SegmentValidator>,
        hashes: Option<Arc<HashBook>>,
        protocol: Protocol,
    ) -> Result<Arc<Self>, String> {
        let _guard = RUNTIME.enter();
        let tracker_config = TrackerConfig {
            announce_urls: config.trackers.clone(),
            origin: config.tracker_origin.clone(),
            // One socket per tracker carries every family's swarms.
            offers_per_announce: std::iter::once(config.compat)
                .chain(config.bridge.iter().copied())
                .map(Compat::offers_per_announce)
                .max()
                .unwrap_or(5),
            ..TrackerConfig::default()
        };
        let (tracker, events) =
            TrackerClient::spawn(tracker_config).map_err(|e| format!("{e:?}"))?;
        let rtc = RtcConfig {
            ice_servers: config.ice_servers.clone(),
            udp_bind: rtc_bind_addresses(),
            ..RtcConfig::default()
        };
        let board = TrackerBoard::new(&tracker.trackers());
        let shared = Arc::new(HubShared {
            origin,
            tracker,
            rtc: Arc::new(WebRtcFactory::new(rtc)),
            trackers: board,
            observer,
            validator,
            hashes,
            protocol,
            peer_id: std::iter::once(config.compat)
                .chain(config.bridge.iter().copied())
                .find(|c| !c.peer_id_per_swarm())
                .map(|c| PeerId::random_with_prefix(c.pml_peer_id_prefix())),
            config,
        });
        let swarms: Arc<Mutex<HashMap<InfoHash, SwarmHandle>>> = Default::default();
        let router =
            task::spawn_logged("p2p router", route(events, swarms.clone(), shared.clone()));
        Ok(Arc::new(P2pHub {
            shared,
            swarms,
            router,
            timers: task::Group::default(),
        }))
    }

    /// The swarm for a stream, created (and joined) on first use.
    pub fn swarm(&self, key: &SwarmKey, playhead: Arc<OutputQueue>) -> Option<SwarmHandle> {
        let hash = InfoHash::from_binary_str(&key.info_hash)?;
        let mut swarms = lock(&self.swarms);
        if let Some(h) = swarms.get(&hash) {
            h.keep();
            return Some(h.clone());
        }
        let family = match key.compat {
            Compat::Pml06 => WireFamily::V06 {
                stream_swarm_id: key.stream_swarm_id.as_str().into(),
                ids: match self.shared.protocol {
                    Protocol::Hls => Ids06::Sequence,
                    Protocol::Dash => Ids06::Millis,
                },
            },
            Compat::Pml22 | Compat::Pml23 => WireFamily::V2,
        };
        // A bridged family's swarm serves what the played family's swarm got.
        let mirror = key.compat != self.shared.config.compat;
        let handle = swarm::spawn(
            self.shared.clone(),
            hash,
            key.stream_type,
            key.compat,
            family,
            mirror,
            playhead,
        );
        swarms.insert(hash, handle.clone());
        Some(handle)
    }

    /// The stream moved away from this swarm: stop it after the inactivity timeout unless it
    /// is used again.
    pub fn release(&self, handle: &SwarmHandle) {
        let swarms = self.swarms.clone();
        let handle = handle.clone();
        let timeout = self.shared.config.inactive_swarm_timeout;
        let epoch = handle.release();
        self.timers.spawn_logged("p2p release", async move {
            tokio::time::sleep(timeout).await;
            if handle.released_since(epoch) {
                lock(&swarms).remove(&handle.info_hash);
                handle.shutdown();
            }
        });
    }

    pub fn swarms(&self) -> Vec<SwarmInfo> {
        lock(&self.swarms)
            .values()
            .map(|h| SwarmInfo {
                info_hash: h.info_hash_str.clone(),
                stream_type: h.stream_type,
                peers: h.peer_count(),
                store_bytes: h.store_bytes(),
                upload_bytes: h.totals().upload_bytes.load(Relaxed),
                http_segments: h.totals().http_segments.load(Relaxed),
                served_segments: h.totals().served_segments.load(Relaxed),
            })
            .collect()
    }

    pub fn peers(&self) -> usize {
        lock(&self.swarms).values().map(|h| h.peer_count()).sum()
    }

    pub fn trackers_connected(&self) -> usize {
        self.shared.trackers.connected()
    }

    /// Each tracker's state, last error and peers seen, in `trackers` order.
    pub fn trackers(&self) -> Vec<TrackerInfo> {
        self.shared.trackers.snapshot()
    }

    pub fn shutdown(&self) {
        for (_, h) in lock(&self.swarms).drain() {
            h.shutdown();
        }
        self.shared.tracker.shutdown();
        self.router.abort();
        self.timers.abort_all();
    }
}

impl Drop for P2pHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// webrtc-rs expands a wildcard bind to non-loopback interfaces only; bind loopback as well
/// so peers on this host (and loopback-only namespaces) can connect.
fn rtc_bind_addresses() -> Vec<std::net::SocketAddr> {
    vec![
        std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    ]
}

/// Hands tracker events to the swarm they concern.
async fn route(
    mut events: mpsc::Receiver<TrackerEvent>,
    swarms: Arc<Mutex<HashMap<InfoHash, SwarmHandle>>>,
    shared: Arc<HubShared>,
) {
    while let Some(ev) = events.recv().await {
        shared.trackers.update(&ev);
        let hash = match &ev {
            TrackerEvent::TrackerState { .. } => {
                // Swarms stop waiting for peers the tracker might have promised.
                for s in lock(&swarms).values() {
                    s.tracker_event(ev.clone());
                }
                continue;
            }
            TrackerEvent::Warning {
                info_hash: None, ..
            } => continue,
            TrackerEvent::Warning {
                info_hash: Some(h), ..
            }
            | TrackerEvent::NeedOffers { info_hash: h, .. }
            | TrackerEvent::Offer { info_hash: h, .. }
            | TrackerEvent::Answer { info_hash: h, .. }
            | TrackerEvent::OfferExpired { info_hash: h, .. }
            | TrackerEvent::AnswerNotSent { info_hash: h, .. }
            | TrackerEvent::Announced { info_hash: h, .. } => *h,
        };
        let target = lock(&swarms).get(&hash).cloned();
        match target {
            Some(s) => s.tracker_event(ev),
            // Still owes the tracker an announce, or it stops listing us.
            None => {
                if let TrackerEvent::NeedOffers {
                    tracker, info_hash, ..
                } = ev
                {
                    shared.tracker.announce(&tracker, info_hash, Vec::new());
                }
            }
        }
    }
}
