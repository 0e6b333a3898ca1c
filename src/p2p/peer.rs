//! Per-connection protocol state machine (§4.1.6), sans-IO.
//!
//! Feed it data-channel messages ([`PeerSession::on_message`]), timer ticks
//! ([`PeerSession::on_timer`]) and local actions; drain
//! [`PeerSession::poll_output`] after every call, then pull upload payload with
//! [`PeerSession::poll_upload_chunk`] while the channel has room. Control
//! messages are small and never subject to backpressure; payload is pulled
//! lazily and only after all queued control messages have been taken, which
//! keeps the SegmentData header → payload → Completed order intact and never
//! splits a multi-part command with another command.
//!
//! ```
//! use gstp2pmedia::p2p::{Event, Output, PeerConfig, PeerSession};
//!
//! let mut session = PeerSession::new(PeerConfig::default(), 42);
//! session.announce(&[100, 101], &[102]); // right after the channel opens
//! let mut sent = Vec::new();
//! loop {
//!     while let Some(out) = session.poll_output() {
//!         match out {
//!             Output::Send(msg) => sent.push(msg), // data_channel.send(msg)
//!             Output::Event(Event::Disconnect { .. }) => { /* close the connection */ }
//!             Output::Event(_) => { /* hand to the scheduler */ }
//!         }
//!     }
//!     // Only while the channel's buffered amount is low:
//!     match session.poll_upload_chunk() {
//!         Some(chunk) => sent.push(chunk),
//!         None => break,
//!     }
//! }
//! assert_eq!(sent.len(), 1);
//! // Then: session.on_message(bytes, now_ms) per received message, and
//! // session.on_timer(now_ms) at session.poll_timeout().
//! ```

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::rng::SplitMix64;
use super::segment_id::WireSegmentId;
use super::wire::{self, Command, Decoder, Incoming};
use super::wire06::{self, Command06, Id06, Incoming06};
use crate::payload::SegmentBuf;

/// Which data-channel protocol the remote speaks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WireFamily {
    /// PML 1.0.4 ..= 2.3: binary framed commands with request ids (§4.1).
    #[default]
    V2,
    /// PML 0.6 and PeerTube's fork (§4.2): JSON commands naming segments
    /// `<stream swarm id>+<n>`, no request ids, completion by byte count, and no command
    /// may reach the peer while we upload to it (it would abort its download).
    V06 {
        /// `<master>+V<i>` of this connection's swarm.
        stream_swarm_id: Arc<str>,
        /// How segments are numbered after it.
        ids: wire06::Ids06,
    },
}

/// Session limits; defaults are PML's (`webRtcMaxMessageSize`,
/// `p2pNotReceivingBytesTimeoutMs`, `p2pErrorRetries`).
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Largest message we send (payload chunk or command part).
    pub max_message_size: usize,
    /// Largest payload chunk of an upload (at most `max_message_size`). Smaller than PML's
    /// 64 KiB so that the bytes in flight towards a peer, bounded by the data channel's send
    /// buffer limit plus one message, fit a browser's small UDP receive buffer (see
    /// `net::rtc::RtcConfig::send_buffer_limit`).
    pub upload_chunk_size: usize,
    /// Download fails after this long without SegmentData/payload bytes.
    pub not_receiving_bytes_timeout_ms: u64,
    /// Disconnect after this many timeouts without a successful download.
    pub error_retries: u32,
    /// Largest (joined) command body accepted from the peer.
    pub max_command_bytes: usize,
    /// The remote's protocol family.
    pub family: WireFamily,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            max_message_size: wire::MAX_MESSAGE_SIZE,
            upload_chunk_size: wire::MAX_MESSAGE_SIZE,
            not_receiving_bytes_timeout_ms: 2000,
            error_retries: 3,
            max_command_bytes: wire::DEFAULT_MAX_COMMAND_BYTES,
            family: WireFamily::V2,
        }
    }
}

/// A segment download to ask the peer for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    /// Segment externalId.
    pub id: WireSegmentId,
    /// Bytes already held from an earlier attempt (sent as `b`); the peer
    /// sends the rest and [`Event::SegmentReceived`] carries only the rest.
    pub byte_offset: u64,
    /// Exact segment size if known (byte range, earlier attempt): the peer's
    /// `s` must equal `total − byte_offset` or it is disconnected.
    pub total_bytes: Option<u64>,
    /// Upper bound for a segment of unknown size; a larger claim disconnects.
    pub max_segment_bytes: u64,
}

/// Stored segment bytes handed to an upload (e.g. `Vec<u8>` or `bytes::Bytes`).
pub type UploadData = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Something for the I/O layer to do.
#[derive(Debug)]
pub enum Output {
    /// Send this message on the data channel.
    Send(Vec<u8>),
    /// Report this to the scheduler / application.
    Event(Event),
}

/// Protocol events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer's full snapshot (replaces the previous one).
    PeerAnnounced {
        /// Ids the peer stores.
        loaded: Vec<WireSegmentId>,
        /// Ids the peer is fetching over HTTP.
        http_loading: Vec<WireSegmentId>,
    },
    /// Payload bytes arrived for the current download.
    DownloadProgress {
        /// Segment id.
        id: WireSegmentId,
        /// Bytes received in this request so far.
        received: u64,
        /// Bytes announced by the peer (`s`).
        expected: u64,
    },
    /// Download finished; `data` is the segment from the requested offset.
    SegmentReceived {
        /// Segment id.
        id: WireSegmentId,
        /// Received bytes.
        data: SegmentBuf,
    },
    /// The peer does not have the segment (removed from its announced set).
    SegmentAbsent {
        /// Segment id.
        id: WireSegmentId,
    },
    /// The current download failed.
    DownloadFailed {
        /// Segment id.
        id: WireSegmentId,
        /// Why.
        reason: DownloadFailure,
    },
    /// The peer asks for a segment: answer with [`PeerSession::upload`],
    /// [`PeerSession::upload_absent`], or not at all (PML does not answer for
    /// ids outside its playlist). Any earlier upload to this peer was stopped.
    UploadRequested {
        /// Segment id.
        id: WireSegmentId,
        /// Peer's request id.
        request_id: i64,
        /// Resume offset requested by the peer.
        byte_offset: u64,
    },
    /// The peer cancelled the upload (pending or in progress).
    UploadCancelled {
        /// Segment id.
        id: WireSegmentId,
        /// Peer's request id.
        request_id: i64,
    },
    /// Close the connection; the session ignores further input.
    Disconnect {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Why a download failed without a SegmentAbsent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFailure {
    /// No bytes for `not_receiving_bytes_timeout_ms` (a Cancel was sent).
    Timeout,
    /// The session was disconnected.
    Disconnected,
}

/// Why the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// `s` differs from the known remaining size, or Completed came early.
    SizeMismatch,
    /// `s` exceeds what the segment may hold (`max_segment_bytes`).
    SizeTooLarge,
    /// `s` is negative.
    InvalidSize,
    /// More payload than announced.
    TooManyBytes,
    /// Completed for another request after SegmentData.
    ProtocolViolation,
    /// `error_retries` timeouts without a success.
    TooManyTimeouts,
    /// Local decision (validation failure, shutdown, transport closed…).
    Local,
}

/// Local misuse of [`PeerSession::request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// A download is already running on this connection.
    Busy,
    /// The session is closed.
    Closed,
    /// `byte_offset` is not below the known size / limit.
    InvalidOffset,
}

/// 0.6: a foreign segment id longer than this is not echoed back as absent.
const MAX_FOREIGN_ID: usize = 2048;

/// Largest accepted segment size reserved in one go (see `on_payload`); 16 MiB is a 10-s
/// segment at 13 Mbit/s.
const PRESIZE_LIMIT: u64 = 16 << 20;
/// What the first bytes of a download reserve: a claim is only a claim until bytes back it.
const PRESIZE_FIRST: u64 = 1 << 20;

#[derive(Debug)]
struct Download {
    id: WireSegmentId,
    request_id: i64,
    byte_offset: u64,
    total_bytes: Option<u64>,
    max_segment_bytes: u64,
    /// `s` once the matching SegmentData arrived.
    expected: Option<u64>,
    data: SegmentBuf,
    deadline: u64,
    /// 0.6: the request waits behind our upload to this peer; its clock starts when it goes.
    held: bool,
}

struct Upload {
    id: WireSegmentId,
    request_id: i64,
    data: UploadData,
    pos: usize,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("id", &self.id)
            .field("request_id", &self.request_id)
            .field("pos", &self.pos)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
struct PendingUpload {
    id: WireSegmentId,
    request_id: i64,
    byte_offset: u64,
}

/// One data-channel connection with one remote peer, for one stream swarm.
#[derive(Debug)]
pub struct PeerSession {
    config: PeerConfig,
    decoder: Decoder,
    rng: SplitMix64,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    download: Option<Download>,
    pending_upload: Option<PendingUpload>,
    upload: Option<Upload>,
    remote_loaded: HashSet<WireSegmentId>,
    remote_http_loading: HashSet<WireSegmentId>,
    timeout_strikes: u32,
    closed: bool,
    /// 0.6: commands held back while an upload's payload is going out, sent after it.
    held: VecDeque<Vec<u8>>,
    /// 0.6: the newest announcement held back (a snapshot: older ones are dropped).
    held_announcement: Option<Vec<u8>>,
    /// 0.6: the newest "absent" for another variant's segment held back (a 0.6 peer has one
    /// request out at a time; a flood of them must not grow this).
    held_absent: Option<Vec<u8>>,
    /// 0.6: bytes still to come of transfers we gave up (0.6 ignores cancels: the rest of the
    /// segment arrives all the same); discarded, and proof the peer is alive.
    discard: u64,
    /// 0.6: a request we gave up before its SegmentData came; that header's size goes to
    /// `discard`.
    stale: Option<WireSegmentId>,
    /// 0.6: request ids we give the peer's requests (it sends none).
    next_remote_request: i64,
}

impl PeerSession {
    /// New session; `rng_seed` drives request ids. Call [`announce`](Self::announce)
    /// once the channel opens, as PML does.
    pub fn new(config: PeerConfig, rng_seed: u64) -> Self {
        Self {
            decoder: Decoder::new(config.max_command_bytes),
            config,
            rng: SplitMix64::new(rng_seed),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            download: None,
            pending_upload: None,
            upload: None,
            remote_loaded: HashSet::new(),
            remote_http_loading: HashSet::new(),
            timeout_strikes: 0,
            closed: false,
            held: VecDeque::new(),
            held_announcement: None,
            held_absent: None,
            discard: 0,
            stale: None,
            next_remote_request: 0,
        }
    }

    /// True once disconnected.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the peer's last announcement lists `id` as stored.
    pub fn remote_has(&self, id: WireSegmentId) -> bool {
        self.remote_loaded.contains(&id)
    }

    /// Whether the peer's last announcement lists `id` as loading over HTTP.
    pub fn remote_http_loading(&self, id: WireSegmentId) -> bool {
        self.remote_http_loading.contains(&id)
    }

    /// Segment being downloaded from this peer, if any.
    pub fn current_download(&self) -> Option<WireSegmentId> {
        self.download.as_ref().map(|d| d.id)
    }

    /// Whether an upload has payload left to send.
    pub fn is_uploading(&self) -> bool {
        self.upload.is_some()
    }

    /// Timeouts since the last successful download.
    pub fn timeout_strikes(&self) -> u32 {
        self.timeout_strikes
    }

    /// Bytes held for a partially received command (bounded by config).
    pub fn buffered_command_bytes(&self) -> usize {
        self.decoder.buffered_len()
    }

    /// Next message to send or event to report.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(m) = self.transmit.pop_front() {
            return Some(Output::Send(m));
        }
        self.events.pop_front().map(Output::Event)
    }

    /// Earliest time [`on_timer`](Self::on_timer) must be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.download.as_ref().map(|d| d.deadline)
    }

    fn send(&mut self, cmd: &Command) {
        let WireFamily::V06 {
            stream_swarm_id,
            ids,
        } = &self.config.family
        else {
            self.transmit
                .extend(wire::encode_command(cmd, self.config.max_message_size));
            return;
        };
        let Some(msg) = wire06::encode(cmd, stream_swarm_id, *ids) else {
            return;
        };
        let announcement = matches!(cmd, Command::SegmentsAnnouncement { .. });
        self.send06(msg, announcement);
    }

    fn send06(&mut self, msg: Vec<u8>, announcement: bool) {
        if self.upload.is_none() {
            self.transmit.push_back(msg);
        } else if announcement {
            self.held_announcement = Some(msg);
        } else {
            self.held.push_back(msg);
        }
    }

    /// The upload ended (sent, replaced or cancelled): what waited for it may go.
    fn upload_ended(&mut self) {
        // A request held behind the upload goes now; its clock restarts at the next tick.
        self.upload = None;
        self.transmit.extend(self.held.drain(..));
        self.transmit.extend(self.held_absent.take());
        self.transmit.extend(self.held_announcement.take());
    }

    /// Sends a full snapshot of what we store / fetch over HTTP.
    pub fn announce(&mut self, loaded: &[WireSegmentId], http_loading: &[WireSegmentId]) {
        if self.closed {
            return;
        }
        self.send(&Command::SegmentsAnnouncement {
            loaded: loaded.to_vec(),
            http_loading: http_loading.to_vec(),
        });
    }

    /// Starts a download with a random request id (0..999, like PML).
    pub fn request(&mut self, req: DownloadRequest, now_ms: u64) -> Result<i64, RequestError> {
        let request_id = self.rng.below(1000) as i64;
        self.request_with_id(req, request_id, now_ms)
    }

    /// Starts a download with a given request id.
    pub fn request_with_id(
        &mut self,
        req: DownloadRequest,
        request_id: i64,
        now_ms: u64,
    ) -> Result<i64, RequestError> {
        if self.closed {
            return Err(RequestError::Closed);
        }
        if self.download.is_some() {
            return Err(RequestError::Busy);
        }
        let limit = req.total_bytes.unwrap_or(req.max_segment_bytes);
        let offset = i64::try_from(req.byte_offset).map_err(|_| RequestError::InvalidOffset)?;
        if req.byte_offset >= limit || req.byte_offset > req.max_segment_bytes {
            return Err(RequestError::InvalidOffset);
        }
        self.send(&Command::SegmentRequest {
            id: req.id,
            request_id,
            byte_offset: offset,
        });
        self.download = Some(Download {
            id: req.id,
            request_id,
            byte_offset: req.byte_offset,
            total_bytes: req.total_bytes,
            max_segment_bytes: req.max_segment_bytes,
            expected: None,
            data: SegmentBuf::new(),
            deadline: now_ms.saturating_add(self.config.not_receiving_bytes_timeout_ms),
            held: self.upload.is_some() && matches!(self.config.family, WireFamily::V06 { .. }),
        });
        Ok(request_id)
    }

    /// Aborts the current download (sends CancelSegmentRequest); no event,
    /// and it does not count as a timeout strike. Returns the segment id.
    pub fn cancel_download(&mut self) -> Option<WireSegmentId> {
        let d = self.download.take()?;
        self.abandon(&d);
        Some(d.id)
    }

    /// Tells the peer we gave `d` up. 0.6 ignores that (its upload is written already), so
    /// what is still to come of it is expected and discarded; a 0.6 request still held behind
    /// our upload is simply never sent.
    fn abandon(&mut self, d: &Download) {
        let cancel = Command::CancelSegmentRequest {
            id: d.id,
            request_id: d.request_id,
        };
        let WireFamily::V06 {
            stream_swarm_id,
            ids,
        } = &self.config.family
        else {
            self.send(&cancel);
            return;
        };
        if d.held && self.upload.is_some() {
            let request = Command::SegmentRequest {
                id: d.id,
                request_id: d.request_id,
                byte_offset: 0,
            };
            if let Some(m) = wire06::encode(&request, stream_swarm_id, *ids) {
                if let Some(i) = self.held.iter().position(|h| *h == m) {
                    self.held.remove(i);
                    return;
                }
            }
        }
        match d.expected {
            Some(e) => {
                let rest = e.saturating_sub(d.data.len() as u64);
                self.discard = self.discard.saturating_add(rest);
            }
            None => self.stale = Some(d.id),
        }
        self.send(&cancel);
    }

    /// Answers the pending [`Event::UploadRequested`] with the whole stored
    /// segment; we send `data[byte_offset..]`. Returns false for a stale or
    /// unknown `request_id` (nothing is sent then).
    pub fn upload(&mut self, request_id: i64, data: UploadData) -> bool {
        let Some(p) = self.take_pending(request_id) else {
            return false;
        };
        let len = (*data).as_ref().len() as u64;
        if p.byte_offset > len {
            self.send(&Command::SegmentAbsent {
                id: p.id,
                request_id,
            });
            return true;
        }
        let size = (len - p.byte_offset) as i64;
        self.send(&Command::SegmentData {
            id: p.id,
            request_id,
            size,
        });
        if size == 0 {
            self.send(&Command::SegmentDataSendingCompleted {
                id: p.id,
                request_id,
            });
        } else {
            self.upload = Some(Upload {
                id: p.id,
                request_id,
                data,
                pos: p.byte_offset as usize,
            });
        }
        true
    }

    /// Answers the pending request with SegmentAbsent.
    pub fn upload_absent(&mut self, request_id: i64) -> bool {
        let Some(p) = self.take_pending(request_id) else {
            return false;
        };
        self.send(&Command::SegmentAbsent {
            id: p.id,
            request_id,
        });
        true
    }

    fn take_pending(&mut self, request_id: i64) -> Option<PendingUpload> {
        if self.closed
            || self
                .pending_upload
                .is_none_or(|p| p.request_id != request_id)
        {
            return None;
        }
        self.pending_upload.take()
    }

    /// Next raw payload message (≤ `upload_chunk_size`) of the current upload,
    /// or None if none is due or control messages are still queued. Call while
    /// the channel has room; the Completed command is queued after the last chunk.
    pub fn poll_upload_chunk(&mut self) -> Option<Vec<u8>> {
        if !self.transmit.is_empty() {
            return None;
        }
        let up = self.upload.as_mut()?;
        let bytes = (*up.data).as_ref();
        let rest = bytes.get(up.pos..).unwrap_or_default();
        let chunk_size = self
            .config
            .upload_chunk_size
            .min(self.config.max_message_size);
        let mut n = rest.len().min(chunk_size.max(1));
        // Never let a payload chunk look like a framed command: the receiver
        // would misparse it (PML accepts that risk; shortening is free).
        let v06 = matches!(self.config.family, WireFamily::V06 { .. });
        let ambiguous = |c: &[u8]| {
            if v06 {
                wire06::chunk_is_ambiguous(c)
            } else {
                c.len() >= 8 && wire::is_command_chunk(c)
            }
        };
        while n > 1 && ambiguous(&rest[..n]) {
            n -= 1;
        }
        let chunk = rest[..n].to_vec();
        up.pos += n;
        if up.pos >= bytes.len() {
            let (id, request_id) = (up.id, up.request_id);
            self.upload_ended();
            self.send(&Command::SegmentDataSendingCompleted { id, request_id });
        }
        Some(chunk)
    }

    /// Handles one incoming data-channel message.
    pub fn on_message(&mut self, msg: &[u8], now_ms: u64) {
        if self.closed {
            return;
        }
        if let WireFamily::V06 {
            stream_swarm_id,
            ids,
        } = &self.config.family
        {
            match wire06::decode(msg, stream_swarm_id, *ids, self.config.max_command_bytes) {
                Incoming06::Payload => self.on_payload(msg, now_ms),
                Incoming06::Command(c) => self.on_command06(c, now_ms),
                Incoming06::Dropped => {}
            }
            return;
        }
        match self.decoder.push(msg) {
            Incoming::Payload(p) => self.on_payload(p, now_ms),
            Incoming::Command(c) => self.on_command(c, now_ms),
            // Malformed commands are dropped silently, as PML does.
            Incoming::Partial | Incoming::Dropped(_) => {}
        }
    }

    fn on_payload(&mut self, mut p: &[u8], now_ms: u64) {
        let timeout = self.config.not_receiving_bytes_timeout_ms;
        if self.discard > 0 {
            // The tail of a transfer we gave up (0.6): the peer is sending, just not ours yet.
            let n = (self.discard.min(p.len() as u64)) as usize;
            self.discard -= n as u64;
            p = &p[n..];
            if let Some(d) = self.download.as_mut() {
                d.deadline = now_ms.saturating_add(timeout);
            }
            if p.is_empty() {
                return;
            }
        }
        // Payload outside an accepted SegmentData (e.g. the tail of an
        // upload the peer stopped) is discarded.
        let Some(d) = self.download.as_mut() else {
            return;
        };
        let Some(expected) = d.expected else {
            return;
        };
        let have = d.data.len() as u64;
        if have + p.len() as u64 > expected {
            self.disconnect(DisconnectReason::TooManyBytes);
            return;
        }
        // Bytes are flowing: take the accepted size in one allocation (up to `PRESIZE_LIMIT`),
        // as the HTTP path does with Content-Length. Growing by doubling left the 64/128/256 KiB
        // steps of every segment as holes in the worker's malloc arena. The first bytes reserve
        // at most `PRESIZE_FIRST`, so a peer that claims 16 MiB and sends one byte holds 1 MiB
        // of ours, not 16; past that it has sent what it makes us reserve, 16 times over at most.
        let need = have + p.len() as u64;
        if need > d.data.capacity() as u64 {
            let want = if d.data.capacity() == 0 {
                expected.min(PRESIZE_FIRST)
            } else if expected <= PRESIZE_LIMIT {
                expected
            } else {
                (have * 2).min(expected)
            };
            d.data.reserve_exact((want.max(need) - have) as usize);
        }
        d.data.extend_from_slice(p);
        d.deadline = now_ms.saturating_add(timeout);
        let ev = Event::DownloadProgress {
            id: d.id,
            received: d.data.len() as u64,
            expected,
        };
        let complete = d.data.len() as u64 == expected;
        self.events.push_back(ev);
        if complete && matches!(self.config.family, WireFamily::V06 { .. }) {
            self.download_complete();
        }
    }

    fn download_complete(&mut self) {
        if let Some(d) = self.download.take() {
            self.timeout_strikes = 0;
            self.events.push_back(Event::SegmentReceived {
                id: d.id,
                data: d.data,
            });
        }
    }

    /// A 0.6 command, as the 2.x command it means: the peer's segments are ours when named
    /// `<our stream swarm id>+<n>`, and request ids are the ones we hold.
    fn on_command06(&mut self, cmd: Command06, now_ms: u64) {
        let downloading = |s: &Self, id: WireSegmentId| {
            s.download
                .as_ref()
                .filter(|d| d.id == id)
                .map(|d| d.request_id)
        };
        let cmd = match cmd {
            Command06::SegmentsMap {
                loaded,
                http_loading,
            } => Command::SegmentsAnnouncement {
                loaded,
                http_loading,
            },
            Command06::SegmentRequest { id: Id06::Ours(id) } => {
                let request_id = self.next_remote_request;
                self.next_remote_request += 1;
                Command::SegmentRequest {
                    id,
                    request_id,
                    byte_offset: 0,
                }
            }
            Command06::SegmentRequest {
                id: Id06::Foreign(id),
            } => {
                // Another variant's segment (0.6 maps list every variant): not in this swarm.
                // Echoed only if short; while uploading, only the newest waits.
                if id.len() <= MAX_FOREIGN_ID {
                    let msg = wire06::encode_absent_foreign(&id);
                    if self.upload.is_some() {
                        self.held_absent = Some(msg);
                    } else {
                        self.transmit.push_back(msg);
                    }
                }
                return;
            }
            Command06::SegmentData {
                id: Id06::Ours(id),
                size: Some(size),
            } => {
                let Some(request_id) = downloading(self, id) else {
                    // The header of a transfer we gave up: its bytes come anyway.
                    if self.stale == Some(id) {
                        self.stale = None;
                        self.discard = self.discard.saturating_add(size.max(0) as u64);
                    }
                    return;
                };
                Command::SegmentData {
                    id,
                    request_id,
                    size,
                }
            }
            Command06::SegmentAbsent { id: Id06::Ours(id) } => {
                let Some(request_id) = downloading(self, id) else {
                    if self.stale == Some(id) {
                        self.stale = None;
                    }
                    return;
                };
                Command::SegmentAbsent { id, request_id }
            }
            Command06::CancelSegmentRequest { id: Id06::Ours(id) } => {
                let request_id = self
                    .upload
                    .as_ref()
                    .map(|u| (u.id, u.request_id))
                    .or(self.pending_upload.map(|p| (p.id, p.request_id)))
                    .filter(|(uid, _)| *uid == id)
                    .map(|(_, r)| r);
                let Some(request_id) = request_id else {
                    return;
                };
                Command::CancelSegmentRequest { id, request_id }
            }
            // A header without a numeric size is ignored, as PeerTube's fork does (the
            // request then times out); foreign ids are not ours to hear about.
            Command06::SegmentData { .. }
            | Command06::SegmentAbsent { .. }
            | Command06::CancelSegmentRequest { .. } => return,
        };
        self.on_command(cmd, now_ms);
    }

    fn on_command(&mut self, cmd: Command, now_ms: u64) {
        match cmd {
            Command::SegmentsAnnouncement {
                loaded,
                http_loading,
            } => {
                self.remote_loaded = loaded.iter().copied().collect();
                self.remote_http_loading = http_loading.iter().copied().collect();
                self.events.push_back(Event::PeerAnnounced {
                    loaded,
                    http_loading,
                });
            }
            Command::SegmentRequest {
                id,
                request_id,
                byte_offset,
            } => {
                // One upload per connection: a new request stops the old one, as a cancel
                // would (and is counted as one: request loops are not free either).
                let old = self
                    .upload
                    .as_ref()
                    .map(|u| (u.id, u.request_id))
                    .or_else(|| self.pending_upload.take().map(|p| (p.id, p.request_id)));
                self.upload_ended();
                if let Some((id, request_id)) = old {
                    self.events
                        .push_back(Event::UploadCancelled { id, request_id });
                }
                match u64::try_from(byte_offset) {
                    Ok(byte_offset) => {
                        self.pending_upload = Some(PendingUpload {
                            id,
                            request_id,
                            byte_offset,
                        });
                        self.events.push_back(Event::UploadRequested {
                            id,
                            request_id,
                            byte_offset,
                        });
                    }
                    Err(_) => self.send(&Command::SegmentAbsent { id, request_id }),
                }
            }
            Command::SegmentData {
                id,
                request_id,
                size,
            } => self.on_segment_data(id, request_id, size, now_ms),
            Command::SegmentDataSendingCompleted { id, request_id } => {
                let Some(d) = self.download.as_ref() else {
                    return;
                };
                let Some(expected) = d.expected else {
                    return; // before SegmentData: ignored, as in PML
                };
                if d.id != id || d.request_id != request_id {
                    self.disconnect(DisconnectReason::ProtocolViolation);
                } else if d.data.len() as u64 != expected {
                    self.disconnect(DisconnectReason::SizeMismatch);
                } else if let Some(d) = self.download.take() {
                    self.timeout_strikes = 0;
                    self.events.push_back(Event::SegmentReceived {
                        id: d.id,
                        data: d.data,
                    });
                }
            }
            Command::SegmentAbsent { id, request_id } => {
                if self
                    .download
                    .as_ref()
                    .is_some_and(|d| d.id == id && d.request_id == request_id)
                {
                    self.download = None;
                    self.remote_loaded.remove(&id);
                    self.events.push_back(Event::SegmentAbsent { id });
                }
            }
            Command::CancelSegmentRequest { id: _, request_id } => {
                // PML matches on the request id only.
                if let Some(up) = self.upload.as_ref().filter(|u| u.request_id == request_id) {
                    let id = up.id;
                    self.upload_ended();
                    self.events
                        .push_back(Event::UploadCancelled { id, request_id });
                } else if let Some(p) = self.pending_upload.filter(|p| p.request_id == request_id) {
                    self.pending_upload = None;
                    self.events.push_back(Event::UploadCancelled {
                        id: p.id,
                        request_id,
                    });
                }
            }
        }
    }

    fn on_segment_data(&mut self, id: WireSegmentId, request_id: i64, size: i64, now_ms: u64) {
        let timeout = self.config.not_receiving_bytes_timeout_ms;
        let Some(d) = self.download.as_mut() else {
            return;
        };
        if d.expected.is_some() || d.id != id || d.request_id != request_id {
            return; // duplicate or for another request: ignored, as in PML
        }
        let verdict = match u64::try_from(size) {
            Err(_) => Err(DisconnectReason::InvalidSize),
            Ok(s) => match d.total_bytes {
                Some(total) if total.checked_sub(d.byte_offset) != Some(s) => {
                    Err(DisconnectReason::SizeMismatch)
                }
                _ if d
                    .byte_offset
                    .checked_add(s)
                    .is_none_or(|end| end > d.max_segment_bytes) =>
                {
                    Err(DisconnectReason::SizeTooLarge)
                }
                _ => Ok(s),
            },
        };
        match verdict {
            Ok(s) => {
                d.expected = Some(s);
                d.deadline = now_ms.saturating_add(timeout);
                // 0.6 completes by byte count: an empty segment is complete at its header.
                if s == 0 && matches!(self.config.family, WireFamily::V06 { .. }) {
                    self.download_complete();
                }
            }
            Err(reason) => {
                // PML sends a cancel before dropping a peer over a bad size.
                let (id, request_id) = (d.id, d.request_id);
                self.send(&Command::CancelSegmentRequest { id, request_id });
                self.disconnect(reason);
            }
        }
    }

    /// Advances time: fails a download that received nothing for the timeout.
    pub fn on_timer(&mut self, now_ms: u64) {
        if self.closed {
            return;
        }
        let timeout = self.config.not_receiving_bytes_timeout_ms;
        if let Some(d) = self.download.as_mut().filter(|d| d.held) {
            // The request waited behind our upload (0.6): the peer has had no chance yet.
            if self.upload.is_none() {
                d.held = false;
            }
            d.deadline = now_ms.saturating_add(timeout);
            return;
        }
        let Some(d) = self.download.as_ref().filter(|d| now_ms >= d.deadline) else {
            return;
        };
        let id = d.id;
        if let Some(d) = self.download.take() {
            self.abandon(&d);
        }
        self.events.push_back(Event::DownloadFailed {
            id,
            reason: DownloadFailure::Timeout,
        });
        self.timeout_strikes += 1;
        if self.timeout_strikes >= self.config.error_retries {
            self.disconnect(DisconnectReason::TooManyTimeouts);
        }
    }

    /// Ends the session: fails the current download, drops uploads, and
    /// emits [`Event::Disconnect`]. Messages already queued stay pollable.
    pub fn disconnect(&mut self, reason: DisconnectReason) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(d) = self.download.take() {
            self.events.push_back(Event::DownloadFailed {
                id: d.id,
                reason: DownloadFailure::Disconnected,
            });
        }
        self.upload = None;
        self.held.clear();
        self.held_announcement = None;
        self.held_absent = None;
        self.pending_upload = None;
        self.decoder = Decoder::new(0);
        self.events.push_back(Event::Disconnect { reason });
    }
}

#[cfg(test)]
mod tests;
