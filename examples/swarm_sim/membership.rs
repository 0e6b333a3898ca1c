//! Joining, tracker offers, data-channel setup and departures.

use gstp2pmedia::schedule::{PeerKey, Policy, Scheduler, SchedulerConfig, SegmentInfo, TransferId};

use super::{Ev, World, STREAM};
use crate::params::{SimPolicy, StreamKind};

impl World {
    pub(super) fn on_join(&mut self, i: u32) {
        let now = self.now;
        let cfg = match self.p.policy {
            SimPolicy::Sched(pol) => SchedulerConfig::for_policy(pol),
            SimPolicy::HttpOnly => SchedulerConfig::for_policy(Policy::Pml),
        };
        let mut cfg = cfg;
        if let Some(t) = self.p.http_initial_timeout_ms {
            cfg.http_download_initial_timeout_ms = t;
        }
        for (k, v) in &self.p.overrides {
            // Validated when parsing the command line.
            let _ = cfg.set(k, v);
        }
        let seed = self.p.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let live = self.p.stream == StreamKind::Live;
        let hd = cfg.high_demand_time_window_ms;
        let mut sched = Scheduler::new(cfg, seed, now);
        let d = self.p.segment_ms;
        let (first, segs) = match self.p.stream {
            StreamKind::Vod => (0, self.playlist(0, self.p.vod_segments() - 1)),
            StreamKind::Live => {
                let upto = self.p.live_published_upto(now);
                let edge = (upto + 1) * d;
                let first = edge.saturating_sub(self.p.live_delay_ms) / d;
                self.nodes[i as usize].known_upto = upto;
                let lo = (upto + 1).saturating_sub(self.p.live_window);
                (first.max(lo), self.playlist(lo, upto))
            }
        };
        sched.handle_segments(now, live, &segs);
        sched.handle_playback(now, first * d, 1.0, false);
        sched.handle_player_request(now, first);
        let n = &mut self.nodes[i as usize];
        n.store.configure_stream(STREAM, live, hd);
        n.sched = Some(sched);
        n.joined = true;
        n.join_ms = now;
        n.first_seg = first;
        n.next_req = first;
        n.requested = Some(first);
        n.pos = first * d;
        n.pos_at = now;
        n.buffered_end = first * d;
        let lat = n.lat;
        let phase = self.rng.below(d);
        self.push(now + phase, Ev::Tick(i));
        if self.p2p_enabled() {
            self.swarm.push(i);
            self.offer(i);
            self.push(now + 2 * lat + 5, Ev::TrackerReply(i));
            let t = now + self.p.announce_interval_ms;
            self.push(t, Ev::Reannounce(i));
        }
        self.drive(i);
    }

    pub(super) fn playlist(&self, lo: u64, hi: u64) -> Vec<SegmentInfo> {
        (lo..=hi)
            .map(|id| SegmentInfo {
                id,
                start_ms: id * self.p.segment_ms,
                duration_ms: self.p.segment_ms,
                size_hint: None,
            })
            .collect()
    }

    /// Tracker relays our offers to up to `offers` distinct random swarm members.
    pub(super) fn offer(&mut self, i: u32) {
        let mut cands: Vec<u32> = Vec::new();
        let n = self.swarm.len();
        if n <= 64 {
            cands.extend(self.swarm.iter().copied());
            self.rng.shuffle(&mut cands);
        } else {
            // Large swarm: rejection-sample a few distinct members.
            for _ in 0..self.p.offers * 4 {
                let j = self.swarm[self.rng.below(n as u64) as usize];
                if !cands.contains(&j) {
                    cands.push(j);
                }
            }
        }
        let mut picked = 0;
        for j in cands {
            if picked >= self.p.offers {
                break;
            }
            if j == i || self.nodes[i as usize].neighbors.contains(&j) {
                continue;
            }
            picked += 1;
            let setup = self.rng.range(self.p.setup_ms.0, self.p.setup_ms.1);
            let t = self.now + setup;
            self.push(t, Ev::ConnOpen(i, j));
        }
    }

    pub(super) fn on_conn_open(&mut self, a: u32, b: u32) {
        if !self.alive(a) || !self.alive(b) || self.nodes[a as usize].neighbors.contains(&b) {
            return;
        }
        let cap = self.p.max_conns;
        if self.nodes[a as usize].neighbors.len() >= cap
            || self.nodes[b as usize].neighbors.len() >= cap
        {
            return;
        }
        let now = self.now;
        for (x, y) in [(a, b), (b, a)] {
            self.nodes[x as usize].neighbors.push(y);
            if let Some(s) = self.nodes[x as usize].sched.as_mut() {
                s.handle_peer_connected(now, PeerKey(y as u64));
            }
        }
        // Each side announces to the new peer right away.
        for (x, y) in [(a, b), (b, a)] {
            let snap = self.snapshot(x);
            let t = now + self.link_lat(x, y);
            self.push(
                t,
                Ev::AnnounceArrive {
                    to: y,
                    from: x,
                    snap,
                },
            );
        }
        self.drive(a);
        self.drive(b);
    }

    pub(super) fn on_leave(&mut self, i: u32) {
        if !self.alive(i) {
            return;
        }
        let now = self.now;
        self.nodes[i as usize].left = true;
        self.swarm.retain(|&x| x != i);
        let fl: Vec<u32> = self.nodes[i as usize]
            .up_flows
            .iter()
            .chain(self.nodes[i as usize].down_flows.iter())
            .copied()
            .collect();
        for f in fl {
            self.kill_flow(f, true);
        }
        let neigh = std::mem::take(&mut self.nodes[i as usize].neighbors);
        for j in neigh {
            let nj = &mut self.nodes[j as usize];
            nj.neighbors.retain(|&x| x != i);
            // Drop the sim's records of downloads from the leaver.
            if let Some(s) = nj.sched.as_mut() {
                s.handle_peer_disconnected(now, PeerKey(i as u64));
            }
            self.sync_inflight(j);
            self.drive(j);
        }
        if self.nodes[i as usize].playing {
            self.nodes[i as usize].playing = false;
        }
    }

    /// Forget sim-side transfers the scheduler no longer tracks (after a disconnect).
    pub(super) fn sync_inflight(&mut self, j: u32) {
        let live: Vec<TransferId> = self.nodes[j as usize].inflight.keys().copied().collect();
        let Some(s) = self.nodes[j as usize].sched.as_ref() else {
            return;
        };
        let (h, p) = s.active_transfers();
        if h + p == live.len() {
            return;
        }
        // Transfers from peers we are no longer connected to are the stale ones.
        let neigh = self.nodes[j as usize].neighbors.clone();
        let mut stale = Vec::new();
        for x in live {
            if let Some(Some(f)) = self.nodes[j as usize].inflight.get(&x) {
                if let Some(fl) = &self.flows[*f as usize] {
                    if let Some(src) = fl.src {
                        if !neigh.contains(&src) {
                            stale.push((x, Some(*f)));
                        }
                    }
                }
            }
        }
        for (x, f) in stale {
            self.nodes[j as usize].inflight.remove(&x);
            if let Some(f) = f {
                self.kill_flow(f, false);
            }
        }
    }
}
