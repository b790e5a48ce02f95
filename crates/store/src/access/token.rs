//! JWT verification (RFC 8725) — the only maker of [`Identity`] values, and so, through the
//! [`crate::Gate`], the only door to tenant data. The accepted algorithm is pinned by configuration: HS256 with a
//! shared secret, or RS256/ES256 with public keys from a PEM or JWKS file (selected by `kid`).
//! `exp`, `iss` and `aud` are required; `nbf` is honoured; leeway is at most 30 s. A token's own
//! header never widens what is accepted: `alg: none`, HS/RS confusion and unknown `kid`s fail.

use crate::access::viewer::Identity;
use cohort_domain::Roles;
use cohort_domain::text::{Lines, check_chars};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// Which keys verify tokens, and the claims they must carry (`COHORT_JWT_*`).
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// HS256 shared secret (`COHORT_JWT_SECRET`).
    pub secret: Option<SecretString>,
    /// PEM public key or JWKS file (`COHORT_JWT_PUBLIC_KEYS`), for RS256 / ES256.
    pub public_keys: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    /// Clock leeway in seconds; capped at 30 (DESIGN §3).
    pub leeway_secs: u64,
}

/// Why a token was refused. Logged at debug level; the client only ever sees `UNAUTHENTICATED`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("malformed token header")]
    Header,
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("unknown key id")]
    UnknownKid,
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("claims: {0}")]
    Claims(&'static str),
}

#[derive(Debug, thiserror::Error)]
#[error("JWT configuration: {0}")]
pub struct KeyConfigError(pub String);

/// The claims Cohort reads. `exp` is typed: a string `exp` fails deserialisation.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tid: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: u64,
    pub iss: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

enum Keys {
    Hs256(DecodingKey),
    /// Public keys; `by_kid` from a JWKS, `single` from a PEM file (used whatever the `kid`).
    Public {
        by_kid: HashMap<String, (Algorithm, DecodingKey)>,
        single: Option<(Algorithm, DecodingKey)>,
    },
}

pub struct TokenVerifier {
    keys: Keys,
    issuer: String,
    audience: String,
    leeway: u64,
}

/// Checks token settings (keys readable and valid, one kind only) without building a gate: the
/// binary validates its whole configuration before it touches the database.
pub fn check_token_settings(s: &TokenSettings) -> Result<(), KeyConfigError> {
    TokenVerifier::from_settings(s).map(|_| ())
}

impl TokenVerifier {
    pub fn from_settings(s: &TokenSettings) -> Result<Self, KeyConfigError> {
        let keys = match (&s.secret, &s.public_keys) {
            (Some(_), Some(_)) => {
                return Err(KeyConfigError(
                    "set either COHORT_JWT_SECRET (HS256) or COHORT_JWT_PUBLIC_KEYS (RS256/ES256), not both".into(),
                ));
            }
            (Some(secret), None) => {
                let bytes = secret.expose_secret().as_bytes();
                if bytes.len() < 32 {
                    return Err(KeyConfigError("COHORT_JWT_SECRET must be at least 32 bytes".into()));
                }
                Keys::Hs256(DecodingKey::from_secret(bytes))
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| KeyConfigError(format!("cannot read {}: {e}", path.display())))?;
                parse_public_keys(&text)?
            }
            (None, None) => {
                return Err(KeyConfigError(
                    "no JWT key configured: set COHORT_JWT_SECRET or COHORT_JWT_PUBLIC_KEYS (or run `serve --demo`)"
                        .into(),
                ));
            }
        };
        Ok(TokenVerifier {
            keys,
            issuer: s.issuer.clone(),
            audience: s.audience.clone(),
            leeway: s.leeway_secs.min(30),
        })
    }

    /// Verifies a compact JWT and returns the identity it proves.
    pub(crate) fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Header)?;
        let (alg, key) = match &self.keys {
            Keys::Hs256(k) => (Algorithm::HS256, k),
            Keys::Public { by_kid, single } => match (&header.kid, single) {
                (_, Some((alg, k))) if by_kid.is_empty() => (*alg, k),
                (Some(kid), _) => by_kid.get(kid).map(|(a, k)| (*a, k)).ok_or(AuthError::UnknownKid)?,
                (None, _) if by_kid.len() == 1 => {
                    by_kid.values().next().map(|(a, k)| (*a, k)).ok_or(AuthError::UnknownKid)?
                }
                (None, _) => return Err(AuthError::UnknownKid),
            },
        };
        // The header may only name the algorithm we pinned for this key.
        if header.alg != alg {
            return Err(AuthError::Algorithm(header.alg));
        }
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        let data = decode::<Claims>(token, key, &v).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let c = data.claims;
        // Control characters (NUL above all: PostgreSQL refuses it in text) make no sense in any
        // claim we store; a token carrying them is refused as a whole, like any malformed token,
        // instead of failing every request it is presented with.
        let clean = |s: &str| check_chars("token", s, Lines::Single).is_ok();
        if c.sub.trim().is_empty() || c.sub.len() > 200 || !clean(&c.sub) {
            return Err(AuthError::Claims("sub must be 1 to 200 printable characters"));
        }
        if c.tid.trim().is_empty() || c.tid.len() > 200 || !clean(&c.tid) {
            return Err(AuthError::Claims("tid must be 1 to 200 printable characters"));
        }
        if c.name.as_deref().is_some_and(|n| !clean(n)) || c.email.as_deref().is_some_and(|e| !clean(e)) {
            return Err(AuthError::Claims("name and email must be printable"));
        }
        if c.roles.iter().any(|r| !clean(r)) {
            return Err(AuthError::Claims("roles must be printable"));
        }
        Ok(Identity::new(
            c.tid,
            c.sub,
            Roles::from_claims(c.roles.iter().map(String::as_str)),
            c.name.filter(|n| !n.trim().is_empty() && n.len() <= 200),
            c.email.filter(|e| cohort_domain::text::Email::parse(e).is_ok()),
        ))
    }
}

fn parse_public_keys(text: &str) -> Result<Keys, KeyConfigError> {
    if text.trim_start().starts_with('{') {
        let set: JwkSet = serde_json::from_str(text).map_err(|e| KeyConfigError(format!("invalid JWKS: {e}")))?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().ok_or_else(|| KeyConfigError("every JWKS key needs a kid".into()))?;
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
                _ => {
                    return Err(KeyConfigError(format!(
                        "key {kid}: only RSA (RS256) and P-256 (ES256) keys are supported"
                    )));
                }
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyConfigError(format!("key {kid}: {e}")))?;
            by_kid.insert(kid, (alg, key));
        }
        if by_kid.is_empty() {
            return Err(KeyConfigError("the JWKS holds no keys".into()));
        }
        Ok(Keys::Public { by_kid, single: None })
    } else if let Ok(k) = DecodingKey::from_rsa_pem(text.as_bytes()) {
        Ok(Keys::Public { by_kid: HashMap::new(), single: Some((Algorithm::RS256, k)) })
    } else if let Ok(k) = DecodingKey::from_ec_pem(text.as_bytes()) {
        Ok(Keys::Public { by_kid: HashMap::new(), single: Some((Algorithm::ES256, k)) })
    } else {
        Err(KeyConfigError("COHORT_JWT_PUBLIC_KEYS holds neither a JWKS nor an RSA/EC public key in PEM".into()))
    }
}

/// Issues an HS256 token (the `cohort token` command and `serve --demo`).
pub fn issue_hs256(
    secret: &[u8],
    issuer: &str,
    audience: &str,
    tenant: &str,
    subject: &str,
    roles: &[String],
    ttl_secs: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: subject.into(),
        tid: tenant.into(),
        roles: roles.to_vec(),
        exp: now + ttl_secs,
        iss: issuer.into(),
        aud: audience.into(),
        nbf: None,
        iat: Some(now),
        name: None,
        email: None,
    };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
}
