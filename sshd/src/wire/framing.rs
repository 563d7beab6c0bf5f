//! Packet framing (RFC 4253 §6) in both directions.
//!
//! [`Decoder`] collects one packet at a time from arbitrary slices of
//! received bytes, validates its length (at most [`MAX_PACKET`], block
//! aligned) and padding (at least 4 bytes, leaving a non-empty payload),
//! checks the tag when keys are in use, and hands out the payload. Every
//! failure is a [`FrameError`]; nothing here panics on peer input.
//! [`Encoder`] frames payloads into an output buffer. Both count sequence
//! numbers, which strict kex resets at each NEWKEYS ([`Decoder::set_keys`],
//! [`Encoder::set_keys`]).

use alloc::vec::Vec;

use super::cipher::{ChaPoly, TAG_LEN};

/// The largest `packet_length` accepted, as OpenSSH's `PACKET_MAX_SIZE`.
pub const MAX_PACKET: usize = 256 * 1024;
/// The largest `packet_length` accepted before authentication: RFC 4253
/// §6.1's 35000-byte packet, which every client's handshake fits in, so an
/// unauthenticated peer cannot make a connection hold 256 KiB.
pub const MAX_PACKET_PRE_AUTH: usize = 35_000;
const BLOCK: usize = 8;
const MIN_PADDING: usize = 4;

/// Why a received packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// `packet_length` over the limit or under the minimum.
    BadLength,
    /// The packet buffer could not be reserved.
    NoMemory,
    /// Not a multiple of the block size.
    Misaligned,
    /// Padding under 4 bytes or leaving no payload.
    BadPadding,
    /// The tag did not verify.
    BadMac,
}

impl FrameError {
    /// A sentence for the DISCONNECT message.
    pub fn reason(self) -> &'static str {
        match self {
            Self::BadLength => "bad packet length",
            Self::NoMemory => "out of memory for a packet",
            Self::Misaligned => "packet length not block aligned",
            Self::BadPadding => "bad packet padding",
            Self::BadMac => "message authentication failed",
        }
    }
}

/// Reassembles and opens received packets.
#[derive(Debug)]
pub struct Decoder {
    keys: Option<ChaPoly>,
    max: usize,
    seq: u32,
    /// The current packet as received so far (still encrypted).
    buf: Vec<u8>,
    /// Total bytes of the current packet once its length is known.
    want: Option<usize>,
    /// Payload range inside `buf` of a packet that is ready.
    ready: Option<(usize, usize)>,
}

impl Default for Decoder {
    /// A decoder without keys that accepts packets up to
    /// [`MAX_PACKET_PRE_AUTH`].
    fn default() -> Self {
        Self {
            keys: None,
            max: MAX_PACKET_PRE_AUTH,
            seq: 0,
            buf: Vec::new(),
            want: None,
            ready: None,
        }
    }
}

impl Decoder {
    /// Accepts packets up to `max` bytes (at most [`MAX_PACKET`]) from now on.
    pub fn set_max(&mut self, max: usize) {
        self.max = max.min(MAX_PACKET);
    }

    /// The sequence number the next packet will have.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Installs new keys (after receiving NEWKEYS); `reset_seq` for strict kex.
    pub fn set_keys(&mut self, keys: ChaPoly, reset_seq: bool) {
        self.keys = Some(keys);
        if reset_seq {
            self.seq = 0;
        }
    }

    /// Bytes held for a packet not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes bytes from `input` towards the next packet. Returns how many
    /// were consumed; once a packet is complete, [`Self::payload`] returns
    /// it and no more bytes are taken until [`Self::next`].
    ///
    /// # Errors
    /// A [`FrameError`] if the packet is invalid; the connection must end.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, FrameError> {
        let mut used = 0;
        while self.ready.is_none() && used < input.len() {
            let target = self.want.unwrap_or(4);
            let take = (target - self.buf.len()).min(input.len() - used);
            self.buf.extend_from_slice(&input[used..used + take]);
            used += take;
            if self.buf.len() < target {
                break;
            }
            if self.want.is_none() {
                self.want = Some(self.header()?);
            } else {
                self.open()?;
            }
        }
        Ok(used)
    }

    fn header(&mut self) -> Result<usize, FrameError> {
        let enc = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        let (len, tag) = match &self.keys {
            Some(k) => (k.length(self.seq, enc), TAG_LEN),
            None => (u32::from_be_bytes(enc), 0),
        };
        let len = usize::try_from(len).map_err(|_| FrameError::BadLength)?;
        if !(BLOCK..=self.max).contains(&len) {
            return Err(FrameError::BadLength);
        }
        // With chacha20-poly1305 the length field is outside the blocks.
        let aligned = if self.keys.is_some() { len } else { len + 4 };
        if aligned % BLOCK != 0 {
            return Err(FrameError::Misaligned);
        }
        self.buf
            .try_reserve_exact(len + tag)
            .map_err(|_| FrameError::NoMemory)?;
        Ok(4 + len + tag)
    }

    fn open(&mut self) -> Result<(), FrameError> {
        let total = self.want.unwrap_or(0);
        let body_end = match &self.keys {
            Some(k) => {
                let end = total - TAG_LEN;
                let (pkt, tag) = self.buf.split_at_mut(end);
                k.open(self.seq, pkt, tag).map_err(|_| FrameError::BadMac)?;
                end
            }
            None => total,
        };
        let pad = usize::from(self.buf[4]);
        let len = body_end - 4;
        if pad < MIN_PADDING || pad + 1 >= len {
            return Err(FrameError::BadPadding);
        }
        self.ready = Some((5, body_end - pad));
        Ok(())
    }

    /// The payload of the packet that is complete, if any.
    pub fn payload(&self) -> Option<&[u8]> {
        self.ready.map(|(a, b)| &self.buf[a..b])
    }

    /// Discards the complete packet and counts its sequence number.
    pub fn next(&mut self) {
        if self.ready.take().is_some() {
            self.seq = self.seq.wrapping_add(1);
            self.want = None;
            self.buf.clear();
            if self.buf.capacity() > 64 * 1024 {
                self.buf.shrink_to(64 * 1024);
            }
        }
    }
}

/// Frames payloads for sending.
#[derive(Debug, Default)]
pub struct Encoder {
    keys: Option<ChaPoly>,
    seq: u32,
}

impl Encoder {
    /// Installs new keys (after sending NEWKEYS); `reset_seq` for strict kex.
    pub fn set_keys(&mut self, keys: ChaPoly, reset_seq: bool) {
        self.keys = Some(keys);
        if reset_seq {
            self.seq = 0;
        }
    }

    /// The framed size of a payload of `len` bytes.
    pub fn framed_len(&self, len: usize) -> usize {
        let (body, tag) = self.layout(len);
        4 + body + tag
    }

    fn layout(&self, len: usize) -> (usize, usize) {
        let (extra, tag) = if self.keys.is_some() {
            (0, TAG_LEN)
        } else {
            (4, 0)
        };
        let mut pad = BLOCK - (extra + 1 + len) % BLOCK;
        if pad < MIN_PADDING {
            pad += BLOCK;
        }
        (1 + len + pad, tag)
    }

    /// Appends the framed (and, with keys, encrypted) `payload` to `out`.
    ///
    /// Padding is zeros: with an AEAD cipher it is encrypted and
    /// authenticated like the payload, so its content carries nothing.
    pub fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let (body, _) = self.layout(payload.len());
        let start = out.len();
        let len = u32::try_from(body).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        #[allow(clippy::cast_possible_truncation)] // under 16 by construction
        out.push((body - 1 - payload.len()) as u8);
        out.extend_from_slice(payload);
        out.resize(start + 4 + body, 0);
        if let Some(k) = &self.keys {
            let tag = k.seal(self.seq, &mut out[start..]);
            out.extend_from_slice(&tag);
        }
        self.seq = self.seq.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair(keys: bool) -> (Encoder, Decoder) {
        let mut e = Encoder::default();
        let mut d = Decoder::default();
        if keys {
            e.set_keys(ChaPoly::new(&[9; 64]), true);
            d.set_keys(ChaPoly::new(&[9; 64]), true);
        }
        (e, d)
    }

    #[test]
    fn round_trip_byte_by_byte() {
        for keys in [false, true] {
            let (mut e, mut d) = pair(keys);
            let mut out = Vec::new();
            e.encode(b"hello", &mut out);
            e.encode(&[5; 1000], &mut out);
            assert_eq!(out.len(), e.framed_len(5) + e.framed_len(1000));
            let mut got = Vec::new();
            for b in out.chunks(1) {
                assert_eq!(d.feed(b).unwrap(), 1);
                if let Some(p) = d.payload() {
                    got.push(p.to_vec());
                    d.next();
                }
            }
            assert_eq!(got, [b"hello".to_vec(), [5; 1000].to_vec()]);
            assert_eq!(d.seq(), 2);
        }
    }

    #[test]
    fn bad_lengths_and_padding_are_refused() {
        let mut d = Decoder::default();
        assert_eq!(d.feed(&[0, 0x10, 0, 0]), Err(FrameError::BadLength));
        let mut d = Decoder::default();
        assert_eq!(d.feed(&[0, 0, 0x90, 4]), Err(FrameError::BadLength));
        d = Decoder::default();
        d.set_max(usize::MAX);
        assert_eq!(d.feed(&[0, 0, 0x90, 4]), Ok(4));
        d = Decoder::default();
        d.set_max(usize::MAX);
        assert_eq!(d.feed(&[0, 4, 0, 4]), Err(FrameError::BadLength));
        let mut d = Decoder::default();
        assert_eq!(d.feed(&[0, 0, 0, 13]), Err(FrameError::Misaligned));
        let mut d = Decoder::default();
        let mut p = vec![0, 0, 0, 12, 3];
        p.extend_from_slice(&[0; 11]);
        assert_eq!(d.feed(&p), Err(FrameError::BadPadding));
        let mut d = Decoder::default();
        let mut p = vec![0, 0, 0, 12, 11];
        p.extend_from_slice(&[0; 11]);
        assert_eq!(d.feed(&p), Err(FrameError::BadPadding));
    }

    #[test]
    fn bad_mac_is_refused() {
        let (mut e, mut d) = pair(true);
        let mut out = Vec::new();
        e.encode(b"payload", &mut out);
        let last = out.len() - 1;
        out[last] ^= 0x40;
        assert_eq!(d.feed(&out), Err(FrameError::BadMac));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048),
                                    keys in any::<bool>()) {
            let (_, mut d) = pair(keys);
            let mut rest = &data[..];
            while !rest.is_empty() {
                match d.feed(rest) {
                    Ok(n) => {
                        rest = &rest[n..];
                        if d.payload().is_some() { d.next(); } else if n == 0 { break; }
                    }
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn corrupted_frames_fail_cleanly(payload in proptest::collection::vec(any::<u8>(), 1..600),
                                         flip in any::<usize>(), bit in 0u8..8, cut in any::<usize>()) {
            let (mut e, mut d) = pair(true);
            let mut out = Vec::new();
            e.encode(&payload, &mut out);
            let i = flip % out.len();
            out[i] ^= 1 << bit;
            out.truncate(out.len() - cut % 8);
            if d.feed(&out).is_ok() {
                prop_assert!(d.payload().is_none() || cut % 8 == 0);
            }
            // A flipped bit must never yield the original packet.
            if let Some(p) = d.payload() { prop_assert_ne!(p, &payload[..]); }
        }
    }
}
