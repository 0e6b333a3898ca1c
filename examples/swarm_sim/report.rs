//! Per-peer and total results: table and the `SIM_RESULT` JSON line.

#[derive(Debug, Clone)]
pub struct PeerResult {
    pub idx: usize,
    pub join_ms: u64,
    pub http_bytes: u64,
    pub p2p_bytes: u64,
    pub up_bytes: u64,
    pub startup_ms: Option<u64>,
    pub stalls: u32,
    pub stall_ms: u64,
    pub conns: usize,
    pub left: bool,
    pub errors: u32,
    /// HTTP bytes downloaded and thrown away (aborted, duplicate, rejected).
    pub wasted_http_bytes: u64,
    /// Delivered segments whose bytes differ from the origin's.
    pub wrong_segments: u64,
}

#[derive(Debug, Clone)]
pub struct SimResult {
    pub peers: Vec<PeerResult>,
    pub unique_bytes: u64,
    /// Origin bytes of the seeders (`--seeders`): not viewers, but the origin served them.
    pub seeder_http_bytes: u64,
    pub events: u64,
    pub sim_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub policy: String,
    pub peers: usize,
    pub p2p_share: f64,
    pub limit: f64,
    pub stalls: u64,
    pub stall_ms: u64,
    pub startup_ms_max: u64,
    pub startup_ms_median: u64,
    pub origin_bytes: u64,
    pub p2p_bytes: u64,
    pub origin_x: f64,
    pub never_started: usize,
    pub player_errors: u64,
    pub wasted_http_bytes: u64,
    pub wrong_segments: u64,
    pub sim_ms: u64,
    pub events: u64,
    pub wall_ms: u64,
}

impl SimResult {
    pub fn summary(&self, policy: &str, wall_ms: u64) -> Summary {
        let n = self.peers.len();
        let viewers_origin: u64 = self.peers.iter().map(|p| p.http_bytes).sum();
        let origin = viewers_origin + self.seeder_http_bytes;
        let p2p: u64 = self.peers.iter().map(|p| p.p2p_bytes).sum();
        let mut startups: Vec<u64> = self.peers.iter().filter_map(|p| p.startup_ms).collect();
        startups.sort_unstable();
        let never_started = self
            .peers
            .iter()
            .filter(|p| p.startup_ms.is_none() && !p.left)
            .count();
        Summary {
            policy: policy.to_string(),
            peers: n,
            // The viewers' share: what they took from the swarm of what they played.
            p2p_share: if viewers_origin + p2p > 0 {
                p2p as f64 / (viewers_origin + p2p) as f64
            } else {
                0.0
            },
            limit: if n > 0 {
                (n as f64 - 1.0) / n as f64
            } else {
                0.0
            },
            stalls: self.peers.iter().map(|p| p.stalls as u64).sum(),
            stall_ms: self.peers.iter().map(|p| p.stall_ms).sum(),
            startup_ms_max: startups.last().copied().unwrap_or(0),
            startup_ms_median: startups.get(startups.len() / 2).copied().unwrap_or(0),
            origin_bytes: origin,
            p2p_bytes: p2p,
            origin_x: origin as f64 / self.unique_bytes.max(1) as f64,
            never_started,
            player_errors: self.peers.iter().map(|p| p.errors as u64).sum(),
            wasted_http_bytes: self.peers.iter().map(|p| p.wasted_http_bytes).sum(),
            wrong_segments: self.peers.iter().map(|p| p.wrong_segments).sum(),
            sim_ms: self.sim_ms,
            events: self.events,
            wall_ms,
        }
    }

    /// Per-peer table (all peers up to 20, then a sample).
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "peer  join_s   http_MB   p2p_MB    up_MB  p2p%  startup_ms stalls stall_ms conns\n",
        );
        let n = self.peers.len();
        let step = if n <= 20 { 1 } else { n / 10 };
        // A sample, and every peer that stalled.
        let shown = self
            .peers
            .iter()
            .enumerate()
            .filter(|(i, p)| i % step.max(1) == 0 || p.stalls > 0)
            .map(|(_, p)| p);
        for p in shown {
            let tot = (p.http_bytes + p.p2p_bytes).max(1) as f64;
            s.push_str(&format!(
                "{:>4} {:>7.1} {:>9.2} {:>8.2} {:>8.2} {:>5.1} {:>11} {:>6} {:>8} {:>5}{}\n",
                p.idx,
                p.join_ms as f64 / 1000.0,
                p.http_bytes as f64 / 1e6,
                p.p2p_bytes as f64 / 1e6,
                p.up_bytes as f64 / 1e6,
                100.0 * p.p2p_bytes as f64 / tot,
                p.startup_ms.map_or("-".to_string(), |v| v.to_string()),
                p.stalls,
                p.stall_ms,
                p.conns,
                if p.left { " (left)" } else { "" },
            ));
        }
        s
    }
}

impl Summary {
    pub fn json(&self) -> String {
        format!(
            "{{\"policy\":\"{}\",\"peers\":{},\"p2p_share\":{:.4},\"limit\":{:.4},\"stalls\":{},\"stall_ms\":{},\"startup_ms_max\":{},\"startup_ms_median\":{},\"origin_bytes\":{},\"p2p_bytes\":{},\"origin_x\":{:.3},\"never_started\":{},\"player_errors\":{},\"stall_ms_total\":{},\"wasted_http_bytes\":{},\"wrong_segments\":{},\"sim_ms\":{},\"events\":{},\"wall_ms\":{}}}",
            self.policy,
            self.peers,
            self.p2p_share,
            self.limit,
            self.stalls,
            self.stall_ms,
            self.startup_ms_max,
            self.startup_ms_median,
            self.origin_bytes,
            self.p2p_bytes,
            self.origin_x,
            self.never_started,
            self.player_errors,
            self.stall_ms,
            self.wasted_http_bytes,
            self.wrong_segments,
            self.sim_ms,
            self.events,
            self.wall_ms
        )
    }

    pub fn line(&self) -> String {
        format!(
            "{:<5} p2p {:>5.1}% (limit {:>5.1}%, {:.3}×limit)  origin {:>8.1} MB ({:.2}× unique)  stalls {:>3} ({} ms)  startup max {:>5} ms med {:>5} ms  [{} events, {} ms wall]",
            self.policy,
            100.0 * self.p2p_share,
            100.0 * self.limit,
            if self.limit > 0.0 { self.p2p_share / self.limit } else { 0.0 },
            self.origin_bytes as f64 / 1e6,
            self.origin_x,
            self.stalls,
            self.stall_ms,
            self.startup_ms_max,
            self.startup_ms_median,
            self.events,
            self.wall_ms
        )
    }
}
