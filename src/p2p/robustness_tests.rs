//! Deterministic randomized robustness tests (stable-Rust stand-in for
//! `cargo fuzz`): hundreds of thousands of random and mutated inputs.

use super::fuzz_driver::{self, op};
use super::rng::SplitMix64;
use super::wire::{self, Command, Decoder, Incoming};

fn random_id(rng: &mut SplitMix64) -> i64 {
    match rng.below(4) {
        0 => rng.below(300) as i64,
        1 => rng.below(1 << 40) as i64,
        2 => -(rng.below(1 << 20) as i64),
        _ => rng.next_u64() as i64,
    }
}

fn random_command(rng: &mut SplitMix64) -> Command {
    let id = random_id(rng);
    let request_id = random_id(rng);
    match rng.below(6) {
        0 => {
            let ids = |rng: &mut SplitMix64| {
                let n = match rng.below(16) {
                    0 => rng.below(2000),
                    _ => rng.below(40),
                } as usize;
                let base = random_id(rng);
                (0..n)
                    .map(|_| base.wrapping_add(rng.below(2000) as i64))
                    .collect()
            };
            Command::SegmentsAnnouncement {
                loaded: ids(rng),
                http_loading: ids(rng),
            }
        }
        1 => Command::SegmentRequest {
            id,
            request_id,
            byte_offset: random_id(rng),
        },
        2 => Command::SegmentData {
            id,
            request_id,
            size: random_id(rng),
        },
        3 => Command::SegmentDataSendingCompleted { id, request_id },
        4 => Command::SegmentAbsent { id, request_id },
        _ => Command::CancelSegmentRequest { id, request_id },
    }
}

fn mutate(rng: &mut SplitMix64, m: &mut Vec<u8>) {
    for _ in 0..rng.below(4) {
        if m.is_empty() {
            m.push(rng.next_u64() as u8);
        }
        let i = rng.below(m.len() as u64) as usize;
        match rng.below(4) {
            0 => m[i] ^= 1 << rng.below(8),
            1 => m[i] = rng.next_u64() as u8,
            2 => m.truncate(i),
            _ => m.insert(i, rng.next_u64() as u8),
        }
    }
}

fn random_message(rng: &mut SplitMix64) -> Vec<u8> {
    match rng.below(5) {
        0 => (0..rng.below(200)).map(|_| rng.next_u64() as u8).collect(),
        1 => {
            let body: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
            let start: &[u8] = if rng.below(2) == 0 { b"cstr" } else { b"dstr" };
            let end: &[u8] = if rng.below(2) == 0 { b"cend" } else { b"dend" };
            [start, &body, end].concat()
        }
        _ => {
            let max = match rng.below(8) {
                0 => 1 + rng.below(64),
                _ => 64 + rng.below(3000),
            } as usize;
            let mut msgs = wire::encode_command(&random_command(rng), max);
            let i = rng.below(msgs.len() as u64) as usize;
            let mut m = msgs.swap_remove(i);
            mutate(rng, &mut m);
            m
        }
    }
}

#[test]
fn random_commands_round_trip() {
    let mut rng = SplitMix64::new(0xC0FFEE);
    for _ in 0..20_000 {
        let cmd = random_command(&mut rng);
        let max = match rng.below(8) {
            0 => 9 + rng.below(64),
            _ => 9 + rng.below(70_000),
        } as usize;
        let msgs = wire::encode_command(&cmd, max);
        let mut d = Decoder::default();
        let mut got = None;
        for m in &msgs {
            assert!(m.len() <= max);
            match d.push(m) {
                Incoming::Command(c) => got = Some(c),
                Incoming::Partial => {}
                other => panic!("{other:?} for {cmd:?}"),
            }
        }
        let got = got.expect("decoded");
        match (&cmd, &got) {
            // Announcements are sets: compare as such (duplicates are sent once).
            (
                Command::SegmentsAnnouncement {
                    loaded: l1,
                    http_loading: p1,
                },
                Command::SegmentsAnnouncement {
                    loaded: l2,
                    http_loading: p2,
                },
            ) => {
                let set =
                    |v: &Vec<i64>| v.iter().copied().collect::<std::collections::BTreeSet<_>>();
                assert_eq!(set(l1), set(l2));
                assert_eq!(set(p1), set(p2));
            }
            _ => assert_eq!(cmd, got),
        }
    }
}

#[test]
fn decoder_survives_200k_random_and_mutated_messages() {
    let mut rng = SplitMix64::new(0xDEC0DE);
    let cap = 2048;
    let mut d = Decoder::new(cap);
    let mut commands = 0;
    for _ in 0..200_000 {
        let m = random_message(&mut rng);
        if let Incoming::Command(_) = d.push(&m) {
            commands += 1;
        }
        assert!(d.buffered_len() <= cap);
        let _ = wire::decode_body(&m);
    }
    // Sanity: the generator reaches the decoder's happy path too.
    assert!(commands > 10_000, "{commands}");
}

/// Builds a driver script of structured steps and random garbage.
fn random_script(rng: &mut SplitMix64) -> Vec<u8> {
    let mut s = Vec::new();
    let raw = |s: &mut Vec<u8>, m: &[u8]| {
        s.push(op::RAW);
        s.extend_from_slice(&(m.len() as u16).to_le_bytes());
        s.extend_from_slice(m);
    };
    for _ in 0..rng.below(40) {
        match rng.below(11) {
            10 => {
                // A complete, well-formed answer to a likely request.
                let (id, r, n) = (
                    rng.below(4) as i64,
                    rng.below(4) as i64,
                    rng.below(3000) as usize,
                );
                let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
                raw(
                    &mut s,
                    &wire::encode_command(
                        &Command::SegmentData {
                            id,
                            request_id: r,
                            size: n as i64,
                        },
                        1000,
                    )[0],
                );
                for chunk in data.chunks(900) {
                    raw(&mut s, chunk);
                }
                raw(
                    &mut s,
                    &wire::encode_command(
                        &Command::SegmentDataSendingCompleted { id, request_id: r },
                        1000,
                    )[0],
                );
            }
            0..=4 => {
                let m = match rng.below(3) {
                    // Responses to requests the script makes (ids and r < 256).
                    0 => {
                        let (id, r) = (rng.below(4) as i64, rng.below(4) as i64);
                        let cmd = match rng.below(4) {
                            0 => Command::SegmentData {
                                id,
                                request_id: r,
                                size: rng.below(3000) as i64,
                            },
                            1 => Command::SegmentDataSendingCompleted { id, request_id: r },
                            2 => Command::SegmentAbsent { id, request_id: r },
                            _ => Command::SegmentRequest {
                                id,
                                request_id: r,
                                byte_offset: rng.below(50) as i64,
                            },
                        };
                        wire::encode_command(&cmd, wire::MAX_MESSAGE_SIZE).remove(0)
                    }
                    1 => (0..rng.below(1500)).map(|i| i as u8).collect(),
                    _ => random_message(rng),
                };
                raw(&mut s, &m);
            }
            5 => s.extend_from_slice(&[
                op::REQUEST,
                rng.below(4) as u8,
                rng.below(4) as u8,
                rng.next_u64() as u8,
            ]),
            6 => s.extend_from_slice(&[op::TIMER, rng.below(60) as u8]),
            7 => s.extend_from_slice(&[op::ANSWER, rng.next_u64() as u8]),
            8 => s.push(op::CANCEL),
            _ => {
                let n = rng.below(20);
                s.extend((0..n).map(|_| rng.next_u64() as u8));
            }
        }
    }
    if rng.below(4) == 0 {
        mutate(rng, &mut s);
    }
    s
}

#[test]
fn peer_session_survives_random_scripts() {
    let mut rng = SplitMix64::new(0x5E55_1011);
    let mut total = fuzz_driver::Stats::default();
    for _ in 0..20_000 {
        let script = random_script(&mut rng);
        let st = fuzz_driver::run(&script);
        total.received += st.received;
        total.disconnects += st.disconnects;
        total.upload_chunks += st.upload_chunks;
        total.upload_requests += st.upload_requests;
    }
    eprintln!("script totals: {total:?}");
    // The scripts reach successful transfers, uploads and disconnects.
    assert!(total.received > 100, "{total:?}");
    assert!(total.disconnects > 100, "{total:?}");
    assert!(total.upload_chunks > 100, "{total:?}");
}
