//! One data channel's I/O: a reader task feeding the swarm actor and a writer task draining
//! an ordered queue, so the actor never awaits the network. It knows nothing of the actor:
//! it reports [`LinkEvent`]s to a sink.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::engine::task;
use crate::net::rtc::DataChannelConn;
use crate::schedule::PeerKey;

/// Messages read from one peer and not yet handled by the actor: a peer that floods us waits
/// (SCTP pushes back) instead of growing the actor's inbox. At most 16 × 64 KiB = 1 MiB per
/// peer; the actor takes messages far faster than a data channel brings them.
const READ_AHEAD: usize = 16;

pub enum LinkEvent {
    /// A message; holding `_permit` keeps the reader from running further ahead.
    Message {
        key: PeerKey,
        msg: Bytes,
        _permit: OwnedSemaphorePermit,
    },
    /// The channel closed or failed.
    Closed { key: PeerKey },
    /// `bytes` of one queued message went to the data channel.
    Drained { key: PeerKey, bytes: usize },
}

pub type LinkSink = Arc<dyn Fn(LinkEvent) -> bool + Send + Sync>;

pub struct Link {
    pub conn: Arc<dyn DataChannelConn>,
    out: mpsc::UnboundedSender<Bytes>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Link {
    /// `sink` returns false once nobody listens (the reader then stops).
    pub fn start(conn: Box<dyn DataChannelConn>, key: PeerKey, sink: LinkSink) -> Self {
        let conn: Arc<dyn DataChannelConn> = Arc::from(conn);
        let reader = {
            let conn = conn.clone();
            let sink = sink.clone();
            let permits = Arc::new(Semaphore::new(READ_AHEAD));
            // A panicking reader closes the link, as a closed channel would.
            let closed = sink.clone();
            let on_panic = move |_| {
                closed(LinkEvent::Closed { key });
            };
            task::spawn(
                "link reader",
                async move {
                    loop {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            return;
                        };
                        let Some(msg) = conn.recv().await else {
                            break;
                        };
                        let ev = LinkEvent::Message {
                            key,
                            msg,
                            _permit: permit,
                        };
                        if !sink(ev) {
                            return;
                        }
                    }
                    sink(LinkEvent::Closed { key });
                },
                on_panic,
            )
        };
        // Unbounded here, bounded upstream: the swarm hands out upload data only while less
        // than `swarm::HIGH_WATER` is queued towards this peer.
        let (out, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let writer = {
            let conn = conn.clone();
            let closed = sink.clone();
            let on_panic = move |_| {
                closed(LinkEvent::Closed { key });
            };
            task::spawn(
                "link writer",
                async move {
                    while let Some(msg) = rx.recv().await {
                        let bytes = msg.len();
                        if conn.send(msg).await.is_err() {
                            sink(LinkEvent::Closed { key });
                            return;
                        }
                        sink(LinkEvent::Drained { key, bytes });
                    }
                },
                on_panic,
            )
        };
        Link {
            conn,
            out,
            reader,
            writer,
        }
    }

    /// Queues one message; order is kept.
    pub fn send(&self, msg: Bytes) {
        let _ = self.out.send(msg);
    }

    pub fn close(self) {
        self.reader.abort();
        self.writer.abort();
        let conn = self.conn;
        task::spawn_logged("link close", async move { conn.close().await });
    }
}
