//! Keyset pagination. A cursor encodes the sort key of the last row the viewer saw, so it carries
//! only what the viewer could already see and resumes correctly even if rows come and go.

use crate::error::{StoreError, StoreResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, Utc};
use cohort_domain::text::{Lines, check_chars};
use serde::{Deserialize, Deserializer, Serialize, de::DeserializeOwned};
use serde_json::Value;
use uuid::Uuid;

/// The largest page anyone may ask for (DESIGN §1 "Protecting the data").
pub const MAX_PAGE_SIZE: u32 = 100;
const CURSOR_PREFIX: &str = "c1.";
/// Our cursors are far shorter (a sort key of at most 200 characters and an id).
const MAX_CURSOR_LEN: usize = 4096;

/// `first` / `after` as the client sent them, validated.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub first: u32,
    pub after: Option<String>,
}

impl PageRequest {
    /// Validates `first` (1 to 100, default 20).
    pub fn new(first: Option<i32>, after: Option<String>) -> StoreResult<Self> {
        let first = match first {
            None => 20,
            Some(n) if n < 0 => return Err(StoreError::invalid("first", "must not be negative")),
            Some(n) if n as u32 > MAX_PAGE_SIZE => {
                return Err(StoreError::invalid("first", format!("must be at most {MAX_PAGE_SIZE}")));
            }
            Some(n) => n as u32,
        };
        Ok(PageRequest { first, after })
    }

    pub(crate) fn limit(&self) -> u64 {
        self.first as u64 + 1
    }

    /// Decodes the `after` cursor into the key type of the list it belongs to.
    pub(crate) fn after_key<K: DeserializeOwned>(&self) -> StoreResult<Option<K>> {
        self.after.as_deref().map(decode_cursor).transpose()
    }
}

pub(crate) fn encode_cursor<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).unwrap_or_default();
    format!("{CURSOR_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a cursor. A cursor is forgeable client input: whatever it decodes to is refused
/// (`BAD_USER_INPUT` on `after`) unless it is a key the server could have written — texts
/// without control characters (our sort keys are names; PostgreSQL cannot even compare a NUL),
/// times in the range every database holds ([`cursor_time`]).
pub(crate) fn decode_cursor<K: DeserializeOwned>(s: &str) -> StoreResult<K> {
    let bad = || StoreError::invalid("after", "is not a valid cursor for this list");
    if s.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let body = s.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if !texts_are_clean(&value) {
        return Err(bad());
    }
    serde_json::from_value(value).map_err(|_| bad())
}

fn texts_are_clean(v: &Value) -> bool {
    let clean = |s: &str| check_chars("after", s, Lines::Single).is_ok();
    match v {
        Value::String(s) => clean(s),
        Value::Array(items) => items.iter().all(texts_are_clean),
        Value::Object(fields) => fields.iter().all(|(k, v)| clean(k) && texts_are_clean(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Deserializes a time in a cursor: years 1 to 9999 only. Every time the server writes lies
/// there; outside it PostgreSQL refuses the value while SQLite would compare it as text.
pub(crate) fn cursor_time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let t = DateTime::<Utc>::deserialize(d)?;
    if !(1..=9999).contains(&t.year()) {
        return Err(serde::de::Error::custom("time out of range"));
    }
    Ok(t)
}

/// The key of a list in time order: (time, id), the time checked by [`cursor_time`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct TimeKey(#[serde(deserialize_with = "cursor_time")] pub DateTime<Utc>, pub Uuid);

/// The keyset condition "after (a, b)" in ascending order: `a > ka OR (a = ka AND b > kb)`,
/// written without row-value syntax so it reads the same on every database.
pub(crate) fn after<A, B, VA, VB>(a: A, b: B, key: (VA, VB)) -> sea_orm::Condition
where
    A: sea_orm::ColumnTrait,
    B: sea_orm::ColumnTrait,
    VA: Into<sea_orm::Value> + Clone,
    VB: Into<sea_orm::Value>,
{
    use sea_orm::Condition;
    Condition::any().add(a.gt(key.0.clone())).add(Condition::all().add(a.eq(key.0)).add(b.gt(key.1)))
}

/// The same for a descending order: `a < ka OR (a = ka AND b < kb)`.
pub(crate) fn before<A, B, VA, VB>(a: A, b: B, key: (VA, VB)) -> sea_orm::Condition
where
    A: sea_orm::ColumnTrait,
    B: sea_orm::ColumnTrait,
    VA: Into<sea_orm::Value> + Clone,
    VB: Into<sea_orm::Value>,
{
    use sea_orm::Condition;
    Condition::any().add(a.lt(key.0.clone())).add(Condition::all().add(a.eq(key.0)).add(b.lt(key.1)))
}

/// One page of rows, each with its cursor.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub rows: Vec<(String, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only tells whether there is more.
    pub(crate) fn from_rows<K: Serialize>(mut rows: Vec<T>, req: &PageRequest, key: impl Fn(&T) -> K) -> Page<T> {
        let has_next_page = rows.len() as u64 > req.first as u64;
        rows.truncate(req.first as usize);
        Page {
            rows: rows.into_iter().map(|r| (encode_cursor(&key(&r)), r)).collect(),
            has_next_page,
            has_previous_page: req.after.is_some(),
        }
    }

    pub fn map<U>(self, f: impl Fn(T) -> U) -> Page<U> {
        Page {
            rows: self.rows.into_iter().map(|(c, r)| (c, f(r))).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_roundtrip_and_reject_garbage() {
        let c = encode_cursor(&("zimmer".to_string(), 7u32));
        let k: (String, u32) = decode_cursor(&c).unwrap(); // ok: unit test
        assert_eq!(k, ("zimmer".to_string(), 7));
        assert!(decode_cursor::<(String, u32)>("garbage").is_err());
        assert!(decode_cursor::<(String, u32)>("c1.!!!").is_err());
        assert!(decode_cursor::<(String, u32)>(&encode_cursor(&42)).is_err());
    }

    #[test]
    fn forged_cursors_with_control_characters_or_impossible_times_are_refused() {
        let id = Uuid::nil();
        for bad in ["a\u{0}b", "\u{0}", "x\u{1f}", "\u{7f}"] {
            let forged = encode_cursor(&(bad.to_string(), id));
            let e = decode_cursor::<(String, Uuid)>(&forged).unwrap_err();
            assert!(matches!(e, StoreError::Invalid(ref d) if d.field() == "after"), "{bad:?}: {e:?}");
        }
        // …also as an object key, nested anywhere.
        let forged = format!("{CURSOR_PREFIX}{}", URL_SAFE_NO_PAD.encode(br#"{"Name":["a\u0000",null]}"#));
        assert!(decode_cursor::<serde_json::Value>(&forged).is_err());
        let forged = format!("{CURSOR_PREFIX}{}", URL_SAFE_NO_PAD.encode(br#"{"a\u0000":1}"#));
        assert!(decode_cursor::<serde_json::Value>(&forged).is_err());
        // Times: what the server writes round-trips; years no database agrees on are refused.
        let now = Utc::now();
        let TimeKey(t, _) = decode_cursor::<TimeKey>(&encode_cursor(&(now, id))).unwrap(); // ok: unit test
        assert_eq!(t, now);
        for year in ["-5000-01-01T00:00:00Z", "+20000-01-01T00:00:00Z"] {
            let forged = encode_cursor(&(year, id));
            assert!(decode_cursor::<TimeKey>(&forged).is_err(), "{year}");
        }
        assert!(decode_cursor::<(String, Uuid)>(&format!("{CURSOR_PREFIX}{}", "A".repeat(5000))).is_err());
    }

    #[test]
    fn page_size_is_bounded() {
        assert!(PageRequest::new(Some(101), None).is_err());
        assert!(PageRequest::new(Some(-1), None).is_err());
        assert_eq!(PageRequest::new(None, None).unwrap().first, 20); // ok: unit test
        assert_eq!(PageRequest::new(Some(100), None).unwrap().first, 100); // ok: unit test
    }
}
