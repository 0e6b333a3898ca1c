//! Behavioural tests of the scheduler (both policies).

use super::*;
use crate::schedule::config::SchedulerConfig;

const P1: PeerKey = PeerKey(1);
const P2: PeerKey = PeerKey(2);
const P3: PeerKey = PeerKey(3);
const P4: PeerKey = PeerKey(4);

fn segs(n: u64) -> Vec<SegmentInfo> {
    (0..n)
        .map(|id| SegmentInfo {
            id,
            start_ms: id * 2000,
            duration_ms: 2000,
            size_hint: Some(500_000),
        })
        .collect()
}

fn drain(s: &mut Scheduler) -> Vec<Command> {
    std::iter::from_fn(|| s.poll_command()).collect()
}

fn http_ids(cmds: &[Command]) -> Vec<SegmentId> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::HttpFetch { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

fn p2p_reqs(cmds: &[Command]) -> Vec<(PeerKey, SegmentId, TransferId)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::P2pRequest { peer, id, xfer } => Some((*peer, *id, *xfer)),
            _ => None,
        })
        .collect()
}

fn xfer_of(cmds: &[Command], want: SegmentId) -> TransferId {
    cmds.iter()
        .find_map(|c| match c {
            Command::HttpFetch { xfer, id } if *id == want => Some(*xfer),
            Command::P2pRequest { xfer, id, .. } if *id == want => Some(*xfer),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no transfer for {want} in {cmds:?}"))
}

/// A VOD scheduler with `n` 2-s segments, player asking for segment 0 at t=0.
fn vod(cfg: SchedulerConfig, n: u64) -> Scheduler {
    let mut s = Scheduler::new(cfg, 42, 0);
    s.handle_segments(0, false, &segs(n));
    s.handle_playback(0, 0, 1.0, false);
    s.handle_player_request(0, 0);
    s
}

#[test]
fn pml_high_demand_goes_to_http_within_the_limit() {
    let mut s = vod(SchedulerConfig::pml(), 30);
    let cmds = drain(&mut s);
    assert_eq!(http_ids(&cmds), vec![0, 1], "2 simultaneous HTTP, in order");
    assert!(p2p_reqs(&cmds).is_empty());
    assert!(
        cmds.contains(&Command::Announce),
        "HTTP start re-announces `p`"
    );
    assert_eq!(s.http_loading_ids(), vec![0, 1]);
    // Completing segment 0 delivers it and starts the next high-demand segment.
    let x0 = xfer_of(&cmds, 0);
    assert_eq!(
        s.handle_transfer_done(100, x0, 500_000),
        Some((0, Source::Http))
    );
    let cmds = drain(&mut s);
    assert!(cmds.contains(&Command::Deliver { id: 0 }));
    assert_eq!(http_ids(&cmds), vec![2]);
    assert_eq!(s.active_transfers(), (2, 0));
}

#[test]
fn pml_high_demand_window_bounds_http() {
    // Playing at 0 s: segments overlapping [0, 15 s] are high demand = ids 0..=7.
    let mut s = vod(SchedulerConfig::pml(), 30);
    s.handle_playback(0, 0, 1.0, true);
    let mut fetched = Vec::new();
    for round in 0..20u64 {
        let cmds = drain(&mut s);
        for c in &cmds {
            if let Command::HttpFetch { xfer, id } = c {
                fetched.push(*id);
                s.handle_transfer_done(round, *xfer, 1000);
            }
        }
    }
    assert_eq!(fetched, (0..=7).collect::<Vec<_>>());
}

#[test]
fn no_peers_means_no_random_prefetch() {
    for cfg in [SchedulerConfig::pml(), SchedulerConfig::ours()] {
        let mut s = vod(cfg, 100);
        s.handle_swarm_counts(0, 0, 1);
        s.handle_playback(0, 0, 1.0, true);
        let mut t = 0;
        let mut fetched = Vec::new();
        while t < 10_000 {
            for c in drain(&mut s) {
                if let Command::HttpFetch { xfer, id } = c {
                    fetched.push(id);
                    s.handle_transfer_done(t, xfer, 1000);
                }
            }
            t = s.poll_timeout().unwrap_or(t + 100).max(t + 1);
            s.handle_timeout(t);
        }
        // Position at 10 s: high demand reaches 25 s = segment 12; nothing beyond.
        assert!(!fetched.is_empty());
        assert!(fetched.iter().all(|&id| id <= 12), "{fetched:?}");
    }
}

#[test]
fn random_prefetch_with_peers_fetches_what_nobody_has() {
    let mut s = vod(SchedulerConfig::pml(), 100);
    s.handle_playback(0, 0, 1.0, true);
    s.handle_peer_connected(0, P1);
    s.handle_peer_announce(0, P1, &[20, 21, 22], &[23]);
    let mut t = 0;
    let mut fetched = Vec::new();
    while t < 20_000 {
        for c in drain(&mut s) {
            if let Command::HttpFetch { xfer, id } = c {
                fetched.push(id);
                s.handle_transfer_done(t, xfer, 1000);
            }
        }
        t = s.poll_timeout().unwrap_or(t + 100).max(t + 1);
        s.handle_timeout(t);
    }
    let beyond: Vec<_> = fetched.iter().filter(|&&id| id > 17).collect();
    assert!(!beyond.is_empty(), "random prefetch beyond high demand");
    assert!(
        fetched.iter().all(|id| !(20..=23).contains(id)),
        "never fetches what a peer has or is HTTP-loading: {fetched:?}"
    );
}

#[test]
fn p2p_prefetch_respects_limits_and_one_request_per_peer() {
    let mut s = vod(SchedulerConfig::pml(), 40);
    for p in [P1, P2, P3, P4] {
        s.handle_peer_connected(0, p);
        s.handle_peer_announce(0, p, &(20..40).collect::<Vec<_>>(), &[]);
    }
    let cmds = drain(&mut s);
    let reqs = p2p_reqs(&cmds);
    assert_eq!(reqs.len(), 3, "simultaneous-p2p-downloads = 3");
    let mut peers: Vec<_> = reqs.iter().map(|r| r.0).collect();
    peers.sort();
    peers.dedup();
    assert_eq!(peers.len(), 3, "one download per connection");
    assert!(reqs.iter().all(|r| r.1 >= 20));
    assert_eq!(s.active_transfers(), (2, 3));
}

#[test]
fn http_retries_then_player_error() {
    let mut cfg = SchedulerConfig::pml();
    cfg.simultaneous_http_downloads = 1;
    let mut s = vod(cfg, 3);
    let mut attempts = 0;
    let mut t = 0;
    loop {
        let cmds = drain(&mut s);
        if cmds.contains(&Command::PlayerError { id: 0 }) {
            break;
        }
        let Some(x) = cmds.iter().find_map(|c| match c {
            Command::HttpFetch { xfer, id: 0 } => Some(*xfer),
            _ => None,
        }) else {
            panic!("expected a retry, got {cmds:?}")
        };
        attempts += 1;
        t += 10;
        assert_eq!(s.handle_transfer_failed(t, x, TransferError::Http), Some(0));
    }
    assert_eq!(attempts, 3, "http-error-retries = 3 attempts");
    // Exhausted: no further HTTP for segment 0 until the history clears.
    let cmds = drain(&mut s);
    assert!(!http_ids(&cmds).contains(&0));
}

#[test]
fn p2p_inactivity_timeouts_disconnect_after_retries() {
    let mut cfg = SchedulerConfig::pml();
    cfg.simultaneous_http_downloads = 0; // isolate P2P
    let mut s = vod(cfg, 30);
    s.handle_peer_connected(0, P1);
    s.handle_peer_announce(0, P1, &[0, 1, 2, 3, 4, 5], &[]);
    let mut t = 0;
    let mut aborts = 0;
    let mut disconnected = false;
    for _ in 0..10 {
        let cmds = drain(&mut s);
        aborts += cmds
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Command::Abort {
                        source: Source::P2p(_),
                        ..
                    }
                )
            })
            .count();
        if cmds.contains(&Command::DisconnectPeer { peer: P1 }) {
            disconnected = true;
            break;
        }
        t += 2000; // p2p-not-receiving-bytes-timeout
        s.handle_timeout(t);
    }
    assert!(disconnected);
    assert_eq!(aborts, 3, "p2p-error-retries = 3");
}

#[test]
fn progress_defers_the_inactivity_timeout() {
    let mut s = vod(SchedulerConfig::pml(), 5);
    let cmds = drain(&mut s);
    let x = xfer_of(&cmds, 0);
    assert_eq!(s.poll_timeout(), Some(1000), "random tick comes first");
    s.handle_transfer_progress(2500, x, 10_000, None);
    s.handle_timeout(3100);
    let cmds = drain(&mut s);
    assert!(!cmds
        .iter()
        .any(|c| matches!(c, Command::Abort { xfer, .. } if *xfer == x)));
    s.handle_timeout(5500);
    let cmds = drain(&mut s);
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::Abort { xfer, .. } if *xfer == x)));
}

/// The `p2p-longest-stall-ms` statistic: only gaps between bytes of one P2P download count,
/// and a stall into the inactivity timeout (not the wait for the first byte, not HTTP).
#[test]
fn longest_p2p_gap_is_measured_inside_p2p_downloads() {
    let mut cfg = SchedulerConfig::pml();
    cfg.simultaneous_http_downloads = 0;
    let timeout = cfg.p2p_not_receiving_bytes_timeout_ms;
    assert!(timeout > 600);
    let mut s = vod(cfg, 30);
    s.handle_peer_connected(0, P1);
    s.handle_peer_announce(0, P1, &[0], &[]);
    let cmds = drain(&mut s);
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::P2pRequest { id: 0, .. })));
    let x = xfer_of(&cmds, 0);
    s.handle_transfer_progress(700, x, 1_000, None);
    s.handle_transfer_progress(900, x, 2_000, None);
    s.handle_transfer_progress(1_500, x, 3_000, None);
    s.handle_transfer_progress(1_600, x, 3_000, None);
    assert_eq!(s.longest_p2p_gap_ms(), 600);
    // No byte after 1.5 s: the download times out, and that stall counts.
    s.handle_timeout(1_500 + timeout);
    assert!(drain(&mut s)
        .iter()
        .any(|c| matches!(c, Command::Abort { xfer, .. } if *xfer == x)));
    assert_eq!(s.longest_p2p_gap_ms(), timeout);
}

#[test]
fn segment_absent_forgets_and_late_events_are_ignored() {
    let mut cfg = SchedulerConfig::pml();
    cfg.simultaneous_http_downloads = 0;
    let mut s = vod(cfg, 30);
    s.handle_peer_connected(0, P1);
    s.handle_peer_announce(0, P1, &[0], &[]);
    let cmds = drain(&mut s);
    let x = xfer_of(&cmds, 0);
    assert_eq!(
        s.handle_transfer_failed(10, x, TransferError::PeerAbsent),
        Some(0)
    );
    assert!(
        p2p_reqs(&drain(&mut s)).is_empty(),
        "P1 no longer counts as holder"
    );
    // A completion for the forgotten transfer is ignored.
    assert_eq!(s.handle_transfer_done(20, x, 1), None);
    assert!(!s.is_stored(0));
}

#[test]
fn initial_http_hold() {
    let mut cfg = SchedulerConfig::pml();
    cfg.http_download_initial_timeout_ms = 2000;
    let mut s = vod(cfg, 10);
    assert!(http_ids(&drain(&mut s)).is_empty());
    s.handle_timeout(1999);
    assert!(http_ids(&drain(&mut s)).is_empty());
    s.handle_timeout(2000);
    assert_eq!(http_ids(&drain(&mut s)), vec![0, 1]);
}

#[test]
fn stored_request_is_delivered_at_once_and_segments_leaving_the_list_abort() {
    let mut s = Scheduler::new(SchedulerConfig::pml(), 1, 0);
    s.handle_segments(0, true, &segs(10)[5..]);
    s.handle_playback(0, 10_000, 1.0, true);
    s.handle_segment_stored(0, 5);
    s.handle_player_request(0, 5);
    let cmds = drain(&mut s);
    assert!(cmds.contains(&Command::Deliver { id: 5 }));
    let x6 = xfer_of(&cmds, 6);
    // The live window slides past 6 and the player moved on.
    s.handle_segments(100, true, &segs(12)[8..]);
    s.handle_player_request(100, 8);
    let cmds = drain(&mut s);
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::Abort { xfer, .. } if *xfer == x6)));
}

#[test]
fn ours_alone_behaves_like_http_only() {
    let mut s = vod(SchedulerConfig::ours(), 30);
    s.handle_swarm_counts(0, 0, 1); // only ourselves
    assert_eq!(http_ids(&drain(&mut s)), vec![0, 1]);
}

#[test]
fn ours_startup_waits_for_promised_peers_then_falls_back() {
    let cfg = SchedulerConfig::ours();
    let wait = cfg.peer_wait_ms;
    let mut s = vod(cfg.clone(), 30);
    s.handle_swarm_counts(50, 0, 3);
    assert!(http_ids(&drain(&mut s)).is_empty(), "swarm promised: wait");
    s.handle_peer_connected(600, P1);
    s.handle_peer_announce(650, P1, &(0..30).collect::<Vec<_>>(), &[]);
    let reqs = p2p_reqs(&drain(&mut s));
    assert_eq!(reqs.first().map(|r| (r.0, r.1)), Some((P1, 0)));

    // Nobody shows up: HTTP before the startup budget is spent.
    let mut s = vod(cfg, 30);
    s.handle_swarm_counts(50, 0, 3);
    drain(&mut s);
    let mut t = 50;
    let mut got = Vec::new();
    while t < wait && got.is_empty() {
        t = s.poll_timeout().unwrap_or(t + 10).max(t + 1);
        s.handle_timeout(t);
        got = http_ids(&drain(&mut s));
    }
    assert_eq!(got.first(), Some(&0));
    assert!(t < wait, "fell back at {t} ms, budget {wait} ms");
}

#[test]
fn ours_waits_for_a_peers_http_fetch_until_urgent() {
    let mut s = vod(SchedulerConfig::ours(), 30);
    s.handle_swarm_counts(0, 0, 2);
    for id in 0..3 {
        s.handle_segment_stored(0, id);
    }
    s.handle_peer_connected(0, P1);
    s.handle_peer_announce(0, P1, &[0, 1, 2], &[3]);
    s.handle_playback(0, 0, 1.0, true);
    let cmds = drain(&mut s);
    assert!(cmds.contains(&Command::Deliver { id: 0 }));
    // Segments 4.. are high demand too but nobody has them: with a peer around we leave them
    // to the swarm until they get urgent.
    assert!(http_ids(&cmds).is_empty(), "{cmds:?}");
    // Segment 3 starts at 6 s. Right before it becomes urgent nothing is fetched; once
    // urgent (urgent-time-window + 2 × assumed HTTP time before its start) HTTP takes over.
    s.handle_playback(3500, 3500, 1.0, true);
    assert!(!http_ids(&drain(&mut s)).contains(&3));
    s.handle_playback(4100, 4100, 1.0, true);
    assert!(http_ids(&drain(&mut s)).contains(&3));
}

#[test]
fn pml_does_not_wait_for_a_peers_http_fetch() {
    let mut s = vod(SchedulerConfig::pml(), 30);
    s.handle_peer_connected(0, P1);
    s.handle_peer_announce(0, P1, &[], &[0, 1]);
    assert_eq!(http_ids(&drain(&mut s)), vec![0, 1]);
}

#[test]
fn random_inputs_never_panic_and_keep_limits() {
    use crate::schedule::rng::Rng;
    for (seed, cfg) in [(1, SchedulerConfig::pml()), (2, SchedulerConfig::ours())] {
        let mut r = Rng::new(seed);
        let mut s = Scheduler::new(cfg.clone(), seed, 0);
        let mut t = 0u64;
        let mut live: Vec<TransferId> = Vec::new();
        for _ in 0..20_000 {
            t += r.below(300);
            match r.below(12) {
                0 => {
                    let lo = r.below(50);
                    s.handle_segments(t, r.below(2) == 0, &segs(lo + r.below(30))[lo as usize..]);
                }
                1 => s.handle_playback(t, r.below(120_000), 0.5 + r.next_f64(), r.below(2) == 0),
                2 => s.handle_player_request(t, r.below(80)),
                3 => s.handle_peer_connected(t, PeerKey(r.below(6))),
                4 => {
                    let l: Vec<u64> = (0..r.below(20)).map(|_| r.below(80)).collect();
                    let p: Vec<u64> = (0..r.below(4)).map(|_| r.below(80)).collect();
                    s.handle_peer_announce(t, PeerKey(r.below(6)), &l, &p);
                }
                5 => s.handle_peer_disconnected(t, PeerKey(r.below(6))),
                6 => s.handle_swarm_counts(t, r.below(3), r.below(50)),
                7 if !live.is_empty() => {
                    let x = live.swap_remove(r.below(live.len() as u64) as usize);
                    s.handle_transfer_done(t, x, r.below(1_000_000));
                }
                8 if !live.is_empty() => {
                    let x = live[r.below(live.len() as u64) as usize];
                    let err = [
                        TransferError::Http,
                        TransferError::PeerAbsent,
                        TransferError::PeerFailed,
                    ][r.below(3) as usize];
                    s.handle_transfer_failed(t, x, err);
                }
                9 if !live.is_empty() => {
                    let x = live[r.below(live.len() as u64) as usize];
                    s.handle_transfer_progress(t, x, r.below(1_000_000), None);
                }
                10 => s.handle_segments_evicted(t, &[r.below(80)]),
                _ => {
                    t = s.poll_timeout().unwrap_or(t).max(t);
                    s.handle_timeout(t);
                }
            }
            for c in drain(&mut s) {
                match c {
                    Command::HttpFetch { xfer, .. } | Command::P2pRequest { xfer, .. } => {
                        live.push(xfer)
                    }
                    Command::Abort { xfer, .. } => live.retain(|x| *x != xfer),
                    _ => {}
                }
            }
            let (h, p) = s.active_transfers();
            assert!(h <= cfg.simultaneous_http_downloads && p <= cfg.simultaneous_p2p_downloads);
        }
    }
}

#[test]
fn ours_silent_tracker_delays_startup_only_briefly() {
    let cfg = SchedulerConfig::ours();
    let mut s = vod(cfg.clone(), 30);
    assert!(
        http_ids(&drain(&mut s)).is_empty(),
        "waits for the tracker's answer"
    );
    let t = s.poll_timeout().unwrap_or(u64::MAX);
    assert!(
        t <= cfg.tracker_wait_ms,
        "wakes up by tracker-wait-ms, got {t}"
    );
    s.handle_timeout(cfg.tracker_wait_ms);
    assert_eq!(
        http_ids(&drain(&mut s)),
        vec![0, 1],
        "then behaves like HTTP-only"
    );

    let mut s = vod(cfg, 30);
    s.handle_tracker_unavailable(10);
    assert_eq!(http_ids(&drain(&mut s)), vec![0, 1]);
}

/// `Policy::Seed`: the request of the seeder's own output is fetched first and delivered;
/// live, the newest segments come next; nothing is fetched twice, nothing from a peer.
#[test]
fn seed_fetches_each_listed_segment_once_and_delivers_the_outputs_request() {
    let mut s = Scheduler::new(SchedulerConfig::seed(), 1, 0);
    let listed = segs(20)[10..].to_vec();
    s.handle_segments(0, true, &listed);
    s.handle_peer_connected(0, PeerKey(1));
    s.handle_peer_announce(0, PeerKey(1), &[17, 18, 19], &[]);
    s.handle_player_request(0, 12);
    let mut fetches = Vec::new();
    let mut xfers = Vec::new();
    let mut delivered = Vec::new();
    for round in 0..20 {
        while let Some(c) = s.poll_command() {
            match c {
                Command::HttpFetch { xfer, id } => {
                    fetches.push(id);
                    xfers.push(xfer);
                }
                Command::P2pRequest { .. } => panic!("a seeder never downloads from peers"),
                Command::Deliver { id } => delivered.push(id),
                _ => {}
            }
        }
        let now = 100 * (round + 1);
        for x in std::mem::take(&mut xfers) {
            s.handle_transfer_done(now, x, 1000);
        }
    }
    // The output's request first, then newest first within the live span (15 s = 8 of
    // these 2-s segments, at least 4), and each once.
    assert_eq!(fetches[0], 12);
    assert_eq!(&fetches[1..4], &[19, 18, 17]);
    let mut sorted = fetches.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), fetches.len(), "{fetches:?}");
    // The span: 15 s back from the end (40 s) takes the segments ending after 25 s.
    assert_eq!(sorted, (12..=19).collect::<Vec<_>>(), "{fetches:?}");
    assert_eq!(delivered, vec![12]);
    // Evicted and listed again: not fetched again.
    s.handle_segments_evicted(5000, &[19]);
    s.handle_segments(5000, true, &listed);
    assert!(
        std::iter::from_fn(|| s.poll_command()).all(|c| !matches!(c, Command::HttpFetch { .. }))
    );
}

/// `max-download-rate`: a seeder's pulls are spread so their bytes average the rate; the
/// output's request is not held back.
#[test]
fn seed_download_rate_paces_the_pulls() {
    let mut cfg = SchedulerConfig::seed();
    cfg.seed_download_rate = 100_000; // a 100-kB segment per second
    cfg.simultaneous_http_downloads = 1;
    let mut s = Scheduler::new(cfg, 1, 0);
    s.handle_segments(0, false, &segs(10));
    let mut starts = Vec::new();
    let mut now = 0;
    while now <= 5_000 {
        while let Some(c) = s.poll_command() {
            if let Command::HttpFetch { xfer, id } = c {
                starts.push((now, id));
                // Done at once: the rate, not the transfer time, spaces them.
                s.handle_transfer_done(now, xfer, 100_000);
            }
        }
        now += 50;
        s.handle_timeout(now);
    }
    assert_eq!(starts[0], (0, 0));
    // One 100-kB segment per second: 6 starts in 0..=5 s, each at least ~1 s after the last.
    assert_eq!(starts.len(), 6, "{starts:?}");
    assert!(
        starts.windows(2).all(|w| w[1].0 - w[0].0 >= 950),
        "{starts:?}"
    );
    // The output's request jumps the pacing.
    s.handle_player_request(now, 9);
    let fetched: Vec<SegmentId> = std::iter::from_fn(|| s.poll_command())
        .filter_map(|c| match c {
            Command::HttpFetch { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(fetched, vec![9]);
}
