//! Mesh-harness tests: several real `Swarm`s over fake links, a fake tracker and origin, in
//! virtual time. Each scenario used to need real WebRTC and a node tracker.

use super::mesh::{Behaviour, Mesh, MeshConfig, MeshResult, NodeResult, NodeSpec};
use super::{SwarmConfig, HIGH_WATER};

fn nodes(n: usize, stagger_ms: u64) -> Vec<NodeSpec> {
    (0..n)
        .map(|i| NodeSpec::new(i as u64 * stagger_ms))
        .collect()
}

fn vod() -> MeshConfig {
    MeshConfig {
        vod_segments: 15,
        duration_ms: 60_000,
        ..MeshConfig::default()
    }
}

fn live() -> MeshConfig {
    MeshConfig {
        live: true,
        live_window: 6,
        live_delay_ms: 8000,
        duration_ms: 60_000,
        ..MeshConfig::default()
    }
}

/// How many times measured nodes removed a peer for this reason.
fn removed_for(r: &MeshResult, reason: &str) -> u64 {
    measured(r).filter_map(|n| n.removed_for.get(reason)).sum()
}

fn measured(r: &MeshResult) -> impl Iterator<Item = &NodeResult> {
    r.nodes.iter().filter(|n| n.measured)
}

fn share(r: &MeshResult) -> f64 {
    let (p2p, http) = measured(r).fold((0, 0), |(p, h), n| (p + n.p2p_bytes, h + n.http_bytes));
    p2p as f64 / (p2p + http).max(1) as f64
}

/// Every measured node played, got only right bytes and never waited.
fn assert_clean(r: &MeshResult, min_segments: u64) {
    for (i, n) in r.nodes.iter().enumerate().filter(|(_, n)| n.measured) {
        assert_eq!(
            n.wrong_segments, 0,
            "node {i}: wrong bytes downstream: {n:?}"
        );
        assert!(
            n.segments_played >= min_segments,
            "node {i} played {} segments: {n:?}",
            n.segments_played
        );
        assert_eq!(n.stalls, 0, "node {i} stalled: {n:?}");
    }
}

#[test]
fn vod_swarm_shares_and_every_byte_is_right() {
    let r = Mesh::new(vod(), nodes(4, 3000)).run();
    assert_clean(&r, 15);
    assert!(share(&r) > 0.5, "P2P share {:.2}", share(&r));
    let gets: u32 = r.origin_gets.values().sum();
    assert!(gets <= 15 + 3, "origin served {gets} GETs for 15 segments");
}

/// A store smaller than the prefetch windows (even than one segment) costs sharing, never a
/// second download of the same segment: nothing ahead of the playhead is dropped, and the
/// memory-pressure brake stops prefetch instead (it used to drop the segments furthest ahead
/// and fetch them again, over and over).
#[test]
fn a_small_store_never_fetches_a_segment_twice() {
    let cfg = vod();
    let stream: u64 = (0..cfg.vod_segments)
        .map(|n| Mesh::plaintext(&cfg, n).len() as u64)
        .sum();
    let segment = stream / cfg.vod_segments;
    for limit in [segment * 3 / 2, segment / 2] {
        let mut cfg = vod();
        cfg.swarm.store_limit = limit;
        let r = Mesh::new(cfg, nodes(4, 3000)).run();
        assert_clean(&r, 15);
        for (i, n) in measured(&r).enumerate() {
            assert!(
                n.http_bytes + n.p2p_bytes <= stream,
                "store of {limit} bytes: node {i} downloaded {} bytes of a {stream}-byte stream: {n:?}",
                n.http_bytes + n.p2p_bytes
            );
        }
    }
}

#[test]
fn live_swarm_shares_without_stalls() {
    let r = Mesh::new(live(), nodes(4, 4000)).run();
    assert_clean(&r, 20);
    assert!(share(&r) > 0.5, "P2P share {:.2}", share(&r));
    for n in measured(&r) {
        assert_eq!(n.skipped, 0, "{n:?}");
    }
}

#[test]
fn http_only_mesh_fetches_each_segment_once() {
    let cfg = MeshConfig {
        p2p: false,
        ..vod()
    };
    let r = Mesh::new(cfg, nodes(1, 0)).run();
    assert_clean(&r, 15);
    assert!(
        r.origin_gets.values().all(|&g| g == 1),
        "{:?}",
        r.origin_gets
    );
}

/// The scheduler's 3-s HTTP inactivity timer is fed by progress: a download that takes 5 s
/// while bytes flow is never aborted and re-fetched.
#[test]
fn slow_http_with_bytes_flowing_is_never_aborted() {
    let cfg = MeshConfig {
        // 1500 kbit/s × 2 s segments at 600 kbit/s: 5 s per segment.
        origin_kbps: Some(600),
        vod_segments: 6,
        duration_ms: 60_000,
        ..vod()
    };
    let r = Mesh::new(cfg.clone(), nodes(1, 0)).run();
    let n = &r.nodes[0];
    assert_eq!(n.segments_played, 6, "{n:?}");
    assert!(
        r.origin_gets.values().all(|&g| g == 1),
        "a segment was fetched twice: {:?}",
        r.origin_gets
    );
    assert_eq!(n.wasted_http_bytes, 0, "{n:?}");
    // The same with peers around (P2P on): still one GET per segment and node.
    let r = Mesh::new(cfg, nodes(2, 0)).run();
    for n in measured(&r) {
        assert_eq!(n.wasted_http_bytes, 0, "{n:?}");
    }
}

/// The same swarm speaking PML 0.6 (JSON commands, `<swarm>+V0+<n>` ids, completion by byte
/// count, nothing sent to a peer mid-upload): shares as 2.x does, every byte right, no stall.
fn pml06(mut cfg: MeshConfig) -> MeshConfig {
    cfg.swarm.family = crate::p2p::WireFamily::V06 {
        stream_swarm_id: "http://mesh/master.m3u8+V0".into(),
        ids: crate::p2p::wire06::Ids06::Sequence,
    };
    cfg
}

#[test]
fn pml06_vod_swarm_shares_and_every_byte_is_right() {
    let r = Mesh::new(pml06(vod()), nodes(4, 3000)).run();
    assert_clean(&r, 15);
    assert!(share(&r) > 0.5, "P2P share {:.2}", share(&r));
    let gets: u32 = r.origin_gets.values().sum();
    assert!(gets <= 15 + 3, "origin served {gets} GETs for 15 segments");
    assert_eq!(removed_for(&r, "protocol: TooManyBytes"), 0, "{r:?}");
}

#[test]
fn pml06_live_swarm_shares_without_stalls() {
    let r = Mesh::new(pml06(live()), nodes(4, 4000)).run();
    assert_clean(&r, 20);
    assert!(share(&r) > 0.5, "P2P share {:.2}", share(&r));
}

#[test]
fn pml06_liar_sending_garbage_is_dropped() {
    let r = Mesh::new(pml06(vod()), with_first(Behaviour::LiarGarbage, 3)).run();
    assert_clean(&r, 15);
    assert_eq!(measured(&r).map(|n| n.rejected_by_player).sum::<u64>(), 0);
    assert!(
        removed_for(&r, "sent data that failed the checks") >= 1,
        "{r:?}"
    );
}

fn with_first(b: Behaviour, honest: usize) -> Vec<NodeSpec> {
    let mut v = vec![NodeSpec {
        behaviour: b,
        measured: false,
        ..NodeSpec::new(0)
    }];
    v.extend((0..honest).map(|i| NodeSpec::new(2000 + i as u64 * 2000)));
    v
}

#[test]
fn liar_sending_garbage_is_dropped_and_never_reaches_the_player() {
    let r = Mesh::new(vod(), with_first(Behaviour::LiarGarbage, 3)).run();
    assert_clean(&r, 15);
    // Caught by the swarm's own checks, before anything reached the player.
    assert_eq!(measured(&r).map(|n| n.rejected_by_player).sum::<u64>(), 0);
    assert!(
        removed_for(&r, "sent data that failed the checks") >= 1,
        "{r:?}"
    );
}

#[test]
fn liar_sending_short_data_is_dropped() {
    let cfg = vod();
    let r = Mesh::new(cfg, with_first(Behaviour::LiarShort, 3)).run();
    assert_clean(&r, 15);
    assert!(removed_for(&r, "protocol: SizeMismatch") >= 1, "{r:?}");
}

/// Plausible MPEG-TS garbage passes every container check; on an AES-128 stream it cannot
/// decrypt, the player says so, and the segment comes from the origin instead.
#[test]
fn plausible_garbage_on_an_encrypted_stream_is_refetched_from_the_origin() {
    let cfg = MeshConfig {
        encrypted: true,
        ..vod()
    };
    let r = Mesh::new(cfg.clone(), with_first(Behaviour::LiarPlausibleTs, 3)).run();
    assert_clean(&r, 15);
    let rejected: u64 = measured(&r).map(|n| n.rejected_by_player).sum();
    assert!(rejected >= 1, "the liar was never asked: {r:?}");
    // Each honest node rejects the liar once: then it is dropped.
    for n in measured(&r) {
        assert!(n.rejected_by_player <= 1, "{n:?}");
    }
    // Honest encrypted peers still share (after the player verified their data).
    let r = Mesh::new(cfg, nodes(3, 3000)).run();
    assert_clean(&r, 15);
    assert!(share(&r) > 0.3, "P2P share {:.2}", share(&r));
}

/// With published hashes (PeerTube's `segments-sha256.json`) the swarm catches what the
/// container checks cannot: plausible garbage on an encrypted stream never reaches the player;
/// its sender is dropped. Honest peers share as before (no false rejection).
#[test]
fn published_hashes_catch_plausible_garbage_before_the_player() {
    let cfg = MeshConfig {
        encrypted: true,
        segment_hashes: true,
        ..vod()
    };
    let r = Mesh::new(cfg.clone(), with_first(Behaviour::LiarPlausibleTs, 3)).run();
    assert_clean(&r, 15);
    assert_eq!(measured(&r).map(|n| n.rejected_by_player).sum::<u64>(), 0);
    assert!(
        removed_for(&r, "sent data that failed the checks") >= 1,
        "{r:?}"
    );
    let r = Mesh::new(
        MeshConfig {
            encrypted: false,
            ..cfg
        },
        nodes(4, 3000),
    )
    .run();
    assert_clean(&r, 15);
    assert!(share(&r) > 0.5, "P2P share {:.2}", share(&r));
}

/// On a clear stream, MPEG-TS-looking garbage fails the swarm's own checks (headers and
/// continuity counters), before anything reaches the player.
#[test]
fn plausible_garbage_on_a_clear_stream_is_caught_by_the_swarm() {
    let r = Mesh::new(vod(), with_first(Behaviour::LiarPlausibleTs, 3)).run();
    assert_clean(&r, 15);
    assert_eq!(measured(&r).map(|n| n.rejected_by_player).sum::<u64>(), 0);
    assert!(
        removed_for(&r, "sent data that failed the checks") >= 1,
        "{r:?}"
    );
}

/// Well-formed media of the wrong segment (replayed, stale) is caught by its timestamps:
/// by the swarm on a clear stream, by the player after decryption on an AES-128 one.
#[test]
fn stale_segments_are_caught_by_their_timestamps() {
    let cfg = MeshConfig {
        vod_segments: 30,
        duration_ms: 120_000,
        ..vod()
    };
    let r = Mesh::new(cfg, with_first(Behaviour::LiarStale, 3)).run();
    assert_clean(&r, 30);
    // Misplaced media may be an origin that disagrees with itself: the peer goes after a
    // few, by id only.
    assert!(
        removed_for(&r, "sent misplaced segments") >= 1,
        "the liar was never caught: {r:?}"
    );
    let cfg = MeshConfig {
        encrypted: true,
        ..vod()
    };
    let r = Mesh::new(cfg, with_first(Behaviour::LiarStale, 3)).run();
    assert_clean(&r, 15);
    let rejected: u64 = measured(&r).map(|n| n.rejected_by_player).sum();
    assert!(rejected >= 1, "the liar was never asked: {r:?}");
}

/// The soak's finding: a stale liar right after a discontinuity (a looping live stream, an
/// ad break), before any origin segment of it was seen, got its replayed segments played —
/// nothing anchored their timestamps. Such segments now come from the origin.
#[test]
fn stale_segments_after_a_discontinuity_are_caught() {
    for encrypted in [false, true] {
        let cfg = MeshConfig {
            vod_segments: 30,
            duration_ms: 120_000,
            discontinuity_every: 5,
            encrypted,
            ..vod()
        };
        let r = Mesh::new(cfg, with_first(Behaviour::LiarStale, 3)).run();
        assert_clean(&r, 30);
        assert!(share(&r) > 0.2, "P2P share {:.2}: {r:?}", share(&r));
    }
    // Honest peers lose no more than the first segment of each discontinuity to the rule.
    let cfg = MeshConfig {
        vod_segments: 30,
        duration_ms: 120_000,
        discontinuity_every: 10,
        ..vod()
    };
    let r = Mesh::new(cfg, nodes(4, 3000)).run();
    assert_clean(&r, 30);
    assert!(share(&r) > 0.5, "P2P share {:.2}: {r:?}", share(&r));
}

#[test]
fn silent_peer_costs_no_stall() {
    let cfg = vod();
    let r = Mesh::new(cfg.clone(), with_first(Behaviour::Silent, 3)).run();
    assert_clean(&r, 15);
}

/// A byte every 1.9 s keeps PML's 2-s timeout from firing; the transfers it slows are
/// abandoned for HTTP, and after a few in a row the peer is dropped.
#[test]
fn drip_peer_costs_no_stall_and_is_dropped() {
    let cfg = MeshConfig {
        vod_segments: 30,
        duration_ms: 120_000,
        ..vod()
    };
    let r = Mesh::new(cfg, with_first(Behaviour::Drip, 3)).run();
    assert_clean(&r, 30);
    assert!(
        removed_for(&r, "too slow: transfers abandoned in a row") >= 1,
        "{r:?}"
    );
}

#[test]
fn drip_peer_on_live_costs_no_stall() {
    let cfg = live();
    let r = Mesh::new(cfg.clone(), with_first(Behaviour::Drip, 3)).run();
    assert_clean(&r, 20);
}

#[test]
fn peer_that_never_reads_costs_bounded_memory() {
    let cfg = vod();
    let mut specs = nodes(3, 2000);
    specs.push(NodeSpec {
        behaviour: Behaviour::NeverReads,
        measured: false,
        ..NodeSpec::new(8000)
    });
    let r = Mesh::new(cfg, specs).run();
    assert_clean(&r, 15);
    for n in measured(&r) {
        // One payload message may go past the mark, plus small control messages.
        assert!(
            n.backlog_max <= HIGH_WATER + 70_000,
            "backlog {}: {n:?}",
            n.backlog_max
        );
    }
    // And it does not hold its queue (and the link's writer) for ever.
    assert!(removed_for(&r, "stopped reading") >= 1, "{r:?}");
}

/// A liar that is dropped and comes back at once under a new peer id is refused: bans hold
/// by address too.
#[test]
fn dropped_liar_rejoining_under_a_new_id_is_refused() {
    let cfg = MeshConfig {
        vod_segments: 30,
        duration_ms: 120_000,
        ..vod()
    };
    let mut specs = with_first(Behaviour::LiarGarbage, 3);
    specs[0].leave_ms = Some(20_000);
    specs[0].rejoin_after_ms = Some(1_000);
    let r = Mesh::new(cfg, specs).run();
    assert_clean(&r, 30);
    let refused: u64 = measured(&r).map(|n| n.refused_banned).sum();
    assert!(refused >= 1, "the liar got back in: {r:?}");
    // Caught once per honest node: never a second time under its new id.
    for n in measured(&r) {
        let caught = n.removed_for.get("sent data that failed the checks");
        assert!(caught.copied().unwrap_or(0) <= 1, "{n:?}");
    }
}

/// A peer that asks and cancels in a loop costs us reads and queueing: it is dropped.
#[test]
fn request_cancel_loop_is_dropped() {
    let r = Mesh::new(vod(), with_first(Behaviour::RequestCancelLoop, 3)).run();
    assert_clean(&r, 15);
    assert!(removed_for(&r, "request flood") >= 1, "{r:?}");
}

/// One seeder, 20 leechers: with an upload cap the seeder never uploads faster than the
/// cap and every leecher gets a share of it; without one it serves as fast as its uplink.
/// Leechers never stall either way (HTTP carries what P2P does not).
#[test]
fn twenty_leechers_share_a_capped_seeder_fairly() {
    let cap = 1_000_000u64; // bytes/s: about four segments' playback rate
    let mut figures = Vec::new();
    for capped in [false, true] {
        let cfg = MeshConfig {
            vod_segments: 20,
            duration_ms: 60_000,
            max_conns: 24,
            swarm: SwarmConfig {
                max_upload_rate: if capped { cap } else { 0 },
                max_peers: 24,
                ..SwarmConfig::default()
            },
            ..vod()
        };
        // The seeder joins first and watches the whole stream before the others come.
        let mut specs = vec![NodeSpec {
            measured: false,
            up_kbps: 50_000,
            ..NodeSpec::new(0)
        }];
        specs.extend((0..20).map(|i| NodeSpec {
            up_kbps: 0,
            ..NodeSpec::new(45_000 + i * 100)
        }));
        let r = Mesh::new(cfg, specs).run();
        assert_clean(&r, 3);
        let seeder = &r.nodes[0];
        let from_seeder: Vec<u64> = r.nodes[1..]
            .iter()
            .map(|n| n.received_from.get(&0).copied().unwrap_or(0))
            .collect();
        let served = from_seeder.iter().filter(|b| **b > 0).count();
        figures.push((capped, seeder.upload_bytes, served));
        if capped {
            // The leechers watch for at most 15 s after joining: the cap bounds the total.
            let window_s = 60 - 45 + 1;
            assert!(
                seeder.upload_bytes <= cap * window_s + cap / 4,
                "uploaded {} bytes in {window_s} s under a {cap} B/s cap",
                seeder.upload_bytes
            );
            // No leecher takes the lion's share of a capped uplink.
            let total: u64 = from_seeder.iter().sum();
            let most = from_seeder.iter().max().copied().unwrap_or(0);
            assert!(most * 10 <= total * 4, "one leecher got {most} of {total}");
        }
    }
    let (_, free, served_free) = figures[0];
    let (_, capped, served_capped) = figures[1];
    assert!(free > capped, "the cap changed nothing: {figures:?}");
    // The cap thins the service, it does not starve the leechers who reach the seeder.
    assert!(
        served_capped >= 5 && served_capped * 2 >= served_free,
        "leechers served (free, capped): {figures:?}"
    );
}

#[test]
fn announcement_flood_costs_no_stall() {
    let cfg = vod();
    let r = Mesh::new(cfg, with_first(Behaviour::AnnounceFlood, 3)).run();
    assert_clean(&r, 15);
    assert!(
        removed_for(&r, "announced more segments than exist") >= 1,
        "{r:?}"
    );
}

#[test]
fn peer_killed_mid_transfer_costs_no_stall() {
    let cfg = live();
    let mut specs = nodes(4, 3000);
    // The first node serves most; it leaves while others download from it.
    specs[0].leave_ms = Some(30_100);
    specs[0].measured = false;
    let r = Mesh::new(cfg, specs).run();
    assert_clean(&r, 20);
}

#[test]
fn tracker_restart_costs_no_stall_and_peers_meet_afterwards() {
    let cfg = MeshConfig {
        tracker_down: vec![(5_000, 20_000)],
        announce_interval_ms: 10_000,
        ..live()
    };
    let r = Mesh::new(cfg, nodes(4, 4000)).run();
    assert_clean(&r, 20);
    assert!(
        measured(&r).all(|n| n.peers_max > 0),
        "someone never met a peer: {r:?}"
    );
}

#[test]
fn churn_with_lossy_links_costs_no_stall() {
    let cfg = MeshConfig {
        loss: 0.01,
        rtt_ms: 40,
        duration_ms: 90_000,
        ..live()
    };
    let mut specs = nodes(6, 2000);
    for (k, s) in specs.iter_mut().enumerate().skip(1).step_by(2) {
        s.leave_ms = Some(20_000 + k as u64 * 3000);
        s.rejoin_after_ms = Some(5000);
    }
    let r = Mesh::new(cfg, specs).run();
    for (i, n) in r.nodes.iter().enumerate() {
        assert_eq!(n.wrong_segments, 0, "node {i}: {n:?}");
        assert_eq!(n.stalls, 0, "node {i}: {n:?}");
    }
}

#[test]
fn same_seed_same_result() {
    let a = Mesh::new(live(), nodes(4, 4000)).run();
    let b = Mesh::new(live(), nodes(4, 4000)).run();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

// ------------------------------------------------------------------ one Swarm, by hand

mod by_hand {
    use std::time::Duration;

    use bytes::Bytes;

    use super::super::mesh::Mesh;
    use super::super::{Output, Remote, Swarm, SwarmConfig};
    use crate::media::{MediaPlaylist, PlaylistKind, Resource, Segment};
    use crate::schedule::PeerKey;

    fn playlist(first: u64, n: u64, live: bool) -> MediaPlaylist {
        let url = url::Url::parse("http://o.invalid/i.m3u8").unwrap();
        MediaPlaylist {
            url: url.clone(),
            kind: if live {
                PlaylistKind::Live
            } else {
                PlaylistKind::Vod
            },
            target_duration: Duration::from_secs(2),
            media_sequence: first,
            discontinuity_sequence: 0,
            end_list: !live,
            segments: (first..first + n)
                .map(|k| Segment {
                    resource: Resource {
                        url: url.join(&format!("s{k}.ts")).unwrap(),
                        range: None,
                    },
                    start: Duration::from_secs(2 * k),
                    duration: Duration::from_secs(2),
                    sequence: k,
                    discontinuity: false,
                    discontinuity_sequence: 0,
                    key: None,
                    init: None,
                    init_key: None,
                    gap: false,
                    start_seconds: None,
                    media_offset_ns: None,
                    program_date_time_ns: None,
                    start_in_period_seconds: None,
                })
                .collect(),
            lost_sync: false,
            low_latency: None,
        }
    }

    /// Runs timers for `ms` of virtual time; returns every output.
    fn run(s: &mut Swarm<Bytes>, from: u64, ms: u64) -> Vec<Output<Bytes>> {
        let mut outs = Vec::new();
        let mut now = from;
        while now <= from + ms {
            while let Some(o) = s.poll_output() {
                outs.push(o);
            }
            now = s
                .poll_timeout()
                .unwrap_or(now + 100)
                .clamp(now + 1, now + 100);
            s.handle_timeout(now);
        }
        while let Some(o) = s.poll_output() {
            outs.push(o);
        }
        outs
    }

    /// A swarm with a connected peer that holds nothing, the tracker promising others.
    fn crowded(p: &MediaPlaylist) -> Swarm<Bytes> {
        let mut s = Swarm::new(SwarmConfig::default(), 7, 0);
        s.handle_playlist(0, p);
        s.handle_tracker_counts(0, 0, 5);
        assert!(s.handle_peer_opened(0, PeerKey(1), remote(1)));
        s
    }

    fn remote(n: u8) -> Remote {
        Remote {
            id: [n; 20],
            addr: Some(std::net::Ipv4Addr::new(11, 0, 0, n).into()),
        }
    }

    /// After a seek the engine reports the new start as the playhead (`OutputQueue::
    /// set_start`); nobody around has the segment: it is fetched promptly.
    #[test]
    fn request_after_a_seek_is_fetched_promptly() {
        let p = playlist(0, 60, false);
        let mut s = crowded(&p);
        s.handle_playhead(0, 0);
        let _ = run(&mut s, 0, 3_000);
        s.handle_playhead(3_000, 80_000);
        s.handle_load(3_000, 40);
        let outs = run(&mut s, 3_000, 3_000);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::HttpFetch { sequence: 40, .. })),
            "segment 40 was never fetched: {outs:?}"
        );
    }

    /// A live request that slides out of the playlist is answered (the fetch loop moves on).
    #[test]
    fn request_that_leaves_the_playlist_is_answered() {
        let mut s = crowded(&playlist(10, 6, true));
        s.handle_load(10, 15);
        let _ = run(&mut s, 10, 200);
        s.handle_playlist(300, &playlist(16, 6, true));
        let outs = run(&mut s, 300, 100);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::LoadFailed { sequence: 15 })
                    || matches!(o, Output::Deliver { sequence: 15, .. })),
            "{outs:?}"
        );
    }

    /// A segment larger than the whole store is kept all the same (PML exceeds its limit
    /// rather than drop what is not played yet) and reaches the player.
    #[test]
    fn a_segment_larger_than_the_store_still_reaches_the_player() {
        let cfg = SwarmConfig {
            store_limit: 1000,
            ..SwarmConfig::default()
        };
        let mut s: Swarm<Bytes> = Swarm::new(cfg, 7, 0);
        s.handle_playlist(0, &playlist(0, 5, false));
        s.handle_tracker_unavailable(0);
        s.handle_load(0, 0);
        let outs = run(&mut s, 0, 100);
        let xfer = outs
            .iter()
            .find_map(|o| match o {
                Output::HttpFetch { xfer, .. } => Some(*xfer),
                _ => None,
            })
            .expect("an HTTP fetch");
        let data = Bytes::from(Mesh::plaintext(&super::MeshConfig::default(), 0));
        assert!(data.len() > 1000);
        let len = data.len() as u64;
        s.handle_http_done(200, xfer, data);
        let outs = run(&mut s, 200, 100);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Deliver { sequence: 0, .. })),
            "{outs:?}"
        );
        assert_eq!(s.stats().store_bytes, len);
    }

    /// A bridge's mirror (`Policy::Mirror`, here the 0.6 family beside a 2.x one) never
    /// fetches, whatever its peers and the tracker say; a segment handed over is announced
    /// and uploaded to its peers in the mirror's own protocol.
    #[test]
    fn a_mirror_fetches_nothing_and_serves_what_it_is_given() {
        use crate::p2p::{PeerConfig, PeerSession, WireFamily};
        let family = WireFamily::V06 {
            stream_swarm_id: "http://o.invalid/m.m3u8+V0".into(),
            ids: crate::p2p::wire06::Ids06::Sequence,
        };
        let cfg = SwarmConfig {
            scheduler: crate::schedule::SchedulerConfig::mirror(),
            family: family.clone(),
            ..SwarmConfig::default()
        };
        let p = playlist(0, 10, false);
        let mut s: Swarm<Bytes> = Swarm::new(cfg, 7, 0);
        s.handle_playlist(0, &p);
        s.handle_tracker_counts(0, 0, 3);
        assert!(s.handle_peer_opened(0, PeerKey(1), remote(1)));
        // The peer holds every segment: a player's swarm would ask it (and the origin).
        let holder = {
            let mut h = PeerSession::new(
                PeerConfig {
                    family: family.clone(),
                    ..PeerConfig::default()
                },
                5,
            );
            h.announce(&(0..10).collect::<Vec<_>>(), &[]);
            h
        };
        let mut holder = holder;
        while let Some(o) = holder.poll_output() {
            if let crate::p2p::Output::Send(m) = o {
                s.handle_peer_message(0, PeerKey(1), &m);
            }
        }
        let mut outs = Vec::new();
        for t in (0..20_000).step_by(500) {
            let o = run(&mut s, t, 499);
            for x in &o {
                if let Output::Transmit { data, .. } = x {
                    s.handle_peer_drained(t, PeerKey(1), data.len());
                }
            }
            outs.extend(o);
        }
        assert!(
            !outs.iter().any(|o| matches!(o, Output::HttpFetch { .. })),
            "a mirror fetched: {outs:?}"
        );
        for o in &outs {
            if let Output::Transmit { data, .. } = o {
                holder.on_message(data, 0);
            }
        }
        while let Some(o) = holder.poll_output() {
            assert!(
                !matches!(
                    o,
                    crate::p2p::Output::Event(crate::p2p::Event::UploadRequested { .. })
                ),
                "a mirror asked a peer for a segment"
            );
        }
        // The peer at the other end of the data channel, speaking 0.6.
        let mut peer = PeerSession::new(
            PeerConfig {
                family,
                ..PeerConfig::default()
            },
            3,
        );
        let deliver = |peer: &mut PeerSession, outs: &[Output<Bytes>]| {
            for o in outs {
                if let Output::Transmit { data, .. } = o {
                    peer.on_message(data, 0);
                }
            }
            let mut events = Vec::new();
            while let Some(o) = peer.poll_output() {
                if let crate::p2p::Output::Event(e) = o {
                    events.push(e);
                }
            }
            events
        };
        deliver(&mut peer, &outs);
        let cfg = super::MeshConfig::default();
        let data = Bytes::from(Mesh::plaintext(&cfg, 3));
        s.handle_segment_given(20_000, 3, data.clone());
        // Not listed: ignored.
        s.handle_segment_given(20_000, 99, data.clone());
        let outs = run(&mut s, 20_000, 100);
        deliver(&mut peer, &outs);
        assert!(
            peer.remote_has(3),
            "segment 3 was not announced: {outs:?} {:?}",
            s.stats()
        );
        peer.request(
            crate::p2p::DownloadRequest {
                id: 3,
                byte_offset: 0,
                total_bytes: None,
                max_segment_bytes: 1 << 24,
            },
            20_200,
        )
        .unwrap();
        let mut got = None;
        let mut now = 20_200;
        while got.is_none() && now < 25_000 {
            while let Some(o) = peer.poll_output() {
                if let crate::p2p::Output::Send(m) = o {
                    s.handle_peer_message(now, PeerKey(1), &m);
                }
            }
            let outs = run(&mut s, now, 50);
            for o in &outs {
                if let Output::Transmit { data, .. } = o {
                    s.handle_peer_drained(now, PeerKey(1), data.len());
                }
            }
            for e in deliver(&mut peer, &outs) {
                if let crate::p2p::Event::SegmentReceived { id, data } = e {
                    got = Some((id, data.to_vec()));
                }
            }
            now += 50;
        }
        assert_eq!(got, Some((3, data.to_vec())));
        assert_eq!(s.stats().http_bytes, 0);
    }

    /// LL-HLS: the segment a player assembled from its parts is given just before the
    /// playlist that lists it complete; the swarm keeps it, stores it when the playlist comes
    /// and never sees it missing (no origin fetch for it).
    #[test]
    fn a_segment_given_before_its_playlist_is_stored_when_it_comes() {
        let mut s: Swarm<Bytes> = Swarm::new(SwarmConfig::default(), 7, 0);
        s.handle_playlist(0, &playlist(0, 5, true));
        let cfg = super::MeshConfig::default();
        let data = Bytes::from(Mesh::plaintext(&cfg, 5));
        s.handle_segment_given(1_000, 5, data.clone());
        s.handle_playlist(1_000, &playlist(0, 6, true));
        s.handle_load(1_000, 5);
        let outs = run(&mut s, 1_000, 2_000);
        assert!(
            !outs
                .iter()
                .any(|o| matches!(o, Output::HttpFetch { sequence: 5, .. })),
            "fetched what it was given: {outs:?}"
        );
        assert!(
            outs.iter().any(|o| matches!(
                o,
                Output::Deliver { sequence: 5, data: d, .. } if *d == data
            )),
            "{outs:?}"
        );
    }

    /// A segment that came from a peer is neither announced nor uploaded until the player
    /// has used it: a liar's data, if it passed every check, goes no further than one hop.
    #[test]
    fn peer_data_is_shared_on_only_after_the_player_used_it() {
        use crate::p2p::wire::{self, Command};
        let p = playlist(0, 10, false);
        let mut s: Swarm<Bytes> = Swarm::new(SwarmConfig::default(), 7, 0);
        s.handle_playlist(0, &p);
        s.handle_tracker_counts(0, 0, 3);
        assert!(s.handle_peer_opened(0, PeerKey(1), remote(1)));
        assert!(s.handle_peer_opened(0, PeerKey(2), remote(2)));
        let id = super::super::segment_id(&p, 4, &crate::p2p::WireFamily::V2).unwrap();
        let send = |s: &mut Swarm<Bytes>, now, peer, cmd: &Command| {
            for m in wire::encode_command(cmd, 16 * 1024) {
                s.handle_peer_message(now, PeerKey(peer), &m);
            }
        };
        let all: Vec<i64> = (0..10)
            .map(|i| super::super::segment_id(&p, i, &crate::p2p::WireFamily::V2).unwrap() as i64)
            .collect();
        let announce = Command::SegmentsAnnouncement {
            loaded: all,
            http_loading: vec![],
        };
        // The segment before is the origin's: it teaches the stream's timestamps (until then
        // no peer is asked, so the peer announces afterwards).
        let cfg = super::MeshConfig {
            segment_ms: 2000,
            ..super::MeshConfig::default()
        };
        let decode = |data: &[u8]| match wire::Decoder::new(1 << 16).push(data) {
            wire::Incoming::Command(c) => Some(c),
            _ => None,
        };
        // Until an origin segment anchors the timestamps, peers are not asked at all.
        s.handle_playhead(0, 4_000);
        s.handle_load(0, 2);
        let outs = run(&mut s, 0, 10);
        let Some(xfer) = outs.iter().find_map(|o| match o {
            Output::HttpFetch {
                xfer, sequence: 2, ..
            } => Some(*xfer),
            _ => None,
        }) else {
            panic!("segment 2 was not fetched from the origin");
        };
        s.handle_http_done(10, xfer, Bytes::from(Mesh::plaintext(&cfg, 2)));
        s.handle_segment_verified(10, 2);
        send(&mut s, 10, 1, &announce);
        s.handle_playhead(10, 8_000);
        s.handle_load(10, 4);
        let outs = run(&mut s, 10, 10);
        let request = outs.iter().find_map(|o| match o {
            Output::Transmit {
                peer: PeerKey(1),
                data,
            } => match decode(data) {
                Some(Command::SegmentRequest {
                    id: i, request_id, ..
                }) if i as u64 == id => Some(request_id),
                _ => None,
            },
            _ => None,
        });
        let Some(request_id) = request else {
            panic!("segment 4 was not asked of the peer that has it");
        };
        let data = Mesh::plaintext(&cfg, 4);
        send(
            &mut s,
            20,
            1,
            &Command::SegmentData {
                id: id as i64,
                request_id,
                size: data.len() as i64,
            },
        );
        for chunk in data.chunks(16 * 1024) {
            s.handle_peer_message(20, PeerKey(1), chunk);
        }
        send(
            &mut s,
            20,
            1,
            &Command::SegmentDataSendingCompleted {
                id: id as i64,
                request_id,
            },
        );
        let outs = run(&mut s, 20, 100);
        assert!(
            outs.iter()
                .any(|o| matches!(o, Output::Deliver { sequence: 4, .. })),
            "{outs:?}"
        );
        assert!(
            !s.stored_ids().contains(&id),
            "announced before it was used"
        );
        // Peer 2 asks for it: not yet.
        let ask = Command::SegmentRequest {
            id: id as i64,
            request_id: 9,
            byte_offset: 0,
        };
        send(&mut s, 2_100, 2, &ask);
        let outs = run(&mut s, 2_100, 100);
        let answered = |outs: &[Output<Bytes>], absent: bool| {
            outs.iter().any(|o| match o {
                Output::Transmit {
                    peer: PeerKey(2),
                    data,
                } => match decode(data) {
                    Some(Command::SegmentAbsent { .. }) => absent,
                    Some(Command::SegmentData { .. }) => !absent,
                    _ => false,
                },
                _ => false,
            })
        };
        assert!(answered(&outs, true), "{outs:?}");
        s.handle_segment_verified(2_200, 4);
        assert!(s.stored_ids().contains(&id));
        let again = Command::SegmentRequest {
            id: id as i64,
            request_id: 10,
            byte_offset: 0,
        };
        send(&mut s, 2_300, 2, &again);
        let outs = run(&mut s, 2_300, 100);
        assert!(answered(&outs, false), "{outs:?}");
    }
}

/// `mode=seeder` in the mesh: a seeder that joined first fetches each live segment from the
/// origin once, as soon as it is listed, and the viewers take nearly everything from the
/// swarm — where alone they fetch the live edge themselves. Nobody stalls either way.
#[test]
fn a_live_seeder_feeds_the_viewers_and_fetches_each_segment_once() {
    let cfg = MeshConfig {
        max_conns: 12,
        swarm: SwarmConfig {
            max_upload_rate: 0,
            ..SwarmConfig::default()
        },
        ..live()
    };
    let viewers = |first_ms: u64| (0..4).map(move |i| NodeSpec::new(first_ms + i * 2000));
    let alone = Mesh::new(cfg.clone(), viewers(5000).collect()).run();
    let mut specs = vec![NodeSpec {
        seeder: true,
        measured: false,
        up_kbps: 50_000,
        ..NodeSpec::new(0)
    }];
    specs.extend(viewers(5000));
    let seeded = Mesh::new(cfg, specs).run();
    assert_clean(&alone, 10);
    assert_clean(&seeded, 10);
    let gets = |r: &MeshResult| r.origin_gets.values().map(|g| *g as u64).sum::<u64>();
    let distinct = |r: &MeshResult| r.origin_gets.len() as u64;
    eprintln!(
        "live, 4 viewers: alone P2P {:.2}, origin {} GETs of {} segments; with a seeder P2P \
         {:.2}, origin {} GETs of {} segments",
        share(&alone),
        gets(&alone),
        distinct(&alone),
        share(&seeded),
        gets(&seeded),
        distinct(&seeded)
    );
    let seeder = &seeded.nodes[0];
    assert!(
        seeder.origin_gets.values().all(|g| *g == 1),
        "the seeder fetched a segment twice: {:?}",
        seeder.origin_gets
    );
    assert!(share(&seeded) >= 0.85, "P2P share {:.2}", share(&seeded));
    assert!(share(&seeded) > share(&alone) + 0.1);
    // The seeder's own pulls and little else: besides one startup segment each (fetched
    // before any peer connected), the viewers together fetch under a tenth of one viewer's
    // stream from the origin (their random lottery still races the seeder now and then).
    let viewer_gets: u64 = measured(&seeded)
        .map(|n| n.origin_gets.values().map(|g| *g as u64).sum::<u64>())
        .sum();
    let viewers = measured(&seeded).count() as u64;
    let one_stream = measured(&seeded)
        .map(|n| n.segments_played)
        .min()
        .unwrap_or(0);
    assert!(
        viewer_gets <= viewers + one_stream / 10,
        "viewers fetched {viewer_gets} segments from the origin, one viewer played {one_stream}"
    );
}
