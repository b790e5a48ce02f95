//! Relay global ids: opaque (base64url of `Type:uuid`), unguessable (UUIDv7 random bits) and
//! type-checked: an id of another type, or one that does not decode, is `NOT_FOUND` — exactly
//! like an id that never existed.
//!
//! **How inputs name ids.** An input field that takes the id of another object is named
//! `<name>Id` (a list: `<name>Ids`), where `<name>` is the field under which output types show
//! that object — `contactId`, `groupId`, `priceListId`, and by role `parentId`, `workerId`,
//! `recipientId`, `calendarId`, `basePriceListId` — or, for a role no output field names, the role
//! (`startGroupId`, `intakeAddressBookId`). The object an `update*` or `delete*` input changes
//! is plain `id` (Relay's convention), and so is the object of the few commands that mirror them
//! (`moveGroup`, `pauseSequence`, `rotateWebhookSecret`); other commands name the object they act
//! on by type (`eraseContact(contactId)`, `setTicketStatus(ticketId)`,
//! `addGroupMembers(groupId)`) — both are unambiguous, so neither is renamed. Set operators over
//! ids (`groups: {all, any, none}`) are named by the operator. A field renamed to follow the rule
//! keeps its old name as a deprecated alias ([`renamed`]): either name takes the same value, and
//! both at once is `BAD_USER_INPUT`.

use crate::error::{ApiError, ApiResult};
use async_graphql::{ID, MaybeUndefined};
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

/// The value of an input field renamed to follow the naming rule: from its name or its deprecated
/// old name, never both (`BAD_USER_INPUT` on the current name).
pub fn renamed<T>(current: Option<T>, current_name: &str, old: Option<T>, old_name: &str) -> ApiResult<Option<T>> {
    match (current, old) {
        (Some(_), Some(_)) => Err(both(current_name, old_name)),
        (c, o) => Ok(c.or(o)),
    }
}

/// [`renamed`] for a patch field, where `null` is a value (it clears) and absence is not.
pub fn renamed_patch<T>(
    current: MaybeUndefined<T>,
    current_name: &str,
    old: MaybeUndefined<T>,
    old_name: &str,
) -> ApiResult<MaybeUndefined<T>> {
    match (current, old) {
        (MaybeUndefined::Undefined, o) => Ok(o),
        (c, MaybeUndefined::Undefined) => Ok(c),
        _ => Err(both(current_name, old_name)),
    }
}

fn both(current_name: &str, old_name: &str) -> ApiError {
    ApiError::bad_input(
        current_name,
        format!("give either {current_name} or {old_name} (its deprecated old name), not both"),
    )
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
