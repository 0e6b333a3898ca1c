//! The client against a scripted in-process tracker: the strict-tracker rules (what must never
//! be sent) and hostile input, without Node. tests/tracker.rs covers a real tracker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::*;

const IH: &[u8; 20] = b"J3KjvNhSbLlKe91dpkWw";
const OTHER: &[u8; 20] = b"-PM0203-BBBBBBBBBBBB";
const WAIT: Duration = Duration::from_secs(5);

struct Fake {
    listener: TcpListener,
    origins: Arc<Mutex<Vec<Option<String>>>>,
}

type Sock = WebSocketStream<TcpStream>;

impl Fake {
    async fn new() -> Fake {
        Fake {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            origins: Arc::default(),
        }
    }

    fn url(&self) -> String {
        format!("ws://{}", self.listener.local_addr().unwrap())
    }

    async fn accept(&self) -> Sock {
        let (tcp, _) = timeout(WAIT, self.listener.accept())
            .await
            .unwrap()
            .unwrap();
        let origins = self.origins.clone();
        // The callback's signature (large `Err` type) is tungstenite's, not ours.
        #[allow(clippy::result_large_err)]
        let cb = move |req: &Request, resp: Response| {
            let o = req.headers().get("origin").and_then(|v| v.to_str().ok());
            origins.lock().unwrap().push(o.map(str::to_owned));
            Ok(resp)
        };
        tokio_tungstenite::accept_hdr_async(tcp, cb).await.unwrap()
    }
}

async fn recv(ws: &mut Sock) -> Value {
    loop {
        let m = timeout(WAIT, ws.next())
            .await
            .expect("no message")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn send(ws: &mut Sock, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

async fn next_event(rx: &mut Receiver<TrackerEvent>) -> TrackerEvent {
    timeout(WAIT, rx.recv()).await.expect("no event").unwrap()
}

/// Skip events until one matches.
async fn wait_for(
    rx: &mut Receiver<TrackerEvent>,
    pred: impl Fn(&TrackerEvent) -> bool,
) -> TrackerEvent {
    loop {
        let ev = next_event(rx).await;
        if pred(&ev) {
            return ev;
        }
    }
}

fn cfg(url: String) -> TrackerConfig {
    TrackerConfig {
        announce_urls: vec![url],
        origin: Some("https://player.example".into()),
        reconnect: ReconnectPolicy {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
            jitter: Duration::from_millis(10),
        },
        min_interval: Duration::from_millis(10),
        ..TrackerConfig::default()
    }
}

fn offer_json(from: &[u8; 20], offer_id: OfferId) -> String {
    format!(
        r#"{{"action":"announce","info_hash":"{}","offer_id":{},"peer_id":"{}","offer":{{"type":"offer","sdp":"remote"}}}}"#,
        std::str::from_utf8(IH).unwrap(),
        serde_json::to_string(&offer_id).unwrap(),
        std::str::from_utf8(from).unwrap(),
    )
}

#[tokio::test]
async fn hostile_tracker_input_is_survived() {
    let fake = Fake::new().await;
    let (h, mut rx) = TrackerClient::spawn(cfg(fake.url())).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let ih = InfoHash(*IH);
    let mut ws = fake.accept_joined(&h, &mut rx, me, vec![]).await;
    assert_eq!(recv(&mut ws).await["event"], "started");
    assert_eq!(
        fake.origins.lock().unwrap()[0].as_deref(),
        Some("https://player.example")
    );

    for junk in [
        "garbage",
        "[1,2]",
        r#"{"info_hash":"short"}"#,
        r#"{"failure reason":"invalid action"}"#,
        r#"{"action":"announce","info_hash":"xxxxxxxxxxxxxxxxxxxx","interval":1}"#, // not our swarm
    ] {
        send(&mut ws, junk).await;
    }
    // Our own offer echoed back is ignored; a stranger's is delivered.
    send(&mut ws, &offer_json(me.as_bytes(), OfferId([1; 20]))).await;
    send(&mut ws, &offer_json(OTHER, OfferId([2; 20]))).await;
    send(
        &mut ws,
        &format!(
            r#"{{"action":"announce","info_hash":"{}","failure reason":"nope"}}"#,
            ih
        ),
    )
    .await;

    let mut warnings = Vec::new();
    let offer = loop {
        match next_event(&mut rx).await {
            TrackerEvent::Warning {
                info_hash, message, ..
            } => warnings.push((info_hash, message)),
            TrackerEvent::Offer {
                peer_id,
                offer_id,
                sdp,
                ..
            } => break (peer_id, offer_id, sdp),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        offer,
        (PeerId(*OTHER), OfferId([2; 20]), "remote".to_owned())
    );
    let last = next_event(&mut rx).await;
    assert!(
        matches!(&last, TrackerEvent::Warning { info_hash: Some(_), message, .. } if message == "nope")
    );
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(warnings.iter().any(|(_, m)| m == "invalid action"));

    // Still connected and working: the answer goes out, without event/numwant.
    h.answer(
        &h.trackers()[0],
        ih,
        PeerId(*OTHER),
        OfferId([2; 20]),
        "mine".into(),
    );
    let a = recv(&mut ws).await;
    assert_eq!(a["answer"]["sdp"], "mine");
    assert_eq!(a["to_peer_id"], std::str::from_utf8(OTHER).unwrap());
    assert!(a.get("event").is_none() && a.get("numwant").is_none());
}

#[tokio::test]
async fn no_answer_to_offers_from_a_previous_connection() {
    let fake = Fake::new().await;
    let (h, mut rx) = TrackerClient::spawn(cfg(fake.url())).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let ih = InfoHash(*IH);
    let mut ws = fake.accept_joined(&h, &mut rx, me, vec![]).await;
    assert_eq!(recv(&mut ws).await["event"], "started");
    send(&mut ws, &offer_json(OTHER, OfferId([3; 20]))).await;
    wait_for(&mut rx, |e| matches!(e, TrackerEvent::Offer { .. })).await;

    // The tracker drops us before the engine's answer is ready.
    drop(ws);
    wait_for(&mut rx, |e| {
        matches!(
            e,
            TrackerEvent::TrackerState {
                connected: false,
                ..
            }
        )
    })
    .await;
    let mut ws = fake.accept().await;
    wait_for(&mut rx, |e| {
        matches!(
            e,
            TrackerEvent::TrackerState {
                connected: true,
                ..
            }
        )
    })
    .await;
    let TrackerEvent::NeedOffers { tracker, .. } =
        wait_for(&mut rx, |e| matches!(e, TrackerEvent::NeedOffers { .. })).await
    else {
        unreachable!()
    };
    h.announce(&tracker, ih, vec![]);
    h.answer(
        &tracker,
        ih,
        PeerId(*OTHER),
        OfferId([3; 20]),
        "late".into(),
    );
    let ev = wait_for(&mut rx, |e| matches!(e, TrackerEvent::AnswerNotSent { .. })).await;
    assert!(
        matches!(ev, TrackerEvent::AnswerNotSent { offer_id, .. } if offer_id == OfferId([3; 20]))
    );
    // The only things on the new socket: `stopped` (reset_on_reconnect), then the
    // re-announce without `event`. No answer.
    let stop = recv(&mut ws).await;
    assert_eq!(stop["event"], "stopped");
    assert!(stop.get("offers").is_none());
    let re = recv(&mut ws).await;
    assert!(re.get("answer").is_none());
    assert!(re.get("event").is_none(), "{re}");
    assert_eq!(re["offers"], Value::Array(vec![]));
    assert!(
        timeout(Duration::from_millis(300), ws.next())
            .await
            .is_err(),
        "answer was sent"
    );
}

#[tokio::test]
async fn oversized_announce_sheds_offers() {
    let fake = Fake::new().await;
    let config = TrackerConfig {
        max_message_size: 1500,
        ..cfg(fake.url())
    };
    let (h, mut rx) = TrackerClient::spawn(config).unwrap();
    let big = "a".repeat(400);
    let offers: Vec<_> = (0..5u8).map(|i| (OfferId([i; 20]), big.clone())).collect();
    let me = PeerId::random_with_prefix("-PR0100-");
    let mut ws = fake.accept_joined(&h, &mut rx, me, offers).await;
    let msg = recv(&mut ws).await;
    let sent = msg["offers"].as_array().unwrap().len();
    assert!((1..5).contains(&sent), "{sent} offers sent");
    assert_eq!(msg["numwant"], sent);
    assert!(serde_json::to_string(&msg).unwrap().len() <= 1500);
    let mut expired = 0;
    while expired < 5 - sent {
        if let TrackerEvent::OfferExpired { offer_id, .. } = next_event(&mut rx).await {
            assert!(offer_id.0[0] as usize >= sent);
            expired += 1;
        }
    }
    // A late answer for a shed offer is dropped; one for a sent offer is delivered.
    for id in [4u8, 0] {
        send(
            &mut ws,
            &format!(
                r#"{{"action":"announce","answer":{{"type":"answer","sdp":"x{id}"}},"offer_id":{},"peer_id":"{}","info_hash":"{}"}}"#,
                serde_json::to_string(&OfferId([id; 20])).unwrap(),
                std::str::from_utf8(OTHER).unwrap(),
                InfoHash(*IH)
            ),
        )
        .await;
    }
    let ev = wait_for(&mut rx, |e| matches!(e, TrackerEvent::Answer { .. })).await;
    assert!(
        matches!(ev, TrackerEvent::Answer { offer_id, sdp, .. } if offer_id == OfferId([0; 20]) && sdp == "x0")
    );
}

#[tokio::test]
async fn silent_tracker_is_dropped_and_retried() {
    let fake = Fake::new().await;
    let config = TrackerConfig {
        response_timeout: Duration::from_millis(300),
        ..cfg(fake.url())
    };
    let (h, mut rx) = TrackerClient::spawn(config).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let mut ws = fake.accept_joined(&h, &mut rx, me, vec![]).await;
    let _ = recv(&mut ws).await; // never answered
    wait_for(&mut rx, |e| {
        matches!(
            e,
            TrackerEvent::TrackerState {
                connected: false,
                ..
            }
        )
    })
    .await;
    let _ws2 = fake.accept().await;
    wait_for(&mut rx, |e| {
        matches!(
            e,
            TrackerEvent::TrackerState {
                connected: true,
                ..
            }
        )
    })
    .await;
}

impl Fake {
    /// Join and announce `offers` at the first `NeedOffers` while accepting the connection.
    async fn accept_joined(
        &self,
        h: &TrackerHandle,
        rx: &mut Receiver<TrackerEvent>,
        me: PeerId,
        offers: Vec<(OfferId, String)>,
    ) -> Sock {
        let ih = InfoHash(*IH);
        h.join(ih, me);
        let (ws, ()) = tokio::join!(self.accept(), async {
            let TrackerEvent::NeedOffers { tracker, .. } =
                wait_for(rx, |e| matches!(e, TrackerEvent::NeedOffers { .. })).await
            else {
                unreachable!()
            };
            h.announce(&tracker, ih, offers);
        });
        ws
    }
}

#[tokio::test]
async fn plain_reannounce_without_reset() {
    let fake = Fake::new().await;
    let config = TrackerConfig {
        reset_on_reconnect: false,
        ..cfg(fake.url())
    };
    let (h, mut rx) = TrackerClient::spawn(config).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let mut ws = fake.accept_joined(&h, &mut rx, me, vec![]).await;
    assert_eq!(recv(&mut ws).await["event"], "started");
    drop(ws);
    let (mut ws, ()) = tokio::join!(fake.accept(), async {
        let TrackerEvent::NeedOffers {
            tracker, info_hash, ..
        } = wait_for(&mut rx, |e| matches!(e, TrackerEvent::NeedOffers { .. })).await
        else {
            unreachable!()
        };
        h.announce(&tracker, info_hash, vec![(OfferId([7; 20]), "o".into())]);
    });
    let re = recv(&mut ws).await;
    assert!(re.get("event").is_none(), "{re}");
    assert_eq!(re["numwant"], 1);
}

#[tokio::test]
async fn dropping_the_receiver_leaves_and_closes() {
    let fake = Fake::new().await;
    let (h, mut rx) = TrackerClient::spawn(cfg(fake.url())).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let mut ws = fake.accept_joined(&h, &mut rx, me, vec![]).await;
    assert_eq!(recv(&mut ws).await["event"], "started");
    drop(rx);
    assert_eq!(recv(&mut ws).await["event"], "stopped");
    // Then the closing handshake (or EOF), and nothing else.
    let end = timeout(WAIT, ws.next()).await.expect("socket not closed");
    assert!(
        matches!(end, Some(Ok(Message::Close(_))) | None | Some(Err(_))),
        "unexpected {end:?}"
    );
    drop(h);
}

/// Issue 11 row 5: our offers went out through a socket that dropped; no answer can come
/// back through another one, so the engine is told to close them at once, not in 50 s.
#[tokio::test]
async fn pending_offers_expire_when_the_socket_drops() {
    let fake = Fake::new().await;
    let (h, mut rx) = TrackerClient::spawn(cfg(fake.url())).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let offers: Vec<_> = (0..3u8)
        .map(|i| (OfferId([i; 20]), "o".to_owned()))
        .collect();
    let mut ws = fake.accept_joined(&h, &mut rx, me, offers).await;
    assert_eq!(recv(&mut ws).await["offers"].as_array().unwrap().len(), 3);
    drop(ws);
    let mut expired = Vec::new();
    while expired.len() < 3 {
        if let TrackerEvent::OfferExpired { offer_id, .. } = next_event(&mut rx).await {
            expired.push(offer_id.0[0]);
        }
    }
    expired.sort();
    assert_eq!(expired, vec![0, 1, 2]);
}

/// Issue 11 row 14: a 1-MiB `tracker id` is not echoed; a sane one is.
#[tokio::test]
async fn oversized_tracker_id_is_ignored() {
    let fake = Fake::new().await;
    let (h, mut rx) = TrackerClient::spawn(cfg(fake.url())).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let ih = InfoHash(*IH);
    let mut ws = fake.accept_joined(&h, &mut rx, me, vec![]).await;
    let _ = recv(&mut ws).await;
    // Just under the frame cap, so it is read and must be ignored by the client itself.
    let huge = "t".repeat(60 * 1024);
    send(
        &mut ws,
        &format!(
            r#"{{"action":"announce","info_hash":"{ih}","interval":1,"tracker id":"{huge}"}}"#
        ),
    )
    .await;
    wait_for(&mut rx, |e| matches!(e, TrackerEvent::Announced { .. })).await;
    h.announce_now(ih);
    let TrackerEvent::NeedOffers { tracker, .. } =
        wait_for(&mut rx, |e| matches!(e, TrackerEvent::NeedOffers { .. })).await
    else {
        unreachable!()
    };
    h.announce(&tracker, ih, vec![]);
    let re = recv(&mut ws).await;
    assert!(re.get("trackerid").is_none(), "echoed a huge tracker id");
    send(
        &mut ws,
        &format!(r#"{{"action":"announce","info_hash":"{ih}","interval":1,"tracker id":"abc"}}"#),
    )
    .await;
    wait_for(&mut rx, |e| matches!(e, TrackerEvent::Announced { .. })).await;
    h.announce_now(ih);
    wait_for(&mut rx, |e| matches!(e, TrackerEvent::NeedOffers { .. })).await;
    h.announce(&tracker, ih, vec![]);
    assert_eq!(recv(&mut ws).await["trackerid"], "abc");
}

/// A 1-MiB frame is refused before it is buffered (the socket is dropped and retried); a
/// non-UTF-8 binary frame is only a warning, the same socket keeps working.
#[tokio::test]
async fn huge_and_non_utf8_frames() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let fake = Fake::new().await;
    let (h, mut rx) = TrackerClient::spawn(cfg(fake.url())).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let mut ws = fake.accept_joined(&h, &mut rx, me, vec![]).await;
    let _ = recv(&mut ws).await;
    ws.send(Message::binary(vec![0xff, 0xfe, 0x80]))
        .await
        .unwrap();
    wait_for(
        &mut rx,
        |e| matches!(e, TrackerEvent::Warning { message, .. } if message.contains("UTF-8")),
    )
    .await;
    send(&mut ws, &offer_json(OTHER, OfferId([5; 20]))).await;
    wait_for(&mut rx, |e| matches!(e, TrackerEvent::Offer { .. })).await;
    // Text frame with invalid UTF-8: a protocol violation (RFC 6455 says fail the socket).
    let bad = Frame::message(vec![b'{', 0xc3, 0x28, b'}'], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(bad)).await.unwrap();
    wait_for(&mut rx, |e| {
        matches!(
            e,
            TrackerEvent::TrackerState {
                connected: false,
                ..
            }
        )
    })
    .await;
    let mut ws = fake.accept().await;
    wait_for(&mut rx, |e| {
        matches!(
            e,
            TrackerEvent::TrackerState {
                connected: true,
                ..
            }
        )
    })
    .await;
    // Now 1 MiB in one frame.
    let _ = ws.send(Message::text("x".repeat(1 << 20))).await;
    let mut warnings = Vec::new();
    loop {
        match next_event(&mut rx).await {
            TrackerEvent::Warning { message, .. } => warnings.push(message),
            TrackerEvent::TrackerState {
                connected: false, ..
            } => break,
            _ => {}
        }
    }
    let _ws = fake.accept().await;
    loop {
        match next_event(&mut rx).await {
            TrackerEvent::Warning { message, .. } => warnings.push(message),
            TrackerEvent::TrackerState {
                connected: true, ..
            } => break,
            _ => {}
        }
    }
    assert!(
        !warnings.is_empty() && warnings.iter().all(|m| m.len() < 400),
        "{warnings:?}"
    );
}

/// 2,000 relayed offers from 2,000 peer ids: the burst passes, the rest is dropped here.
#[tokio::test]
async fn offer_flood_is_rate_limited() {
    let fake = Fake::new().await;
    let (h, mut rx) = TrackerClient::spawn(cfg(fake.url())).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let mut ws = fake.accept_joined(&h, &mut rx, me, vec![]).await;
    let _ = recv(&mut ws).await;
    let t0 = std::time::Instant::now();
    for i in 0..2000u32 {
        let mut from = *OTHER;
        from[8..12].copy_from_slice(format!("{:04}", i).as_bytes());
        ws.send(Message::text(offer_json(&from, OfferId([7; 20]))))
            .await
            .unwrap();
    }
    // Something after the flood proves it was all read.
    send(&mut ws, r#"{"failure reason":"end of flood"}"#).await;
    let mut offers = 0;
    loop {
        match next_event(&mut rx).await {
            TrackerEvent::Offer { .. } => offers += 1,
            TrackerEvent::Warning { message, .. } if message == "end of flood" => break,
            _ => {}
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let allowed = 40 + (secs * 10.0).ceil() as usize;
    assert!(
        offers >= 40 && offers <= allowed,
        "{offers} offers passed in {secs:.1} s"
    );
}

/// A tracker that answers the announce and then drops us each time: reconnects back off
/// (no reset on a mere announce response) instead of looping at the base delay.
#[tokio::test]
async fn accept_then_close_backs_off() {
    let fake = Fake::new().await;
    let (h, mut rx) = TrackerClient::spawn(cfg(fake.url())).unwrap();
    let me = PeerId::random_with_prefix("-PR0100-");
    let ih = InfoHash(*IH);
    h.join(ih, me);
    let drive = tokio::spawn(async move {
        // Keep the engine side answering NeedOffers.
        while let Some(ev) = rx.recv().await {
            if let TrackerEvent::NeedOffers {
                tracker, info_hash, ..
            } = ev
            {
                h.announce(&tracker, info_hash, vec![]);
            }
        }
    });
    let mut gaps = Vec::new();
    let mut last = std::time::Instant::now();
    for _ in 0..5 {
        let mut ws = fake.accept().await;
        let now = std::time::Instant::now();
        gaps.push(now - last);
        last = now;
        let _ = recv(&mut ws).await;
        send(
            &mut ws,
            &format!(r#"{{"action":"announce","info_hash":"{ih}","interval":120,"complete":1,"incomplete":1}}"#),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(ws);
    }
    drive.abort();
    // cfg(): 50 ms base, 200 ms cap, 10 ms jitter: 50, 100, 200, 200 ms between attempts.
    assert!(gaps[2] >= Duration::from_millis(100), "{gaps:?}");
    assert!(gaps[4] >= Duration::from_millis(200), "{gaps:?}");
}

/// TCP accepted, WebSocket handshake never answered: the connect timeout gives up and the
/// client tries again after its backoff, the loop alive.
#[tokio::test]
async fn blackholed_handshake_times_out_and_retries() {
    let fake = Fake::new().await;
    let config = TrackerConfig {
        connect_timeout: Duration::from_millis(300),
        ..cfg(fake.url())
    };
    let (h, mut rx) = TrackerClient::spawn(config).unwrap();
    h.join(InfoHash(*IH), PeerId::random_with_prefix("-PR0100-"));
    let mut held = Vec::new();
    for _ in 0..3 {
        let (tcp, _) = timeout(WAIT, fake.listener.accept())
            .await
            .expect("no retry")
            .unwrap();
        held.push(tcp);
    }
    let ev = wait_for(&mut rx, |e| matches!(e, TrackerEvent::Warning { .. })).await;
    assert!(
        matches!(&ev, TrackerEvent::Warning { message, .. } if message.contains("timed out")),
        "{ev:?}"
    );
}
