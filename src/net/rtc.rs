//! WebRTC data channels for talking to P2P Media Loader peers, over webrtc-rs 0.21.
//!
//! The engine sees three small object-safe traits ([`RtcFactory`], [`PendingOffer`],
//! [`DataChannelConn`]) so its tests can swap in an in-memory fake; [`WebRtcFactory`] is the
//! real implementation.
//!
//! What the browser side (simple-peer under bittorrent-tracker) expects, and why this looks
//! the way it does:
//! * Signalling is non-trickle: an offer/answer is sent once, with every ICE candidate inside
//!   it. So we wait for gathering to complete (bounded, like simple-peer's 5 s
//!   `iceCompleteTimeout`) before handing out the SDP.
//! * Exactly one data channel per connection, created by the offerer: label = 40 lower-case
//!   hex chars, ordered, reliable, in-band (DCEP), protocol "". The answerer takes whichever
//!   channel arrives first.
//! * webrtc-rs advertises `a=max-message-size:65536`; PML sends ≤ 65 535-byte messages and so
//!   do we ([`MAX_MESSAGE_SIZE`]).
//! * mDNS is off by default: webrtc-rs' default mode fails to build a connection on hosts
//!   without multicast. Turning it on only lets us *resolve* browsers' `.local` candidates; our
//!   own host candidates stay plain IPs.
//!
//! * UDP socket buffers are raised to 4 MiB ([`RtcConfig::socket_buffer`]): with the OS
//!   default, bursts overflowed them and SCTP's ≥ 1 s retransmission timeouts cut loopback
//!   throughput to 1–20 MB/s.
//!
//! Lifecycle: every connection has a pump task that reads the channel's events into a small
//! bounded queue. A slow reader therefore back-pressures the remote sender through SCTP
//! rather than buffering without bound. Dropping a [`PendingOffer`] or [`DataChannelConn`]
//! closes the PeerConnection (webrtc-rs does not stop its driver task on drop).

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::rtc::ice::mdns::MulticastDnsMode;
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch, Mutex};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceConnectionState, RTCIceGatheringState, RTCIceServer, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// Largest message [`DataChannelConn::send`] accepts: PML's `webRtcMaxMessageSize`, one below
/// the 65 536 bytes both sides advertise.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// PML 2.x's default `rtcConfig.iceServers`.
pub const DEFAULT_ICE_SERVERS: [&str; 2] = [
    "stun:stun.l.google.com:19302",
    "stun:global.stun.twilio.com:3478",
];

/// Received messages queued between the pump task and [`DataChannelConn::recv`]. Kept small:
/// webrtc-rs already queues up to 256 events per channel before SCTP's window closes.
const RECV_QUEUE: usize = 16;

/// How long [`DataChannelConn::close`] waits for queued messages to be delivered and the
/// channel close to be acknowledged before tearing the connection down regardless.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Extra time, on top of `gather_timeout`, that a whole offer/answer setup may take. Nothing
/// in it waits on the network, so only a wedged driver can use it up.
const SETUP_SLACK: Duration = Duration::from_secs(10);

/// A boxed `Send` future; the traits below return these so they stay object-safe without
/// `async-trait`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Settings for every connection a [`WebRtcFactory`] makes.
#[derive(Debug, Clone)]
pub struct RtcConfig {
    /// STUN/TURN URLs, e.g. `stun:host:port`. Empty = host candidates only.
    pub ice_servers: Vec<String>,
    /// Resolve remote mDNS (`<uuid>.local`) candidates. Off by default: it needs multicast,
    /// and webrtc-rs then fails to build a connection (`RtcError::Setup`) on hosts without it.
    pub mdns: bool,
    /// Longest wait for ICE gathering before the SDP is sent with the candidates found so far.
    pub gather_timeout: Duration,
    /// Local UDP sockets. A wildcard (`0.0.0.0:0`) is expanded by webrtc-rs into one socket per
    /// non-loopback interface; on a host where only loopback is up (e.g. a test network
    /// namespace) bind `127.0.0.1:0` explicitly, or the only candidate is unusable `0.0.0.0`.
    pub udp_bind: Vec<SocketAddr>,
    /// Per-connection bound on sent-but-unacknowledged bytes; [`DataChannelConn::send`] waits
    /// while more than this is outstanding. It is also what bounds a burst on the wire: SCTP
    /// sends whatever is queued as fast as its window allows, and on a fast path (loopback, a
    /// LAN) the window grows well past what Chrome's 64 KiB socket receive buffer holds while
    /// the browser is short of CPU. Packets dropped at the tail of a burst cost SCTP a
    /// retransmission timeout: past PML's 2-s `bytes-receiving-timeout` when two in a row are
    /// lost. 32 KiB, plus one upload message (`swarm::UPLOAD_CHUNK_SIZE`), keeps a burst
    /// within that buffer (`tests/rtc.rs`: 48 KiB + 16 KiB still lost datagrams there); it
    /// still allows 48 KiB per round trip: 8 Mbit/s per peer at 50 ms, more on a LAN.
    pub send_buffer_limit: usize,
    /// No traffic from the peer for this long marks ICE disconnected (it may still recover).
    pub ice_disconnected_timeout: Duration,
    /// Disconnected for this much longer marks ICE failed: `recv` then returns `None`. This is
    /// how a peer that vanished without closing (crash, network loss) is noticed.
    pub ice_failed_timeout: Duration,
    /// SO_RCVBUF/SO_SNDBUF for the UDP sockets (the kernel caps it at `net.core.rmem_max`);
    /// 0 keeps the OS default. The default (~208 KiB on Linux) overflows under a burst of the
    /// peer's 1 MiB SCTP window, and every lost packet costs SCTP a ≥ 1 s retransmission
    /// timeout: on loopback that made throughput swing between 1 and 20 MB/s.
    pub socket_buffer: usize,
    /// Pause between ICE connectivity checks while connecting. A check that is lost, or sent
    /// before the remote side knows our credentials, is retried only at the next tick:
    /// webrtc-rs' 200 ms default made that a 200-ms step in setup times (and, before
    /// patches/, every setup took 2–3 ticks). webrtc-rs checks every pair on each tick (not
    /// one pair per tick as RFC 8445's Ta), so the interval is not lower still: 100 ms is 10
    /// checks a second per pair while connecting. Checks for a pair go on for
    /// [`ICE_CHECK_WINDOW`] whatever the interval.
    pub ice_check_interval: Duration,
}

/// How long ICE keeps checking one candidate pair before giving it up (webrtc-rs' default:
/// 7 checks 200 ms apart). Kept when the interval shrinks, or pairs to a remote that is slow
/// to open its side would fail after a fraction of a second.
pub const ICE_CHECK_WINDOW: Duration = Duration::from_millis(1400);

impl Default for RtcConfig {
    fn default() -> Self {
        RtcConfig {
            ice_servers: DEFAULT_ICE_SERVERS.iter().map(|s| s.to_string()).collect(),
            mdns: false,
            gather_timeout: Duration::from_secs(5),
            udp_bind: vec![SocketAddr::from(([0, 0, 0, 0], 0))],
            send_buffer_limit: 32 << 10,
            // webrtc-rs' (and roughly the browsers') defaults.
            ice_disconnected_timeout: Duration::from_secs(5),
            ice_failed_timeout: Duration::from_secs(25),
            socket_buffer: 4 << 20,
            ice_check_interval: Duration::from_millis(100),
        }
    }
}

impl RtcConfig {
    /// Host candidates on 127.0.0.1 only, no STUN: for tests and loopback-only namespaces.
    pub fn loopback() -> Self {
        RtcConfig {
            ice_servers: Vec::new(),
            udp_bind: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            ..RtcConfig::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcError {
    /// No tokio runtime, bad ICE server URL, sockets could not be bound, and the like.
    Setup(String),
    /// The remote SDP could not be parsed or applied.
    InvalidSdp(String),
    /// A bounded wait ran out (named by the string).
    Timeout(&'static str),
    /// [`DataChannelConn::send`] was given more than [`MAX_MESSAGE_SIZE`] bytes.
    MessageTooLarge(usize),
    /// The channel is not open yet.
    NotOpen,
    /// The channel or connection closed (locally, by the peer, or because ICE failed).
    Closed,
}

impl fmt::Display for RtcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtcError::Setup(s) => write!(f, "WebRTC setup failed: {s}"),
            RtcError::InvalidSdp(s) => write!(f, "invalid remote SDP: {s}"),
            RtcError::Timeout(what) => write!(f, "timed out waiting for {what}"),
            RtcError::MessageTooLarge(n) => {
                write!(f, "message of {n} bytes exceeds {MAX_MESSAGE_SIZE}")
            }
            RtcError::NotOpen => write!(f, "data channel not open yet"),
            RtcError::Closed => write!(f, "data channel closed"),
        }
    }
}

impl std::error::Error for RtcError {}

/// Byte and message counters of one connection (payload only, no protocol overhead).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
}

/// A pending offer and the offer SDP to send.
pub type NewOffer = (Box<dyn PendingOffer>, String);

/// An answering connection and the answer SDP to send.
pub type NewAnswer = (Box<dyn DataChannelConn>, String);

/// Makes connections. Both calls return the local SDP with all ICE candidates in it, ready to
/// hand to the tracker as `{"type": ..., "sdp": ...}`.
pub trait RtcFactory: Send + Sync {
    /// Starts a connection as the offerer (creating the one data channel).
    fn create_offer(&self) -> BoxFuture<'_, Result<NewOffer, RtcError>>;

    /// [`create_offer`](Self::create_offer) for a caller that may go away meanwhile: once
    /// `cancel` resolves, the offer stops waiting for ICE gathering and fails with
    /// [`RtcError::Closed`], closing its PeerConnection. The setup itself is never dropped
    /// half-way (webrtc-rs leaks the sockets of a PeerConnection whose setup future is
    /// cancelled); only the gathering wait, which is most of an offer's life, is cut short.
    fn create_offer_until<'a>(
        &'a self,
        cancel: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<NewOffer, RtcError>> {
        drop(cancel);
        self.create_offer()
    }

    /// Answers a remote offer. The returned connection opens once the offerer's channel
    /// arrives; await [`DataChannelConn::wait_open`].
    fn accept_offer<'a>(
        &'a self,
        remote_sdp: &'a str,
    ) -> BoxFuture<'a, Result<NewAnswer, RtcError>>;
}

/// An offer waiting for its answer. Dropping it closes the connection (e.g. when the
/// tracker never relays an answer).
pub trait PendingOffer: Send {
    /// Applies the remote answer. The connection opens asynchronously; await
    /// [`DataChannelConn::wait_open`].
    fn accept_answer<'a>(
        self: Box<Self>,
        remote_sdp: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn DataChannelConn>, RtcError>>;
}

/// One peer connection with its single data channel. All methods take `&self`, so one task can
/// read while another writes (share it in an `Arc`). Dropping it closes the connection.
pub trait DataChannelConn: Send + Sync {
    /// Waits until the channel is open: `Closed` if it never will be, `Timeout` after `timeout`.
    fn wait_open(&self, timeout: Duration) -> BoxFuture<'_, Result<(), RtcError>>;

    /// Queues one message (≤ [`MAX_MESSAGE_SIZE`] bytes). Waits while the send buffer is over
    /// its limit, so this can block as long as the peer does not read; wrap it in a timeout if
    /// that matters. Order is preserved for calls from one task.
    fn send(&self, msg: Bytes) -> BoxFuture<'_, Result<(), RtcError>>;

    /// Next message (text messages arrive as their UTF-8 bytes), or `None` once the channel is
    /// closed or the connection failed and all earlier messages were read. Keep calling it:
    /// while nobody reads, the peer's sends stall only after roughly 37 MB per connection
    /// has piled up (mostly in webrtc-rs' own 256-message queue).
    fn recv(&self) -> BoxFuture<'_, Option<Bytes>>;

    /// Closes the channel and the connection. Messages already accepted by `send` are
    /// delivered first (waiting at most 2 s); the peer then sees its `recv` return `None`.
    /// Dropping the connection instead closes it at once, discarding what is still queued.
    fn close(&self) -> BoxFuture<'_, ()>;

    fn stats(&self) -> ConnStats;

    /// The address the peer's packets come from (the selected ICE candidate pair's remote
    /// side), once the channel is open; for bans. `None` before, or if unknown.
    fn remote_addr(&self) -> Option<IpAddr> {
        None
    }

    /// When the setup's phases ended, for the `GST_DEBUG` line of every setup (a slow one
    /// then names the phase it spent its time in).
    fn setup_phases(&self) -> SetupPhases {
        SetupPhases::default()
    }
}

/// When each phase of a connection's setup ended: a slow setup spent its time in the phase
/// after the last one that ended early (ICE checks, then the DTLS handshake, then SCTP and the
/// data channel's open message).
#[derive(Debug, Default, Clone, Copy)]
pub struct SetupPhases {
    /// ICE found a working candidate pair (ICE connection state `connected`).
    pub ice_connected: Option<std::time::Instant>,
    /// The DTLS handshake finished (peer connection state `connected`).
    pub secured: Option<std::time::Instant>,
}

impl SetupPhases {
    /// `ice 12 ms, dtls 1030 ms` after `start`, for log lines.
    pub fn describe(&self, start: std::time::Instant) -> String {
        let ms = |t: Option<std::time::Instant>| {
            t.map_or("-".to_string(), |t| {
                format!(
                    "{:.1} ms",
                    t.saturating_duration_since(start).as_secs_f64() * 1e3
                )
            })
        };
        format!("ice {}, dtls {}", ms(self.ice_connected), ms(self.secured))
    }
}

/// The address a remote SDP's candidates name: a server-reflexive (public) one first, else
/// the first literal host address; `.local` mDNS names hide the host and give none. The remote
/// writes its SDP itself: a hint for refusing a banned peer early, never a reason to ban.
pub fn sdp_remote_addr(sdp: &str) -> Option<IpAddr> {
    let mut host = None;
    for line in sdp.lines() {
        let Some(c) = line.trim().strip_prefix("a=candidate:") else {
            continue;
        };
        let f: Vec<&str> = c.split_ascii_whitespace().collect();
        let (Some(addr), Some(kind)) = (f.get(4), f.iter().position(|t| *t == "typ")) else {
            continue;
        };
        let Ok(ip) = addr.parse::<IpAddr>() else {
            continue;
        };
        match f.get(kind + 1) {
            Some(&"srflx") | Some(&"prflx") => return Some(ip),
            _ => host = host.or(Some(ip)),
        }
    }
    host
}

/// The real [`RtcFactory`]. Must be used from within a tokio runtime.
pub struct WebRtcFactory {
    config: RtcConfig,
}

impl WebRtcFactory {
    pub fn new(config: RtcConfig) -> Self {
        WebRtcFactory { config }
    }

    pub fn config(&self) -> &RtcConfig {
        &self.config
    }

    async fn bounded<T>(
        &self,
        setup: impl Future<Output = Result<T, RtcError>>,
    ) -> Result<T, RtcError> {
        tokio::time::timeout(self.config.gather_timeout + SETUP_SLACK, setup)
            .await
            .unwrap_or(Err(RtcError::Timeout("WebRTC setup")))
    }

    async fn build(&self) -> Result<Building, RtcError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| RtcError::Setup("not inside a tokio runtime".into()))?;
        let (gathered_tx, gathered_rx) = watch::channel(false);
        let (state_tx, state_rx) = watch::channel(RTCPeerConnectionState::New);
        let (dc_tx, dc_rx) = mpsc::channel(1);
        let phases = Arc::new(std::sync::Mutex::new(SetupPhases::default()));
        let handler = Arc::new(Handler {
            gathered: gathered_tx,
            state: state_tx,
            data_channel: dc_tx,
            phases: phases.clone(),
        });

        let ice_servers = if self.config.ice_servers.is_empty() {
            Vec::new()
        } else {
            vec![RTCIceServer {
                urls: self.config.ice_servers.clone(),
                ..Default::default()
            }]
        };
        let configuration = RTCConfigurationBuilder::new()
            .with_ice_servers(ice_servers)
            .build();
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(if self.config.mdns {
                MulticastDnsMode::QueryOnly
            } else {
                MulticastDnsMode::Disabled
            })
            .with_ice_timeouts(
                Some(self.config.ice_disconnected_timeout),
                Some(self.config.ice_failed_timeout),
                None,
            )
            .with_ice_connection_attempts(
                Some(self.config.ice_check_interval),
                Some(ice_binding_requests(self.config.ice_check_interval)),
            )
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_runtime(Arc::new(TunedRuntime {
                socket_buffer: self.config.socket_buffer,
            }))
            .with_configuration(configuration)
            .with_setting_engine(settings)
            .with_handler(handler)
            .with_udp_addrs(self.config.udp_bind.clone())
            .with_data_channel_send_buffer_limit(self.config.send_buffer_limit.max(1))
            .build()
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))?;
        Ok(Building {
            guard: PcGuard::new(Arc::new(pc), handle),
            gathered: gathered_rx,
            state: state_rx,
            data_channel: dc_rx,
            phases,
        })
    }

    /// Waits (bounded) for ICE gathering, then returns the local SDP with its candidates.
    /// `cancel` resolving ends the wait with [`RtcError::Closed`].
    async fn local_sdp(
        &self,
        b: &mut Building,
        cancel: Option<BoxFuture<'_, ()>>,
    ) -> Result<String, RtcError> {
        // A timeout is not an error: like simple-peer, send what was gathered so far.
        let gathered =
            tokio::time::timeout(self.config.gather_timeout, b.gathered.wait_for(|g| *g));
        match cancel {
            None => {
                let _ = gathered.await;
            }
            Some(cancel) => tokio::select! {
                _ = gathered => {}
                // Only a watch wait is dropped here; the caller drops `b`, which closes the
                // PeerConnection the normal way.
                _ = cancel => return Err(RtcError::Closed),
            },
        }
        let desc = b
            .guard
            .pc
            .local_description()
            .await
            .ok_or_else(|| RtcError::Setup("no local description".into()))?;
        if !desc.sdp.contains("a=candidate:") {
            return Err(RtcError::Setup("no ICE candidates gathered".into()));
        }
        Ok(desc.sdp)
    }

    async fn offer(
        &self,
        cancel: Option<BoxFuture<'_, ()>>,
    ) -> Result<(WebRtcPendingOffer, String), RtcError> {
        let mut b = self.build().await?;
        let pc = &b.guard.pc;
        let init = RTCDataChannelInit {
            ordered: true,
            max_packet_life_time: None,
            max_retransmits: None,
            protocol: String::new(),
            negotiated: None,
        };
        let dc = pc
            .create_data_channel(&random_label(), Some(init))
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))?;
        let offer = pc
            .create_offer(None)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))?;
        pc.set_local_description(offer)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))?;
        let sdp = self.local_sdp(&mut b, cancel).await?;
        Ok((WebRtcPendingOffer { building: b, dc }, sdp))
    }

    async fn answer(&self, remote_sdp: &str) -> Result<(WebRtcConn, String), RtcError> {
        // Without an application section there would be no channel and the caller would only
        // learn that from wait_open's timeout.
        if !remote_sdp.contains("m=application") {
            return Err(RtcError::InvalidSdp("no m=application section".into()));
        }
        let desc = RTCSessionDescription::offer(remote_sdp.to_owned())
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        let mut b = self.build().await?;
        let pc = &b.guard.pc;
        pc.set_remote_description(desc)
            .await
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        let answer = pc
            .create_answer(None)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))?;
        pc.set_local_description(answer)
            .await
            .map_err(|e| RtcError::Setup(e.to_string()))?;
        let sdp = self.local_sdp(&mut b, None).await?;
        Ok((WebRtcConn::start(b, None), sdp))
    }
}

impl RtcFactory for WebRtcFactory {
    fn create_offer(&self) -> BoxFuture<'_, Result<NewOffer, RtcError>> {
        Box::pin(async move {
            let (pending, sdp) = self.bounded(self.offer(None)).await?;
            Ok((Box::new(pending) as Box<dyn PendingOffer>, sdp))
        })
    }

    fn create_offer_until<'a>(
        &'a self,
        cancel: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<NewOffer, RtcError>> {
        Box::pin(async move {
            let (pending, sdp) = self.bounded(self.offer(Some(cancel))).await?;
            Ok((Box::new(pending) as Box<dyn PendingOffer>, sdp))
        })
    }

    fn accept_offer<'a>(
        &'a self,
        remote_sdp: &'a str,
    ) -> BoxFuture<'a, Result<NewAnswer, RtcError>> {
        Box::pin(async move {
            let (conn, sdp) = self.bounded(self.answer(remote_sdp)).await?;
            Ok((Box::new(conn) as Box<dyn DataChannelConn>, sdp))
        })
    }
}

/// Binding requests per candidate pair that fill [`ICE_CHECK_WINDOW`] at `interval`.
fn ice_binding_requests(interval: Duration) -> u16 {
    let n = ICE_CHECK_WINDOW.as_millis() / interval.as_millis().max(1);
    n.clamp(7, u16::MAX as u128) as u16
}

/// 40 lower-case hex chars, as simple-peer names its channel. Nobody checks it, so std's
/// randomly keyed SipHash is random enough and saves a dependency.
fn random_label() -> String {
    let state = std::collections::hash_map::RandomState::new();
    let mut out = String::with_capacity(40);
    for i in 0u64..3 {
        let mut h = state.build_hasher();
        h.write_u64(i);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

/// webrtc-rs' tokio runtime, except that UDP sockets get bigger kernel buffers (see
/// [`RtcConfig::socket_buffer`]); webrtc-rs has no setting for that.
#[derive(Debug)]
struct TunedRuntime {
    socket_buffer: usize,
}

impl Runtime for TunedRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> std::io::Result<Arc<dyn AsyncUdpSocket>> {
        if self.socket_buffer > 0 {
            // Best effort: a smaller buffer only costs throughput.
            let sock = socket2::SockRef::from(&socket);
            let _ = sock.set_recv_buffer_size(self.socket_buffer);
            let _ = sock.set_send_buffer_size(self.socket_buffer);
        }
        TokioRuntime.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> std::io::Result<Arc<dyn AsyncTcpListener>> {
        TokioRuntime.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        TokioRuntime.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        TokioRuntime.resolve_host(host)
    }

    fn now(&self) -> std::time::Instant {
        TokioRuntime.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.yield_now()
    }

    fn name(&self) -> &'static str {
        TokioRuntime.name()
    }
}

/// webrtc-rs callbacks run on the connection's driver task, so they only flip watches and
/// `try_send`; nothing here may wait.
struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    data_channel: mpsc::Sender<Arc<dyn DataChannel>>,
    phases: Arc<std::sync::Mutex<SetupPhases>>,
}

impl Handler {
    fn mark(&self, phase: impl FnOnce(&mut SetupPhases) -> &mut Option<std::time::Instant>) {
        if let Ok(mut p) = self.phases.lock() {
            phase(&mut p).get_or_insert_with(std::time::Instant::now);
        }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if state == RTCIceConnectionState::Connected {
            self.mark(|p| &mut p.ice_connected);
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            self.mark(|p| &mut p.secured);
        }
        self.state.send_replace(state);
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        // Only the first channel is used (PML opens exactly one); later ones are dropped.
        let _ = self.data_channel.try_send(data_channel);
    }
}

/// Owns the PeerConnection and closes it when dropped: webrtc-rs leaves the driver task
/// running on the runtime if the handle is merely dropped.
struct PcGuard {
    pc: Arc<dyn PeerConnection>,
    handle: tokio::runtime::Handle,
}

/// PeerConnections of this process not yet dropped (see [`live_peer_connections`]).
static LIVE_PCS: AtomicUsize = AtomicUsize::new(0);

/// How many PeerConnections this process holds right now: what tests and the fault matrix
/// bound (a tracker must not make us accumulate them).
pub fn live_peer_connections() -> usize {
    LIVE_PCS.load(Ordering::Relaxed)
}

impl PcGuard {
    fn new(pc: Arc<dyn PeerConnection>, handle: tokio::runtime::Handle) -> Self {
        LIVE_PCS.fetch_add(1, Ordering::Relaxed);
        PcGuard { pc, handle }
    }
}

impl Drop for PcGuard {
    fn drop(&mut self) {
        LIVE_PCS.fetch_sub(1, Ordering::Relaxed);
        let pc = self.pc.clone();
        // close() is idempotent, so this is harmless after an explicit close.
        self.handle.spawn(async move {
            let _ = pc.close().await;
        });
    }
}

/// A PeerConnection under construction, with the receiving ends of its handler.
struct Building {
    guard: PcGuard,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    data_channel: mpsc::Receiver<Arc<dyn DataChannel>>,
    phases: Arc<std::sync::Mutex<SetupPhases>>,
}

struct WebRtcPendingOffer {
    building: Building,
    dc: Arc<dyn DataChannel>,
}

impl PendingOffer for WebRtcPendingOffer {
    fn accept_answer<'a>(
        self: Box<Self>,
        remote_sdp: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn DataChannelConn>, RtcError>> {
        Box::pin(async move {
            let conn = self.accept(remote_sdp).await?;
            Ok(Box::new(conn) as Box<dyn DataChannelConn>)
        })
    }
}

impl WebRtcPendingOffer {
    async fn accept(self, remote_sdp: &str) -> Result<WebRtcConn, RtcError> {
        let WebRtcPendingOffer { building, dc } = self;
        let desc = RTCSessionDescription::answer(remote_sdp.to_owned())
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        building
            .guard
            .pc
            .set_remote_description(desc)
            .await
            .map_err(|e| RtcError::InvalidSdp(e.to_string()))?;
        Ok(WebRtcConn::start(building, Some(dc)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelState {
    Connecting,
    Open,
    Closed,
}

#[derive(Default)]
struct Counters {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
}

/// State shared between a connection handle and its pump task.
struct Shared {
    state: watch::Sender<ChannelState>,
    /// Set once the channel exists (at once for the offerer, on arrival for the answerer).
    dc: OnceLock<Arc<dyn DataChannel>>,
    counters: Counters,
    /// Set when the pump task has finished (the channel is closed for good).
    pump_done: watch::Sender<bool>,
}

struct WebRtcConn {
    /// Set once the channel opened, from the selected ICE candidate pair.
    remote_addr: OnceLock<IpAddr>,
    guard: PcGuard,
    shared: Arc<Shared>,
    state: watch::Receiver<ChannelState>,
    messages: Mutex<mpsc::Receiver<Bytes>>,
    pump: tokio::task::JoinHandle<()>,
    phases: Arc<std::sync::Mutex<SetupPhases>>,
}

impl WebRtcConn {
    /// `dc` is the offerer's own channel; the answerer passes `None` and waits for the
    /// announced one.
    fn start(building: Building, dc: Option<Arc<dyn DataChannel>>) -> Self {
        let Building {
            guard,
            state: pc_state,
            data_channel,
            phases,
            ..
        } = building;
        let (state_tx, state_rx) = watch::channel(ChannelState::Connecting);
        let shared = Arc::new(Shared {
            state: state_tx,
            dc: OnceLock::new(),
            counters: Counters::default(),
            pump_done: watch::channel(false).0,
        });
        let (msg_tx, msg_rx) = mpsc::channel(RECV_QUEUE);
        let pump = guard.handle.spawn(pump(
            guard.pc.clone(),
            shared.clone(),
            dc,
            data_channel,
            pc_state,
            msg_tx,
        ));
        WebRtcConn {
            remote_addr: OnceLock::new(),
            guard,
            shared,
            state: state_rx,
            messages: Mutex::new(msg_rx),
            pump,
            phases,
        }
    }

    async fn do_wait_open(&self, timeout: Duration) -> Result<(), RtcError> {
        let mut state = self.state.clone();
        let res = tokio::time::timeout(timeout, state.wait_for(|s| *s != ChannelState::Connecting))
            .await
            .map(|r| r.map(|s| *s));
        match res {
            Err(_) => Err(RtcError::Timeout("data channel to open")),
            Ok(Ok(ChannelState::Open)) => {
                if let Some(addr) = self.selected_remote_addr().await {
                    let _ = self.remote_addr.set(addr);
                }
                Ok(())
            }
            Ok(_) => Err(RtcError::Closed),
        }
    }

    /// Where the peer's packets actually come from: ICE checked it, the SDP only claims it.
    async fn selected_remote_addr(&self) -> Option<IpAddr> {
        let sctp = self.guard.pc.sctp().await?;
        let pair = sctp
            .transport()
            .ice_transport()
            .get_selected_candidate_pair()
            .await
            .ok()??;
        pair.remote().address.parse().ok()
    }

    async fn do_send(&self, msg: Bytes) -> Result<(), RtcError> {
        let len = msg.len();
        if len > MAX_MESSAGE_SIZE {
            return Err(RtcError::MessageTooLarge(len));
        }
        match *self.state.borrow() {
            ChannelState::Open => {}
            ChannelState::Connecting => return Err(RtcError::NotOpen),
            ChannelState::Closed => return Err(RtcError::Closed),
        }
        let dc = self.shared.dc.get().ok_or(RtcError::NotOpen)?;
        // Blocks while the buffer is over `send_buffer_limit`; a closing connection wakes it
        // with an error.
        dc.send(BytesMut::from(msg))
            .await
            .map_err(|_| RtcError::Closed)?;
        let c = &self.shared.counters;
        c.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
        c.messages_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn do_close(&self) {
        self.shared.state.send_replace(ChannelState::Closed);
        if let Some(dc) = self.shared.dc.get() {
            // Closing the channel discards whatever SCTP has not sent yet, so first let the
            // peer acknowledge everything queued (bounded: it may have stopped reading).
            let flushed = async {
                while let Ok(n) = dc.outstanding_bytes().await {
                    if n == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            let _ = tokio::time::timeout(CLOSE_LINGER, flushed).await;
            // The stream reset tells the peer at once that the channel is closed; closing
            // only the connection would leave it to notice by other means. The pump ends
            // when the reset completes.
            if dc.close().await.is_ok() {
                let mut done = self.shared.pump_done.subscribe();
                let _ = tokio::time::timeout(CLOSE_LINGER, done.wait_for(|d| *d)).await;
            }
        }
        let _ = self.guard.pc.close().await;
    }
}

impl DataChannelConn for WebRtcConn {
    fn wait_open(&self, timeout: Duration) -> BoxFuture<'_, Result<(), RtcError>> {
        Box::pin(self.do_wait_open(timeout))
    }

    fn send(&self, msg: Bytes) -> BoxFuture<'_, Result<(), RtcError>> {
        Box::pin(self.do_send(msg))
    }

    fn recv(&self) -> BoxFuture<'_, Option<Bytes>> {
        Box::pin(async move { self.messages.lock().await.recv().await })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.do_close())
    }

    fn remote_addr(&self) -> Option<IpAddr> {
        self.remote_addr.get().copied()
    }

    fn setup_phases(&self) -> SetupPhases {
        self.phases.lock().map(|p| *p).unwrap_or_default()
    }

    fn stats(&self) -> ConnStats {
        let c = &self.shared.counters;
        ConnStats {
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            messages_sent: c.messages_sent.load(Ordering::Relaxed),
            messages_received: c.messages_received.load(Ordering::Relaxed),
        }
    }
}

impl Drop for WebRtcConn {
    fn drop(&mut self) {
        self.shared.state.send_replace(ChannelState::Closed);
        self.pump.abort();
        // `guard` closes the PeerConnection.
    }
}

/// Resolves when the connection has failed or closed (ICE failure included).
async fn connection_down(state: &mut watch::Receiver<RTCPeerConnectionState>) {
    // An error means the handler is gone, i.e. so is the connection.
    let _ = state
        .wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            )
        })
        .await;
}

/// Moves the channel's events into `messages` and its open/closed transitions into
/// `shared.state`. Ends (closing the connection) when the channel closes, the connection
/// fails, or the handle is dropped.
async fn pump(
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    dc: Option<Arc<dyn DataChannel>>,
    mut announced: mpsc::Receiver<Arc<dyn DataChannel>>,
    mut pc_state: watch::Receiver<RTCPeerConnectionState>,
    messages: mpsc::Sender<Bytes>,
) {
    let dc = match dc {
        Some(dc) => Some(dc),
        None => tokio::select! {
            dc = announced.recv() => dc,
            _ = connection_down(&mut pc_state) => None,
        },
    };
    if let Some(dc) = dc {
        let _ = shared.dc.set(dc.clone());
        loop {
            let event = tokio::select! {
                event = dc.poll() => event,
                _ = connection_down(&mut pc_state) => None,
            };
            match event {
                Some(DataChannelEvent::OnOpen) => {
                    // Not after a local close(): that state must stick.
                    shared.state.send_if_modified(|s| {
                        let connecting = *s == ChannelState::Connecting;
                        if connecting {
                            *s = ChannelState::Open;
                        }
                        connecting
                    });
                }
                Some(DataChannelEvent::OnMessage(msg)) => {
                    let c = &shared.counters;
                    c.bytes_received
                        .fetch_add(msg.data.len() as u64, Ordering::Relaxed);
                    c.messages_received.fetch_add(1, Ordering::Relaxed);
                    if messages.send(msg.data.freeze()).await.is_err() {
                        break;
                    }
                }
                Some(DataChannelEvent::OnClose) | None => break,
                Some(_) => {}
            }
        }
    }
    shared.state.send_replace(ChannelState::Closed);
    shared.pump_done.send_replace(true);
    // Frees the sockets now and wakes a send() blocked on back-pressure.
    let _ = pc.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_address_comes_from_the_candidates() {
        let sdp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
            a=candidate:1 1 udp 2113937151 3f1c-uuid.local 54400 typ host\r\n\
            a=candidate:2 1 udp 2113937151 192.168.1.20 54400 typ host\r\n\
            a=candidate:3 1 udp 1845501695 203.0.113.7 61000 typ srflx raddr 0.0.0.0 rport 0\r\n";
        assert_eq!(sdp_remote_addr(sdp), "203.0.113.7".parse().ok());
        let host_only = "a=candidate:2 1 udp 1 ::1 5 typ host\r\n";
        assert_eq!(sdp_remote_addr(host_only), "::1".parse().ok());
        assert_eq!(
            sdp_remote_addr("a=candidate:1 1 udp 1 x.local 5 typ host"),
            None
        );
        assert_eq!(sdp_remote_addr("a=candidate:garbage"), None);
    }

    #[test]
    fn label_is_40_lowercase_hex() {
        let a = random_label();
        let b = random_label();
        assert_eq!(a.len(), 40);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_ne!(a, b);
    }

    /// What the browser would see: one ordered, reliable, in-band channel with no protocol,
    /// and an SDP with loopback host candidates and no mDNS names.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn channel_and_sdp_shape() {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        let run = async {
            let (pending, offer) = f.offer(None).await.expect("offer");
            assert!(offer.contains("m=application"), "{offer}");
            assert!(offer.contains("a=candidate:"), "{offer}");
            assert!(offer.contains(" 127.0.0.1 "), "{offer}");
            assert!(!offer.contains(".local"), "{offer}");
            assert!(offer.contains("a=max-message-size:65536"), "{offer}");
            let (answerer, answer) = f.answer(&offer).await.expect("answer");
            assert!(answer.contains("a=candidate:"), "{answer}");
            let offerer = pending.accept(&answer).await.expect("accept");
            offerer
                .do_wait_open(Duration::from_secs(10))
                .await
                .expect("open");
            answerer
                .do_wait_open(Duration::from_secs(10))
                .await
                .expect("open");
            for conn in [&offerer, &answerer] {
                let dc = conn.shared.dc.get().expect("channel");
                let label = dc.label().await.expect("label");
                assert_eq!(label.len(), 40, "{label}");
                assert!(dc.ordered().await.expect("ordered"));
                assert_eq!(dc.max_retransmits().await.expect("rtx"), None);
                assert_eq!(dc.max_packet_life_time().await.expect("life"), None);
                assert_eq!(dc.protocol().await.expect("protocol"), "");
                assert!(!dc.negotiated().await.expect("negotiated"));
            }
            let l1 = offerer
                .shared
                .dc
                .get()
                .expect("dc")
                .label()
                .await
                .expect("l");
            let l2 = answerer
                .shared
                .dc
                .get()
                .expect("dc")
                .label()
                .await
                .expect("l");
            assert_eq!(l1, l2);
        };
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("test timed out");
    }
}
