//! TrackerClient against a real WebTorrent tracker: bittorrent-tracker 11.2.3's server, started
//! by each test from `tests/tracker/server.mjs` (install: `npm ci --ignore-scripts --prefix
//! tests/tracker`; see tests/tracker/README.md) and killed by PID when the test ends.

mod common;

use std::time::{Duration, Instant};

use common::tracker::{node_available, TrackerProcess};

use gstp2pmedia::net::tracker::{
    InfoHash, OfferId, PeerId, ReconnectPolicy, TrackerClient, TrackerConfig, TrackerEvent,
    TrackerHandle, TrackerId,
};
use tokio::sync::mpsc::Receiver;

/// How a test starts its tracker: every test here runs against bittorrent-tracker and against
/// the strict tracker, which also fails the test if the client broke one of the rules of
/// aquatic_ws, wt-tracker or OpenWebTorrent.
type Start = fn(u16, u64) -> TrackerProcess;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn config(url: &str) -> TrackerConfig {
    TrackerConfig {
        announce_urls: vec![url.to_owned()],
        origin: Some("http://127.0.0.1".into()),
        min_interval: Duration::from_millis(100),
        reconnect: ReconnectPolicy {
            base: Duration::from_millis(200),
            max: Duration::from_secs(1),
            jitter: Duration::from_millis(100),
        },
        connect_timeout: Duration::from_secs(3),
        ..TrackerConfig::default()
    }
}

async fn next_matching<T>(
    rx: &mut Receiver<TrackerEvent>,
    within: Duration,
    mut pick: impl FnMut(&TrackerEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => {
                if let Some(v) = pick(&ev) {
                    return v;
                }
                seen.push(ev);
            }
            Ok(None) => panic!("event channel closed; seen {seen:#?}"),
            Err(_) => panic!("timed out waiting for an event; seen {seen:#?}"),
        }
    }
}

async fn need_offers(rx: &mut Receiver<TrackerEvent>, ih: InfoHash) -> (TrackerId, usize) {
    next_matching(rx, Duration::from_secs(5), |ev| match ev {
        TrackerEvent::NeedOffers {
            tracker,
            info_hash,
            count,
        } if *info_hash == ih => Some((tracker.clone(), *count)),
        _ => None,
    })
    .await
}

async fn announced(rx: &mut Receiver<TrackerEvent>, ih: InfoHash) -> (Option<u64>, Option<u64>) {
    next_matching(rx, Duration::from_secs(5), |ev| match ev {
        TrackerEvent::Announced {
            info_hash,
            complete,
            incomplete,
            ..
        } if *info_hash == ih => Some((*complete, *incomplete)),
        _ => None,
    })
    .await
}

fn ih(s: &[u8; 20]) -> InfoHash {
    InfoHash::from_bytes(s).unwrap()
}

/// Offer ids that exercise JSON escaping: NUL, controls, quote, backslash, C1, 0xFF.
fn tricky_offer_ids(n: usize) -> Vec<OfferId> {
    (0..n)
        .map(|i| {
            let mut b = *OfferId::random().as_bytes();
            b[..8].copy_from_slice(&[0x00, 0x1f, b'"', b'\\', 0x7f, 0x80, 0x9f, 0xff]);
            b[8] = i as u8;
            OfferId(b)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn offer_answer_through_real_tracker(start: Start) {
    if !node_available() {
        return;
    }
    let tracker = start(0, 600_000);
    let swarm = ih(b"J3KjvNhSbLlKe91dpkWw");
    let (pid_a, pid_b) = (
        PeerId::random_with_prefix("-PR0100-"),
        PeerId::random_with_prefix("-PR0100-"),
    );

    let (b, mut b_rx) = TrackerClient::spawn(config(&tracker.url())).unwrap();
    b.join(swarm, pid_b);
    let (t, count) = need_offers(&mut b_rx, swarm).await;
    assert_eq!(count, 5);
    // B only listens: an announce without offers keeps it in the swarm.
    assert!(b.announce(&t, swarm, Vec::new()));
    assert_eq!(announced(&mut b_rx, swarm).await, (Some(0), Some(1)));

    let (a, mut a_rx) = TrackerClient::spawn(config(&tracker.url())).unwrap();
    a.join(swarm, pid_a);
    let (t, count) = need_offers(&mut a_rx, swarm).await;
    let ids = tricky_offer_ids(count);
    let offers: Vec<(OfferId, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, format!("v=0\r\no=- {i} 2 IN IP4 127.0.0.1\r\n")))
        .collect();
    assert!(a.announce(&t, swarm, offers.clone()));
    assert_eq!(announced(&mut a_rx, swarm).await, (Some(0), Some(2)));

    // bittorrent-tracker relays offers[i] to the i-th other peer: B gets the first one.
    let (t_b, from, offer_id, sdp) =
        next_matching(&mut b_rx, Duration::from_secs(5), |ev| match ev {
            TrackerEvent::Offer {
                tracker,
                info_hash,
                peer_id,
                offer_id,
                sdp,
            } if *info_hash == swarm => Some((tracker.clone(), *peer_id, *offer_id, sdp.clone())),
            _ => None,
        })
        .await;
    assert_eq!(from, pid_a);
    assert_eq!(offer_id, ids[0]);
    assert_eq!(sdp, offers[0].1);
    assert!(b.answer(&t_b, swarm, from, offer_id, "v=0\r\nanswer\r\n".into()));

    let (answer_from, answer_id, answer_sdp) =
        next_matching(&mut a_rx, Duration::from_secs(5), |ev| match ev {
            TrackerEvent::Answer {
                info_hash,
                peer_id,
                offer_id,
                sdp,
                ..
            } if *info_hash == swarm => Some((*peer_id, *offer_id, sdp.clone())),
            _ => None,
        })
        .await;
    assert_eq!(answer_from, pid_b);
    assert_eq!(
        answer_id.as_bytes(),
        ids[0].as_bytes(),
        "offer_id must round-trip byte-exactly"
    );
    assert_eq!(answer_sdp, "v=0\r\nanswer\r\n");

    // Answering the same offer twice, or one never received, is refused locally.
    b.answer(&t_b, swarm, from, offer_id, "again".into());
    b.answer(&t_b, swarm, pid_a, ids[1], "never offered to B".into());
    for _ in 0..2 {
        next_matching(&mut b_rx, Duration::from_secs(2), |ev| {
            matches!(ev, TrackerEvent::AnswerNotSent { .. }).then_some(())
        })
        .await;
    }

    // What went over the wire, as the tracker saw it.
    tracker.wait_line(
        |l| l.starts_with("IN ") && l.contains("\"answer\""),
        Duration::from_secs(5),
    );
    let msgs = tracker.messages();
    let a_hex = String::from_utf8(pid_a.as_bytes().to_vec()).unwrap();
    let a_msgs: Vec<_> = msgs
        .iter()
        .filter(|m| m["peer_id"] == a_hex.as_str())
        .collect();
    assert_eq!(a_msgs.len(), 1);
    let first = a_msgs[0];
    assert_eq!(first["event"], "started");
    assert_eq!(first["numwant"], 5);
    assert!(first["numwant"].is_u64());
    assert_eq!(first["offers"].as_array().unwrap().len(), 5);
    let answers: Vec<_> = msgs.iter().filter(|m| m.get("answer").is_some()).collect();
    assert_eq!(answers.len(), 1, "exactly one answer sent");
    assert!(answers[0].get("event").is_none());
    assert!(answers[0].get("numwant").is_none());
    assert!(
        !tracker.lines().iter().any(|l| l.starts_with("WARNING")),
        "tracker complained: {:#?}",
        tracker.lines()
    );
}

async fn offers_expire_and_leave_sends_stopped(start: Start) {
    if !node_available() {
        return;
    }
    let tracker = start(0, 600_000);
    let swarm = ih(b"RJhoUxftMVvf2gSHwVVX");
    let cfg = TrackerConfig {
        offer_timeout: Duration::from_millis(500),
        ..config(&tracker.url())
    };
    let (a, mut rx) = TrackerClient::spawn(cfg).unwrap();
    a.join(swarm, PeerId::random_with_prefix("-PR0100-"));
    let (t, _) = need_offers(&mut rx, swarm).await;
    let ids = tricky_offer_ids(3);
    a.announce(
        &t,
        swarm,
        ids.iter().map(|id| (*id, "v=0\r\n".into())).collect(),
    );
    announced(&mut rx, swarm).await;
    let mut expired = Vec::new();
    while expired.len() < 3 {
        expired.push(
            next_matching(&mut rx, Duration::from_secs(3), |ev| match ev {
                TrackerEvent::OfferExpired { offer_id, .. } => Some(*offer_id),
                _ => None,
            })
            .await,
        );
    }
    expired.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(expired, want);

    // Leaving the only swarm: `stopped` goes out, then the socket closes.
    a.leave(swarm);
    tracker.wait_line(|l| l.starts_with("EVENT stop "), Duration::from_secs(5));
    tracker.wait_line(|l| l.starts_with("CLOSE "), Duration::from_secs(5));
    next_matching(&mut rx, Duration::from_secs(2), |ev| {
        matches!(
            ev,
            TrackerEvent::TrackerState {
                connected: false,
                ..
            }
        )
        .then_some(())
    })
    .await;
    let stop = tracker
        .messages()
        .into_iter()
        .find(|m| m["event"] == "stopped")
        .unwrap();
    assert!(stop.get("offers").is_none());
}

/// Play the engine: answer every `NeedOffers` with `n` synthetic offers, until `done` says so.
async fn drive(
    rx: &mut Receiver<TrackerEvent>,
    client: &TrackerHandle,
    within: Duration,
    mut done: impl FnMut(&TrackerEvent) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("timed out driving the client; seen {seen:#?}"),
        };
        if let TrackerEvent::NeedOffers {
            tracker,
            info_hash,
            count,
        } = &ev
        {
            let offers = (0..*count)
                .map(|_| (OfferId::random(), "v=0\r\n".to_owned()))
                .collect();
            client.announce(tracker, *info_hash, offers);
        }
        if done(&ev) {
            return;
        }
        seen.push(ev);
    }
}

async fn reconnects_and_reannounces_after_tracker_restart(start: Start) {
    if !node_available() {
        return;
    }
    // Interval 10 s / 5 → the tracker asks for re-announces every 2 s.
    let mut tracker = start(0, 10_000);
    let port = tracker.port;
    let swarms = [ih(b"L2uYwMcHhsstZuLv8ZqU"), ih(b"ceUCM5mHdwt3tS5zdgVA")];
    let (a, mut rx) = TrackerClient::spawn(config(&tracker.url())).unwrap();
    for s in swarms {
        a.join(s, PeerId::random_with_prefix("-PR0100-"));
    }
    // Two announces per swarm: the first one and one driven by the tracker's 2-s interval.
    let mut acks = std::collections::HashMap::new();
    drive(&mut rx, &a, Duration::from_secs(8), |ev| {
        if let TrackerEvent::Announced {
            info_hash,
            interval,
            ..
        } = ev
        {
            assert_eq!(*interval, Some(Duration::from_secs(2)));
            *acks.entry(*info_hash).or_insert(0) += 1;
        }
        acks.len() == 2 && acks.values().all(|n| *n >= 2)
    })
    .await;
    let msgs = tracker.messages();
    for s in swarms {
        let s = s.to_string();
        let announces: Vec<_> = msgs
            .iter()
            .filter(|m| m["info_hash"] == s.as_str())
            .collect();
        assert!(announces.len() >= 2);
        assert_eq!(announces[0]["event"], "started");
        for later in &announces[1..] {
            assert!(
                later.get("event").is_none(),
                "re-announce with event: {later}"
            );
        }
    }
    // Both swarms share one socket.
    let opens = |t: &TrackerProcess| t.lines().iter().filter(|l| l.starts_with("OPEN ")).count();
    assert_eq!(opens(&tracker), 1);

    // Kill the tracker: the client notices and starts backing off.
    tracker.kill();
    next_matching(&mut rx, Duration::from_secs(5), |ev| {
        matches!(
            ev,
            TrackerEvent::TrackerState {
                connected: false,
                ..
            }
        )
        .then_some(())
    })
    .await;
    // Let at least one reconnect attempt fail against the closed port.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let tracker = start(port, 10_000);
    let restarted = Instant::now();
    // Per swarm: the response to the `stopped` (reset_on_reconnect) and to the re-announce.
    let mut back = std::collections::HashMap::new();
    drive(&mut rx, &a, Duration::from_secs(5), |ev| {
        if let TrackerEvent::Announced { info_hash, .. } = ev {
            *back.entry(*info_hash).or_insert(0) += 1;
        }
        back.len() == 2 && back.values().all(|n| *n >= 2)
    })
    .await;
    assert!(restarted.elapsed() < Duration::from_secs(5));

    // The restarted tracker saw, per swarm and on one socket, a `stopped` and then a
    // re-announce without `event` (bittorrent-tracker's client does not repeat "started"
    // after a reconnect).
    let msgs = tracker.messages();
    for s in swarms {
        let s = s.to_string();
        let mine: Vec<_> = msgs
            .iter()
            .filter(|m| m["info_hash"] == s.as_str())
            .collect();
        assert!(mine.len() >= 2, "{mine:?}");
        assert_eq!(mine[0]["event"], "stopped");
        assert!(mine[0].get("offers").is_none());
        assert!(mine[1].get("offers").is_some());
        assert!(
            mine[1].get("event").is_none(),
            "re-announce carried an event: {}",
            mine[1]
        );
    }
    assert_eq!(opens(&tracker), 1);
    a.shutdown();
}

/// TCP relay to the tracker whose connections can be cut (socket drop, tracker alive).
struct Relay {
    port: u16,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(target: u16) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cut_tx = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut rx = cut_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.changed() => {}
                    }
                });
            }
        });
        Relay { port, cut }
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// A socket drop while the tracker stays up. bittorrent-tracker's server then removes only the
/// socket's first peer id; without `reset_on_reconnect` the second swarm's entry stays bound to
/// the dead socket and no offer reaches us there (checked: 1 of 2 swarms).
async fn socket_drop_with_tracker_alive_rejoins_every_swarm(start: Start) {
    if !node_available() {
        return;
    }
    let tracker = start(0, 600_000);
    let relay = Relay::start(tracker.port).await;
    let swarms = [ih(b"L2uYwMcHhsstZuLv8ZqU"), ih(b"ceUCM5mHdwt3tS5zdgVA")];
    let (a, mut a_rx) =
        TrackerClient::spawn(config(&format!("ws://127.0.0.1:{}", relay.port))).unwrap();
    for s in swarms {
        a.join(s, PeerId::random_with_prefix("-PR0100-"));
    }
    let announced_twice = |n: &mut usize, ev: &TrackerEvent| {
        *n += usize::from(matches!(ev, TrackerEvent::Announced { .. }));
        *n >= 2
    };
    let mut n = 0;
    drive(&mut a_rx, &a, Duration::from_secs(5), |ev| {
        announced_twice(&mut n, ev)
    })
    .await;

    relay.cut_all();
    next_matching(&mut a_rx, Duration::from_secs(5), |ev| {
        matches!(
            ev,
            TrackerEvent::TrackerState {
                connected: false,
                ..
            }
        )
        .then_some(())
    })
    .await;
    // Back: a `stopped` and a re-announce per swarm, i.e. four announce responses.
    let mut n = 0;
    drive(&mut a_rx, &a, Duration::from_secs(5), |ev| {
        n += usize::from(matches!(ev, TrackerEvent::Announced { .. }));
        n >= 4
    })
    .await;

    // B announces in both swarms: A must get an offer in each.
    let (b, mut b_rx) = TrackerClient::spawn(config(&tracker.url())).unwrap();
    for s in swarms {
        b.join(s, PeerId::random_with_prefix("-PR0100-"));
    }
    let mut got = std::collections::HashSet::new();
    let mut n = 0;
    drive(&mut b_rx, &b, Duration::from_secs(5), |ev| {
        announced_twice(&mut n, ev)
    })
    .await;
    drive(&mut a_rx, &a, Duration::from_secs(5), |ev| {
        if let TrackerEvent::Offer { info_hash, .. } = ev {
            got.insert(*info_hash);
        }
        got.len() == 2
    })
    .await;
    assert!(
        !tracker.lines().iter().any(|l| l.starts_with("WARNING")),
        "{:#?}",
        tracker.lines()
    );
}

// Each scenario above once per tracker: `<scenario>::bittorrent_tracker` and
// `<scenario>::strict_tracker`.
macro_rules! on_both_trackers {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bittorrent_tracker() {
                super::$scenario(TrackerProcess::start).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn strict_tracker() {
                super::$scenario(TrackerProcess::start_strict).await;
            }
        }
    )*};
}

on_both_trackers!(
    offer_answer_through_real_tracker,
    offers_expire_and_leave_sends_stopped,
    reconnects_and_reannounces_after_tracker_restart,
    socket_drop_with_tracker_alive_rejoins_every_swarm,
);

/// The strict tracker is only worth its zero if it sees what it is there for: each rule broken
/// by a raw WebSocket client gives its `VIOLATION` line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_tracker_flags_broken_rules() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    if !node_available() {
        return;
    }
    let mut tracker = TrackerProcess::start_strict(0, 600_000);
    // No Origin header: refused at the upgrade.
    assert!(tokio_tungstenite::connect_async(tracker.url())
        .await
        .is_err());

    let mut req = tracker.url().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "http://127.0.0.1".parse().unwrap());
    let req2 = req.clone();
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let (ih, a, b) = (
        "J3KjvNhSbLlKe91dpkWw",
        "-PR0100-aaaaaaaaaaaa",
        "-PR0100-bbbbbbbbbbbb",
    );
    let offer = |i: usize| serde_json::json!({"offer": {"type": "offer", "sdp": "v=0"}, "offer_id": format!("{i:020}")});
    let bad = [
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": a, "event": "update", "numwant": 0}),
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": a, "numwant": 5, "color": "red"}),
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": a, "numwant": "5", "offers": [offer(1)]}),
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": a, "numwant": 11,
            "offers": (0..11).map(offer).collect::<Vec<_>>()}),
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": a, "event": "started",
            "to_peer_id": b, "offer_id": format!("{:020}", 1), "answer": {"type": "answer", "sdp": "v=0"}}),
        serde_json::json!({"action": "announce", "info_hash": "short", "peer_id": a}),
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": "-PR0100-\u{0100}aaaaaaaaaaa"}),
        serde_json::json!({"action": "hello"}),
        // One frame over aquatic_ws's 16 KiB (a valid scrape, so only its size is wrong).
        serde_json::json!({"action": "scrape", "info_hash": vec![ih; 800]}),
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": a, "numwant": 1,
            "offers": [{"offer": {"type": "offer", "sdp": "v=0"}, "offer_id": "short"}]}),
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": a,
            "to_peer_id": b, "offer_id": format!("{:020}", 1), "numwant": 5,
            "answer": {"type": "answer", "sdp": "v=0"}}),
        // Last: a second peer id for the same swarm on this socket closes it.
        serde_json::json!({"action": "announce", "info_hash": ih, "peer_id": b, "numwant": 0}),
    ];
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    for m in bad {
        ws.send(Message::text(m.to_string())).await.unwrap();
    }
    // Over aquatic_ws's 64-KiB message limit: flagged, and that socket is closed.
    let (mut ws2, _) = tokio_tungstenite::connect_async(req2).await.unwrap();
    let big = serde_json::json!({"action": "scrape", "info_hash": vec![ih; 3000]});
    let _ = ws2.send(Message::text(big.to_string())).await;
    let want = [
        "origin",
        "event",
        "unknown-key",
        "numwant",
        "offer-count",
        "answer-event",
        "info_hash",
        "peer_id",
        "action",
        "frame-size",
        "offer",
        "answer-fields",
        "binary",
        "message-size",
        "peer-id-switch",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let rules = loop {
        let rules: Vec<String> = tracker
            .violations()
            .iter()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect();
        if want.iter().all(|w| rules.iter().any(|r| r == w)) || Instant::now() > deadline {
            break rules;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for w in want {
        assert!(
            rules.iter().any(|r| r == w),
            "no {w} violation in {rules:?}"
        );
    }
    // This tracker's violations were the point of the test: do not fail on drop.
    tracker.allow_violations();
}
