//! Signed public links: the double opt-in confirmation and the preference centre.
//!
//! A link token is `kid.payload.signature` (base64url, no padding): the payload binds the
//! purpose, the expiry, the tenant, the contact and a reference (the confirmation request, or
//! the group a preference link was issued for), and the signature is HMAC-SHA256 over a domain
//! separation tag, the key id and the payload. Keys come from `COHORT_PUBLIC_LINK_KEYS`, newest
//! first: the newest signs, every listed key verifies, so keys rotate without breaking links
//! already sent; a key removed from the list stops verifying its links at once.
//!
//! Nothing in a token is secret (it is in every mail), but nothing in it can be changed: a
//! flipped bit in the tenant, contact, purpose or expiry fails the signature, and verification
//! compares in constant time (`hmac`'s `verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use uuid::Uuid;

const TAG: &[u8] = b"cohort-public-link-v1";
const PAYLOAD_LEN: usize = 1 + 1 + 8 + 16 * 3;
const VERSION: u8 = 1;

/// What a link lets its holder do; part of the signed payload, so a confirmation link is never
/// accepted as a preference link or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Confirm,
    Preferences,
}

impl LinkPurpose {
    fn byte(self) -> u8 {
        match self {
            LinkPurpose::Confirm => 1,
            LinkPurpose::Preferences => 2,
        }
    }
}

/// Why a link was refused. The public endpoints answer `LINK_INVALID` or `LINK_EXPIRED`; which
/// key or which check failed is only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed, tampered with, signed with an unknown key or meant for something else")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

/// The verified content of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkClaims {
    pub purpose: LinkPurpose,
    pub expires_at: DateTime<Utc>,
    pub tenant: Uuid,
    pub contact: Uuid,
    /// The confirmation request (confirm links) or the group the link was issued for (preference
    /// links; nil for "all groups").
    pub reference: Uuid,
}

struct LinkKey {
    kid: String,
    secret: SecretSlice<u8>,
}

/// The signing keys of public links, newest first.
pub struct LinkKeys {
    keys: Vec<LinkKey>,
    /// True when no keys were configured and a random one was made for this process.
    ephemeral: bool,
}

impl Clone for LinkKeys {
    fn clone(&self) -> Self {
        let keys = self
            .keys
            .iter()
            .map(|k| LinkKey { kid: k.kid.clone(), secret: SecretSlice::from(k.secret.expose_secret().to_vec()) })
            .collect();
        LinkKeys { keys, ephemeral: self.ephemeral }
    }
}

/// The link keys a [`Store`](crate::Store) and every handle made from it share: the keys that hash
/// e-mail addresses for the suppression list (see [`LinkKeys::email_hashes`]). A random key until
/// the server installs the configured ones at start ([`Store::use_link_keys`](crate::Store::use_link_keys)),
/// so a membership change — a request or a background sequence step — checks the list with the
/// very keys erasure wrote it with.
#[derive(Clone)]
pub(crate) struct SharedLinkKeys(std::sync::Arc<std::sync::RwLock<std::sync::Arc<LinkKeys>>>);

impl SharedLinkKeys {
    pub(crate) fn new(keys: LinkKeys) -> SharedLinkKeys {
        SharedLinkKeys(std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(keys))))
    }

    /// The keys now in use.
    pub(crate) fn get(&self) -> std::sync::Arc<LinkKeys> {
        match self.0.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set(&self, keys: LinkKeys) {
        let keys = std::sync::Arc::new(keys);
        match self.0.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }
}

impl std::fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("LinkKeys").field("kids", &kids).field("ephemeral", &self.ephemeral).finish()
    }
}

impl LinkKeys {
    /// `kid:secret,kid:secret` (newest first). Key ids are 1 to 16 letters, digits, `-` or `_`;
    /// secrets at least 32 bytes; key ids unique.
    pub fn parse(spec: &str) -> Result<LinkKeys, crate::KeyConfigError> {
        let err = |m: String| crate::KeyConfigError(format!("COHORT_PUBLIC_LINK_KEYS: {m}"));
        let mut keys: Vec<LinkKey> = vec![];
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kid, secret) = part.split_once(':').ok_or_else(|| err("each key is kid:secret".into()))?;
            let kid = kid.trim();
            if kid.is_empty()
                || kid.len() > 16
                || !kid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(err(format!("key id '{kid}' must be 1 to 16 letters, digits, '-' or '_'")));
            }
            if secret.len() < 32 {
                return Err(err(format!("the secret of key '{kid}' must be at least 32 bytes")));
            }
            if keys.iter().any(|k| k.kid == kid) {
                return Err(err(format!("key id '{kid}' is listed twice")));
            }
            keys.push(LinkKey { kid: kid.to_owned(), secret: SecretSlice::from(secret.as_bytes().to_vec()) });
        }
        if keys.is_empty() {
            return Err(err("no key given".into()));
        }
        Ok(LinkKeys { keys, ephemeral: false })
    }

    /// A random key for this process only (when none is configured): links stop working when the
    /// process restarts, and replicas do not accept each other's. The server warns about it.
    /// Every call in one process answers the same key: the server that checks a link, the
    /// worker's mailer that signs it and the suppression list must agree.
    pub fn ephemeral() -> LinkKeys {
        static PROCESS_KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let secret = PROCESS_KEY.get_or_init(|| {
            let mut secret = Vec::with_capacity(32);
            secret.extend_from_slice(Uuid::new_v4().as_bytes());
            secret.extend_from_slice(Uuid::new_v4().as_bytes());
            secret
        });
        LinkKeys {
            keys: vec![LinkKey { kid: "ephemeral".into(), secret: SecretSlice::from(secret.clone()) }],
            ephemeral: true,
        }
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// The keyed hashes of an e-mail address for the suppression list and for the places an
    /// erased address is replaced (newest key first): HMAC-SHA256 over a domain-separation tag,
    /// the tenant id and the trimmed, lower-cased address, with each configured link key. A
    /// per-tenant derivation of an existing secret, so nobody holding only the database can test
    /// guessed addresses; rotating keys keeps old hashes recognisable while the old key is listed.
    pub fn email_hashes(&self, tenant: Uuid, address: &str) -> Vec<String> {
        let normal = address.trim().to_lowercase();
        self.keys
            .iter()
            .map(|k| {
                // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(k.secret.expose_secret()).unwrap_or_else(|_| unreachable!());
                mac.update(b"cohort-suppression-v1\0");
                mac.update(tenant.as_bytes());
                mac.update(normal.as_bytes());
                mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
            })
            .collect()
    }

    fn mac(key: &LinkKey, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = Hmac::<Sha256>::new_from_slice(key.secret.expose_secret()).unwrap_or_else(|_| unreachable!());
        mac.update(TAG);
        mac.update(&[key.kid.len() as u8]);
        mac.update(key.kid.as_bytes());
        mac.update(payload);
        mac
    }

    /// Signs `claims` with the newest key.
    pub(crate) fn sign(&self, c: &LinkClaims) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.push(VERSION);
        payload.push(c.purpose.byte());
        payload.extend_from_slice(&c.expires_at.timestamp().to_be_bytes());
        payload.extend_from_slice(c.tenant.as_bytes());
        payload.extend_from_slice(c.contact.as_bytes());
        payload.extend_from_slice(c.reference.as_bytes());
        let key = &self.keys[0];
        let sig = Self::mac(key, &payload).finalize().into_bytes();
        format!("{}.{}.{}", key.kid, URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(sig))
    }

    /// Verifies a token for `purpose` at `now`. The signature is checked before anything in the
    /// payload is believed, expiry last (an expired link is only reported as such when genuine).
    pub(crate) fn verify(
        &self,
        token: &str,
        purpose: LinkPurpose,
        now: DateTime<Utc>,
    ) -> Result<LinkClaims, LinkError> {
        if token.len() > 256 {
            return Err(LinkError::Invalid);
        }
        let mut parts = token.split('.');
        let (Some(kid), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(LinkError::Invalid);
        };
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(LinkError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| LinkError::Invalid)?;
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| LinkError::Invalid)?;
        Self::mac(key, &payload).verify_slice(&sig).map_err(|_| LinkError::Invalid)?;
        if payload.len() != PAYLOAD_LEN || payload[0] != VERSION || payload[1] != purpose.byte() {
            return Err(LinkError::Invalid);
        }
        let uuid = |at: usize| Uuid::from_slice(&payload[at..at + 16]).map_err(|_| LinkError::Invalid);
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&payload[2..10]);
        let expires_at = DateTime::from_timestamp(i64::from_be_bytes(exp), 0).ok_or(LinkError::Invalid)?;
        let claims = LinkClaims { purpose, expires_at, tenant: uuid(10)?, contact: uuid(26)?, reference: uuid(42)? };
        if expires_at <= now {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(purpose: LinkPurpose) -> LinkClaims {
        // Tokens carry whole seconds.
        let exp = (Utc::now() + chrono::Duration::hours(1)).timestamp();
        LinkClaims {
            purpose,
            expires_at: DateTime::from_timestamp(exp, 0).expect("test value"),
            tenant: Uuid::now_v7(),
            contact: Uuid::now_v7(),
            reference: Uuid::now_v7(),
        }
    }

    const A: &str = "a-secret-that-is-at-least-32-bytes-long!";
    const B: &str = "b-secret-that-is-at-least-32-bytes-long!";

    #[test]
    fn round_trip_and_purpose_binding() {
        let keys = LinkKeys::parse(&format!("k1:{A}")).expect("test value");
        let c = claims(LinkPurpose::Confirm);
        let t = keys.sign(&c);
        assert_eq!(keys.verify(&t, LinkPurpose::Confirm, Utc::now()), Ok(c));
        assert_eq!(keys.verify(&t, LinkPurpose::Preferences, Utc::now()), Err(LinkError::Invalid));
        assert_eq!(keys.verify(&t, LinkPurpose::Confirm, c.expires_at), Err(LinkError::Expired));
    }

    /// Without configured keys, every part of one process (the server checking a link, the
    /// worker's mailer signing it, the suppression list) must use the same random key.
    #[test]
    fn ephemeral_keys_are_one_per_process() {
        let (a, b) = (LinkKeys::ephemeral(), LinkKeys::ephemeral());
        assert!(a.is_ephemeral() && b.is_ephemeral());
        let c = claims(LinkPurpose::Confirm);
        assert_eq!(b.verify(&a.sign(&c), LinkPurpose::Confirm, Utc::now()), Ok(c));
        let t = Uuid::now_v7();
        assert_eq!(a.email_hashes(t, "x@example.com"), b.email_hashes(t, "x@example.com"));
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let keys = LinkKeys::parse(&format!("k1:{A}")).expect("test value");
        let t = keys.sign(&claims(LinkPurpose::Preferences));
        let (kid, rest) = t.split_once('.').expect("test value");
        let (p, s) = rest.split_once('.').expect("test value");
        let payload = URL_SAFE_NO_PAD.decode(p).expect("test value");
        for i in 0..payload.len() {
            let mut changed = payload.clone();
            changed[i] ^= 1;
            let forged = format!("{kid}.{}.{s}", URL_SAFE_NO_PAD.encode(&changed));
            assert_eq!(keys.verify(&forged, LinkPurpose::Preferences, Utc::now()), Err(LinkError::Invalid), "byte {i}");
        }
        assert_eq!(keys.verify("", LinkPurpose::Preferences, Utc::now()), Err(LinkError::Invalid));
        assert_eq!(keys.verify(&format!("{t}.x"), LinkPurpose::Preferences, Utc::now()), Err(LinkError::Invalid));
    }

    #[test]
    fn rotation_keeps_old_links_until_the_key_is_removed() {
        let old = LinkKeys::parse(&format!("k1:{A}")).expect("test value");
        let t = old.sign(&claims(LinkPurpose::Confirm));
        let rotated = LinkKeys::parse(&format!("k2:{B},k1:{A}")).expect("test value");
        assert!(rotated.verify(&t, LinkPurpose::Confirm, Utc::now()).is_ok());
        assert!(rotated.sign(&claims(LinkPurpose::Confirm)).starts_with("k2."));
        let removed = LinkKeys::parse(&format!("k2:{B}")).expect("test value");
        assert_eq!(removed.verify(&t, LinkPurpose::Confirm, Utc::now()), Err(LinkError::Invalid));
        // The same key id with another secret does not verify either.
        let swapped = LinkKeys::parse(&format!("k1:{B}")).expect("test value");
        assert_eq!(swapped.verify(&t, LinkPurpose::Confirm, Utc::now()), Err(LinkError::Invalid));
    }

    #[test]
    fn key_configuration_is_checked() {
        assert!(LinkKeys::parse("").is_err());
        assert!(LinkKeys::parse("k1:short").is_err());
        assert!(LinkKeys::parse(&format!("bad kid:{A}")).is_err());
        assert!(LinkKeys::parse(&format!("k1:{A},k1:{B}")).is_err());
        assert!(!format!("{:?}", LinkKeys::parse(&format!("k1:{A}")).expect("test value")).contains(A));
    }
}
