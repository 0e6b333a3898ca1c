//! One run of one output stream's fetch loop, from a start position until EOS, an error or a
//! seek: picks the next segment, lets ABR switch variants at segment boundaries, gets the
//! segment through the swarm or the origin, checks it and hands it to the output queue.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use super::context::{lock, Presentation, Shared};
use super::front::Front;
use super::origin::{http_error, DIRECT_SEGMENT_FETCHES};
use super::output::{Fragment, OutputItem};
use super::p2p::{LoadError, SwarmHandle};
use super::stream::{Refresh, StreamState};
use super::{EngineConfig, EngineError, ErrorKind, LiveFreezeAction, CAT};
use crate::abr;
use crate::manifest::start::{low_latency_start, start_point, PartStart, Start};
use crate::media::{Aes128Key, MediaPlaylist, MediaType, Resource, Segment};
use crate::net::http::BodyKind;
use crate::payload::decrypt::aes128_cbc_decrypt;
use crate::payload::hashes::HashVerdict;
use crate::payload::sniff::sniff;
use crate::payload::verify::Plausibility;
use crate::payload::SegmentBuf;
use crate::swarm::place as swarm_place;

/// How many times a segment whose bytes are not media (HTML error page, garbage) is fetched again.
const BAD_DATA_RETRIES: u32 = 2;
/// The longest the fetch loop waits for the swarm before it asks the origin itself (at least
/// three segment durations): the swarm's own rules make it answer long before.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// One run of one stream's fetch loop.
pub(super) struct Fetcher {
    shared: Arc<Shared>,
    front: Arc<Front>,
    stream: Arc<Mutex<StreamState>>,
    /// Output queue feed this run feeds (a flush or a rendition switch bumps it and our pushes
    /// are refused).
    feed: u64,
    /// What the origin's decrypted segments taught, by playlist: decrypted peer data is
    /// judged by it (clear peer data was judged by the swarm).
    plausibility: Mutex<HashMap<Url, Plausibility>>,
    /// `mode=seeder`: output that found no room was dropped; the next fragment is a
    /// discontinuity.
    dropped: AtomicBool,
    /// `mode=seeder`: when the output's first fragment went out, and its start: the output
    /// goes no faster than real time (its requests are the swarm's only unpaced pulls).
    paced_from: Mutex<Option<(tokio::time::Instant, Duration)>>,
}

impl Fetcher {
    pub fn new(shared: Arc<Shared>, front: Arc<Front>, stream: Arc<Mutex<StreamState>>) -> Self {
        let feed = lock(&stream).queue.feed();
        Fetcher {
            shared,
            front,
            stream,
            feed,
            plausibility: Mutex::new(HashMap::new()),
            dropped: AtomicBool::new(false),
            paced_from: Mutex::new(None),
        }
    }

    fn playlist(&self) -> Arc<MediaPlaylist> {
        let st = lock(&self.stream);
        st.playlists[&st.current].clone()
    }

    fn kind(&self) -> MediaType {
        lock(&self.stream).kind
    }

    fn seeder(&self) -> bool {
        self.shared.config.seeder.is_some()
    }

    /// Hands `item` to the output; false once flushed (a seek restarts us). A seeder's output
    /// never waits for downstream (what finds no room is dropped) and never ends: the
    /// seeder goes on serving until the pipeline stops.
    async fn push(&self, item: OutputItem) -> bool {
        let queue = lock(&self.stream).queue.clone();
        if !self.seeder() {
            return queue.push(self.feed, item).await.is_ok();
        }
        if matches!(item, OutputItem::Eos) {
            gst::info!(
                CAT,
                "{:?}: end of the stream; seeding goes on until the pipeline stops",
                self.kind()
            );
            return true;
        }
        match queue.try_push(self.feed, item) {
            Ok(true) => true,
            Ok(false) => {
                gst::trace!(
                    CAT,
                    "{:?}: seeder output full, fragment dropped",
                    self.kind()
                );
                self.dropped.store(true, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// [`Self::run`]; a subtitles stream that fails ends with a warning instead (its text is
    /// not worth the audio and video).
    pub async fn run_stream(&mut self, start: Start) -> Result<(), EngineError> {
        match self.run(start).await {
            Err(e) if self.kind() == MediaType::Subtitles => {
                gst::warning!(CAT, "subtitles stopped: {}", e.message);
                self.shared.warn(EngineError {
                    message: format!("Subtitles stopped: {}", e.message),
                    ..e
                });
                self.push(OutputItem::Eos).await;
                Ok(())
            }
            r => r,
        }
    }

    async fn run(&mut self, start: Start) -> Result<(), EngineError> {
        let kind = self.kind();
        let playlist = self.playlist();
        // Past the end this is `len`: nothing left but EOS (or, live, the next segment to come).
        let mut point = start_point(&playlist, start);
        let first = point.index;
        let mut part_cursor: Option<PartCursor> = None;
        let mut next_seq = match playlist.segments.get(first) {
            Some(s) => s.sequence,
            None => match playlist.segments.last() {
                None => playlist.media_sequence,
                Some(s) => match s.sequence.checked_add(1) {
                    Some(n) => n,
                    None => return self.end_of_sequence_space().await,
                },
            },
        };
        gst::info!(
            CAT,
            "{kind:?}: {start:?} starts at segment {next_seq} (index {first} of {}), at {:?}",
            playlist.segments.len(),
            point.position
        );
        if let Some(ps) = (start == Start::LiveEdge)
            .then(|| self.low_latency_start(&playlist))
            .flatten()
        {
            next_seq = ps.sequence;
            point.position = ps.position;
            let listed = playlist.find_sequence(ps.sequence);
            if ps.part > 0 || listed.is_none() {
                part_cursor = Some(PartCursor::new(&playlist, ps.sequence, ps.part));
                self.join_swarm_before(&playlist, ps.sequence);
            }
            gst::info!(
                CAT,
                "{kind:?}: low latency: starts at part {} of segment {next_seq}, at {:?} \
                 (PART-HOLD-BACK {:?} from the live edge)",
                ps.part,
                ps.position,
                part_hold_back(&playlist)
            );
        }
        lock(&self.stream)
            .queue
            .set_start(self.feed, point.position);
        let mut discont = true;
        let mut last_init: Option<Resource> = None;
        loop {
            let playlist = self.playlist();
            if self.low_latency_on(&playlist) {
                match self
                    .part_step(
                        &playlist,
                        next_seq,
                        &mut part_cursor,
                        discont,
                        &mut last_init,
                    )
                    .await?
                {
                    PartStep::Segment => {}
                    PartStep::Pushed => {
                        discont = false;
                        continue;
                    }
                    PartStep::Skipped => {
                        discont = true;
                        continue;
                    }
                    PartStep::Flushed => {
                        gst::debug!(CAT, "{kind:?}: flushed, stopping (a seek restarts us)");
                        return Ok(());
                    }
                    PartStep::Done => {
                        let Some(n) = next_seq.checked_add(1) else {
                            return self.end_of_sequence_space().await;
                        };
                        next_seq = n;
                        // ABR decides at segment boundaries here too (sequence numbers are
                        // shared by the variants); the new variant's swarm is joined at once,
                        // so that what comes next is given to it, not to the old one.
                        if self.maybe_switch().await {
                            discont = true;
                            last_init = None;
                            self.join_swarm_before(&self.playlist(), next_seq);
                        }
                        continue;
                    }
                    PartStep::Refreshed(Refresh::Rebased) => {
                        let p = self.playlist();
                        next_seq = p.segments.first().map_or(next_seq, |s| s.sequence);
                        part_cursor = None;
                        discont = true;
                        gst::info!(CAT, "{kind:?}: new timeline, continuing at {next_seq}");
                        continue;
                    }
                    PartStep::Refreshed(Refresh::Ended) => {
                        self.push(OutputItem::Eos).await;
                        return Ok(());
                    }
                    PartStep::Refreshed(Refresh::Continued) => continue,
                }
            } else if part_cursor.take().is_some() {
                // Parts went away mid-segment (a variant without them): the rest of that
                // segment is lost, the next one follows.
                gst::info!(
                    CAT,
                    "{kind:?}: no parts any more, continuing after segment {next_seq}"
                );
                let Some(n) = next_seq.checked_add(1) else {
                    return self.end_of_sequence_space().await;
                };
                next_seq = n;
                discont = true;
                continue;
            }
            // The next segment, or the first after it: DASH numbering jumps at Period
            // boundaries, and a live window may have slid past us (we were too slow).
            let Some(index) = playlist.first_from_sequence(next_seq) else {
                if !playlist.is_live() {
                    gst::info!(CAT, "{kind:?}: no segment {next_seq} or later: EOS");
                    self.push(OutputItem::Eos).await;
                    return Ok(());
                }
                match self.wait_for_refresh(&playlist, None).await? {
                    Refresh::Rebased => {
                        let p = self.playlist();
                        next_seq = p.segments.first().map_or(next_seq, |s| s.sequence);
                        discont = true;
                        gst::info!(CAT, "{kind:?}: new timeline, continuing at {next_seq}");
                    }
                    Refresh::Ended => {
                        self.push(OutputItem::Eos).await;
                        return Ok(());
                    }
                    Refresh::Continued => {}
                }
                continue;
            };
            let segment = playlist.segments[index].clone();
            if segment.sequence != next_seq {
                // Normal at DASH Period boundaries; on HLS, the live window slid past us.
                gst::debug!(
                    CAT,
                    "{kind:?}: no segment {next_seq}, continuing at {}",
                    segment.sequence
                );
                discont = true;
            }
            if segment.gap {
                gst::debug!(CAT, "{kind:?}: segment {} is a gap", segment.sequence);
                let Some(n) = segment.sequence.checked_add(1) else {
                    return self.end_of_sequence_space().await;
                };
                next_seq = n;
                discont = true;
                continue;
            }
            // ABR decides at segment boundaries, and only the main stream has variants.
            if self.maybe_switch().await {
                let p = self.playlist();
                if let Some(i) = p.segment_index_at(segment.start + Duration::from_millis(1)) {
                    next_seq = p.segments[i].sequence;
                    gst::debug!(CAT, "{kind:?}: new variant resumes at segment {next_seq}");
                    discont = true;
                    last_init = None;
                    continue;
                }
            }
            let init = if segment.init.is_some() && (segment.init != last_init || discont) {
                let r = segment.init.clone().expect("checked");
                let data = self
                    .shared
                    .origin
                    .fetch_kind(&r, BodyKind::Init)
                    .await
                    .map_err(http_error)
                    .inspect_err(|e| {
                        gst::warning!(CAT, "{kind:?}: init section {}: {}", r.url, e.message)
                    })?
                    .data;
                gst::debug!(
                    CAT,
                    "{kind:?}: init section {} ({} bytes)",
                    r.url,
                    data.len()
                );
                last_init = Some(r);
                Some(match &segment.init_key {
                    Some(key) => {
                        self.decrypt(&data, key, segment.sequence, &segment.resource.url)
                            .await?
                    }
                    None => data,
                })
            } else {
                None
            };
            let (data, direct) = DIRECT_SEGMENT_FETCHES
                .scope(Cell::new(0), async {
                    let data = self.fetch_segment(&playlist, index).await;
                    (data, DIRECT_SEGMENT_FETCHES.with(Cell::get))
                })
                .await;
            let data = data.inspect_err(|e| {
                gst::warning!(CAT, "{kind:?}: segment {}: {}", segment.sequence, e.message)
            })?;
            let source = self.source(&playlist, direct);
            let bytes = data.len();
            let fragment = Fragment {
                init,
                data,
                start: segment.start,
                duration: segment.duration,
                discont: discont
                    || segment.discontinuity
                    || self.dropped.swap(false, Ordering::Relaxed),
                media_offset_ns: segment.media_offset_ns.unwrap_or(0),
                program_date_time_ns: segment.program_date_time_ns,
            };
            if !self.push(OutputItem::Fragment(fragment)).await {
                gst::debug!(CAT, "{kind:?}: flushed, stopping (a seek restarts us)");
                return Ok(());
            }
            gst::debug!(
                CAT,
                "{kind:?}: pushed segment {} ({bytes} bytes) {source}",
                segment.sequence
            );
            if self.seeder() {
                self.pace(&segment).await;
            }
            discont = false;
            let Some(n) = segment.sequence.checked_add(1) else {
                return self.end_of_sequence_space().await;
            };
            next_seq = n;
        }
    }

    fn low_latency_on(&self, playlist: &MediaPlaylist) -> bool {
        low_latency_applies(&self.shared.config, playlist)
    }

    fn low_latency_start(&self, playlist: &MediaPlaylist) -> Option<PartStart> {
        low_latency_start_of(&self.shared.config, playlist)
    }

    /// One step of LL-HLS playback at segment `next_seq`: push its next part, or finish it
    /// (its assembled bytes go to the swarm, to be shared like any segment), or wait for the
    /// next part. A complete segment none of whose parts was played is left to the usual
    /// whole-segment path ([`PartStep::Segment`]).
    async fn part_step(
        &self,
        playlist: &Arc<MediaPlaylist>,
        next_seq: u64,
        cursor: &mut Option<PartCursor>,
        discont: bool,
        last_init: &mut Option<Resource>,
    ) -> Result<PartStep, EngineError> {
        let kind = self.kind();
        let ll = playlist
            .low_latency
            .as_deref()
            .expect("checked by low_latency_on");
        let listed = playlist.find_sequence(next_seq);
        let produced = playlist
            .segments
            .last()
            .map_or(playlist.media_sequence, |s| s.sequence.saturating_add(1));
        if cursor.as_ref().is_some_and(|c| c.sequence != next_seq) {
            *cursor = None;
        }
        if listed.is_none() && next_seq != produced {
            // Neither complete nor being produced: we fell a window behind, or the numbering
            // jumped. The whole-segment path finds where to go on.
            if cursor.take().is_some() {
                gst::info!(
                    CAT,
                    "{kind:?}: segment {next_seq} is neither listed nor being produced \
                     (next: {produced}): its parts are given up"
                );
            }
            return Ok(PartStep::Segment);
        }
        if cursor.is_none() {
            if listed.is_some() {
                return Ok(PartStep::Segment);
            }
            *cursor = Some(PartCursor::new(playlist, next_seq, 0));
        }
        let c = cursor.as_mut().expect("set above");
        let parts = ll.parts_of(next_seq).unwrap_or(&[]);
        if let Some(part) = parts.get(c.next) {
            let start = c.segment_start + c.offset;
            let pdt = c
                .pdt
                .and_then(|t| t.checked_add(i64::try_from(c.offset.as_nanos()).ok()?));
            c.next += 1;
            c.offset += part.duration;
            if part.gap {
                c.whole = false;
                c.data.clear();
                return Ok(PartStep::Skipped);
            }
            // The EXT-X-MAP in force: the segment's, or for one still being produced, the
            // last segment's.
            let parent = listed
                .map(|i| &playlist.segments[i])
                .or(playlist.segments.last());
            let init = match parent.and_then(|s| s.init.clone()) {
                Some(r) if discont || last_init.as_ref() != Some(&r) => {
                    let data = self
                        .shared
                        .origin
                        .fetch_kind(&r, BodyKind::Init)
                        .await
                        .map_err(http_error)?
                        .data;
                    *last_init = Some(r);
                    Some(data)
                }
                _ => None,
            };
            // Counted and sampled for ABR like any segment download.
            let fetched = self
                .shared
                .origin
                .fetch(&part.resource, true)
                .await
                .map_err(http_error)
                .and_then(|f| match sniff(&f.data) {
                    Some(_) => Ok(f.data),
                    None => Err(EngineError {
                        kind: ErrorKind::Format,
                        message: format!("Part {} is not media", part.resource.url),
                        debug: format!("first bytes: {:?}", &f.data[..f.data.len().min(32)]),
                    }),
                });
            let data = match fetched {
                Ok(d) => {
                    c.failures = 0;
                    d
                }
                // A part the CDN does not have yet, or garbage: skipped (a gap of one part),
                // not the end of playback; several in a row are.
                Err(e) if c.failures < MAX_PART_FAILURES => {
                    c.failures += 1;
                    gst::warning!(
                        CAT,
                        "{kind:?}: part {} of {next_seq} skipped: {}",
                        c.next - 1,
                        e.message
                    );
                    c.whole = false;
                    c.data.clear();
                    return Ok(PartStep::Skipped);
                }
                Err(e) => {
                    gst::warning!(
                        CAT,
                        "{kind:?}: part {} of {next_seq}: {}",
                        c.next - 1,
                        e.message
                    );
                    return Err(e);
                }
            };
            let bytes = data.len();
            if c.whole {
                c.kept += data.len() as u64;
                if c.kept > self.shared.config.http.max_segment_bytes {
                    // More than any segment may be: not kept to share.
                    c.whole = false;
                    c.data.clear();
                } else {
                    c.data.push(data.clone());
                }
            }
            let fragment = Fragment {
                init,
                data,
                start,
                duration: part.duration,
                discont,
                media_offset_ns: 0,
                program_date_time_ns: pdt,
            };
            if !self.push(OutputItem::Fragment(fragment)).await {
                return Ok(PartStep::Flushed);
            }
            gst::debug!(
                CAT,
                "{kind:?}: pushed part {} of segment {next_seq} ({bytes} bytes, {:?}) from the \
                 origin",
                c.next - 1,
                part.duration
            );
            return Ok(PartStep::Pushed);
        }
        if let Some(i) = listed {
            let c = cursor.take().expect("set above");
            if parts.is_empty() {
                // We fell so far behind that the playlist no longer lists its parts.
                gst::warning!(
                    CAT,
                    "{kind:?}: segment {next_seq}'s parts are no longer listed after {} of them: \
                     its rest is skipped",
                    c.next
                );
            } else if c.whole {
                self.share_assembled(playlist, &playlist.segments[i], c.data);
            }
            return Ok(PartStep::Done);
        }
        let wanted = (next_seq, c.next as u64);
        Ok(PartStep::Refreshed(
            self.wait_for_refresh(playlist, Some(wanted)).await?,
        ))
    }

    /// A segment played part by part, now complete: its parts' bytes, in order, are the
    /// segment (packagers write a segment as the concatenation of its parts), handed to the
    /// swarm to be shared as if it had been fetched whole.
    fn share_assembled(&self, playlist: &Arc<MediaPlaylist>, segment: &Segment, parts: Vec<Bytes>) {
        if self.shared.hub.is_none() {
            return;
        }
        let mut whole = Vec::with_capacity(parts.iter().map(Bytes::len).sum());
        for p in &parts {
            whole.extend_from_slice(p);
        }
        gst::debug!(
            CAT,
            "{:?}: segment {} assembled from {} parts ({} bytes): shared",
            self.kind(),
            segment.sequence,
            parts.len(),
            whole.len()
        );
        let whole = Bytes::from(whole);
        // Given first, then the playlist that lists it: the swarm stores it before it sees
        // it missing (else it may fetch it from the origin for the other peers). The swarm
        // is the current variant's: joined at the start and at every switch.
        if let Some((swarm, _)) = lock(&self.stream).swarm.clone() {
            swarm.give(segment.sequence, whole.clone());
        }
        self.give_mirrors(segment, whole);
        self.swarm_for(playlist);
    }

    /// LL-HLS: joins the current variant's swarm told only the segments before `sequence`:
    /// the ones from there on come as parts, and must not look missing to it.
    fn join_swarm_before(&self, playlist: &MediaPlaylist, sequence: u64) {
        if self.shared.hub.is_none() {
            return;
        }
        let mut before = playlist.clone();
        before.segments.retain(|s| s.sequence < sequence);
        self.swarm_for(&Arc::new(before));
    }

    /// `mode=seeder`: waits until real time reaches the end of `segment` on the output's
    /// timeline. Nobody consumes a seeder's output in real time, so without this it would ask
    /// the swarm for a whole VOD at once, past `max-download-rate` and `max-store-size`.
    async fn pace(&self, segment: &Segment) {
        let until = {
            let mut from = lock(&self.paced_from);
            let (t0, start) = *from.get_or_insert((tokio::time::Instant::now(), segment.start));
            if segment.start < start {
                // A new timeline (a seek, a rebased live stream): start over from here.
                *from = Some((tokio::time::Instant::now(), segment.start));
                return;
            }
            t0 + segment.end().saturating_sub(start)
        };
        tokio::time::sleep_until(until).await;
    }

    /// Segment `u64::MAX` was the last: no segment can follow it (a live playlist would have
    /// to wrap, which HLS forbids), so the stream ends here rather than replaying from 0.
    async fn end_of_sequence_space(&self) -> Result<(), EngineError> {
        gst::warning!(
            CAT,
            "{:?}: the playlist reached the last media sequence number ({}): EOS",
            self.kind(),
            u64::MAX
        );
        self.push(OutputItem::Eos).await;
        Ok(())
    }

    /// Whole segment, decrypted and checked to be media: through the swarm when P2P is on
    /// (store, peers or origin, as the scheduler decides), else — or if that fails or its
    /// bytes do not decode — straight from the origin, retrying bad data a few times.
    async fn fetch_segment(
        &self,
        playlist: &Arc<MediaPlaylist>,
        index: usize,
    ) -> Result<Bytes, EngineError> {
        let segment = &playlist.segments[index];
        if let Some(swarm) = self.swarm_for(playlist) {
            // Data that does not decode is dropped from the swarm (never shared on); from a
            // peer, the peer goes too and the swarm fetches the segment again from the origin
            // (bounded: one peer copy). Bad origin data goes to the retrying direct path below.
            // A swarm that does not answer in time is passed over the same way: never a hang.
            let wait = LOAD_TIMEOUT.max(segment.duration * 3);
            for _ in 0..2 {
                match tokio::time::timeout(wait, swarm.load(segment.sequence)).await {
                    // Encrypted: judged here after decryption, and only once an origin segment
                    // of its discontinuity anchored the timestamps (a replayed segment would
                    // pass before). Nobody's fault: the origin's copy, no blame.
                    Ok(Ok(loaded)) if loaded.from_peer && !self.judgeable(playlist, segment) => {
                        gst::debug!(
                            CAT,
                            "segment {}: no origin segment of discontinuity {} yet, \
                             the peer's copy cannot be judged: from the origin",
                            segment.sequence,
                            segment.discontinuity_sequence
                        );
                        break;
                    }
                    Ok(Ok(loaded)) => match self
                        .decode(playlist, segment, loaded.data.clone(), loaded.from_peer)
                        .await
                    {
                        Ok(data) => {
                            swarm.verified(segment.sequence);
                            self.give_mirrors(segment, loaded.data);
                            return Ok(data);
                        }
                        // Not the data's fault (the key server failed): no one to blame.
                        Err(e) if e.kind != ErrorKind::Format => return Err(e),
                        Err(e) => {
                            gst::warning!(
                                CAT,
                                "segment {} did not decode: {}",
                                segment.sequence,
                                e.message
                            );
                            swarm.reject(segment.sequence, e.message);
                            if !loaded.from_peer {
                                break;
                            }
                        }
                    },
                    Ok(Err(LoadError::Failed)) | Ok(Err(LoadError::Gone)) => break,
                    Err(_) => {
                        gst::warning!(
                            CAT,
                            "the swarm gave no segment {} in {wait:?}: from the origin",
                            segment.sequence
                        );
                        break;
                    }
                }
            }
        }
        let mut bad = 0;
        loop {
            let fetched = self
                .shared
                .origin
                .fetch(&segment.resource, true)
                .await
                .map_err(http_error)?;
            let raw = fetched.data.clone();
            let checked = match self.check_hash(segment, &fetched.data) {
                Ok(()) => self.decode(playlist, segment, fetched.data, false).await,
                Err(e) => Err(e),
            };
            match checked {
                Ok(data) => {
                    self.give_mirrors(segment, raw);
                    return Ok(data);
                }
                Err(e) if e.kind != ErrorKind::Format => return Err(e),
                Err(e) => {
                    bad += 1;
                    if bad > BAD_DATA_RETRIES {
                        return Err(e);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The bridged families' swarms (`compat` with several) get each segment the player used,
    /// as it came (still encrypted, if it is): they serve it and fetch nothing themselves.
    fn give_mirrors(&self, segment: &Segment, raw: Bytes) {
        for m in &lock(&self.stream).mirrors {
            m.give(segment.sequence, raw.clone());
        }
    }

    /// The origin's bytes against `segment-hashes-url` (the swarm checks what goes through
    /// it): a mismatch is bad data, retried and then an error; a segment the table does not
    /// list is used, as a player without the table would.
    fn check_hash(&self, segment: &Segment, data: &[u8]) -> Result<(), EngineError> {
        let Some(book) = &self.shared.hashes else {
            return Ok(());
        };
        match book.current().verdict(&segment.resource, data) {
            HashVerdict::Mismatch => {
                gst::warning!(
                    CAT,
                    "segment {} ({}) from the origin does not match its published SHA-256",
                    segment.sequence,
                    segment.resource.url
                );
                Err(EngineError {
                    kind: ErrorKind::Format,
                    message: format!(
                        "{} (range {:?}) does not match its SHA-256 in segment-hashes-url",
                        segment.resource.url, segment.resource.range
                    ),
                    debug: String::new(),
                })
            }
            HashVerdict::Match | HashVerdict::Unknown => Ok(()),
        }
    }

    /// Where the segment just fetched from `playlist` came from, for the log: `direct` is how
    /// many times this loop downloaded it from the origin itself (more than once: bad data).
    fn source(&self, playlist: &Arc<MediaPlaylist>, direct: u32) -> String {
        let swarm_tried = lock(&self.stream)
            .swarm
            .as_ref()
            .is_some_and(|(_, told)| Arc::ptr_eq(told, playlist));
        let retries = match direct {
            0 | 1 => String::new(),
            n => format!(", {} bad download(s) retried", n - 1),
        };
        match (direct, swarm_tried) {
            (0, _) => "through the swarm".into(),
            (_, true) => format!("straight from the origin (the swarm failed){retries}"),
            (_, false) => format!("straight from the origin{retries}"),
        }
    }

    /// Whether a peer's copy of `segment` can be judged here: clear data was judged by the
    /// swarm already; decrypted data needs an origin segment of its discontinuity first.
    fn judgeable(&self, playlist: &MediaPlaylist, segment: &Segment) -> bool {
        segment.key.is_none()
            || lock(&self.plausibility)
                .get(&playlist.url)
                .is_some_and(|p| p.anchored(swarm_place(segment)))
    }

    /// Decrypts if needed and checks the bytes are media: decrypted data from a peer must also
    /// be plausible (container, structure, timestamps) by what the origin's segments taught.
    async fn decode(
        &self,
        playlist: &MediaPlaylist,
        segment: &Segment,
        data: Bytes,
        from_peer: bool,
    ) -> Result<Bytes, EngineError> {
        let data = match &segment.key {
            Some(key) => {
                self.decrypt(&data, key, segment.sequence, &segment.resource.url)
                    .await?
            }
            None => data,
        };
        if segment.key.is_some() {
            let place = swarm_place(segment);
            let mut known = lock(&self.plausibility);
            let p = known.entry(playlist.url.clone()).or_default();
            if from_peer {
                if let Err(why) = p.judge(place, &data) {
                    gst::warning!(
                        CAT,
                        "segment {} from a peer is not plausible: {why}",
                        segment.sequence
                    );
                    return Err(EngineError {
                        kind: ErrorKind::Format,
                        message: format!("{}: peer data {why}", segment.resource.url),
                        debug: String::new(),
                    });
                }
            } else {
                p.learn(place, &data);
            }
        }
        // Text (WebVTT, TTML) goes to its own pad and parser: no container to check.
        if sniff(&data).is_some() || self.kind() == MediaType::Subtitles {
            return Ok(data);
        }
        gst::warning!(
            CAT,
            "segment {} ({}) is not media: {} bytes, starting {:?}",
            segment.sequence,
            segment.resource.url,
            data.len(),
            &data[..data.len().min(8)]
        );
        Err(EngineError {
            kind: ErrorKind::Format,
            message: format!(
                "{} is not a media segment (neither MPEG-TS, fMP4, WebM, packed audio nor WebVTT)",
                segment.resource.url
            ),
            debug: format!("first bytes: {:?}", &data[..data.len().min(32)]),
        })
    }

    /// The swarm of the stream's current variant, told about `playlist` if it changed.
    fn swarm_for(&self, playlist: &Arc<MediaPlaylist>) -> Option<SwarmHandle> {
        let hub = self.shared.hub.as_ref()?;
        let mut st = lock(&self.stream);
        let key = st.swarm_ids.get(st.current)?.clone();
        let handle = hub.swarm(&key, st.queue.clone())?;
        let (fresh, moved) = match &st.swarm {
            Some((old, told)) if old.same_swarm(&handle) => (!Arc::ptr_eq(told, playlist), false),
            _ => {
                if let Some((old, _)) = st.swarm.take() {
                    hub.release(&old);
                }
                (true, true)
            }
        };
        // The bridged families' swarms follow the variant too (not a seeder's: its followers
        // feed only the played family's swarms, `seed::follow`).
        if moved && self.shared.config.seeder.is_none() {
            for old in std::mem::take(&mut st.mirrors) {
                hub.release(&old);
            }
            let keys = st.bridge_ids.get(st.current).cloned().unwrap_or_default();
            let queue = st.queue.clone();
            st.mirrors = keys
                .iter()
                .filter_map(|k| hub.swarm(k, queue.clone()))
                .collect();
        }
        if fresh {
            // A seeder's swarms hear their playlists from their followers (`seed::follow`)
            // alone: this loop, paced to real time, may hold an older one.
            if self.shared.config.seeder.is_none() {
                handle.set_segments(playlist.clone());
                for m in &st.mirrors {
                    m.set_segments(playlist.clone());
                }
            }
            st.swarm = Some((handle.clone(), playlist.clone()));
        }
        Some(handle)
    }

    async fn decrypt(
        &self,
        data: &[u8],
        key: &Aes128Key,
        sequence: u64,
        url: &Url,
    ) -> Result<Bytes, EngineError> {
        let k = self.shared.origin.key(&key.uri).await?;
        aes128_cbc_decrypt(&k, &key.iv_for(sequence), data)
            .map(SegmentBuf::freeze)
            .map_err(|e| EngineError {
                kind: ErrorKind::Format,
                message: format!("Could not decrypt {url}: {e}"),
                debug: String::new(),
            })
    }

    /// Picks the variant for the next segment; fetches its playlist if it changed.
    /// Returns true when the stream switched.
    async fn maybe_switch(&self) -> bool {
        // A seeder's output stays on the variant it was given: ABR would only move swarms.
        if self.seeder() {
            return false;
        }
        let (bandwidths, current, variant, track, cached, from, est) = {
            let st = lock(&self.stream);
            if st.variants.len() < 2 {
                return false;
            }
            let bw: Vec<u64> = st.variants.iter().map(|v| v.bandwidth).collect();
            let est = self.shared.origin.estimate_bps();
            let want = abr::select_variant(&bw, est, &self.shared.abr());
            if want == st.current {
                return false;
            }
            let cached = st.playlists.get(&want).filter(|p| !p.is_live()).cloned();
            let variant = st.variants[want].clone();
            (bw, want, variant, st.track, cached, st.current, est)
        };
        let playlist = match cached {
            Some(p) => p,
            // A variant we cannot load is skipped for now; the current one keeps playing.
            None => match self
                .front
                .load_playlist(&self.shared, track, &variant, current)
                .await
            {
                Ok(p) if p.is_live() => Arc::new(self.front.align_switch(&self.playlist(), p)),
                Ok(p) => Arc::new(p),
                Err(e) => {
                    gst::warning!(
                        CAT,
                        "ABR: cannot load variant {current} ({} bit/s), staying on {from}: {}",
                        bandwidths[current],
                        e.message
                    );
                    return false;
                }
            },
        };
        let mut st = lock(&self.stream);
        gst::info!(
            CAT,
            "ABR: {:?} switches from variant {from} ({} bit/s) to {current} ({} bit/s), \
             estimate {}",
            st.kind,
            bandwidths[from],
            bandwidths[current],
            est.map_or_else(|| "none".to_string(), |b| format!("{b} bit/s"))
        );
        st.playlists.insert(current, playlist);
        st.current = current;
        self.shared
            .origin
            .stats
            .variant_bitrate
            .store(bandwidths[current], Ordering::Relaxed);
        true
    }

    /// How long to wait before looking at a live playlist again: a seeder's output looks at
    /// what its follower (`seed::follow`) last loaded, often; a player reloads as the
    /// front-end says.
    fn refresh_wait(&self, p: &MediaPlaylist, changed: bool) -> Duration {
        if self.seeder() {
            Duration::from_millis(250)
        } else {
            self.front.reload_wait(p, changed)
        }
    }

    /// `mode=seeder`: the playlist the variant's follower loaded, if it moved on from `old`
    /// (the follower is its only reloader: two reloaders of one URL would each see the
    /// other's news as "unchanged").
    fn followed(&self, old: &MediaPlaylist) -> Option<(MediaPlaylist, Refresh)> {
        let p = self.playlist();
        let last = |p: &MediaPlaylist| p.segments.last().map(|s| s.sequence);
        if last(&p) == last(old) && p.end_list == old.end_list {
            return None;
        }
        // Only an encoder restart takes a live playlist's last sequence number down.
        let outcome = if last(&p) < last(old) {
            Refresh::Rebased
        } else {
            Refresh::Continued
        };
        Some(((*p).clone(), outcome))
    }

    /// Live: waits for the playlist to grow, reloading it as its front-end says. A playlist
    /// that stops growing gets a warning after 3 target durations and, after
    /// `live-freeze-timeout`, an error or (`live-freeze-action=eos`) [`Refresh::Ended`].
    ///
    /// `part`: LL-HLS, (segment, part) the loop waits for; it is news once listed. A server
    /// that can block reloads is asked to answer when the wanted segment or part exists,
    /// without waiting first.
    async fn wait_for_refresh(
        &self,
        old: &Arc<MediaPlaylist>,
        part: Option<(u64, u64)>,
    ) -> Result<Refresh, EngineError> {
        let ll = old.low_latency.as_deref();
        let can_block = !self.seeder() && ll.is_some_and(|l| l.can_block_reload);
        let next_seq = old
            .segments
            .last()
            .map_or(old.media_sequence, |s| s.sequence.saturating_add(1));
        let block = match part {
            Some((msn, p)) => Some((msn, Some(p))),
            None => Some((next_seq, None)),
        }
        .filter(|_| can_block);
        // Without blocking, parts are polled at their target duration.
        let poll = |p: &MediaPlaylist, changed: bool| match (part, p.low_latency.as_deref()) {
            (Some(_), Some(l)) => l
                .part_target
                .unwrap_or(p.target_duration)
                .max(Duration::from_millis(100)),
            _ => self.refresh_wait(p, changed),
        };
        let mut wait = if block.is_some() {
            Duration::ZERO
        } else {
            poll(old, true)
        };
        let mut attempts = 0;
        let since = tokio::time::Instant::now();
        let freeze = self.shared.config.live_freeze;
        let (warn_after, act_after) = freeze.limits(old.target_duration);
        let mut warned = false;
        loop {
            tokio::time::sleep(wait).await;
            let (track, current) = {
                let st = lock(&self.stream);
                (st.track, st.current)
            };
            let asked = tokio::time::Instant::now();
            let reloaded = if self.seeder() {
                self.followed(old)
            } else {
                self.front
                    .reload(&self.shared, track, current, old, &mut attempts, block)
                    .await?
            };
            // A server that says it blocks but answers at once with nothing new must not be
            // asked again at once: the next ask comes a poll interval after this one (at once
            // if this one was held that long, as a blocking server holds it).
            let since_asked = asked.elapsed();
            let after = |p: &MediaPlaylist| match block {
                Some(_) => poll(p, false).saturating_sub(since_asked),
                None => poll(p, false),
            };
            if reloaded.is_none() {
                wait = after(old);
            }
            if let Some((updated, outcome)) = reloaded {
                let grew = updated.segments.last().map(|s| s.sequence)
                    != old.segments.last().map(|s| s.sequence)
                    || updated.end_list != old.end_list
                    || part.is_some_and(|(msn, p)| lists_part(&updated, msn, p));
                let updated = Arc::new(updated);
                if self.shared.is_main(&self.stream) {
                    *lock(&self.shared.presentation) = Some(Presentation::of(&updated));
                }
                {
                    let mut st = lock(&self.stream);
                    let cur = st.current;
                    st.playlists.insert(cur, updated.clone());
                }
                if grew || outcome == Refresh::Rebased {
                    gst::debug!(
                        CAT,
                        "{:?}: playlist {outcome:?}: {} segments up to {:?}{}{}",
                        self.kind(),
                        updated.segments.len(),
                        updated.segments.last().map(|s| s.sequence),
                        match part {
                            Some((msn, p)) => format!(", waited for part {p} of {msn}"),
                            None => String::new(),
                        },
                        if updated.end_list { ", ended" } else { "" }
                    );
                    return Ok(outcome);
                }
                wait = after(&updated);
                gst::debug!(
                    CAT,
                    "{:?}: playlist unchanged, again in {wait:?}",
                    self.kind()
                );
            }
            let frozen = since.elapsed();
            let what = format!(
                "live playlist {} has had no new segment for {:.1} s",
                old.url,
                frozen.as_secs_f64()
            );
            if frozen >= act_after {
                gst::warning!(
                    CAT,
                    "{:?}: {what} (live-freeze-timeout {act_after:?}): {:?}",
                    self.kind(),
                    freeze.action
                );
                return match freeze.action {
                    LiveFreezeAction::Eos => Ok(Refresh::Ended),
                    LiveFreezeAction::Error => Err(EngineError {
                        kind: ErrorKind::Read,
                        message: format!("The stream stopped: {what}"),
                        debug: format!("live-freeze-timeout {act_after:?}"),
                    }),
                };
            }
            if !warned && frozen >= warn_after {
                warned = true;
                self.shared.warn(EngineError {
                    kind: ErrorKind::Read,
                    message: format!("The stream may have stopped: {what}"),
                    debug: format!("live-freeze-timeout {act_after:?} then {:?}", freeze.action),
                });
            }
        }
    }
}

/// What one LL-HLS step of the fetch loop did.
enum PartStep {
    /// Not a part's business: the segment is fetched whole.
    Segment,
    /// A part went out.
    Pushed,
    /// The segment's last part went out: on to the next segment.
    Done,
    /// The output was flushed.
    Flushed,
    /// A GAP part, or one that could not be had: nothing pushed, the next is a discontinuity.
    Skipped,
    /// Waited for the playlist.
    Refreshed(Refresh),
}

/// Parts in a row that may fail (each skipped) before the stream fails.
const MAX_PART_FAILURES: u32 = 3;

/// Where LL-HLS playback is inside the segment it plays part by part.
struct PartCursor {
    sequence: u64,
    /// Index of the next part to push.
    next: usize,
    segment_start: Duration,
    /// Sum of the durations of the parts before `next`.
    offset: Duration,
    /// The segment's wall-clock start, if the playlist gives one.
    pdt: Option<i64>,
    /// Parts pushed so far, kept while every one of them was (to share the whole segment),
    /// and their bytes (at most `max-segment-download-size`).
    data: Vec<Bytes>,
    kept: u64,
    whole: bool,
    /// Parts that failed in a row.
    failures: u32,
}

impl PartCursor {
    /// At part `part` of segment `sequence` (listed, or the one being produced).
    fn new(playlist: &MediaPlaylist, sequence: u64, part: usize) -> Self {
        let (segment_start, pdt) = match playlist.find_sequence(sequence) {
            Some(i) => {
                let s = &playlist.segments[i];
                (s.start, s.program_date_time_ns)
            }
            None => match playlist.segments.last() {
                Some(s) => (
                    s.end(),
                    s.program_date_time_ns
                        .and_then(|t| t.checked_add(i64::try_from(s.duration.as_nanos()).ok()?)),
                ),
                None => (Duration::ZERO, None),
            },
        };
        let offset = playlist
            .low_latency
            .as_ref()
            .and_then(|l| l.parts_of(sequence))
            .map_or(Duration::ZERO, |p| {
                p.iter().take(part).map(|p| p.duration).sum()
            });
        PartCursor {
            sequence,
            next: part,
            segment_start,
            offset,
            pdt,
            data: Vec::new(),
            kept: 0,
            whole: part == 0,
            failures: 0,
        }
    }
}

/// LL-HLS applies: `low-latency` is on, the live playlist lists parts, and its segments
/// are in the clear (parts of encrypted segments are not handled: whole segments then).
pub(super) fn low_latency_applies(config: &EngineConfig, playlist: &MediaPlaylist) -> bool {
    config.low_latency
        && config.seeder.is_none()
        && playlist.is_live()
        && playlist
            .low_latency
            .as_ref()
            .is_some_and(|l| l.part_target.is_some() && !l.parts.is_empty())
        && playlist.segments.last().is_none_or(|s| s.key.is_none())
}

/// Where a live stream starts when LL-HLS applies: PART-HOLD-BACK from the live edge.
pub(super) fn low_latency_start_of(
    config: &EngineConfig,
    playlist: &MediaPlaylist,
) -> Option<PartStart> {
    if !low_latency_applies(config, playlist) {
        return None;
    }
    low_latency_start(playlist, part_hold_back(playlist))
}

/// PART-HOLD-BACK, or 3 part targets when the playlist does not say (the spec's minimum is
/// 2).
fn part_hold_back(playlist: &MediaPlaylist) -> Duration {
    let ll = playlist.low_latency.as_deref();
    ll.and_then(|l| l.part_hold_back)
        .or_else(|| ll.and_then(|l| l.part_target).map(|t| t * 3))
        .unwrap_or(playlist.target_duration * 3)
}

/// Whether `playlist` lists part `part` of segment `msn`, or that segment complete.
fn lists_part(playlist: &MediaPlaylist, msn: u64, part: u64) -> bool {
    playlist.find_sequence(msn).is_some()
        || playlist
            .low_latency
            .as_ref()
            .and_then(|l| l.parts_of(msn))
            .is_some_and(|parts| parts.len() as u64 > part)
}
