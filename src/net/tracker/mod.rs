//! WebTorrent WebSocket-tracker client, speaking the protocol exactly as P2P Media Loader's
//! peers (the `bittorrent-tracker@11` client) do, so the tracker sees one more browser.
//!
//! # Model
//!
//! * One task and **one WebSocket per tracker URL**, shared by every swarm we join and
//!   demultiplexed by `info_hash` (as the JS client's socket pool does). The socket is opened
//!   when the first swarm joins and closed when the last one leaves.
//! * The engine owns WebRTC: at every (re)announce time — right after joining/connecting, then
//!   every tracker `interval` (30 s until the tracker says otherwise) — the client emits
//!   [`TrackerEvent::NeedOffers`] for that tracker and swarm; the engine creates that many
//!   non-trickle offers and calls [`TrackerHandle::announce`]. Each tracker gets its own
//!   offers, like the JS client.
//! * The first announce of a swarm on a tracker carries `event: "started"`; every later one,
//!   including those after a reconnect, carries no `event` (what `bittorrent-tracker` does:
//!   `_onSocketConnect` re-announces with `_defaultAnnounceOpts()`, which has no event).
//! * Offers we sent expire after `offer_timeout` (50 s, the JS `OFFER_TIMEOUT`):
//!   [`TrackerEvent::OfferExpired`] tells the engine to close that pending PeerConnection, and a
//!   late answer for it is dropped.
//! * Answers are only sent when they cannot get the socket closed by a strict tracker
//!   (wt-tracker closes it on an answer to an unknown `to_peer_id`): the offer must have come
//!   in on the *current* connection, less than `offer_timeout` ago, for a swarm still joined,
//!   and be answered once. Otherwise [`TrackerEvent::AnswerNotSent`] comes back.
//! * Leaving a swarm sends `event: "stopped"` (configurable) so trackers stop relaying offers
//!   for it; both bittorrent-tracker and wt-tracker accept it.
//! * After a reconnect each started swarm first gets a `stopped` (see
//!   [`TrackerConfig::reset_on_reconnect`]) and is then re-announced without `event`.
//! * Reconnects back off as `rand(0..jitter) + min(base·2^n, max)` (the JS client uses
//!   10 s base, 5 min jitter, 1 h cap; ours defaults to a faster schedule). `n` resets only
//!   after the tracker answered an announce, so a tracker that accepts and then drops us is
//!   not hammered.
//!
//! # Engine contract
//!
//! * Answer every `NeedOffers` with one `announce` for that tracker and swarm — with an empty
//!   offer list if no offers can (or should) be made: the announce is also what keeps us
//!   listed in the swarm.
//! * Close the PeerConnection of every `OfferExpired` / `AnswerNotSent` that has not
//!   connected yet.
//! * Keep the event receiver drained: when it is full the tracker tasks stop reading their
//!   sockets; when it is dropped they leave their swarms and stop.
//!
//! # Use
//!
//! ```no_run
//! # use gstp2pmedia::net::tracker::*;
//! # async fn demo() {
//! let (tracker, mut events) = TrackerClient::spawn(TrackerConfig {
//!     announce_urls: vec!["wss://tracker.novage.com.ua".into()],
//!     origin: Some("https://example.com".into()),
//!     ..TrackerConfig::default()
//! })
//! .unwrap();
//! let info_hash = InfoHash::from_bytes(b"J3KjvNhSbLlKe91dpkWw").unwrap();
//! tracker.join(info_hash, PeerId::random_with_prefix("-PR0100-"));
//! while let Some(ev) = events.recv().await {
//!     match ev {
//!         TrackerEvent::NeedOffers { tracker: t, info_hash, count } => {
//!             let offers = (0..count).map(|_| (OfferId::random(), String::from("v=0..."))).collect();
//!             tracker.announce(&t, info_hash, offers);
//!         }
//!         TrackerEvent::Offer { tracker: t, info_hash, peer_id, offer_id, sdp: _ } => {
//!             tracker.answer(&t, info_hash, peer_id, offer_id, String::from("v=0..."));
//!         }
//!         _ => {}
//!     }
//! }
//! # }
//! ```

mod conn;
pub mod proto;
#[cfg(test)]
mod tests_fake;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use url::Url;

pub use proto::{InfoHash, OfferId, PeerId};

/// A tracker, named by its announce URL as configured.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackerId(Arc<str>);

impl TrackerId {
    /// A tracker id for an announce URL (the client makes its own; this is for tests).
    pub fn new(url: &str) -> Self {
        TrackerId(url.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrackerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TrackerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackerId({})", self.0)
    }
}

/// Reconnect delay after the n-th consecutive failure: `rand(0..jitter) + min(base·2^n, max)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub base: Duration,
    pub max: Duration,
    pub jitter: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        // Much faster than the JS client's 10 s..1 h + 0..5 min: a video element that lost its
        // tracker should find peers again within seconds, yet still back off from a dead one.
        ReconnectPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(5 * 60),
            jitter: Duration::from_secs(3),
        }
    }
}

impl ReconnectPolicy {
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX));
        let jitter_ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        let jitter = if jitter_ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::random_range(0..jitter_ms))
        };
        exp.min(self.max) + jitter
    }
}

#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// `ws://` or `wss://` announce URLs; all are used in parallel.
    pub announce_urls: Vec<String>,
    /// `Origin` header of the WebSocket handshake (some trackers reject unknown/empty origins).
    pub origin: Option<String>,
    /// `User-Agent` header of the handshake.
    pub user_agent: Option<String>,
    /// Offers asked for per announce (= `numwant`). PML 2.x uses 5.
    pub offers_per_announce: usize,
    /// Our unanswered offers are dropped after this (JS `OFFER_TIMEOUT` = 50 s).
    pub offer_timeout: Duration,
    /// Announce interval until the tracker sends one (JS `DEFAULT_ANNOUNCE_INTERVAL` = 30 s).
    pub default_interval: Duration,
    /// Tracker-provided intervals are clamped into this range.
    pub min_interval: Duration,
    pub max_interval: Duration,
    pub reconnect: ReconnectPolicy,
    /// TCP + TLS + WebSocket handshake limit.
    pub connect_timeout: Duration,
    /// No message at all this long after an announce → the socket is considered dead.
    pub response_timeout: Duration,
    /// Largest message we send (wt-tracker's `maxPayloadLength` is 64 KiB): offers are dropped
    /// from an announce until it fits.
    pub max_message_size: usize,
    /// Send `event: "stopped"` when leaving a swarm.
    pub send_stopped_on_leave: bool,
    /// After a reconnect, send `event: "stopped"` for every swarm already started before
    /// re-announcing it. Works around bittorrent-tracker's server, which on a socket close
    /// only removes the socket's *first* peer id: our other swarms' entries stay bound to the
    /// dead socket (no offers or answers reach us there) and a plain re-announce does not
    /// rebind them. Harmless for wt-tracker, which drops all of a socket's peers itself.
    pub reset_on_reconnect: bool,
    /// Capacity of the event channel (backpressure on tracker reads when the engine lags).
    pub event_capacity: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            announce_urls: Vec::new(),
            origin: None,
            user_agent: None,
            offers_per_announce: 5,
            offer_timeout: Duration::from_secs(50),
            default_interval: Duration::from_secs(30),
            min_interval: Duration::from_secs(5),
            max_interval: Duration::from_secs(3600),
            reconnect: ReconnectPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            max_message_size: 64 * 1024,
            send_stopped_on_leave: true,
            reset_on_reconnect: true,
            event_capacity: 256,
        }
    }
}

impl TrackerConfig {
    /// Durations are added to `Instant`s: keep them far from overflow (a day is plenty).
    fn sanitized(mut self) -> Self {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        for d in [
            &mut self.offer_timeout,
            &mut self.default_interval,
            &mut self.min_interval,
            &mut self.max_interval,
            &mut self.connect_timeout,
            &mut self.response_timeout,
            &mut self.reconnect.base,
            &mut self.reconnect.max,
            &mut self.reconnect.jitter,
        ] {
            *d = (*d).min(DAY);
        }
        self
    }
}

/// What the client tells the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerEvent {
    /// The WebSocket to `tracker` opened (`true`) or closed (`false`).
    TrackerState { tracker: TrackerId, connected: bool },
    /// Time to (re)announce `info_hash` on `tracker`: create `count` offers and call
    /// [`TrackerHandle::announce`] for this tracker.
    NeedOffers {
        tracker: TrackerId,
        info_hash: InfoHash,
        count: usize,
    },
    /// A remote peer's offer; answer with [`TrackerHandle::answer`] on the same tracker.
    Offer {
        tracker: TrackerId,
        info_hash: InfoHash,
        peer_id: PeerId,
        offer_id: OfferId,
        sdp: String,
    },
    /// The answer to one of our offers (the offer id is the one we sent, byte for byte).
    Answer {
        tracker: TrackerId,
        info_hash: InfoHash,
        peer_id: PeerId,
        offer_id: OfferId,
        sdp: String,
    },
    /// One of our offers will get no answer (timed out, not sent, or its swarm was left):
    /// close its PeerConnection.
    OfferExpired {
        tracker: TrackerId,
        info_hash: InfoHash,
        offer_id: OfferId,
    },
    /// An answer was not sent because the offering peer may be gone from the tracker:
    /// close that PeerConnection.
    AnswerNotSent {
        tracker: TrackerId,
        info_hash: InfoHash,
        peer_id: PeerId,
        offer_id: OfferId,
    },
    /// Announce response.
    Announced {
        tracker: TrackerId,
        info_hash: InfoHash,
        interval: Option<Duration>,
        complete: Option<u64>,
        incomplete: Option<u64>,
    },
    /// `failure reason` / `warning message` from the tracker, or a connection problem.
    Warning {
        tracker: TrackerId,
        info_hash: Option<InfoHash>,
        message: String,
    },
}

#[derive(Debug)]
enum Command {
    Join(InfoHash, PeerId),
    Leave(InfoHash),
    Announce(InfoHash, Vec<(OfferId, String)>),
    AnnounceNow(InfoHash),
    Answer {
        info_hash: InfoHash,
        to_peer_id: PeerId,
        offer_id: OfferId,
        sdp: String,
    },
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerConfigError {
    BadUrl(String),
    Tls(String),
}

impl fmt::Display for TrackerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerConfigError::BadUrl(u) => write!(f, "not a ws:// or wss:// tracker URL: {u}"),
            TrackerConfigError::Tls(e) => write!(f, "cannot set up TLS for trackers: {e}"),
        }
    }
}

impl std::error::Error for TrackerConfigError {}

/// Spawns the per-tracker tasks.
pub struct TrackerClient;

impl TrackerClient {
    /// Start on the current tokio runtime (panics outside one, like `tokio::spawn`).
    pub fn spawn(
        config: TrackerConfig,
    ) -> Result<(TrackerHandle, mpsc::Receiver<TrackerEvent>), TrackerConfigError> {
        Self::spawn_in(config, &tokio::runtime::Handle::current())
    }

    pub fn spawn_in(
        config: TrackerConfig,
        rt: &tokio::runtime::Handle,
    ) -> Result<(TrackerHandle, mpsc::Receiver<TrackerEvent>), TrackerConfigError> {
        let mut urls = Vec::new();
        for u in &config.announce_urls {
            let parsed = Url::parse(u).map_err(|_| TrackerConfigError::BadUrl(u.clone()))?;
            if !matches!(parsed.scheme(), "ws" | "wss") || parsed.host_str().is_none() {
                return Err(TrackerConfigError::BadUrl(u.clone()));
            }
            urls.push((u.clone(), parsed.scheme() == "wss"));
        }
        let tls = if urls.iter().any(|(_, tls)| *tls) {
            Some(conn::tls_config().map_err(TrackerConfigError::Tls)?)
        } else {
            None
        };
        let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
        let config = Arc::new(config.sanitized());
        let mut trackers = Vec::new();
        for (url, _) in urls {
            // Listing the same URL twice would open two sockets with the same peer ids.
            if trackers
                .iter()
                .any(|(id, _): &(TrackerId, _)| id.as_str() == url)
            {
                continue;
            }
            let id = TrackerId(url.into());
            let (tx, rx) = mpsc::unbounded_channel();
            rt.spawn(conn::run(
                id.clone(),
                config.clone(),
                tls.clone(),
                rx,
                ev_tx.clone(),
            ));
            trackers.push((id, tx));
        }
        Ok((
            TrackerHandle {
                trackers: trackers.into(),
            },
            ev_rx,
        ))
    }
}

/// Cheap to clone; all methods are non-blocking (they queue a command). When the last clone
/// is dropped the tasks leave their swarms and close their sockets.
#[derive(Clone)]
pub struct TrackerHandle {
    trackers: Arc<[(TrackerId, mpsc::UnboundedSender<Command>)]>,
}

impl fmt::Debug for TrackerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.trackers.iter().map(|(id, _)| id))
            .finish()
    }
}

impl TrackerHandle {
    pub fn trackers(&self) -> Vec<TrackerId> {
        self.trackers.iter().map(|(id, _)| id.clone()).collect()
    }

    fn to_all(&self, mk: impl Fn() -> Command) {
        for (_, tx) in self.trackers.iter() {
            let _ = tx.send(mk());
        }
    }

    fn to_one(&self, tracker: &TrackerId, cmd: Command) -> bool {
        match self.trackers.iter().find(|(id, _)| id == tracker) {
            Some((_, tx)) => tx.send(cmd).is_ok(),
            None => false,
        }
    }

    /// Join a swarm on every tracker with our peer id for it (use one peer id per swarm:
    /// wt-tracker keys peers globally by id). Joining again with another peer id re-joins.
    pub fn join(&self, info_hash: InfoHash, peer_id: PeerId) {
        self.to_all(|| Command::Join(info_hash, peer_id));
    }

    /// Leave a swarm on every tracker; its pending offers come back as `OfferExpired`.
    pub fn leave(&self, info_hash: InfoHash) {
        self.to_all(|| Command::Leave(info_hash));
    }

    /// Announce with these offers on `tracker` (usually in reply to `NeedOffers`). Offers that
    /// cannot be sent (unknown tracker excepted) come back as `OfferExpired`. Returns false if
    /// the tracker is unknown or stopped.
    pub fn announce(
        &self,
        tracker: &TrackerId,
        info_hash: InfoHash,
        offers: Vec<(OfferId, String)>,
    ) -> bool {
        self.to_one(tracker, Command::Announce(info_hash, offers))
    }

    /// Ask for `NeedOffers` on every connected tracker now (e.g. the engine wants more peers).
    /// The regular interval is not reset.
    pub fn announce_now(&self, info_hash: InfoHash) {
        self.to_all(|| Command::AnnounceNow(info_hash));
    }

    /// Answer a relayed offer received from `tracker`. `to_peer_id`/`offer_id` are the ones of
    /// the `Offer` event. May come back as `AnswerNotSent`.
    pub fn answer(
        &self,
        tracker: &TrackerId,
        info_hash: InfoHash,
        to_peer_id: PeerId,
        offer_id: OfferId,
        sdp: String,
    ) -> bool {
        self.to_one(
            tracker,
            Command::Answer {
                info_hash,
                to_peer_id,
                offer_id,
                sdp,
            },
        )
    }

    /// Leave all swarms and close all sockets (also what dropping the last handle does).
    pub fn shutdown(&self) {
        self.to_all(|| Command::Shutdown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = ReconnectPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            jitter: Duration::ZERO,
        };
        assert_eq!(p.delay(0), Duration::from_secs(2));
        assert_eq!(p.delay(1), Duration::from_secs(4));
        assert_eq!(p.delay(4), Duration::from_secs(32));
        assert_eq!(p.delay(5), Duration::from_secs(60));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(60));
        let j = ReconnectPolicy {
            jitter: Duration::from_secs(3),
            ..p
        };
        for n in 0..10 {
            let d = j.delay(n);
            assert!(d >= p.delay(n) && d < p.delay(n) + Duration::from_secs(3));
        }
    }

    #[test]
    fn tls_config_builds_on_ring() {
        let cfg = conn::tls_config().expect("platform verifier with ring");
        assert!(!cfg.crypto_provider().cipher_suites.is_empty());
    }

    #[tokio::test]
    async fn rejects_non_websocket_urls() {
        for bad in ["http://x/announce", "udp://x:80", "not a url", "ws://"] {
            let cfg = TrackerConfig {
                announce_urls: vec![bad.into()],
                ..TrackerConfig::default()
            };
            assert!(TrackerClient::spawn(cfg).is_err(), "{bad}");
        }
        let cfg = TrackerConfig {
            announce_urls: vec!["ws://127.0.0.1:1".into(), "ws://127.0.0.1:1".into()],
            ..TrackerConfig::default()
        };
        let (h, _rx) = TrackerClient::spawn(cfg).unwrap();
        assert_eq!(h.trackers().len(), 1);
    }
}
