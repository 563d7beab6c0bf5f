//! Key exchange (RFC 4253 §7-8, RFC 8731): `curve25519-sha256`, an
//! `ssh-ed25519` host key, `chacha20-poly1305@openssh.com` both ways, and
//! OpenSSH's strict-kex extension.
//!
//! This module holds the algorithm lists, the negotiation of a peer's
//! KEXINIT, the exchange hash and the key derivation. When each message may
//! be sent or received is the connection's business ([`crate::server`]).

use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};
use sunset::ed25519_dalek::{Signer, SigningKey};
use sunset::packets::{KexInit, Packet, ParseContext};
use sunset::sshnames::{
    SSH_NAME_CHAPOLY, SSH_NAME_CURVE25519, SSH_NAME_CURVE25519_LIBSSH, SSH_NAME_ED25519,
    SSH_NAME_NONE, SSH_NAME_STRICT_KEX_C, SSH_NAME_STRICT_KEX_S,
};

use crate::wire::cipher::ChaPoly;
use crate::wire::codec::{Reader, put_mpint, put_string, put_u32};

/// Message numbers this module builds or checks.
pub mod msg {
    /// `SSH_MSG_KEXINIT`
    pub const KEXINIT: u8 = 20;
    /// `SSH_MSG_NEWKEYS`
    pub const NEWKEYS: u8 = 21;
    /// `SSH_MSG_KEX_ECDH_INIT`
    pub const ECDH_INIT: u8 = 30;
    /// `SSH_MSG_KEX_ECDH_REPLY`
    pub const ECDH_REPLY: u8 = 31;
}

/// The server's ed25519 host key.
#[derive(Clone)]
pub struct HostKey {
    key: SigningKey,
}

impl core::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HostKey(..)")
    }
}

impl HostKey {
    /// The key whose 32-byte secret seed is `seed` (the `k` of RFC 8032;
    /// what `ssh-keygen -t ed25519` stores as the first half of its
    /// private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// Reads an unencrypted OpenSSH private key file (`ssh-keygen -t
    /// ed25519 -N ''`), the format `scripts/run.sh` can keep in its state
    /// directory. `None` for anything else (other key types, passphrases,
    /// corruption, a public half that does not match the secret).
    pub fn from_openssh(text: &str) -> Option<Self> {
        const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
        const END: &str = "-----END OPENSSH PRIVATE KEY-----";
        let body = text.split(BEGIN).nth(1)?.split(END).next()?;
        let b64: String = body.split_ascii_whitespace().collect();
        let raw = crate::auth::base64_decode(&b64)?;
        let rest = raw.strip_prefix(b"openssh-key-v1\0")?;
        let mut r = Reader::new(rest);
        // cipher, kdf, kdf options: only an unencrypted key.
        if r.string()? != b"none" || r.string()? != b"none" || !r.string()?.is_empty() {
            return None;
        }
        if r.u32()? != 1 {
            return None;
        }
        let _public = r.string()?;
        let mut p = Reader::new(r.string()?);
        if p.u32()? != p.u32()? || p.string()? != SSH_NAME_ED25519.as_bytes() {
            return None;
        }
        let public: [u8; 32] = p.string()?.try_into().ok()?;
        let secret = p.string()?;
        let seed: [u8; 32] = secret.get(..32)?.try_into().ok()?;
        let key = Self::from_seed(&seed);
        (key.key.verifying_key().as_bytes() == &public && secret.get(32..)? == public)
            .then_some(key)
    }

    /// The public key blob: `string "ssh-ed25519", string key`.
    pub fn public_blob(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(51);
        put_string(&mut b, SSH_NAME_ED25519.as_bytes());
        put_string(&mut b, self.key.verifying_key().as_bytes());
        b
    }

    /// The public key as an OpenSSH `known_hosts`/`authorized_keys` entry.
    pub fn public_openssh(&self) -> String {
        let mut s = String::from(SSH_NAME_ED25519);
        s.push(' ');
        crate::auth::base64_encode(&self.public_blob(), &mut s);
        s
    }

    /// The signature blob over `data`: `string "ssh-ed25519", string sig`.
    pub fn sign_blob(&self, data: &[u8]) -> Vec<u8> {
        let sig = self.key.sign(data);
        let mut b = Vec::with_capacity(83);
        put_string(&mut b, SSH_NAME_ED25519.as_bytes());
        put_string(&mut b, &sig.to_bytes());
        b
    }
}

const MAC_PLACEHOLDER: &str = "hmac-sha2-256-etm@openssh.com";

/// Builds our KEXINIT payload. `first` adds the strict-kex marker, which
/// belongs only in the first exchange.
pub fn kexinit(cookie: [u8; 16], first: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(256);
    p.push(msg::KEXINIT);
    p.extend_from_slice(&cookie);
    let mut kex = String::from(SSH_NAME_CURVE25519);
    kex.push(',');
    kex.push_str(SSH_NAME_CURVE25519_LIBSSH);
    if first {
        kex.push(',');
        kex.push_str(SSH_NAME_STRICT_KEX_S);
    }
    for list in [
        kex.as_str(),
        SSH_NAME_ED25519,
        SSH_NAME_CHAPOLY,
        SSH_NAME_CHAPOLY,
        // Not used with an AEAD cipher, but the lists may not be empty; an
        // encrypt-then-MAC name keeps audits from flagging a mode that is
        // never used.
        MAC_PLACEHOLDER,
        MAC_PLACEHOLDER,
        SSH_NAME_NONE,
        SSH_NAME_NONE,
        "",
        "",
    ] {
        put_string(&mut p, list.as_bytes());
    }
    p.push(0); // first_kex_packet_follows
    put_u32(&mut p, 0);
    p
}

/// What a peer's KEXINIT agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The client offered `kex-strict-c-v00@openssh.com`.
    pub strict: bool,
    /// The client sent a guessed kex packet that guessed wrong and must be
    /// ignored (RFC 4253 §7).
    pub ignore_guess: bool,
}

/// Why negotiation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiationError {
    /// Not a decodable KEXINIT.
    Malformed,
    /// No algorithm in common for the named purpose.
    NoCommon(&'static str),
}

/// Checks a peer's KEXINIT payload against our only choices.
///
/// # Errors
/// [`NegotiationError`] when it is malformed or has nothing in common.
pub fn negotiate(payload: &[u8]) -> Result<Agreed, NegotiationError> {
    let ctx = ParseContext::new();
    let Ok(Packet::KexInit(k)) = sunset::sshwire::packet_from_bytes(payload, &ctx) else {
        return Err(NegotiationError::Malformed);
    };
    negotiate_parsed(&k)
}

fn negotiate_parsed(k: &KexInit<'_>) -> Result<Agreed, NegotiationError> {
    let has = |l: &sunset::namelist::NameList<'_>, n: &str| l.has_algo(n).unwrap_or(false);
    if !has(&k.kex, SSH_NAME_CURVE25519) && !has(&k.kex, SSH_NAME_CURVE25519_LIBSSH) {
        return Err(NegotiationError::NoCommon("key exchange"));
    }
    if !has(&k.hostsig, SSH_NAME_ED25519) {
        return Err(NegotiationError::NoCommon("host key"));
    }
    if !has(&k.cipher_c2s, SSH_NAME_CHAPOLY) || !has(&k.cipher_s2c, SSH_NAME_CHAPOLY) {
        return Err(NegotiationError::NoCommon("cipher"));
    }
    if !has(&k.comp_c2s, SSH_NAME_NONE) || !has(&k.comp_s2c, SSH_NAME_NONE) {
        return Err(NegotiationError::NoCommon("compression"));
    }
    let first_kex = k.kex.first();
    let guessed_right = (first_kex == SSH_NAME_CURVE25519
        || first_kex == SSH_NAME_CURVE25519_LIBSSH)
        && k.hostsig.first() == SSH_NAME_ED25519;
    Ok(Agreed {
        strict: has(&k.kex, SSH_NAME_STRICT_KEX_C),
        ignore_guess: k.first_follows && !guessed_right,
    })
}

/// The inputs of the exchange hash that precede the ECDH step.
#[derive(Debug)]
pub struct Transcript<'a> {
    /// The client's version line, without CR LF.
    pub v_c: &'a [u8],
    /// Ours.
    pub v_s: &'a [u8],
    /// The client's KEXINIT payload.
    pub i_c: &'a [u8],
    /// Ours.
    pub i_s: &'a [u8],
}

/// The result of the ECDH step.
#[derive(Debug)]
pub struct Exchanged {
    /// The `ECDH_REPLY` payload to send.
    pub reply: Vec<u8>,
    /// The exchange hash `H`.
    pub hash: [u8; 32],
    /// The keys for client to server.
    pub keys_c2s: ChaPoly,
    /// The keys for server to client.
    pub keys_s2c: ChaPoly,
}

/// Why the ECDH step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcdhError {
    /// The `ECDH_INIT` was malformed.
    Malformed,
    /// The shared secret was all zeros (a low-order point).
    NonContributory,
}

/// Runs the server side of `curve25519-sha256`: takes the client's
/// `ECDH_INIT` payload and our ephemeral secret, returns the reply and keys.
/// `session_id` is `None` in the first exchange (it becomes `H`).
///
/// # Errors
/// [`EcdhError`] for a malformed message or a non-contributory point.
pub fn ecdh(
    t: &Transcript<'_>,
    init: &[u8],
    secret: [u8; 32],
    host: &HostKey,
    session_id: Option<&[u8; 32]>,
) -> Result<Exchanged, EcdhError> {
    let mut r = Reader::new(init);
    if r.u8() != Some(msg::ECDH_INIT) {
        return Err(EcdhError::Malformed);
    }
    let q_c: [u8; 32] = r
        .string()
        .and_then(|s| s.try_into().ok())
        .ok_or(EcdhError::Malformed)?;
    if !r.is_empty() {
        return Err(EcdhError::Malformed);
    }
    let q_s = x25519_dalek::x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES);
    let shared = x25519_dalek::x25519(secret, q_c);
    if shared.iter().all(|&b| b == 0) {
        return Err(EcdhError::NonContributory);
    }
    let k_s = host.public_blob();
    let mut k = Vec::with_capacity(37);
    put_mpint(&mut k, &shared);

    let hash = exchange_hash(t, &k_s, &q_c, &q_s, &k);
    let sid = session_id.unwrap_or(&hash);

    let mut reply = Vec::with_capacity(160);
    reply.push(msg::ECDH_REPLY);
    put_string(&mut reply, &k_s);
    put_string(&mut reply, &q_s);
    put_string(&mut reply, &host.sign_blob(&hash));

    Ok(Exchanged {
        reply,
        hash,
        keys_c2s: ChaPoly::new(&derive(&k, &hash, b'C', sid)),
        keys_s2c: ChaPoly::new(&derive(&k, &hash, b'D', sid)),
    })
}

/// The exchange hash `H` (RFC 5656 §4): the transcript, the host key
/// blob `k_s`, both ephemeral keys and the shared secret as an mpint.
pub fn exchange_hash(t: &Transcript<'_>, k_s: &[u8], q_c: &[u8], q_s: &[u8], k: &[u8]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(1024);
    for s in [t.v_c, t.v_s, t.i_c, t.i_s, k_s, q_c, q_s] {
        put_string(&mut buf, s);
    }
    buf.extend_from_slice(k);
    Sha256::digest(&buf).into()
}

/// RFC 4253 §7.2: `HASH(K || H || letter || session_id)`, extended to 64
/// bytes with `HASH(K || H || K1)`.
pub fn derive(k: &[u8], h: &[u8; 32], letter: u8, sid: &[u8; 32]) -> [u8; 64] {
    let k1: [u8; 32] = Sha256::new()
        .chain_update(k)
        .chain_update(h)
        .chain_update([letter])
        .chain_update(sid)
        .finalize()
        .into();
    let k2: [u8; 32] = Sha256::new()
        .chain_update(k)
        .chain_update(h)
        .chain_update(k1)
        .finalize()
        .into();
    let mut out = [0; 64];
    out[..32].copy_from_slice(&k1);
    out[32..].copy_from_slice(&k2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACB8I1TsKWsP2oBxU1PJULKtB7J18ZWIch8wgGe5NlwY/gAAAJD5K2R3+Stk
dwAAAAtzc2gtZWQyNTUxOQAAACB8I1TsKWsP2oBxU1PJULKtB7J18ZWIch8wgGe5NlwY/g
AAAEBv39JYk6EI4bfgYR10dfbmsSCpR9N0X+wv5nVI6JYXgHwjVOwpaw/agHFTU8lQsq0H
snXxlYhyHzCAZ7k2XBj+AAAAB2ZpeHR1cmUBAgMEBQY=
-----END OPENSSH PRIVATE KEY-----
";

    #[test]
    fn reads_an_ssh_keygen_private_key() {
        let k = HostKey::from_openssh(FIXTURE).unwrap();
        assert_eq!(
            k.public_openssh(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHwjVOwpaw/agHFTU8lQsq0HsnXxlYhyHzCAZ7k2XBj+"
        );
        assert!(HostKey::from_openssh(&FIXTURE.replace("AAAEBv", "AAAEBw")).is_none());
        assert!(HostKey::from_openssh("nothing").is_none());
    }

    #[test]
    fn our_kexinit_negotiates_with_itself() {
        let mut k = kexinit([1; 16], true);
        // Pretend to be a client offering strict kex.
        let a = negotiate(&k).unwrap();
        assert!(!a.strict);
        k = kexinit([1; 16], false);
        assert_eq!(
            negotiate(&k),
            Ok(Agreed {
                strict: false,
                ignore_guess: false
            })
        );
        assert_eq!(negotiate(&k[..10]), Err(NegotiationError::Malformed));
    }

    #[test]
    fn ecdh_rejects_zero_point_and_garbage() {
        let host = HostKey::from_seed(&[3; 32]);
        let t = Transcript {
            v_c: b"a",
            v_s: b"b",
            i_c: b"c",
            i_s: b"d",
        };
        let mut init = vec![msg::ECDH_INIT];
        put_string(&mut init, &[0; 32]);
        assert_eq!(
            ecdh(&t, &init, [5; 32], &host, None).unwrap_err(),
            EcdhError::NonContributory
        );
        assert_eq!(
            ecdh(&t, &init[..9], [5; 32], &host, None).unwrap_err(),
            EcdhError::Malformed
        );
        let mut init = vec![msg::ECDH_INIT];
        put_string(&mut init, &x25519_dalek::X25519_BASEPOINT_BYTES);
        let ex = ecdh(&t, &init, [5; 32], &host, None).unwrap();
        assert_eq!(ex.reply[0], msg::ECDH_REPLY);
    }
}

/// A key exchange in progress: from our KEXINIT to the peer's NEWKEYS.
#[derive(Debug)]
pub struct KexRun {
    /// Our KEXINIT payload.
    pub ours: Vec<u8>,
    /// The peer's, once received.
    pub theirs: Option<Vec<u8>>,
    /// Drop the next kex packet (a wrong guess).
    pub ignore_next: bool,
    /// We sent `ECDH_REPLY` and NEWKEYS.
    pub newkeys_sent: bool,
    /// The client-to-server keys, installed at the peer's NEWKEYS.
    pub c2s: Option<ChaPoly>,
}

impl KexRun {
    /// Just sent `ours`.
    pub fn new(ours: Vec<u8>) -> Self {
        Self {
            ours,
            theirs: None,
            ignore_next: false,
            newkeys_sent: false,
            c2s: None,
        }
    }
}
