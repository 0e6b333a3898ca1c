//! Sans-IO download scheduling for P2P Media Loader 2.x compatible swarms.
//!
//! Nothing in here does I/O or reads a clock: time is always an input (`now_ms`), randomness
//! comes from a seeded [`Rng`], and outputs are [`Command`]s the caller executes. The same code
//! drives the GStreamer element (through a tokio engine) and the deterministic swarm simulator
//! (`examples/swarm-sim.rs`).
//!
//! * [`store`]: memory-bounded segment storage with PML's eviction rules.
//! * [`config`]: every knob, with the `Policy::Pml` and `Policy::Ours` presets.
//! * [`scheduler`]: the per-stream scheduler (PML 2.3 `HybridLoader` algorithm + our variant).
//! * [`peers`]: what each connected peer announced, and per-segment availability counts.
//! * [`rng`]: the small deterministic PRNG.
//!
//! # Wiring (one `Scheduler` per stream swarm, one `SegmentStore` per element)
//!
//! * Manifest/playlist refresh → [`Scheduler::handle_segments`]; playback position (pipeline
//!   position of the stream, `playing` = advancing) → [`Scheduler::handle_playback`]; the
//!   output loop asks for the next segment with [`Scheduler::handle_player_request`] and pushes
//!   it on [`Command::Deliver`] (data from the store).
//! * Tracker reply → [`Scheduler::handle_swarm_counts`]; data channel open / announcement /
//!   close → `handle_peer_connected` / `handle_peer_announce` / `handle_peer_disconnected`.
//! * Execute [`Command::HttpFetch`] / [`Command::P2pRequest`] / [`Command::Abort`]; report
//!   `handle_transfer_progress` (per received chunk), `handle_transfer_done` (then insert the
//!   data into the store and pass evicted ids to `handle_segments_evicted`) or
//!   `handle_transfer_failed`.
//! * Re-announce (`l` = `SegmentStore::ids`, `p` = `Scheduler::http_loading_ids`) on
//!   [`Command::Announce`] and for every stream in `SegmentStore::take_changed`.
//! * After any input: drain `poll_command()`, then sleep until `poll_timeout()` and call
//!   `handle_timeout(now)`.

pub mod config;
pub mod peers;
pub mod rng;
pub mod scheduler;
pub mod store;

pub use config::{Policy, SchedulerConfig};
pub use rng::Rng;
pub use scheduler::Scheduler;
pub use store::{SegmentBytes, SegmentStore};

/// PML "externalId" of a media segment (HLS: media sequence / playlist index, DASH: start/0.5 s).
pub type SegmentId = u64;

/// Opaque handle of a connected peer, chosen by the protocol layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey(pub u64);

/// Opaque handle of one media stream (one PML swarm: a variant or an audio rendition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u32);

/// Identifies one download attempt. Events for an attempt the scheduler no longer tracks
/// (e.g. one it aborted) are ignored, so late completions cannot be confused with a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferId(pub u64);

/// One media segment of the stream, as the playlist/manifest describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: SegmentId,
    /// Presentation start on the same timeline as the playback position.
    pub start_ms: u64,
    pub duration_ms: u64,
    /// Byte size if known (byte-range segments, DASH index); used for deadline estimates only.
    pub size_hint: Option<u64>,
}

impl SegmentInfo {
    pub fn end_ms(&self) -> u64 {
        self.start_ms.saturating_add(self.duration_ms)
    }
}

/// Where a transfer fetches from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Http,
    P2p(PeerKey),
}

/// Why a transfer failed (mirrors PML's `RequestError` types that matter for scheduling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferError {
    /// HTTP error status, connection error, size mismatch or validation failure.
    Http,
    /// The peer answered `SegmentAbsent`.
    PeerAbsent,
    /// Connection closed, protocol violation or validation failure of P2P data.
    PeerFailed,
}

/// Output of the scheduler, executed by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// GET the segment from the origin (whole segment).
    HttpFetch { xfer: TransferId, id: SegmentId },
    /// Send `SegmentRequest` for `id` to `peer` (at most one per peer at a time).
    P2pRequest {
        xfer: TransferId,
        peer: PeerKey,
        id: SegmentId,
    },
    /// Stop a transfer (HTTP: drop the request; P2P: send `CancelSegmentRequest`).
    /// The scheduler has already forgotten it.
    Abort {
        xfer: TransferId,
        id: SegmentId,
        source: Source,
    },
    /// The segment the player asked for is stored: hand it to the player.
    Deliver { id: SegmentId },
    /// The segment the player asked for failed `http-error-retries` times: report an error.
    PlayerError { id: SegmentId },
    /// The peer hit `p2p-error-retries` inactivity timeouts in a row (PML disconnects it).
    DisconnectPeer { peer: PeerKey },
    /// The set of HTTP-loading ids (`p`) changed: re-announce to the swarm.
    /// (Changes of the stored set `l` are reported by [`SegmentStore::take_changed`].)
    Announce,
}
