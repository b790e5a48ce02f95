//! Relay global ids: opaque (base64url of `Type:uuid`), unguessable (UUIDv7 random bits) and
//! type-checked: an id of another type, or one that does not decode, is `NOT_FOUND` — exactly
//! like an id that never existed.

use crate::error::{ApiError, ApiResult};
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

pub fn encode(tag: &str, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{tag}:{}", id.simple())))
}

/// Decodes any global id into (type tag, uuid).
pub fn decode_any(id: &str) -> Option<(String, Uuid)> {
    if id.len() > 100 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(id).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (tag, u) = s.split_once(':')?;
    Some((tag.to_owned(), Uuid::try_parse(u).ok()?))
}

/// Decodes a global id that must be of type `tag`.
pub fn decode(tag: &str, id: &ID) -> ApiResult<Uuid> {
    match decode_any(id.as_str()) {
        Some((t, u)) if t == tag => Ok(u),
        _ => Err(ApiError::NotFound),
    }
}

/// Decodes a list of ids of type `tag` (any wrong one is `NOT_FOUND`).
pub fn decode_all(tag: &str, ids: &[ID]) -> ApiResult<Vec<Uuid>> {
    ids.iter().map(|i| decode(tag, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_type_check() {
        let u = Uuid::now_v7();
        let id = encode("Contact", u);
        assert_eq!(decode("Contact", &id).unwrap(), u); // ok: unit test
        assert!(matches!(decode("AddressBook", &id), Err(ApiError::NotFound)));
        assert!(matches!(decode("Contact", &ID("garbage!".into())), Err(ApiError::NotFound)));
        assert!(matches!(decode("Contact", &ID(URL_SAFE_NO_PAD.encode("Contact:nope"))), Err(ApiError::NotFound)));
    }
}
