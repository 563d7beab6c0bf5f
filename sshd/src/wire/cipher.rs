//! `chacha20-poly1305@openssh.com` (OpenSSH `PROTOCOL.chacha20poly1305`).
//!
//! Two `ChaCha20` keys from the 64 bytes of key material: the second half
//! encrypts the 4-byte packet length, the first half the packet body and,
//! from block 0 of its keystream, gives the Poly1305 key. The nonce is the
//! packet sequence number. The tag covers the encrypted length and body and
//! is compared in constant time before anything is decrypted.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use poly1305::Poly1305;
use poly1305::universal_hash::KeyInit;
use subtle::ConstantTimeEq;

/// The Poly1305 tag length.
pub const TAG_LEN: usize = 16;

/// Keys of one direction of `chacha20-poly1305@openssh.com`.
#[derive(Clone)]
pub struct ChaPoly {
    main: [u8; 32],
    header: [u8; 32],
}

impl core::fmt::Debug for ChaPoly {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ChaPoly(..)")
    }
}

/// The tag did not match: the packet was forged or corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadMac;

impl ChaPoly {
    /// Takes the 64 bytes derived for this direction.
    pub fn new(key: &[u8; 64]) -> Self {
        let mut main = [0; 32];
        let mut header = [0; 32];
        main.copy_from_slice(&key[..32]);
        header.copy_from_slice(&key[32..]);
        Self { main, header }
    }

    fn stream(key: &[u8; 32], seq: u32) -> ChaCha20 {
        // OpenSSH uses the original 64-bit nonce (the sequence number,
        // big-endian) and 64-bit counter; with the IETF layout the same
        // keystream comes from the sequence number in the nonce's last word.
        let mut nonce = [0u8; 12];
        nonce[8..].copy_from_slice(&seq.to_be_bytes());
        ChaCha20::new(key.into(), (&nonce).into())
    }

    /// Decrypts a packet's length field.
    pub fn length(&self, seq: u32, enc: [u8; 4]) -> u32 {
        let mut b = enc;
        Self::stream(&self.header, seq).apply_keystream(&mut b);
        u32::from_be_bytes(b)
    }

    /// Checks `tag` over `packet` (encrypted length and body) in constant
    /// time, then decrypts the body (everything after the length) in place.
    ///
    /// # Errors
    /// [`BadMac`] if the tag does not match; `packet` is then unchanged.
    pub fn open(&self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<(), BadMac> {
        if packet.len() < 4 || tag.len() != TAG_LEN {
            return Err(BadMac);
        }
        let mut c = Self::stream(&self.main, seq);
        let mut poly_key = [0u8; 32];
        c.apply_keystream(&mut poly_key);
        let expect = Poly1305::new((&poly_key).into()).compute_unpadded(packet);
        if !bool::from(expect.as_slice().ct_eq(tag)) {
            return Err(BadMac);
        }
        c.seek(64u32);
        c.apply_keystream(&mut packet[4..]);
        Ok(())
    }

    /// Encrypts `packet` (plaintext length and body) in place and returns
    /// the tag to append.
    pub fn seal(&self, seq: u32, packet: &mut [u8]) -> [u8; TAG_LEN] {
        debug_assert!(packet.len() >= 4);
        Self::stream(&self.header, seq).apply_keystream(&mut packet[..4]);
        let mut c = Self::stream(&self.main, seq);
        let mut poly_key = [0u8; 32];
        c.apply_keystream(&mut poly_key);
        c.seek(64u32);
        c.apply_keystream(&mut packet[4..]);
        let tag = Poly1305::new((&poly_key).into()).compute_unpadded(packet);
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_slice());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_detects_tampering() {
        let k = ChaPoly::new(&[7u8; 64]);
        let plain = *b"\0\0\0\x0chello world!";
        let mut p = plain;
        let tag = k.seal(3, &mut p);
        assert_ne!(p, plain);
        assert_eq!(k.length(3, [p[0], p[1], p[2], p[3]]), 12);
        let mut bad = p;
        bad[6] ^= 1;
        assert_eq!(k.open(3, &mut bad, &tag), Err(BadMac));
        assert_eq!(k.open(4, &mut p.clone(), &tag), Err(BadMac));
        k.open(3, &mut p, &tag).unwrap();
        assert_eq!(&p[4..], &plain[4..]);
    }
}
