//! One task per tracker URL: owns the WebSocket, the swarms joined on it, our pending offers
//! and the offers we may still answer. Handlers are synchronous and queue outgoing messages
//! and events; the loop sends them after each wake-up.

use std::collections::HashMap;
use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::proto::{self, Inbound, OutgoingOffer};
use super::{Command, InfoHash, OfferId, PeerId, TrackerConfig, TrackerEvent, TrackerId};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "p2ptracker",
        gst::DebugColorFlags::empty(),
        Some("p2pmedia WebTorrent tracker client"),
    )
});

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type ConnectFuture = Pin<Box<dyn Future<Output = Result<Box<Ws>, String>> + Send>>;

/// Largest tracker message (and frame) we read. A relayed offer or answer carries one
/// data-channel SDP (1–3 KB with candidates) and wt-tracker caps whole announces at 64 KiB;
/// anything larger is abuse, and tungstenite drops it before buffering it whole.
const MAX_INCOMING: usize = 64 * 1024;
/// Offers remembered for answering; more are dropped (a tracker flooding us). The engine
/// answers at most `max-peers` of them anyway.
const MAX_RECEIVED: usize = 256;
/// Relayed offers passed on per second (token bucket), with this burst: a swarm of real
/// peers relays a few per announce; a flood from thousands of peer ids is dropped here,
/// before it costs the engine a PeerConnection each.
const OFFER_RATE: f64 = 10.0;
const OFFER_BURST: f64 = 40.0;
/// A tracker-chosen `tracker id` longer than this is ignored: it is echoed in every announce.
const MAX_TRACKER_ID: usize = 128;
/// Tracker-provided text is clipped to this before logging or passing it on.
const MAX_LOGGED: usize = 200;
/// Distinct warnings remembered to log each at INFO once (repeats go to DEBUG).
const MAX_WARNINGS_SEEN: usize = 64;
/// A connection that lived this long after an announce response resets the backoff: a
/// tracker that answers and then drops us at once keeps backing off.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Closing handshake / farewell messages must not hold up a shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// rustls with the ring provider (the plugin's only crypto backend) and the platform's roots,
/// the same verifier reqwest uses for HTTPS.
pub(super) fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| e.to_string())?;
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

enum Conn {
    /// No swarm joined: no socket.
    Idle,
    Connecting(ConnectFuture),
    Connected(Box<Ws>),
    Backoff(Instant),
}

enum Wake {
    Cmd(Option<Command>),
    Connect(Result<Box<Ws>, String>),
    Ws(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Timer,
}

struct Swarm {
    peer_id: PeerId,
    /// `event: "started"` went out on this tracker (ever, not per socket — the JS client does
    /// not repeat it after a reconnect).
    started: bool,
    interval: Duration,
    next_announce: Instant,
}

struct PendingOffer {
    info_hash: InfoHash,
    expires: Instant,
}

/// A relayed offer we may answer while the offering peer is surely still on the tracker.
struct ReceivedOffer {
    generation: u64,
    at: Instant,
}

struct Task {
    id: TrackerId,
    cfg: Arc<TrackerConfig>,
    tls: Option<Arc<rustls::ClientConfig>>,
    events: mpsc::Sender<TrackerEvent>,
    events_closed: bool,
    swarms: HashMap<InfoHash, Swarm>,
    pending: HashMap<OfferId, PendingOffer>,
    received: HashMap<(InfoHash, PeerId, OfferId), ReceivedOffer>,
    /// `tracker id` from the tracker, echoed as `trackerid` like the JS client.
    tracker_id: Option<String>,
    /// Consecutive connection failures since the last stable connection.
    failures: u32,
    /// When the current socket opened, and whether the tracker answered an announce on it.
    connected_at: Option<Instant>,
    answered: bool,
    /// Token bucket for relayed offers: (tokens, last refill).
    offer_budget: (f64, Instant),
    offers_dropped: u64,
    /// Hashes of warnings already logged at INFO.
    warnings_seen: std::collections::HashSet<u64>,
    /// Bumped on every connect and disconnect; ties received offers to their socket.
    generation: u64,
    online: bool,
    /// An announce went out and nothing came back yet.
    awaiting_since: Option<Instant>,
    outbox: Vec<String>,
    evq: Vec<TrackerEvent>,
}

pub(super) async fn run(
    id: TrackerId,
    cfg: Arc<TrackerConfig>,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<TrackerEvent>,
) {
    let mut t = Task {
        id,
        cfg,
        tls,
        events,
        events_closed: false,
        swarms: HashMap::new(),
        pending: HashMap::new(),
        received: HashMap::new(),
        tracker_id: None,
        failures: 0,
        connected_at: None,
        answered: false,
        offer_budget: (OFFER_BURST, Instant::now()),
        offers_dropped: 0,
        warnings_seen: Default::default(),
        generation: 0,
        online: false,
        awaiting_since: None,
        outbox: Vec::new(),
        evq: Vec::new(),
    };
    let mut conn = Conn::Idle;
    loop {
        let deadline = t.next_deadline(&conn);
        let io = async {
            match &mut conn {
                Conn::Connecting(f) => Wake::Connect(f.await),
                Conn::Connected(ws) => Wake::Ws(ws.next().await),
                Conn::Idle | Conn::Backoff(_) => pending().await,
            }
        };
        let wake = tokio::select! {
            c = cmds.recv() => Wake::Cmd(c),
            w = io => w,
            _ = sleep_until(deadline) => Wake::Timer,
            // The engine dropped its receiver: same as dropping every handle.
            _ = t.events.closed() => Wake::Cmd(None),
        };

        match wake {
            Wake::Cmd(None) | Wake::Cmd(Some(Command::Shutdown)) => {
                t.shutdown(&mut conn).await;
                return;
            }
            Wake::Cmd(Some(c)) => t.on_command(c),
            Wake::Connect(Ok(ws)) => {
                conn = Conn::Connected(ws);
                t.on_connected();
            }
            Wake::Connect(Err(e)) => t.fail(&mut conn, format!("cannot connect: {e}")),
            Wake::Ws(Some(Ok(msg))) => t.on_message(msg, &mut conn),
            Wake::Ws(Some(Err(e))) => t.fail(&mut conn, format!("socket error: {e}")),
            Wake::Ws(None) => t.fail(&mut conn, "socket closed".into()),
            Wake::Timer => t.on_timer(&mut conn),
        }

        // Outbox first: a `stopped` must go out before the socket closes below.
        t.flush_outbox(&mut conn).await;
        // The socket exists exactly while some swarm is joined.
        if t.swarms.is_empty() {
            if !matches!(conn, Conn::Idle) {
                t.close(&mut conn).await;
            }
        } else if matches!(conn, Conn::Idle) {
            conn = Conn::Connecting(t.connect());
        }
        t.flush_events().await;
        if t.events_closed {
            // Nobody listens any more: leave politely and stop.
            t.shutdown(&mut conn).await;
            return;
        }
    }
}

impl Task {
    fn connect(&self) -> ConnectFuture {
        let url = self.id.as_str().to_owned();
        let origin = self.cfg.origin.clone();
        let user_agent = self.cfg.user_agent.clone();
        let connect_timeout = self.cfg.connect_timeout;
        let connector = match &self.tls {
            Some(tls) => Connector::Rustls(tls.clone()),
            None => Connector::Plain,
        };
        gst::debug!(CAT, "{url}: connecting");
        Box::pin(async move {
            let mut req = url
                .as_str()
                .into_client_request()
                .map_err(|e| e.to_string())?;
            for (name, value) in [("origin", origin), ("user-agent", user_agent)] {
                if let Some(v) = value {
                    let v = HeaderValue::from_str(&v).map_err(|e| format!("bad {name}: {e}"))?;
                    req.headers_mut().insert(name, v);
                }
            }
            let ws_cfg = WebSocketConfig::default()
                .max_message_size(Some(MAX_INCOMING))
                .max_frame_size(Some(MAX_INCOMING));
            let fut = tokio_tungstenite::connect_async_tls_with_config(
                req,
                Some(ws_cfg),
                true,
                Some(connector),
            );
            match timeout(connect_timeout, fut).await {
                Err(_) => Err("timed out".into()),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok((ws, _response))) => Ok(Box::new(ws)),
            }
        })
    }

    fn next_deadline(&self, conn: &Conn) -> Instant {
        let now = Instant::now();
        let mut d = now + Duration::from_secs(3600);
        if let Conn::Backoff(until) = conn {
            d = d.min(*until);
        }
        for p in self.pending.values() {
            d = d.min(p.expires);
        }
        if let Some(oldest) = self.received.values().map(|r| r.at).min() {
            d = d.min(oldest + self.cfg.offer_timeout);
        }
        if self.online {
            for s in self.swarms.values() {
                d = d.min(s.next_announce);
            }
            if let Some(since) = self.awaiting_since {
                d = d.min(since + self.cfg.response_timeout);
            }
        }
        d
    }

    fn event(&mut self, ev: TrackerEvent) {
        self.evq.push(ev);
    }

    /// `message` may be tracker-provided: clipped, and logged at INFO only the first time.
    fn warn(&mut self, info_hash: Option<InfoHash>, message: String) {
        let message = clip(&message, MAX_LOGGED);
        let key = {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(&message)
        };
        if self.warnings_seen.len() >= MAX_WARNINGS_SEEN {
            self.warnings_seen.clear();
        }
        if self.warnings_seen.insert(key) {
            gst::info!(CAT, "{}: {message}", self.id);
        } else {
            gst::debug!(CAT, "{}: again: {message}", self.id);
        }
        self.event(TrackerEvent::Warning {
            tracker: self.id.clone(),
            info_hash,
            message,
        });
    }

    fn offer_expired(&mut self, info_hash: InfoHash, offer_id: OfferId) {
        self.event(TrackerEvent::OfferExpired {
            tracker: self.id.clone(),
            info_hash,
            offer_id,
        });
    }

    async fn flush_events(&mut self) {
        for ev in std::mem::take(&mut self.evq) {
            if self.events_closed {
                break;
            }
            if self.events.send(ev).await.is_err() {
                self.events_closed = true;
            }
        }
    }

    async fn flush_outbox(&mut self, conn: &mut Conn) {
        let msgs = std::mem::take(&mut self.outbox);
        let Conn::Connected(ws) = conn else {
            return;
        };
        let mut error = None;
        for m in msgs {
            gst::trace!(CAT, "{} <- {m}", self.id);
            match timeout(self.cfg.connect_timeout, ws.send(Message::text(m))).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    error = Some(format!("send failed: {e}"));
                    break;
                }
                Err(_) => {
                    error = Some("send timed out".to_owned());
                    break;
                }
            }
        }
        if let Some(e) = error {
            self.fail(conn, e);
        }
    }

    fn on_connected(&mut self) {
        gst::debug!(CAT, "{}: connected", self.id);
        self.online = true;
        self.generation += 1;
        self.awaiting_since = None;
        let now = Instant::now();
        self.connected_at = Some(now);
        self.answered = false;
        let mut swarms: Vec<(InfoHash, PeerId, bool)> = Vec::new();
        for (ih, s) in self.swarms.iter_mut() {
            s.next_announce = now + s.interval;
            swarms.push((*ih, s.peer_id, s.started));
        }
        swarms.sort();
        self.event(TrackerEvent::TrackerState {
            tracker: self.id.clone(),
            connected: true,
        });
        for (ih, peer_id, started) in swarms {
            if started && self.cfg.reset_on_reconnect {
                // Unbinds a stale entry from the dead socket; the re-announce adds us back.
                self.outbox.push(proto::encode_stopped(
                    &ih,
                    &peer_id,
                    self.cfg.offers_per_announce,
                    self.tracker_id.as_deref(),
                ));
            }
            // Re-announce right away (JS `_onSocketConnect`), not via the timer: a response
            // carrying `interval` would push the timer out before it fired.
            self.need_offers(ih);
        }
    }

    /// The socket broke or never opened: back off, then try again.
    fn fail(&mut self, conn: &mut Conn, reason: String) {
        if self.online {
            self.event(TrackerEvent::TrackerState {
                tracker: self.id.clone(),
                connected: false,
            });
        }
        self.online = false;
        // Offers that came in on the old socket must not be answered on a new one: the
        // tracker has forgotten those peers' sockets (wt-tracker would close ours).
        self.generation += 1;
        self.awaiting_since = None;
        self.outbox.clear();
        self.received.clear();
        // Answers to our offers would have come back through that socket: none will now.
        self.expire_all_pending();
        let now = Instant::now();
        if self.answered && self.connected_at.is_some_and(|t| now >= t + STABLE_AFTER) {
            self.failures = 0;
        }
        self.connected_at = None;
        self.answered = false;
        let delay = self.cfg.reconnect.delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        gst::debug!(CAT, "{}: {} consecutive failures", self.id, self.failures);
        // The delay stays out of the warning: a flapping tracker then logs one INFO line
        // per distinct reason, not one per attempt.
        gst::debug!(
            CAT,
            "{}: reconnecting in {:.1} s",
            self.id,
            delay.as_secs_f64()
        );
        self.warn(None, reason);
        *conn = Conn::Backoff(Instant::now() + delay);
    }

    /// Deliberate close (no swarm left).
    async fn close(&mut self, conn: &mut Conn) {
        if let Conn::Connected(ws) = conn {
            gst::debug!(CAT, "{}: no swarm left, closing", self.id);
            let _ = timeout(CLOSE_TIMEOUT, SinkExt::close(ws)).await;
            self.event(TrackerEvent::TrackerState {
                tracker: self.id.clone(),
                connected: false,
            });
        }
        *conn = Conn::Idle;
        self.online = false;
        self.generation += 1;
        self.failures = 0;
        self.connected_at = None;
        self.answered = false;
        self.awaiting_since = None;
        self.outbox.clear();
        self.received.clear();
        self.expire_all_pending();
    }

    fn expire_all_pending(&mut self) {
        let mut gone: Vec<(OfferId, InfoHash)> = self
            .pending
            .drain()
            .map(|(id, p)| (id, p.info_hash))
            .collect();
        gone.sort();
        if !gone.is_empty() {
            gst::debug!(CAT, "{}: {} pending offers expired", self.id, gone.len());
        }
        for (id, ih) in gone {
            self.offer_expired(ih, id);
        }
    }

    async fn shutdown(&mut self, conn: &mut Conn) {
        let hashes: Vec<InfoHash> = self.swarms.keys().copied().collect();
        for ih in hashes {
            self.leave(ih);
        }
        if let Conn::Connected(ws) = conn {
            for m in std::mem::take(&mut self.outbox) {
                if !matches!(
                    timeout(CLOSE_TIMEOUT, ws.send(Message::text(m))).await,
                    Ok(Ok(()))
                ) {
                    break;
                }
            }
            let _ = timeout(CLOSE_TIMEOUT, SinkExt::close(ws)).await;
        }
        *conn = Conn::Idle;
        // Best effort: the engine may already be gone.
        for ev in std::mem::take(&mut self.evq) {
            let _ = self.events.try_send(ev);
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Join(info_hash, peer_id) => {
                if let Some(s) = self.swarms.get(&info_hash) {
                    if s.peer_id == peer_id {
                        return;
                    }
                    self.leave(info_hash);
                }
                let interval = self.cfg.default_interval;
                self.swarms.insert(
                    info_hash,
                    Swarm {
                        peer_id,
                        started: false,
                        interval,
                        next_announce: now + interval,
                    },
                );
                // Offline, `on_connected` asks for the first offers.
                if self.online {
                    self.need_offers(info_hash);
                }
            }
            Command::Leave(info_hash) => self.leave(info_hash),
            Command::Announce(info_hash, offers) => self.announce(info_hash, offers, now),
            Command::AnnounceNow(info_hash) => {
                if self.online && self.swarms.contains_key(&info_hash) {
                    self.need_offers(info_hash);
                }
            }
            Command::Answer {
                info_hash,
                to_peer_id,
                offer_id,
                sdp,
            } => self.answer(info_hash, to_peer_id, offer_id, sdp, now),
            Command::Shutdown => {}
        }
    }

    fn need_offers(&mut self, info_hash: InfoHash) {
        self.event(TrackerEvent::NeedOffers {
            tracker: self.id.clone(),
            info_hash,
            count: self.cfg.offers_per_announce,
        });
    }

    fn leave(&mut self, info_hash: InfoHash) {
        let Some(s) = self.swarms.remove(&info_hash) else {
            return;
        };
        if self.online && s.started && self.cfg.send_stopped_on_leave {
            self.outbox.push(proto::encode_stopped(
                &info_hash,
                &s.peer_id,
                self.cfg.offers_per_announce,
                self.tracker_id.as_deref(),
            ));
        }
        let mut gone: Vec<OfferId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.info_hash == info_hash)
            .map(|(id, _)| *id)
            .collect();
        gone.sort();
        for id in gone {
            self.pending.remove(&id);
            self.offer_expired(info_hash, id);
        }
        self.received.retain(|k, _| k.0 != info_hash);
    }

    fn announce(&mut self, info_hash: InfoHash, offers: Vec<(OfferId, String)>, now: Instant) {
        let mut offers: Vec<OutgoingOffer> = offers
            .into_iter()
            .map(|(offer_id, sdp)| OutgoingOffer { offer_id, sdp })
            .collect();
        let peer_id = match self.swarms.get(&info_hash) {
            Some(s) if self.online => s.peer_id,
            _ => {
                for o in offers {
                    self.offer_expired(info_hash, o.offer_id);
                }
                return;
            }
        };
        let started = !self.swarms.get(&info_hash).is_some_and(|s| s.started);
        let mut dropped = offers.split_off(offers.len().min(self.cfg.offers_per_announce));
        let mut json;
        loop {
            json = proto::encode_announce(
                &info_hash,
                &peer_id,
                started,
                &offers,
                self.tracker_id.as_deref(),
            );
            // wt-tracker drops oversized messages (and the socket): shed offers instead.
            if json.len() <= self.cfg.max_message_size || offers.is_empty() {
                break;
            }
            dropped.extend(offers.pop());
        }
        for o in dropped {
            self.offer_expired(info_hash, o.offer_id);
        }
        for o in &offers {
            self.pending.insert(
                o.offer_id,
                PendingOffer {
                    info_hash,
                    expires: now + self.cfg.offer_timeout,
                },
            );
        }
        if let Some(s) = self.swarms.get_mut(&info_hash) {
            s.started = true;
        }
        gst::debug!(
            CAT,
            "{}: announce {info_hash} with {} offers (started: {started})",
            self.id,
            offers.len()
        );
        self.outbox.push(json);
        self.awaiting_since.get_or_insert(now);
    }

    fn answer(
        &mut self,
        info_hash: InfoHash,
        to_peer_id: PeerId,
        offer_id: OfferId,
        sdp: String,
        now: Instant,
    ) {
        let fresh = self
            .received
            .remove(&(info_hash, to_peer_id, offer_id))
            .is_some_and(|r| {
                r.generation == self.generation && now < r.at + self.cfg.offer_timeout
            });
        let json = match self.swarms.get(&info_hash) {
            Some(s) if fresh && self.online => Some(proto::encode_answer(
                &info_hash,
                &s.peer_id,
                &to_peer_id,
                &offer_id,
                &sdp,
                self.tracker_id.as_deref(),
            )),
            _ => None,
        };
        match json {
            Some(json) if json.len() <= self.cfg.max_message_size => self.outbox.push(json),
            _ => {
                gst::debug!(CAT, "{}: not answering {to_peer_id} ({offer_id})", self.id);
                self.event(TrackerEvent::AnswerNotSent {
                    tracker: self.id.clone(),
                    info_hash,
                    peer_id: to_peer_id,
                    offer_id,
                });
            }
        }
    }

    fn on_timer(&mut self, conn: &mut Conn) {
        let now = Instant::now();
        if let Conn::Backoff(until) = conn {
            if *until <= now {
                *conn = Conn::Connecting(self.connect());
            }
        }
        let mut expired: Vec<(OfferId, InfoHash)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.expires <= now)
            .map(|(id, p)| (*id, p.info_hash))
            .collect();
        expired.sort();
        for (id, ih) in expired {
            self.pending.remove(&id);
            self.offer_expired(ih, id);
        }
        let ttl = self.cfg.offer_timeout;
        self.received.retain(|_, r| now < r.at + ttl);

        if !self.online {
            return;
        }
        if self
            .awaiting_since
            .is_some_and(|since| now >= since + self.cfg.response_timeout)
        {
            self.fail(conn, "no response to announce".into());
            return;
        }
        let mut due: Vec<InfoHash> = Vec::new();
        for (ih, s) in self.swarms.iter_mut() {
            if s.next_announce <= now {
                // Like the JS setInterval: the next one is due an interval later whether or
                // not the engine delivers offers for this one.
                s.next_announce = now + s.interval;
                due.push(*ih);
            }
        }
        due.sort();
        for ih in due {
            self.need_offers(ih);
        }
    }

    fn on_message(&mut self, msg: Message, conn: &mut Conn) {
        let text = match &msg {
            Message::Text(t) => t.as_str(),
            // Trackers send text; accept UTF-8 binary frames too, as simple-websocket does.
            Message::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) => s,
                Err(_) => {
                    self.warn(None, "binary tracker message is not UTF-8".into());
                    return;
                }
            },
            Message::Close(frame) => {
                let why = frame
                    .as_ref()
                    .map(|f| format!(" ({} {})", f.code, f.reason))
                    .unwrap_or_default();
                self.fail(conn, format!("closed by tracker{why}"));
                return;
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return,
        };
        self.awaiting_since = None;
        gst::trace!(CAT, "{} -> {}", self.id, clip(text, MAX_LOGGED));
        match proto::decode(text) {
            Ok(m) => self.on_inbound(m),
            Err(e) => self.warn(None, e.to_string()),
        }
    }

    fn on_inbound(&mut self, m: Inbound) {
        let now = Instant::now();
        let Some(info_hash) = m.info_hash else {
            // bittorrent-tracker reports unparsable requests as a bare `failure reason`.
            if let Some(reason) = m.failure_reason.or(m.warning_message) {
                self.warn(None, reason);
            }
            return;
        };
        let (min_iv, max_iv) = (self.cfg.min_interval, self.cfg.max_interval);
        let Some(swarm) = self.swarms.get_mut(&info_hash) else {
            return; // a swarm we left, or not ours
        };
        if m.peer_id == Some(swarm.peer_id) {
            return; // our own offer/answer echoed back
        }
        if let Some(reason) = m.failure_reason {
            self.warn(Some(info_hash), reason);
            return;
        }
        if let Some(iv) = m.interval {
            swarm.interval = iv.clamp(min_iv, max_iv.max(min_iv));
            swarm.next_announce = now + swarm.interval;
        }
        if let Some(w) = m.warning_message.clone() {
            self.warn(Some(info_hash), w);
        }
        if let Some(tid) = m.tracker_id.clone() {
            if tid.len() <= MAX_TRACKER_ID {
                self.tracker_id = Some(tid);
            } else if self.tracker_id.is_none() {
                gst::debug!(CAT, "{}: ignoring a {}-byte tracker id", self.id, tid.len());
            }
        }
        if m.is_announce_response() {
            // The tracker accepted us; if the socket then lasts, the backoff starts afresh.
            self.answered = true;
            self.event(TrackerEvent::Announced {
                tracker: self.id.clone(),
                info_hash,
                interval: m.interval,
                complete: m.complete,
                incomplete: m.incomplete,
            });
        }
        if let (Some(offer), Some(peer_id)) = (m.offer, m.peer_id) {
            if !take_token(&mut self.offer_budget, now) {
                self.offers_dropped += 1;
                // Powers of two: a flood shows in the log without flooding it.
                if self.offers_dropped.is_power_of_two() {
                    gst::debug!(
                        CAT,
                        "{}: offer rate limit: {} relayed offers dropped so far",
                        self.id,
                        self.offers_dropped
                    );
                }
            } else if self.received.len() < MAX_RECEIVED {
                self.received.insert(
                    (info_hash, peer_id, offer.offer_id),
                    ReceivedOffer {
                        generation: self.generation,
                        at: now,
                    },
                );
                self.event(TrackerEvent::Offer {
                    tracker: self.id.clone(),
                    info_hash,
                    peer_id,
                    offer_id: offer.offer_id,
                    sdp: offer.sdp,
                });
            } else {
                gst::debug!(CAT, "{}: too many unanswered offers, dropping", self.id);
            }
        }
        if let (Some(answer), Some(peer_id)) = (m.answer, m.peer_id) {
            if self
                .pending
                .get(&answer.offer_id)
                .is_some_and(|p| p.info_hash == info_hash)
            {
                self.pending.remove(&answer.offer_id);
                self.event(TrackerEvent::Answer {
                    tracker: self.id.clone(),
                    info_hash,
                    peer_id,
                    offer_id: answer.offer_id,
                    sdp: answer.sdp,
                });
            } else {
                gst::debug!(CAT, "{}: answer for unknown/expired offer dropped", self.id);
            }
        }
    }
}

/// Refills at [`OFFER_RATE`] up to [`OFFER_BURST`] and takes one token if there is one.
fn take_token(bucket: &mut (f64, Instant), now: Instant) -> bool {
    let elapsed = now.saturating_duration_since(bucket.1).as_secs_f64();
    bucket.0 = (bucket.0 + elapsed * OFFER_RATE).min(OFFER_BURST);
    bucket.1 = now;
    if bucket.0 >= 1.0 {
        bucket.0 -= 1.0;
        true
    } else {
        false
    }
}

/// At most `max` bytes of `s` (on a char boundary), saying how long it really was.
pub(super) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("slow down", 200), "slow down");
        let long = "é".repeat(1 << 19); // 1 MiB of two-byte chars
        let c = clip(&long, 201);
        assert!(c.len() < 240, "{}", c.len());
        assert!(c.starts_with(&"é".repeat(100)));
        assert!(c.ends_with(&format!("({} bytes)", 1 << 20)));
    }

    #[test]
    fn offer_budget_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = (OFFER_BURST, t0);
        let burst = (0..2000).filter(|_| take_token(&mut b, t0)).count();
        assert_eq!(burst, OFFER_BURST as usize);
        // One second later: OFFER_RATE more, not the 2,000 asked for.
        let t1 = t0 + Duration::from_secs(1);
        let later = (0..2000).filter(|_| take_token(&mut b, t1)).count();
        assert_eq!(later, OFFER_RATE as usize);
        // A long pause refills to the burst, no more.
        let t2 = t1 + Duration::from_secs(3600);
        let refilled = (0..2000).filter(|_| take_token(&mut b, t2)).count();
        assert_eq!(refilled, OFFER_BURST as usize);
    }
}
