//! One output stream: how a front-end describes it, its state across restarts of its fetch
//! loop, and what a live reload did to its playlist. Plain data, so that the front-ends, the
//! fetch loop and the session can all speak of streams without importing each other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::output::OutputQueue;
use super::p2p::{SwarmHandle, SwarmKey};
use crate::media::{MediaPlaylist, MediaType, Variant};
use crate::p2p::identity::{StreamProperties, StreamType as P2pStreamType};

/// One output stream as a front-end describes it before playback starts.
pub(super) struct NewStream {
    pub kind: MediaType,
    pub language: Option<String>,
    /// HLS: the master's variants; DASH: the adaptation set's representations.
    pub variants: Vec<Variant>,
    pub current: usize,
    /// A playlist the front-end already has for `current`.
    pub playlist: Option<MediaPlaylist>,
    /// Swarm identity of each variant (parallel to `variants`).
    pub swarms: Vec<SwarmSpec>,
    /// DASH: which track of the front-end this stream plays.
    pub track: usize,
    /// What an application may select instead (`Engine::select`): every HLS rendition of the
    /// group, every DASH adaptation set of the kind; empty when there is no alternative. The
    /// fields above describe `alternatives[chosen]`.
    pub alternatives: Vec<NewAlternative>,
    pub chosen: usize,
}

/// One rendition an application may select, as the element names it in its stream collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: Option<String>,
    pub language: Option<String>,
}

/// An alternative of an output stream as a front-end describes it: its variants (ABR picks
/// among them) with their swarm identities, and the front-end's track that plays them.
pub(super) struct NewAlternative {
    pub choice: Choice,
    pub variants: Vec<Variant>,
    pub swarms: Vec<SwarmSpec>,
    pub track: usize,
}

/// An alternative as the session keeps it, swarm keys resolved.
#[derive(Clone)]
pub(super) struct Alternative {
    pub variants: Vec<Variant>,
    pub swarm_ids: Vec<SwarmKey>,
    pub bridge_ids: Vec<Vec<SwarmKey>>,
    pub track: usize,
}

/// What a front-end found in the manifest.
pub(super) struct Opened {
    /// Final URL of the manifest (after redirects): the swarm id's base.
    pub manifest_url: Url,
    /// The main stream first.
    pub streams: Vec<NewStream>,
    /// Where a live presentation starts, if the front-end knows better than "3 target
    /// durations from the end of the main playlist" (DASH: suggestedPresentationDelay).
    pub live_start: Option<Duration>,
}

/// What a live reload did to a stream's playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresh {
    /// The playlist grew (or ended) on the same timeline.
    Continued,
    /// Its media sequence restarted: a new timeline after the old end.
    Rebased,
    /// Given up on (it stopped growing, `live-freeze-action=eos`): the stream ends.
    Ended,
}

/// What a variant's swarm identity is made of, in every family.
#[derive(Clone)]
pub(super) struct SwarmSpec {
    pub kind: P2pStreamType,
    /// 2.3's hashed properties.
    pub props: StreamProperties,
    /// 2.2's ordinal (and 0.6's HLS `V<i>`): the position the integration saw.
    pub position: usize,
    /// 0.6's `V<n>`: HLS, the variant's place among all the master's STREAM-INF entries;
    /// DASH, Shaka 2.x's stream id (first Period). None: 0.6 shares no such stream.
    pub v06_index: Option<usize>,
    /// HLS without a master playlist: 0.6 names the swarm after the playlist itself (no
    /// `+V<i>`).
    pub lone: bool,
}

impl SwarmSpec {
    pub fn new(kind: P2pStreamType, props: StreamProperties, position: usize) -> Self {
        SwarmSpec {
            kind,
            props,
            position,
            v06_index: None,
            lone: false,
        }
    }
}

/// Per output stream state shared between restarts of its fetch loop (seeks).
pub(super) struct StreamState {
    pub kind: MediaType,
    pub variants: Vec<Variant>,
    pub current: usize,
    pub track: usize,
    /// What an application may select instead (see `NewStream::alternatives`); the variants,
    /// swarms and track above are `alternatives[chosen]`'s.
    pub alternatives: Vec<Alternative>,
    pub chosen: usize,
    /// The alternative last selected: `chosen` once its playlist is loaded.
    pub requested: usize,
    /// Last playlist fetched per variant index (VOD playlists never change, so they are reused).
    pub playlists: HashMap<usize, Arc<MediaPlaylist>>,
    pub queue: Arc<OutputQueue>,
    /// Each variant's swarm (parallel to `variants`); empty without P2P, or when the
    /// family shares no stream of this kind.
    pub swarm_ids: Vec<SwarmKey>,
    /// Each variant's swarms of the bridged families (parallel to `variants`).
    pub bridge_ids: Vec<Vec<SwarmKey>>,
    /// The bridged families' swarms of the current variant, told the same playlist as `swarm`.
    pub mirrors: Vec<SwarmHandle>,
    /// The swarm of the current variant, and the playlist it was last told about.
    pub swarm: Option<(SwarmHandle, Arc<MediaPlaylist>)>,
}
