use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn session() -> PeerSession {
    PeerSession::new(PeerConfig::default(), 1)
}

/// Drains control messages and events.
fn drain(s: &mut PeerSession) -> (Vec<Vec<u8>>, Vec<Event>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = s.poll_output() {
        match o {
            Output::Send(m) => sent.push(m),
            Output::Event(e) => events.push(e),
        }
    }
    (sent, events)
}

/// Drains everything including upload payload, in wire order.
fn drain_all(s: &mut PeerSession) -> (Vec<Vec<u8>>, Vec<Event>) {
    let (mut sent, mut events) = drain(s);
    while let Some(c) = s.poll_upload_chunk() {
        sent.push(c);
        let (m, e) = drain(s);
        sent.extend(m);
        events.extend(e);
    }
    (sent, events)
}

fn cmd(c: Command) -> Vec<u8> {
    let mut m = wire::encode_command(&c, wire::MAX_MESSAGE_SIZE);
    assert_eq!(m.len(), 1);
    m.remove(0)
}

fn req(id: WireSegmentId) -> DownloadRequest {
    DownloadRequest {
        id,
        byte_offset: 0,
        total_bytes: None,
        max_segment_bytes: 10_000_000,
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8).collect()
}

/// §4.1.5: B has segment 103 (150 000 bytes); A requests it with r = 457.
#[test]
fn transcript_uploader_side_matches_pml() {
    let mut b = session();
    b.announce(&[101, 102, 103], &[104]);
    let (sent, _) = drain(&mut b);
    assert_eq!(
        sent,
        vec![hex(
            "63 73 74 72 00 6c 10 01 01 03 65 66 67 70 10 01 01 01 68 63 65 6e 64"
        )]
    );

    b.on_message(&hex("63 73 74 72 01 69 01 67 72 02 01 c9 63 65 6e 64"), 0);
    let (_, events) = drain(&mut b);
    assert_eq!(
        events,
        vec![Event::UploadRequested {
            id: 103,
            request_id: 457,
            byte_offset: 0
        }]
    );
    assert!(b.upload(457, Arc::new(pattern(150_000))));
    let (sent, _) = drain_all(&mut b);
    assert_eq!(sent.len(), 5);
    assert_eq!(
        sent[0],
        hex("63 73 74 72 02 69 01 67 73 03 02 49 f0 72 02 01 c9 63 65 6e 64")
    );
    assert_eq!(sent[1].len(), 65535);
    assert_eq!(&sent[1][..4], &[0, 1, 2, 3]);
    assert_eq!(sent[2].len(), 65535);
    assert_eq!(&sent[2][..4], &[0xff, 0, 1, 2]);
    assert_eq!(sent[3].len(), 18930);
    assert_eq!(&sent[3][..4], &[0xfe, 0xff, 0, 1]);
    assert_eq!(
        sent[4],
        hex("63 73 74 72 03 69 01 67 72 02 01 c9 63 65 6e 64")
    );
    assert!(!b.is_uploading());
}

#[test]
fn transcript_downloader_side_matches_pml() {
    let mut a = session();
    a.on_message(
        &hex("63 73 74 72 00 6c 10 01 01 03 65 66 67 70 10 01 01 01 68 63 65 6e 64"),
        0,
    );
    let (_, events) = drain(&mut a);
    assert_eq!(
        events,
        vec![Event::PeerAnnounced {
            loaded: vec![101, 102, 103],
            http_loading: vec![104]
        }]
    );
    assert!(a.remote_has(103) && a.remote_http_loading(104) && !a.remote_has(104));

    assert_eq!(a.request_with_id(req(103), 457, 0), Ok(457));
    let (sent, _) = drain(&mut a);
    assert_eq!(
        sent,
        vec![hex("63 73 74 72 01 69 01 67 72 02 01 c9 63 65 6e 64")]
    );
    let data = pattern(150_000);
    a.on_message(
        &hex("63 73 74 72 02 69 01 67 73 03 02 49 f0 72 02 01 c9 63 65 6e 64"),
        10,
    );
    for (i, chunk) in data.chunks(65535).enumerate() {
        a.on_message(chunk, 20 + i as u64);
    }
    a.on_message(&hex("63 73 74 72 03 69 01 67 72 02 01 c9 63 65 6e 64"), 30);
    let (_, events) = drain(&mut a);
    assert_eq!(
        events.last(),
        Some(&Event::SegmentReceived {
            id: 103,
            data: data.into()
        })
    );
    assert!(matches!(
        events[0],
        Event::DownloadProgress {
            id: 103,
            received: 65535,
            expected: 150_000
        }
    ));
    assert_eq!(a.current_download(), None);
    assert_eq!(a.poll_timeout(), None);
}

/// Moves every pending message from one session into the other.
fn pump(from: &mut PeerSession, to: &mut PeerSession, now: u64) -> Vec<Event> {
    let (sent, events) = drain_all(from);
    for m in sent {
        to.on_message(&m, now);
    }
    events
}

#[test]
fn two_sessions_transfer_with_resume_offset() {
    let (mut a, mut b) = (
        PeerSession::new(PeerConfig::default(), 1),
        PeerSession::new(PeerConfig::default(), 2),
    );
    let data = pattern(200_000);
    let r = a
        .request(
            DownloadRequest {
                id: 7,
                byte_offset: 1000,
                total_bytes: Some(200_000),
                max_segment_bytes: 300_000,
            },
            0,
        )
        .unwrap();
    assert!((0..1000).contains(&r));
    pump(&mut a, &mut b, 1);
    let (_, ev) = drain(&mut b);
    assert_eq!(
        ev,
        vec![Event::UploadRequested {
            id: 7,
            request_id: r,
            byte_offset: 1000
        }]
    );
    assert!(
        !b.upload(r + 1, Arc::new(data.clone())),
        "stale request id must be refused"
    );
    assert!(b.upload(r, Arc::new(data.clone())));
    pump(&mut b, &mut a, 2);
    let (_, ev) = drain(&mut a);
    assert_eq!(
        ev.last(),
        Some(&Event::SegmentReceived {
            id: 7,
            data: data[1000..].to_vec().into()
        })
    );
}

#[test]
fn zero_length_upload_sends_header_and_completed() {
    let (mut a, mut b) = (session(), session());
    let r = a
        .request(
            DownloadRequest {
                total_bytes: Some(10),
                byte_offset: 5,
                ..req(1)
            },
            0,
        )
        .unwrap();
    pump(&mut a, &mut b, 0);
    drain(&mut b);
    assert!(b.upload(r, Arc::new(pattern(5))));
    // Our peer holds only 5 bytes: `s` = 0 but we expected 5 → mismatch.
    pump(&mut b, &mut a, 0);
    let (sent, ev) = drain(&mut a);
    assert_eq!(
        sent,
        vec![cmd(Command::CancelSegmentRequest {
            id: 1,
            request_id: r
        })]
    );
    assert_eq!(
        ev.last(),
        Some(&Event::Disconnect {
            reason: DisconnectReason::SizeMismatch
        })
    );
}

fn started(id: WireSegmentId, total: Option<u64>, max: u64) -> PeerSession {
    let mut s = session();
    s.request_with_id(
        DownloadRequest {
            id,
            byte_offset: 0,
            total_bytes: total,
            max_segment_bytes: max,
        },
        9,
        0,
    )
    .unwrap();
    drain(&mut s);
    s
}

#[test]
fn size_checks_disconnect() {
    // Known size, wrong `s`.
    let mut s = started(1, Some(100), 1000);
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: 99,
        }),
        1,
    );
    let (sent, ev) = drain(&mut s);
    assert_eq!(
        sent,
        vec![cmd(Command::CancelSegmentRequest {
            id: 1,
            request_id: 9
        })]
    );
    assert_eq!(
        ev,
        vec![
            Event::DownloadFailed {
                id: 1,
                reason: DownloadFailure::Disconnected
            },
            Event::Disconnect {
                reason: DisconnectReason::SizeMismatch
            }
        ]
    );
    assert!(s.is_closed());
    // Unknown size, claim above the cap.
    let mut s = started(1, None, 1000);
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: 1001,
        }),
        1,
    );
    assert_eq!(
        drain(&mut s).1.last(),
        Some(&Event::Disconnect {
            reason: DisconnectReason::SizeTooLarge
        })
    );
    // Negative size.
    let mut s = started(1, None, 1000);
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: -1,
        }),
        1,
    );
    assert_eq!(
        drain(&mut s).1.last(),
        Some(&Event::Disconnect {
            reason: DisconnectReason::InvalidSize
        })
    );
    // At the cap is fine.
    let mut s = started(1, None, 1000);
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: 1000,
        }),
        1,
    );
    assert!(!s.is_closed());
}

#[test]
fn too_many_bytes_or_early_completion_disconnect() {
    let mut s = started(1, None, 1000);
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: 10,
        }),
        1,
    );
    s.on_message(&[0; 6], 2);
    s.on_message(&[0; 5], 3);
    assert_eq!(
        drain(&mut s).1.last(),
        Some(&Event::Disconnect {
            reason: DisconnectReason::TooManyBytes
        })
    );

    let mut s = started(1, None, 1000);
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: 10,
        }),
        1,
    );
    s.on_message(&[0; 6], 2);
    s.on_message(
        &cmd(Command::SegmentDataSendingCompleted {
            id: 1,
            request_id: 9,
        }),
        3,
    );
    assert_eq!(
        drain(&mut s).1.last(),
        Some(&Event::Disconnect {
            reason: DisconnectReason::SizeMismatch
        })
    );

    let mut s = started(1, None, 1000);
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: 10,
        }),
        1,
    );
    s.on_message(
        &cmd(Command::SegmentDataSendingCompleted {
            id: 2,
            request_id: 9,
        }),
        3,
    );
    assert_eq!(
        drain(&mut s).1.last(),
        Some(&Event::Disconnect {
            reason: DisconnectReason::ProtocolViolation
        })
    );
    // Disconnected sessions ignore input and refuse work.
    s.on_message(
        &cmd(Command::SegmentRequest {
            id: 1,
            request_id: 1,
            byte_offset: 0,
        }),
        4,
    );
    assert!(s.poll_output().is_none());
    assert_eq!(s.request(req(1), 5), Err(RequestError::Closed));
}

#[test]
fn stray_data_is_ignored() {
    let mut s = started(1, None, 1000);
    // Payload before SegmentData, Completed before SegmentData, and commands
    // for another (id, r) pair are ignored.
    s.on_message(&[1; 50], 1);
    s.on_message(
        &cmd(Command::SegmentDataSendingCompleted {
            id: 1,
            request_id: 9,
        }),
        1,
    );
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 8,
            size: 3,
        }),
        1,
    );
    s.on_message(
        &cmd(Command::SegmentData {
            id: 2,
            request_id: 9,
            size: 3,
        }),
        1,
    );
    s.on_message(
        &cmd(Command::SegmentAbsent {
            id: 1,
            request_id: 8,
        }),
        1,
    );
    assert_eq!(drain(&mut s), (vec![], vec![]));
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: 3,
        }),
        1,
    );
    // A second header for the same request is ignored too.
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 9,
            size: 5,
        }),
        1,
    );
    s.on_message(&[7, 8, 9], 2);
    s.on_message(
        &cmd(Command::SegmentDataSendingCompleted {
            id: 1,
            request_id: 9,
        }),
        3,
    );
    let (_, ev) = drain(&mut s);
    assert_eq!(
        ev.last(),
        Some(&Event::SegmentReceived {
            id: 1,
            data: vec![7, 8, 9].into()
        })
    );
    assert!(!s.is_closed());
}

#[test]
fn absent_removes_id_from_peer_set() {
    let mut s = session();
    s.on_message(
        &cmd(Command::SegmentsAnnouncement {
            loaded: vec![4, 5],
            http_loading: vec![],
        }),
        0,
    );
    s.request_with_id(req(5), 3, 0).unwrap();
    drain(&mut s);
    s.on_message(
        &cmd(Command::SegmentAbsent {
            id: 5,
            request_id: 3,
        }),
        1,
    );
    assert_eq!(drain(&mut s).1, vec![Event::SegmentAbsent { id: 5 }]);
    assert!(!s.remote_has(5) && s.remote_has(4));
    assert_eq!(s.current_download(), None);
    // A new snapshot replaces the old one entirely.
    s.on_message(
        &cmd(Command::SegmentsAnnouncement {
            loaded: vec![],
            http_loading: vec![6],
        }),
        2,
    );
    assert!(!s.remote_has(4) && s.remote_http_loading(6));
}

#[test]
fn silent_peer_times_out_and_three_strikes_disconnect() {
    let mut s = session();
    for strike in 1..=3u64 {
        let t0 = strike * 10_000;
        let r = s.request(req(42), t0).unwrap();
        drain(&mut s);
        assert_eq!(s.poll_timeout(), Some(t0 + 2000));
        s.on_timer(t0 + 1999);
        assert_eq!(drain(&mut s), (vec![], vec![]));
        s.on_timer(t0 + 2000);
        let (sent, ev) = drain(&mut s);
        assert_eq!(
            sent,
            vec![cmd(Command::CancelSegmentRequest {
                id: 42,
                request_id: r
            })]
        );
        assert_eq!(
            ev[0],
            Event::DownloadFailed {
                id: 42,
                reason: DownloadFailure::Timeout
            }
        );
        assert_eq!(ev.len() == 2, strike == 3);
        if strike == 3 {
            assert_eq!(
                ev[1],
                Event::Disconnect {
                    reason: DisconnectReason::TooManyTimeouts
                }
            );
        }
    }
    assert!(s.is_closed());
}

#[test]
fn bytes_rearm_timeout_and_success_resets_strikes() {
    let mut s = session();
    s.request_with_id(req(1), 1, 0).unwrap();
    s.on_timer(2000);
    assert_eq!(s.timeout_strikes(), 1);
    s.request_with_id(req(1), 2, 3000).unwrap();
    s.on_message(
        &cmd(Command::SegmentData {
            id: 1,
            request_id: 2,
            size: 4,
        }),
        4500,
    );
    assert_eq!(s.poll_timeout(), Some(6500));
    s.on_message(&[1, 2], 6000);
    assert_eq!(s.poll_timeout(), Some(8000));
    s.on_timer(7999);
    s.on_message(&[3, 4], 7999);
    s.on_message(
        &cmd(Command::SegmentDataSendingCompleted {
            id: 1,
            request_id: 2,
        }),
        8500,
    );
    assert_eq!(s.timeout_strikes(), 0);
    assert!(drain(&mut s).1.contains(&Event::SegmentReceived {
        id: 1,
        data: vec![1, 2, 3, 4].into()
    }));
}

#[test]
fn local_request_rules() {
    let mut s = session();
    s.request(req(1), 0).unwrap();
    assert_eq!(s.request(req(2), 0), Err(RequestError::Busy));
    assert_eq!(s.cancel_download(), Some(1));
    let (sent, ev) = drain(&mut s);
    assert_eq!(sent.len(), 2);
    assert!(ev.is_empty());
    assert_eq!(s.cancel_download(), None);
    let bad = DownloadRequest {
        byte_offset: 10,
        total_bytes: Some(10),
        ..req(1)
    };
    assert_eq!(s.request(bad, 0), Err(RequestError::InvalidOffset));
    // Cancelling does not count as a strike.
    assert_eq!(s.timeout_strikes(), 0);
}

#[test]
fn new_request_stops_upload_and_cancel_matches_request_id() {
    let mut s = session();
    s.on_message(
        &cmd(Command::SegmentRequest {
            id: 1,
            request_id: 10,
            byte_offset: 0,
        }),
        0,
    );
    drain(&mut s);
    assert!(s.upload(10, Arc::new(pattern(200_000))));
    let (sent, _) = drain(&mut s);
    assert_eq!(sent.len(), 1); // header only; payload is pulled lazily
    assert_eq!(s.poll_upload_chunk().map(|c| c.len()), Some(65535));
    // New request: the old upload stops without Completed.
    s.on_message(
        &cmd(Command::SegmentRequest {
            id: 2,
            request_id: 11,
            byte_offset: 0,
        }),
        1,
    );
    assert!(!s.is_uploading());
    assert_eq!(s.poll_upload_chunk(), None);
    let (sent, ev) = drain(&mut s);
    assert!(sent.is_empty());
    // Reported as a cancel of the old one (request loops are counted like cancel loops).
    assert_eq!(
        ev,
        vec![
            Event::UploadCancelled {
                id: 1,
                request_id: 10
            },
            Event::UploadRequested {
                id: 2,
                request_id: 11,
                byte_offset: 0
            }
        ]
    );
    assert!(s.upload(11, Arc::new(pattern(100_000))));
    drain(&mut s);
    s.poll_upload_chunk().unwrap();
    // Cancel with another request id is ignored; with ours it stops the upload.
    s.on_message(
        &cmd(Command::CancelSegmentRequest {
            id: 2,
            request_id: 10,
        }),
        2,
    );
    assert!(s.is_uploading());
    s.on_message(
        &cmd(Command::CancelSegmentRequest {
            id: 2,
            request_id: 11,
        }),
        2,
    );
    assert!(!s.is_uploading());
    let (sent, ev) = drain(&mut s);
    assert!(sent.is_empty(), "no Completed after a cancel");
    assert_eq!(
        ev,
        vec![Event::UploadCancelled {
            id: 2,
            request_id: 11
        }]
    );
    // A pending (unanswered) request can be cancelled too; late answers are refused.
    s.on_message(
        &cmd(Command::SegmentRequest {
            id: 3,
            request_id: 12,
            byte_offset: 0,
        }),
        3,
    );
    s.on_message(
        &cmd(Command::CancelSegmentRequest {
            id: 3,
            request_id: 12,
        }),
        3,
    );
    assert!(!s.upload_absent(12));
}

#[test]
fn upload_absent_and_bad_offsets() {
    let mut s = session();
    s.on_message(
        &cmd(Command::SegmentRequest {
            id: 1,
            request_id: 10,
            byte_offset: 0,
        }),
        0,
    );
    drain(&mut s);
    assert!(s.upload_absent(10));
    assert!(!s.upload_absent(10));
    assert_eq!(
        drain(&mut s).0,
        vec![cmd(Command::SegmentAbsent {
            id: 1,
            request_id: 10
        })]
    );
    // Offset past the end → absent; negative offset → absent without bothering the app.
    s.on_message(
        &cmd(Command::SegmentRequest {
            id: 1,
            request_id: 11,
            byte_offset: 50,
        }),
        0,
    );
    drain(&mut s);
    assert!(s.upload(11, Arc::new(pattern(10))));
    assert_eq!(
        drain(&mut s).0,
        vec![cmd(Command::SegmentAbsent {
            id: 1,
            request_id: 11
        })]
    );
    s.on_message(
        &cmd(Command::SegmentRequest {
            id: 1,
            request_id: 12,
            byte_offset: -5,
        }),
        0,
    );
    assert_eq!(
        drain(&mut s),
        (
            vec![cmd(Command::SegmentAbsent {
                id: 1,
                request_id: 12
            })],
            vec![]
        )
    );
}

#[test]
fn upload_waits_for_control_messages_and_chunks_never_look_like_commands() {
    // Payload whose natural 16-byte chunks would read as framed commands.
    let mut data = Vec::new();
    for _ in 0..8 {
        data.extend_from_slice(b"cstr\x00\x01\x02\x03\x04\x05\x06\x07cend");
    }
    let cfg = PeerConfig {
        max_message_size: 16,
        ..PeerConfig::default()
    };
    let mut s2 = PeerSession::new(cfg, 3);
    s2.on_message(
        &cmd(Command::SegmentRequest {
            id: 1,
            request_id: 10,
            byte_offset: 0,
        }),
        0,
    );
    drain(&mut s2);
    assert!(s2.upload(10, Arc::new(data.clone())));
    // Header still queued: no payload may overtake it.
    assert_eq!(s2.poll_upload_chunk(), None);
    s2.announce(&[1], &[]);
    let (sent, events) = drain_all(&mut s2);
    assert!(events.is_empty());
    let mut rebuilt = Vec::new();
    let mut d = Decoder::default();
    let mut commands = Vec::new();
    for m in &sent {
        assert!(m.len() <= 16);
        match d.push(m) {
            Incoming::Payload(p) => rebuilt.extend_from_slice(p),
            Incoming::Command(c) => commands.push(c),
            // With 16-byte messages the commands themselves are split.
            Incoming::Partial => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rebuilt, data);
    assert!(matches!(
        commands[0],
        Command::SegmentData { size: 128, .. }
    ));
    assert!(matches!(
        commands.last(),
        Some(Command::SegmentDataSendingCompleted { .. })
    ));
}

#[test]
fn session_can_move_between_threads() {
    fn is_send<T: Send>() {}
    is_send::<PeerSession>();
    is_send::<Output>();
}

/// A download takes its accepted size in one allocation once bytes back the claim, and a
/// claim alone reserves at most 1 MiB.
#[test]
fn a_claimed_size_is_reserved_only_as_bytes_arrive() {
    let capacity = |s: &PeerSession| s.download.as_ref().map_or(0, |d| d.data.capacity());
    let claim = |s: &mut PeerSession, size: i64| {
        s.on_message(
            &cmd(Command::SegmentData {
                id: 1,
                request_id: 9,
                size,
            }),
            1,
        )
    };
    // A 300-KB segment: one allocation of its size at the first bytes.
    let mut s = started(1, None, 64 << 20);
    claim(&mut s, 300_000);
    s.on_message(&[0; 1000], 2);
    assert_eq!(capacity(&s), 300_000);
    // A 16-MiB claim and one byte: 1 MiB, not 16.
    let mut s = started(1, None, 64 << 20);
    claim(&mut s, 16 << 20);
    s.on_message(&[0; 1], 2);
    assert_eq!(capacity(&s), 1 << 20);
    // Past 1 MiB of real bytes, the whole accepted size at once.
    for _ in 0..(1 << 20) / 16_384 {
        s.on_message(&[0; 16_384], 3);
    }
    assert_eq!(capacity(&s), 16 << 20);
    assert!(!s.is_closed());
}

// ------------------------------------------------------------------ 0.6 (§4.2)

const SSID06: &str = "http://127.0.0.1:8080/vod/master.m3u8+V0";

fn session06() -> PeerSession {
    PeerSession::new(
        PeerConfig {
            family: WireFamily::V06 {
                stream_swarm_id: SSID06.into(),
                ids: crate::p2p::wire06::Ids06::Sequence,
            },
            ..PeerConfig::default()
        },
        1,
    )
}

fn json(m: &[u8]) -> Option<serde_json::Value> {
    (m.starts_with(b"{\"") && m.ends_with(b"}"))
        .then(|| serde_json::from_slice(m).ok())
        .flatten()
}

/// A 0.6 transfer as a 0.6 browser sees it: JSON map, string ids, header with `s`, raw
/// chunks and no completion command; the download completes by byte count.
#[test]
fn v06_transfer_completes_by_byte_count() {
    let (mut a, mut b) = (session06(), session06());
    b.announce(&[5, 6], &[7]);
    let (sent, _) = drain(&mut b);
    assert_eq!(
        sent,
        vec![format!(r#"{{"c":2,"m":{{"{SSID06}":["5|6|7",[0,0,1]]}}}}"#).into_bytes()]
    );
    a.on_message(&sent[0], 0);
    let (_, ev) = drain(&mut a);
    assert_eq!(
        ev,
        vec![Event::PeerAnnounced {
            loaded: vec![5, 6],
            http_loading: vec![7]
        }]
    );
    assert!(a.remote_has(6) && a.remote_http_loading(7));

    a.request(req(6), 0).unwrap();
    let (sent, _) = drain(&mut a);
    assert_eq!(
        sent,
        vec![format!(r#"{{"c":3,"i":"{SSID06}+6"}}"#).into_bytes()]
    );
    b.on_message(&sent[0], 0);
    let (_, ev) = drain(&mut b);
    let [Event::UploadRequested {
        id: 6,
        request_id,
        byte_offset: 0,
    }] = ev[..]
    else {
        panic!("{ev:?}");
    };
    let data = pattern(150_000);
    assert!(b.upload(request_id, Arc::new(data.clone())));
    let (sent, _) = drain_all(&mut b);
    assert_eq!(
        sent[0],
        format!(r#"{{"c":0,"i":"{SSID06}+6","s":150000}}"#).into_bytes()
    );
    // Header, then payload only: 0.6 has no "completed" command.
    assert!(sent[1..].iter().all(|m| json(m).is_none()));
    assert_eq!(sent[1..].iter().map(Vec::len).sum::<usize>(), 150_000);
    let mut got = None;
    for m in &sent {
        a.on_message(m, 1);
        let (_, ev) = drain(&mut a);
        for e in ev {
            if let Event::SegmentReceived { id, data } = e {
                got = Some((id, data.to_vec()));
            }
        }
    }
    assert_eq!(got, Some((6, data)));
    assert_eq!(a.current_download(), None);
}

/// 0.6 aborts a download on any command received mid-payload: while we upload to a peer,
/// nothing else goes to it; a held announcement is replaced by newer ones.
#[test]
fn v06_holds_commands_while_uploading() {
    let mut b = session06();
    b.on_message(format!(r#"{{"c":3,"i":"{SSID06}+6"}}"#).as_bytes(), 0);
    let (_, ev) = drain(&mut b);
    let [Event::UploadRequested { request_id, .. }] = ev[..] else {
        panic!("{ev:?}");
    };
    assert!(b.upload(request_id, Arc::new(pattern(200_000))));
    let (header, _) = drain(&mut b);
    assert_eq!(header.len(), 1);
    let first = b.poll_upload_chunk().unwrap();
    assert!(json(&first).is_none());
    b.announce(&[1], &[]);
    b.announce(&[1, 2], &[]);
    b.request(req(9), 0).unwrap();
    b.on_message(format!(r#"{{"c":3,"i":"{SSID06}9"}}"#).as_bytes(), 0); // not ours: absent
    let (sent, _) = drain(&mut b);
    assert!(sent.is_empty(), "a command went out mid-upload: {sent:?}");
    let (rest, _) = drain_all(&mut b);
    let commands: Vec<_> = rest.iter().filter_map(|m| json(m)).collect();
    let payload: usize = rest
        .iter()
        .filter(|m| json(m).is_none())
        .map(Vec::len)
        .sum();
    assert_eq!(payload + first.len(), 200_000);
    // Everything held follows the last chunk: the request, the absent, the newest map.
    assert!(rest[..rest.len() - 3].iter().all(|m| json(m).is_none()));
    assert_eq!(
        commands,
        vec![
            serde_json::json!({"c": 3, "i": format!("{SSID06}+9")}),
            serde_json::json!({"c": 1, "i": format!("{SSID06}9")}),
            serde_json::json!({"c": 2, "m": {SSID06: ["1|2", [0, 0]]}}),
        ]
    );
}

/// A peer's new request replaces the upload in progress; what was held goes out before the
/// new header. A cancel (code 4) stops the upload.
#[test]
fn v06_new_request_and_cancel_end_the_upload() {
    let mut b = session06();
    let ask = |b: &mut PeerSession, id: u32| {
        b.on_message(format!(r#"{{"c":3,"i":"{SSID06}+{id}"}}"#).as_bytes(), 0);
        drain(b)
    };
    let (_, ev) = ask(&mut b, 6);
    let [Event::UploadRequested { request_id: r6, .. }] = ev[..] else {
        panic!("{ev:?}");
    };
    assert!(b.upload(r6, Arc::new(pattern(100_000))));
    drain(&mut b);
    b.poll_upload_chunk().unwrap();
    b.announce(&[6], &[]);
    let (sent, ev) = ask(&mut b, 7);
    // The held map goes out as soon as the upload it waited for is over.
    assert_eq!(sent.len(), 1);
    assert_eq!(json(&sent[0]).unwrap()["c"], 2);
    assert_eq!(
        ev[0],
        Event::UploadCancelled {
            id: 6,
            request_id: r6
        }
    );
    let Event::UploadRequested { request_id: r7, .. } = ev[1] else {
        panic!("{ev:?}");
    };
    assert_ne!(r6, r7);
    assert!(b.upload(r7, Arc::new(pattern(10))));
    let (sent, _) = drain(&mut b);
    assert_eq!(json(&sent[0]).unwrap()["c"], 0);
    b.on_message(format!(r#"{{"c":4,"i":"{SSID06}+7"}}"#).as_bytes(), 0);
    let (_, ev) = drain(&mut b);
    assert_eq!(
        ev,
        vec![Event::UploadCancelled {
            id: 7,
            request_id: r7
        }]
    );
    assert!(!b.is_uploading());
}

/// Size rules hold for 0.6 too: more bytes than `s` disconnects; a header for another
/// segment, or without a numeric size, is ignored; absent ends the download.
#[test]
fn v06_downloader_checks() {
    let mut a = session06();
    a.request(req(3), 0).unwrap();
    drain(&mut a);
    a.on_message(format!(r#"{{"c":0,"i":"{SSID06}+4","s":5}}"#).as_bytes(), 1);
    a.on_message(
        format!(r#"{{"c":0,"i":"{SSID06}+3","s":"5"}}"#).as_bytes(),
        1,
    );
    a.on_message(b"abc", 1);
    assert_eq!(a.current_download(), Some(3));
    a.on_message(format!(r#"{{"c":1,"i":"{SSID06}+3"}}"#).as_bytes(), 2);
    let (_, ev) = drain(&mut a);
    assert_eq!(ev, vec![Event::SegmentAbsent { id: 3 }]);
    a.request(req(3), 3).unwrap();
    a.on_message(format!(r#"{{"c":0,"i":"{SSID06}+3","s":2}}"#).as_bytes(), 4);
    a.on_message(b"abc", 4);
    let (_, ev) = drain(&mut a);
    assert!(ev.contains(&Event::Disconnect {
        reason: DisconnectReason::TooManyBytes
    }));
}

/// A request held behind our upload (0.6) does not time out while it waits: its clock starts
/// once the upload is over.
#[test]
fn v06_held_request_times_out_only_after_it_went() {
    let mut b = session06();
    b.on_message(format!(r#"{{"c":3,"i":"{SSID06}+6"}}"#).as_bytes(), 0);
    let (_, ev) = drain(&mut b);
    let [Event::UploadRequested { request_id, .. }] = ev[..] else {
        panic!("{ev:?}");
    };
    assert!(b.upload(request_id, Arc::new(pattern(300_000))));
    drain(&mut b);
    b.poll_upload_chunk().unwrap();
    b.request(req(9), 0).unwrap();
    // The upload takes 10 s (a slow uplink): no timeout meanwhile.
    for t in (1..=10).map(|k| k * 1000) {
        b.on_timer(t);
        let (_, ev) = drain(&mut b);
        assert!(ev.is_empty(), "at {t}: {ev:?}");
    }
    let (rest, _) = drain_all(&mut b);
    assert!(rest.iter().any(|m| json(m).is_some_and(|j| j["c"] == 3)));
    assert_eq!(b.current_download(), Some(9));
    b.on_timer(10_500);
    b.on_timer(b.poll_timeout().unwrap());
    let (_, ev) = drain(&mut b);
    assert!(
        ev.contains(&Event::DownloadFailed {
            id: 9,
            reason: DownloadFailure::Timeout
        }),
        "{ev:?}"
    );
}

/// 0.6 peers ignore cancels: the rest of a segment we gave up still arrives (and so does the
/// header of a request we gave up before it came). It is discarded and counts as the peer
/// being alive; the next download from that peer gets exactly its own bytes.
#[test]
fn v06_the_tail_of_an_abandoned_transfer_is_discarded() {
    let header = |id: u32, s: usize| format!(r#"{{"c":0,"i":"{SSID06}+{id}","s":{s}}}"#);
    let mut a = session06();
    // Gave up after 30 of 100 bytes.
    a.request(req(6), 0).unwrap();
    a.on_message(header(6, 100).as_bytes(), 0);
    a.on_message(&[1u8; 30], 0);
    a.on_timer(5_000);
    drain(&mut a);
    // Gave up before the header came.
    a.request(req(7), 5_000).unwrap();
    a.on_timer(10_000);
    drain(&mut a);
    assert_eq!(a.timeout_strikes(), 2);
    a.request(req(8), 10_000).unwrap();
    // The old tails arrive first (ordered channel), slowly: no timeout meanwhile.
    a.on_message(&[1u8; 70], 11_000);
    a.on_message(header(7, 40).as_bytes(), 12_000);
    a.on_message(&[2u8; 40], 12_500);
    a.on_timer(12_600);
    a.on_message(header(8, 50).as_bytes(), 13_000);
    a.on_message(&[3u8; 50], 13_000);
    let (_, ev) = drain(&mut a);
    assert!(
        ev.contains(&Event::SegmentReceived {
            id: 8,
            data: SegmentBuf::from(vec![3u8; 50])
        }),
        "{ev:?}"
    );
    assert!(!a.is_closed());
    assert_eq!(a.timeout_strikes(), 0);
}

/// While we upload to a 0.6 peer, a flood of requests for other variants' segments leaves one
/// "absent" waiting, not one per request; absurdly long ids are not echoed at all.
#[test]
fn v06_foreign_requests_mid_upload_hold_one_answer() {
    let mut b = session06();
    b.on_message(format!(r#"{{"c":3,"i":"{SSID06}+6"}}"#).as_bytes(), 0);
    let (_, ev) = drain(&mut b);
    let [Event::UploadRequested { request_id, .. }] = ev[..] else {
        panic!("{ev:?}");
    };
    assert!(b.upload(request_id, Arc::new(pattern(100_000))));
    drain(&mut b);
    b.poll_upload_chunk().unwrap();
    for k in 0..1000 {
        b.on_message(format!(r#"{{"c":3,"i":"other+V1+{k}"}}"#).as_bytes(), 0);
    }
    let long = format!(r#"{{"c":3,"i":"{}"}}"#, "x".repeat(5000));
    b.on_message(long.as_bytes(), 0);
    let (rest, _) = drain_all(&mut b);
    let absents: Vec<_> = rest
        .iter()
        .filter_map(|m| json(m))
        .filter(|j| j["c"] == 1)
        .collect();
    assert_eq!(
        absents,
        vec![serde_json::json!({"c": 1, "i": "other+V1+999"})]
    );
}
