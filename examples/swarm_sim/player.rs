//! The player: requests, playback, stalls, playlist refresh.

use super::{Ev, World, STREAM};
use crate::params::StreamKind;

impl World {
    pub(super) fn pos_now(&self, i: u32) -> u64 {
        let n = &self.nodes[i as usize];
        if n.playing {
            n.pos + (self.now - n.pos_at)
        } else {
            n.pos
        }
    }

    pub(super) fn last_available(&self, i: u32) -> u64 {
        match self.p.stream {
            StreamKind::Vod => self.p.vod_segments() - 1,
            StreamKind::Live => self.nodes[i as usize].known_upto,
        }
    }

    pub(super) fn pump_player(&mut self, i: u32) {
        let pos = self.pos_now(i);
        let last = self.last_available(i);
        let now = self.now;
        let maxbuf = self.p.max_buffer_ms;
        let n = &mut self.nodes[i as usize];
        if n.requested.is_some() || n.finished || n.next_req > last {
            return;
        }
        if n.buffered_end.saturating_sub(pos) >= maxbuf {
            return;
        }
        n.requested = Some(n.next_req);
        let id = n.next_req;
        if let Some(s) = n.sched.as_mut() {
            s.handle_player_request(now, id);
        }
    }

    pub(super) fn on_deliver(&mut self, i: u32, id: u64) {
        let now = self.now;
        let d = self.p.segment_ms;
        let pos = self.pos_now(i);
        let n = &mut self.nodes[i as usize];
        if n.requested != Some(id) {
            return;
        }
        n.requested = None;
        n.next_req = id + 1;
        n.buffered_end = (id + 1) * d;
        if !n.started {
            n.started = true;
            n.startup_ms = Some(now - n.join_ms);
            if self.p.trace {
                println!(
                    "trace t={} peer={} STARTED after {} ms",
                    now,
                    i,
                    now - n.join_ms
                );
            }
            n.playing = true;
            n.pos = n.first_seg * d;
            n.pos_at = now;
        } else if !n.playing && !n.finished {
            n.stall_ms += now - n.stall_since;
            n.playing = true;
            n.pos = pos;
            n.pos_at = now;
        } else {
            n.pos = pos;
            n.pos_at = now;
        }
        n.play_gen += 1;
        let gen = n.play_gen;
        let at = now + (n.buffered_end - n.pos);
        let p = n.pos;
        if let Some(s) = n.sched.as_mut() {
            s.handle_playback(now, p, 1.0, true);
        }
        self.push(at, Ev::PlayheadEnd(i, gen));
        self.pump_player(i);
    }

    pub(super) fn on_playhead_end(&mut self, i: u32, gen: u32) {
        if !self.alive(i) {
            return;
        }
        let now = self.now;
        let vod_end = self.p.vod_segments() * self.p.segment_ms;
        let vod = self.p.stream == StreamKind::Vod;
        let n = &mut self.nodes[i as usize];
        if n.play_gen != gen || !n.playing {
            return;
        }
        n.pos = n.buffered_end;
        n.pos_at = now;
        n.playing = false;
        if vod && n.pos >= vod_end {
            n.finished = true;
        } else {
            n.stalls += 1;
            n.stall_since = now;
            if self.p.trace {
                println!(
                    "trace t={} peer={} STALL at pos={} joined={} conns={}",
                    now,
                    i,
                    n.pos,
                    n.join_ms,
                    n.neighbors.len()
                );
            }
        }
        let p = n.pos;
        if let Some(s) = n.sched.as_mut() {
            s.handle_playback(now, p, 1.0, false);
        }
        self.drive(i);
    }

    pub(super) fn on_tick(&mut self, i: u32) {
        if !self.alive(i) {
            return;
        }
        let now = self.now;
        if self.p.stream == StreamKind::Live {
            let upto = self.p.live_published_upto(now);
            if upto != self.nodes[i as usize].known_upto {
                let lo = (upto + 1).saturating_sub(self.p.live_window);
                let segs = self.playlist(lo, upto);
                let n = &mut self.nodes[i as usize];
                n.known_upto = upto;
                if let Some(s) = n.sched.as_mut() {
                    s.handle_segments(now, true, &segs);
                }
            }
        }
        let pos = self.pos_now(i);
        let playing = self.nodes[i as usize].playing;
        let n = &mut self.nodes[i as usize];
        let ev = n.store.set_playhead(STREAM, pos);
        if let Some(s) = n.sched.as_mut() {
            if !ev.is_empty() {
                let ids: Vec<u64> = ev.iter().map(|e| e.1).collect();
                s.handle_segments_evicted(now, &ids);
            }
            s.handle_playback(now, pos, 1.0, playing);
        }
        self.pump_player(i);
        let t = now + self.p.segment_ms;
        self.push(t, Ev::Tick(i));
        self.drive(i);
    }
}
