//! The manifest format's half of a session, behind one enum: the session and the fetch loop
//! call these and never `hls.rs` or `dash.rs` directly, so the front-ends need not know them.

use std::time::Duration;

use url::Url;

use super::context::Shared;
use super::dash::DashFront;
use super::hls::{self, HlsFront};
use super::stream::{Opened, Refresh};
use super::{EngineError, Protocol};
use crate::media::{MediaPlaylist, Variant};

pub(super) enum Front {
    Hls(Box<HlsFront>),
    Dash(Box<DashFront>),
}

impl Front {
    pub fn new(protocol: Protocol) -> Self {
        match protocol {
            Protocol::Hls => Front::Hls(Box::default()),
            Protocol::Dash => Front::Dash(Box::default()),
        }
    }

    /// Reads the manifest at `location` and describes the streams to play.
    pub async fn open(&self, shared: &Shared, location: &Url) -> Result<Opened, EngineError> {
        match self {
            Front::Hls(_) => hls::open(shared, location).await,
            Front::Dash(d) => d.open(shared, location).await,
        }
    }

    /// The media playlist of variant `index` of a stream.
    pub async fn load_playlist(
        &self,
        shared: &Shared,
        track: usize,
        variant: &Variant,
        index: usize,
    ) -> Result<MediaPlaylist, EngineError> {
        match self {
            Front::Hls(_) => hls::fetch_media_playlist(shared, &variant.uri).await,
            Front::Dash(d) => d.playlist(shared, track, index).await,
        }
    }

    /// A live variant's playlist loaded for an ABR switch, on the current one's timeline.
    pub fn align_switch(&self, current: &MediaPlaylist, new: MediaPlaylist) -> MediaPlaylist {
        match self {
            Front::Hls(_) => hls::align(current, new),
            // DASH times are presentation times already shared by every Representation.
            Front::Dash(_) => new,
        }
    }

    /// How long to wait before reloading a live playlist.
    pub fn reload_wait(&self, playlist: &MediaPlaylist, changed: bool) -> Duration {
        let wait = match self {
            Front::Hls(_) => playlist.reload_interval(changed),
            Front::Dash(d) => d.reload_wait(playlist),
        };
        wait.max(Duration::from_millis(250))
    }

    /// The refreshed playlist of a live stream's current variant; `None`: ask again later.
    /// `block`: (segment, part) an LL-HLS server should wait for before it answers.
    pub async fn reload(
        &self,
        shared: &Shared,
        track: usize,
        index: usize,
        old: &MediaPlaylist,
        attempts: &mut u32,
        block: Option<(u64, Option<u64>)>,
    ) -> Result<Option<(MediaPlaylist, Refresh)>, EngineError> {
        match self {
            Front::Hls(h) => hls::reload(h, shared, old, attempts, block).await,
            Front::Dash(d) => d
                .reload(shared, track, index)
                .await
                .map(|p| Some((p, Refresh::Continued))),
        }
    }
}
