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
