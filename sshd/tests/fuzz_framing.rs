//! Fuzzing the binary packet protocol reader (`wire::framing::Decoder`)
//! and the bounds-checked `wire::codec::Reader` with proptest, through
//! their public API.
//!
//! What every case checks, beyond "never panics":
//! - the decoder never holds more than one packet: `buffered() <= 4 +
//!   max + 16` (length field, the packet, the tag), and a refused length
//!   is refused after its 4 bytes, before any room is reserved for it;
//! - a packet length is accepted exactly when it lies in `8..=max` and is
//!   block aligned; 256 KiB (`MAX_PACKET`) itself is accepted and 256 KiB
//!   + 8 is not;
//! - padding is accepted exactly when it is at least 4 bytes and leaves a
//!   payload;
//! - with keys, a corrupted frame never yields a payload: what comes out
//!   is a prefix of what was sent, then an error or a wait;
//! - how the bytes are split into reads changes nothing.

use proptest::prelude::*;

use sshd::wire::cipher::{ChaPoly, TAG_LEN};
use sshd::wire::codec::Reader;
use sshd::wire::framing::{Decoder, Encoder, FrameError, MAX_PACKET, MAX_PACKET_PRE_AUTH};

const KEY: [u8; 64] = [0x5a; 64];

fn decoder(keys: bool, max: usize) -> Decoder {
    let mut d = Decoder::default();
    d.set_max(max);
    if keys {
        d.set_keys(ChaPoly::new(&KEY), true);
    }
    d
}

fn encoder(keys: bool) -> Encoder {
    let mut e = Encoder::default();
    if keys {
        e.set_keys(ChaPoly::new(&KEY), true);
    }
    e
}

/// What feeding a stream produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    payloads: Vec<Vec<u8>>,
    error: Option<FrameError>,
    /// Bytes of an incomplete packet held at the end.
    held: usize,
}

/// Feeds `stream` in reads of the sizes in `cuts` (cycled; 0 counts as 1),
/// taking payloads as they complete, checking the buffer bound throughout.
fn feed(d: &mut Decoder, stream: &[u8], cuts: &[usize], max: usize) -> Outcome {
    let bound = 4 + max + TAG_LEN;
    let mut payloads = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts
            .get(i % cuts.len().max(1))
            .copied()
            .unwrap_or(usize::MAX);
        i += 1;
        let mut chunk = &rest[..n.clamp(1, rest.len())];
        while !chunk.is_empty() {
            let used = match d.feed(chunk) {
                Ok(used) => used,
                Err(e) => {
                    assert!(d.buffered() <= bound);
                    return Outcome {
                        payloads,
                        error: Some(e),
                        held: d.buffered(),
                    };
                }
            };
            assert!(d.buffered() <= bound, "{} > {bound}", d.buffered());
            if let Some(p) = d.payload() {
                assert!(!p.is_empty() && p.len() < max);
                payloads.push(p.to_vec());
                d.next();
            } else {
                assert_eq!(used, chunk.len(), "no packet ready, yet input refused");
            }
            chunk = &chunk[used..];
            rest = &rest[used..];
        }
    }
    Outcome {
        payloads,
        error: None,
        held: d.buffered(),
    }
}

/// A frame with `packet_length` `len` and padding length `pad` (the
/// padding may not fit: what the bytes say is what is tested), body bytes
/// `fill`, sealed when `keys`.
fn frame(keys: bool, len: u32, pad: u8, fill: u8) -> Vec<u8> {
    let mut f = len.to_be_bytes().to_vec();
    f.push(pad);
    f.resize(4 + len as usize, fill);
    if keys {
        let tag = ChaPoly::new(&KEY).seal(0, &mut f);
        f.extend_from_slice(&tag);
    }
    f
}

/// Lengths at and around the interesting edges: tiny, the pre-auth and
/// full caps, and the top of `u32`.
fn edge_length() -> impl Strategy<Value = u32> {
    let near = |x: u32| (x.saturating_sub(16))..=(x.saturating_add(16));
    prop_oneof![
        0u32..=24,
        near(u32::try_from(MAX_PACKET_PRE_AUTH).unwrap()),
        near(u32::try_from(MAX_PACKET).unwrap()),
        (u32::MAX - 16)..=u32::MAX,
        any::<u32>(),
    ]
}

fn cut_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1usize..8, 1usize..64, 1usize..5000], 1..12)
}

/// A packet of exactly the cap decodes; one block more is refused. (Four
/// cases, not a property: each moves 256 KiB through debug-build crypto.)
#[test]
fn the_largest_packet() {
    for (keys, max) in [false, true]
        .into_iter()
        .flat_map(|k| [(k, MAX_PACKET_PRE_AUTH), (k, MAX_PACKET)])
    {
        let mut e = encoder(keys);
        let tag = if keys { TAG_LEN } else { 0 };
        // The longest payload whose packet fits the cap.
        let n = (1..max)
            .rev()
            .find(|&n| e.framed_len(n) <= 4 + max + tag)
            .unwrap();
        assert!(
            e.framed_len(n) > 4 + max + tag - 8,
            "the cap is reached to the block"
        );
        let payload = vec![0xa5; n];
        let mut stream = Vec::new();
        e.encode(&payload, &mut stream);
        let mut d = decoder(keys, max);
        let out = feed(&mut d, &stream, &[70_000], max);
        assert_eq!(out.payloads, vec![payload]);
        assert_eq!(out.error, None);
        // A packet one block (8 bytes) longer.
        let mut over = Vec::new();
        encoder(keys).encode(&vec![0xa5; n + 8], &mut over);
        let mut d = decoder(keys, max);
        let out = feed(&mut d, &over, &[70_000], max);
        assert_eq!((out.error, out.held), (Some(FrameError::BadLength), 4));
    }
}

proptest! {
    // Found failures are turned into plain regression tests, not kept in
    // proptest's files.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("SSHD_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random bytes, with or without keys, in random reads.
    #[test]
    fn random_bytes(data in prop::collection::vec(any::<u8>(), 0..4096),
                    keys in any::<bool>(), post_auth in any::<bool>(), cuts in cut_sizes()) {
        let max = if post_auth { MAX_PACKET } else { MAX_PACKET_PRE_AUTH };
        let mut d = decoder(keys, max);
        feed(&mut d, &data, &cuts, max);
    }

    /// The length field alone decides acceptance, before anything is
    /// reserved; an accepted length then waits for exactly its bytes.
    #[test]
    fn lengths_around_the_caps(len in edge_length(), keys in any::<bool>(), post_auth in any::<bool>()) {
        let max = if post_auth { MAX_PACKET } else { MAX_PACKET_PRE_AUTH };
        let mut d = decoder(keys, max);
        let header = if keys {
            // The length is encrypted with its own keystream (an XOR), so
            // decrypting the plain value gives the bytes to send.
            ChaPoly::new(&KEY).length(0, len.to_be_bytes()).to_be_bytes()
        } else {
            len.to_be_bytes()
        };
        let aligned = if keys { len } else { len.wrapping_add(4) };
        let expect = if !(8..=max as u64).contains(&u64::from(len)) {
            Err(FrameError::BadLength)
        } else if aligned % 8 != 0 {
            Err(FrameError::Misaligned)
        } else {
            Ok(4)
        };
        prop_assert_eq!(d.feed(&header), expect);
        prop_assert_eq!(d.buffered(), 4);
        if expect.is_ok() {
            // One byte short of the whole packet: still waiting.
            let total = len as usize + if keys { TAG_LEN } else { 0 };
            let body = vec![0u8; total - 1];
            prop_assert_eq!(d.feed(&body), Ok(total - 1));
            prop_assert!(d.payload().is_none());
            prop_assert_eq!(d.buffered(), 4 + total - 1);
        }
    }

    /// Padding: at least 4 bytes, leaving at least one payload byte.
    #[test]
    fn padding_is_checked(blocks in 1u32..40, pad in any::<u8>(), keys in any::<bool>()) {
        let len = if keys { blocks * 8 } else { blocks * 8 + 4 };
        let f = frame(keys, len, pad, 0x11);
        let mut d = decoder(keys, MAX_PACKET);
        let out = feed(&mut d, &f, &[7, 100], MAX_PACKET);
        let pad = u32::from(pad);
        if pad < 4 || pad + 1 >= len {
            prop_assert_eq!(out.error, Some(FrameError::BadPadding));
            prop_assert!(out.payloads.is_empty());
        } else {
            prop_assert_eq!(out.error, None);
            prop_assert_eq!(out.payloads.len(), 1);
            prop_assert_eq!(out.payloads[0].len(), (len - pad - 1) as usize);
        }
    }

    /// Any split of a valid stream gives the same payloads; a truncated
    /// stream gives the complete ones and holds the rest, without error.
    #[test]
    fn splits_and_truncation(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..3000), 1..6),
                             keys in any::<bool>(), cuts in cut_sizes(), cut_at in any::<prop::sample::Index>()) {
        let mut e = encoder(keys);
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for p in &payloads {
            e.encode(p, &mut stream);
            ends.push(stream.len());
        }
        let mut d = decoder(keys, MAX_PACKET);
        let out = feed(&mut d, &stream, &cuts, MAX_PACKET);
        prop_assert_eq!(&out.payloads, &payloads);
        prop_assert_eq!((out.error, out.held), (None, 0));
        prop_assert_eq!(d.seq() as usize, payloads.len());

        let at = cut_at.index(stream.len());
        let complete = ends.iter().filter(|&&end| end <= at).count();
        let start = if complete == 0 { 0 } else { ends[complete - 1] };
        let mut d = decoder(keys, MAX_PACKET);
        let out = feed(&mut d, &stream[..at], &cuts, MAX_PACKET);
        prop_assert_eq!(&out.payloads[..], &payloads[..complete]);
        prop_assert_eq!((out.error, out.held), (None, at - start));
    }

    /// With keys, flipped bits never yield a payload that was not sent:
    /// the packets before the first damaged one come out, nothing after.
    #[test]
    fn corrupted_frames(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..600), 1..5),
                        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
                        cuts in cut_sizes()) {
        let mut e = encoder(true);
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for p in &payloads {
            e.encode(p, &mut stream);
            ends.push(stream.len());
        }
        let original = stream.clone();
        for (i, bit) in &flips {
            let i = i.index(stream.len());
            stream[i] ^= 1 << bit;
        }
        // The same bit flipped twice is no damage.
        let first = (0..stream.len())
            .find(|&i| stream[i] != original[i])
            .unwrap_or(stream.len());
        let intact = ends.iter().filter(|&&end| end <= first).count();
        let mut d = decoder(true, MAX_PACKET);
        let out = feed(&mut d, &stream, &cuts, MAX_PACKET);
        prop_assert_eq!(&out.payloads[..], &payloads[..intact]);
        if first < stream.len() && out.error.is_none() {
            // A length that grew: waiting for bytes that never come.
            prop_assert!(out.held > 0);
        }
    }

    /// The codec reader: any sequence of reads over any bytes stays in
    /// bounds and reads big-endian.
    #[test]
    fn codec_reader(data in prop::collection::vec(any::<u8>(), 0..256),
                    ops in prop::collection::vec(0u8..6, 0..40)) {
        let mut r = Reader::new(&data);
        for op in ops {
            let before = r.position();
            let ok = match op {
                0 => r.u8().is_some(),
                1 => r.bool().is_some(),
                2 => r.u32().map(|v| {
                    assert_eq!(v.to_be_bytes(), data[before..before + 4]);
                }).is_some(),
                3 => r.string().map(|s| {
                    assert_eq!(s, &data[before + 4..before + 4 + s.len()]);
                }).is_some(),
                4 => r.bytes(3).is_some(),
                _ => r.bytes(usize::MAX).is_some(),
            };
            prop_assert!(r.position() <= data.len());
            if !ok {
                // A failed string read may have taken its length field;
                // callers treat any failure as a malformed message.
                let moved = r.position() - before;
                prop_assert!(moved == 0 || (op == 3 && moved == 4), "moved {}", moved);
            }
            prop_assert_eq!(r.is_empty(), r.position() == data.len());
        }
    }
}
