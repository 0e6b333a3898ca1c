//! One data channel's I/O: a reader task feeding the swarm actor and a writer task draining
//! an ordered queue, so the actor never awaits the network.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::swarm::SwarmMsg;
use crate::net::rtc::DataChannelConn;
use crate::schedule::PeerKey;

/// Below this many queued bytes the actor is told to hand over more upload data.
pub const LOW_WATER: usize = 256 * 1024;

pub struct Link {
    pub conn: Arc<dyn DataChannelConn>,
    out: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Link {
    pub fn start(
        conn: Box<dyn DataChannelConn>,
        key: PeerKey,
        inbox: mpsc::UnboundedSender<SwarmMsg>,
    ) -> Self {
        let conn: Arc<dyn DataChannelConn> = Arc::from(conn);
        let queued = Arc::new(AtomicUsize::new(0));
        let reader = {
            let conn = conn.clone();
            let inbox = inbox.clone();
            tokio::spawn(async move {
                while let Some(msg) = conn.recv().await {
                    if inbox.send(SwarmMsg::PeerMessage { key, msg }).is_err() {
                        return;
                    }
                }
                let _ = inbox.send(SwarmMsg::PeerClosed { key });
            })
        };
        let (out, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let writer = {
            let conn = conn.clone();
            let queued = queued.clone();
            tokio::spawn(async move {
                while let Some(msg) = rx.recv().await {
                    let n = msg.len();
                    if conn.send(msg).await.is_err() {
                        let _ = inbox.send(SwarmMsg::PeerClosed { key });
                        return;
                    }
                    let before = queued.fetch_sub(n, Relaxed);
                    if before >= LOW_WATER && before - n < LOW_WATER {
                        let _ = inbox.send(SwarmMsg::WriterDrained { key });
                    }
                }
            })
        };
        Link {
            conn,
            out,
            queued,
            reader,
            writer,
        }
    }

    /// Queues one message; order is kept.
    pub fn send(&self, msg: Bytes) {
        self.queued.fetch_add(msg.len(), Relaxed);
        let _ = self.out.send(msg);
    }

    /// Bytes queued but not yet accepted by the data channel.
    pub fn backlog(&self) -> usize {
        self.queued.load(Relaxed)
    }

    pub fn close(self) {
        self.reader.abort();
        self.writer.abort();
        let conn = self.conn;
        tokio::spawn(async move { conn.close().await });
    }
}
