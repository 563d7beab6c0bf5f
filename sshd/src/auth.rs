//! User authentication (RFC 4252): `publickey` with `ssh-ed25519` keys
//! from an authorized-keys list, `password` only when one is configured.
//!
//! A `publickey` request without a signature is a query and is answered
//! with `PK_OK` when the key is authorized; it does not count as an attempt.
//! Every other refused request does; the connection decides what to do at
//! the limit. Requests are parsed by hand with [`Reader`] because the
//! signature covers the request's own bytes up to the signature field.

use alloc::string::String;
use alloc::vec::Vec;

use subtle::ConstantTimeEq;
use sunset::ed25519_dalek::{Signature, VerifyingKey};
use sunset::sshnames::{
    SSH_AUTHMETHOD_PASSWORD, SSH_AUTHMETHOD_PUBLICKEY, SSH_NAME_ED25519, SSH_SERVICE_CONNECTION,
};

use crate::wire::codec::{Reader, put_string};

/// `SSH_MSG_USERAUTH_REQUEST`
pub const MSG_REQUEST: u8 = 50;
/// `SSH_MSG_USERAUTH_FAILURE`
pub const MSG_FAILURE: u8 = 51;
/// `SSH_MSG_USERAUTH_SUCCESS`
pub const MSG_SUCCESS: u8 = 52;
/// `SSH_MSG_USERAUTH_PK_OK`
pub const MSG_PK_OK: u8 = 60;

/// One authorized ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    /// The raw 32-byte public key.
    pub key: [u8; 32],
    /// The comment after the key, if any.
    pub comment: String,
}

/// Why an `authorized_keys` line was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLineError {
    /// Not an `ssh-ed25519` key (other types are not supported).
    Unsupported,
    /// Bad base64 or a blob that does not hold an ed25519 key.
    Malformed,
}

impl AuthorizedKey {
    /// Parses one OpenSSH `authorized_keys` line: `[options] ssh-ed25519
    /// BASE64 [comment]`. Options are skipped (none is enforced). Blank
    /// lines and comments give `Ok(None)`.
    ///
    /// # Errors
    /// [`KeyLineError`] for other key types or malformed keys.
    pub fn parse_line(line: &str) -> Result<Option<Self>, KeyLineError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let mut words = line.split_ascii_whitespace();
        // The key type is the first word, or the second after options.
        let mut ty = words.next().unwrap_or_default();
        if ty != SSH_NAME_ED25519 {
            ty = words.next().unwrap_or_default();
        }
        if ty != SSH_NAME_ED25519 {
            return Err(KeyLineError::Unsupported);
        }
        let b64 = words.next().ok_or(KeyLineError::Malformed)?;
        let blob = base64_decode(b64).ok_or(KeyLineError::Malformed)?;
        let key = ed25519_from_blob(&blob).ok_or(KeyLineError::Malformed)?;
        let comment = words.collect::<Vec<_>>().join(" ");
        Ok(Some(Self { key, comment }))
    }

    /// Parses a whole `authorized_keys` file, skipping lines it cannot use.
    pub fn parse_file(text: &str) -> Vec<Self> {
        text.lines()
            .filter_map(|l| Self::parse_line(l).ok().flatten())
            .collect()
    }
}

/// The 32-byte key in an `ssh-ed25519` public key blob.
fn ed25519_from_blob(blob: &[u8]) -> Option<[u8; 32]> {
    let mut r = Reader::new(blob);
    if r.string()? != SSH_NAME_ED25519.as_bytes() {
        return None;
    }
    let key = r.string()?.try_into().ok()?;
    r.is_empty().then_some(key)
}

/// What the credentials accept.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Keys accepted for any user name.
    pub authorized_keys: Vec<AuthorizedKey>,
    /// A password accepted for any user name; `None` disables `password`.
    pub password: Option<String>,
}

/// The answer to one `USERAUTH_REQUEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Authenticated as this user; send SUCCESS.
    Success(String),
    /// Send this reply (`PK_OK`); not an attempt.
    Reply(Vec<u8>),
    /// Refused; send FAILURE. `counts` if it was an attempt.
    Failure {
        /// Whether this counts towards the attempt limit.
        counts: bool,
    },
    /// Not a well-formed request.
    Malformed,
}

impl Credentials {
    /// The FAILURE message listing the methods that can continue.
    pub fn failure_message(&self) -> Vec<u8> {
        let mut m = alloc::vec![MSG_FAILURE];
        let mut names = String::from(SSH_AUTHMETHOD_PUBLICKEY);
        if self.password.is_some() {
            names.push(',');
            names.push_str(SSH_AUTHMETHOD_PASSWORD);
        }
        put_string(&mut m, names.as_bytes());
        m.push(0);
        m
    }

    /// Judges a `USERAUTH_REQUEST` `payload` for the session `session_id`.
    pub fn check(&self, payload: &[u8], session_id: &[u8]) -> Outcome {
        self.check_inner(payload, session_id)
            .unwrap_or(Outcome::Malformed)
    }

    fn check_inner(&self, payload: &[u8], session_id: &[u8]) -> Option<Outcome> {
        let mut r = Reader::new(payload);
        if r.u8()? != MSG_REQUEST {
            return None;
        }
        let user = core::str::from_utf8(r.string()?).ok()?;
        let service = r.string()?;
        let method = r.string()?;
        if service != SSH_SERVICE_CONNECTION.as_bytes() {
            return Some(Outcome::Failure { counts: true });
        }
        if method == SSH_AUTHMETHOD_PUBLICKEY.as_bytes() {
            let has_sig = r.bool()?;
            let algo = r.string()?;
            let blob = r.string()?;
            let signed_len = r.position();
            let key = ed25519_from_blob(blob).filter(|_| algo == SSH_NAME_ED25519.as_bytes());
            let Some(key) = key.filter(|k| self.authorized_keys.iter().any(|a| a.key == *k)) else {
                return Some(Outcome::Failure { counts: true });
            };
            if !has_sig {
                let mut reply = alloc::vec![MSG_PK_OK];
                put_string(&mut reply, algo);
                put_string(&mut reply, blob);
                return Some(Outcome::Reply(reply));
            }
            let sig_blob = r.string()?;
            if !r.is_empty() {
                return None;
            }
            let mut sr = Reader::new(sig_blob);
            let ok = sr.string()? == SSH_NAME_ED25519.as_bytes();
            let sig: [u8; 64] = sr.string()?.try_into().ok()?;
            let mut data = Vec::with_capacity(4 + session_id.len() + signed_len);
            put_string(&mut data, session_id);
            data.extend_from_slice(&payload[..signed_len]);
            let verified = ok
                && VerifyingKey::from_bytes(&key).is_ok_and(|vk| {
                    vk.verify_strict(&data, &Signature::from_bytes(&sig))
                        .is_ok()
                });
            return Some(if verified {
                Outcome::Success(user.into())
            } else {
                Outcome::Failure { counts: true }
            });
        }
        if method == SSH_AUTHMETHOD_PASSWORD.as_bytes() {
            let change = r.bool()?;
            let given = r.string()?;
            let ok = !change
                && self
                    .password
                    .as_ref()
                    .is_some_and(|p| bool::from(p.as_bytes().ct_eq(given)));
            return Some(if ok {
                Outcome::Success(user.into())
            } else {
                Outcome::Failure { counts: true }
            });
        }
        // "none" and unknown methods: list what we support, not an attempt.
        Some(Outcome::Failure {
            counts: method != b"none",
        })
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends the standard base64 encoding of `data` to `out`.
pub fn base64_encode(data: &[u8], out: &mut String) {
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// Decodes standard base64 (padding optional); `None` on any bad input.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = u32::try_from(B64.iter().position(|&x| x == c)?).ok()?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding of fewer than 6 bits.
    (bits < 6 && acc & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kex::HostKey;

    #[test]
    fn base64_round_trips() {
        for n in 0..10 {
            let data: Vec<u8> = (0..n).map(|i: u8| i.wrapping_mul(37)).collect();
            let mut s = String::new();
            base64_encode(&data, &mut s);
            assert_eq!(base64_decode(&s).unwrap(), data);
        }
        assert_eq!(base64_decode("a!"), None);
    }

    #[test]
    fn parses_authorized_keys_lines() {
        let hk = HostKey::from_seed(&[1; 32]);
        let line = hk.public_openssh();
        let k = AuthorizedKey::parse_line(&alloc::format!("{line} me@host"))
            .unwrap()
            .unwrap();
        assert_eq!(k.comment, "me@host");
        let with_opts = alloc::format!("no-pty,command=\"x\" {line}");
        // Options containing spaces inside quotes are not supported.
        assert!(AuthorizedKey::parse_line(&with_opts).unwrap().is_some());
        assert_eq!(AuthorizedKey::parse_line("# c"), Ok(None));
        assert_eq!(
            AuthorizedKey::parse_line("ssh-rsa AAAA x"),
            Err(KeyLineError::Unsupported)
        );
        assert_eq!(
            AuthorizedKey::parse_line("ssh-ed25519 AAAA"),
            Err(KeyLineError::Malformed)
        );
        assert_eq!(
            AuthorizedKey::parse_file(&alloc::format!("{line}\n\nbad\n")).len(),
            1
        );
    }

    fn request(user: &str, method: &str, rest: &[u8]) -> Vec<u8> {
        let mut p = alloc::vec![MSG_REQUEST];
        put_string(&mut p, user.as_bytes());
        put_string(&mut p, SSH_SERVICE_CONNECTION.as_bytes());
        put_string(&mut p, method.as_bytes());
        p.extend_from_slice(rest);
        p
    }

    #[test]
    fn publickey_query_sign_and_wrong_key() {
        let user_key = HostKey::from_seed(&[2; 32]);
        let blob = user_key.public_blob();
        let mut key = [0; 32];
        key.copy_from_slice(&blob[blob.len() - 32..]);
        let creds = Credentials {
            authorized_keys: alloc::vec![AuthorizedKey {
                key,
                comment: String::new()
            }],
            password: Some("pw".into()),
        };
        let sid = [7u8; 32];
        let mut q = alloc::vec![0];
        put_string(&mut q, SSH_NAME_ED25519.as_bytes());
        put_string(&mut q, &blob);
        assert!(matches!(
            creds.check(&request("u", "publickey", &q), &sid),
            Outcome::Reply(_)
        ));

        let mut signed = request("u", "publickey", &q);
        let at = signed.len() - q.len();
        signed[at] = 1;
        let mut data = Vec::new();
        put_string(&mut data, &sid);
        data.extend_from_slice(&signed);
        put_string(&mut signed, &user_key.sign_blob(&data));
        assert_eq!(creds.check(&signed, &sid), Outcome::Success("u".into()));
        assert_eq!(
            creds.check(&signed, &[8; 32]),
            Outcome::Failure { counts: true }
        );

        let other = HostKey::from_seed(&[3; 32]).public_blob();
        let mut q = alloc::vec![0];
        put_string(&mut q, SSH_NAME_ED25519.as_bytes());
        put_string(&mut q, &other);
        assert_eq!(
            creds.check(&request("u", "publickey", &q), &sid),
            Outcome::Failure { counts: true }
        );

        let mut pw = alloc::vec![0];
        put_string(&mut pw, b"pw");
        assert_eq!(
            creds.check(&request("u", "password", &pw), &sid),
            Outcome::Success("u".into())
        );
        assert_eq!(
            creds.check(&request("u", "none", &[]), &sid),
            Outcome::Failure { counts: false }
        );
        assert_eq!(creds.check(&[MSG_REQUEST, 0, 0], &sid), Outcome::Malformed);
    }
}
