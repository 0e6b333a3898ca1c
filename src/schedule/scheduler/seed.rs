//! `Policy::Seed`: a seeder's plan. Nobody watches, so there is no playhead, no deadline and
//! no window: what peers will ask for is the playlist itself. Each segment is fetched from the
//! origin once, as soon as it is listed (live: newest first, from where players join; VOD: in
//! order while the store has room), and never from a peer — a seeder is where the swarm's
//! copies come from, and peer data it cannot play to check would be shared unchecked.

use super::super::config::SEED_LIVE_SPAN_MS;
use super::Scheduler;
use crate::schedule::{SegmentId, TransferId};

/// Below this free share of the store a VOD seeder stops starting downloads: the store has
/// no playhead to evict by, so what it holds is what it can serve.
const SEED_MIN_FREE: f64 = 0.05;

impl Scheduler {
    pub(super) fn process_seed(&mut self) {
        // Downloads whose segment left the playlist are of no use to anyone.
        let gone: Vec<TransferId> = self
            .transfers
            .iter()
            .filter(|(_, t)| self.segment(t.id).is_none())
            .map(|(x, _)| *x)
            .collect();
        for x in gone {
            self.abort(x);
        }
        if !self.http_allowed() {
            return;
        }
        let wanted = self.seed_order();
        let paced_until = self.seed_next_ms;
        for id in wanted {
            // The output's own request (one segment per segment duration: the fetch loop
            // paces it) neither waits for a slot nor for `max-download-rate`: a wait past the
            // fetch loop's patience would make it fetch the segment a second time itself.
            if Some(id) == self.pending_request {
                self.start_http(id);
                continue;
            }
            if self.http_active >= self.cfg.simultaneous_http_downloads {
                break;
            }
            if self.now_ms < paced_until {
                self.wake_in(paced_until - self.now_ms);
                break;
            }
            self.start_http(id);
        }
    }

    /// Segments to fetch, most useful first: the one the seeder's output asked for, then (live) the
    /// newest inside the seed span or (VOD, while the store has room) the earliest.
    fn seed_order(&self) -> Vec<SegmentId> {
        let missing = |id: SegmentId| {
            !self.stored.contains(&id)
                && !self.by_segment.contains_key(&id)
                && !self.http_exhausted(id)
        };
        // The output's own request goes first, even for a segment seeded before (rejected
        // downstream since): it is what the element's pads wait for.
        let pending = self.pending_request.filter(|id| missing(*id));
        let fetchable =
            |id: SegmentId| missing(id) && !self.seeded.contains(&id) && Some(id) != pending;
        let mut out: Vec<SegmentId> = pending.into_iter().collect();
        if !self.live && self.storage_free_ratio <= SEED_MIN_FREE {
            return out;
        }
        let ids = self.segments.iter().map(|s| s.id);
        if self.live {
            let longest = self
                .segments
                .iter()
                .map(|s| s.duration_ms)
                .max()
                .unwrap_or(0);
            let span = SEED_LIVE_SPAN_MS.max(4 * longest);
            let end = self.segments.last().map_or(0, |s| s.end_ms());
            let from = end.saturating_sub(span);
            let recent: Vec<SegmentId> = self
                .segments
                .iter()
                .rev()
                .take_while(|s| s.end_ms() > from)
                .map(|s| s.id)
                .collect();
            out.extend(recent.into_iter().filter(|id| fetchable(*id)));
        } else {
            out.extend(ids.filter(|id| fetchable(*id)));
        }
        out
    }
}
