//! The workloads W1–W10 as GraphQL requests, each with the exact answer dataset M implies; R4,
//! W4 through the REST facade; U1, `upsertContacts` in batches of 1,000 (see `upserts.rs`).
//!
//! A response counts as a success only if it has no `errors` and its rows are the expected ones
//! (ids, counts, names) — a fast wrong answer is a failure.

use crate::dataset::{self as ds, Size};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    W1,
    W2,
    W3,
    W4,
    W5,
    W6,
    /// `receiveMessage` for a contact in 20+ groups with a responsibility (setup: `routing.rs`).
    W7,
    /// A page of 50 messages of a queue (setup: `routing.rs`).
    W8,
    /// `createTicket` for a contact in 20+ groups with default SLAs (setup: `tickets.rs`).
    W9,
    /// A page of 50 tickets of a queue, nearest due time first (setup: `tickets.rs`).
    W10,
    /// W4 through the REST facade: `POST /api/v1/prices:resolve` with the same inputs.
    R4,
    /// `upsertContacts`, batches of 1,000: create, unchanged, 10 % changed (`upserts.rs`).
    U1,
}

impl Workload {
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name().eq_ignore_ascii_case(s))
    }
    pub fn name(&self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
            Workload::W6 => "W6",
            Workload::W7 => "W7",
            Workload::W8 => "W8",
            Workload::W9 => "W9",
            Workload::W10 => "W10",
            Workload::R4 => "R4",
            Workload::U1 => "U1",
        }
    }

    pub const ALL: [Workload; 12] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W5,
        Workload::W6,
        Workload::W7,
        Workload::W8,
        Workload::W9,
        Workload::W10,
        Workload::R4,
        Workload::U1,
    ];

    /// The REST path the workload posts to instead of `/graphql`.
    pub fn rest_path(&self) -> Option<&'static str> {
        (*self == Workload::R4).then_some(RESOLVE_PRICE_PATH)
    }
}

/// The API's own global id encoding (one definition, so the harness cannot drift from it).
pub fn gid(tag: &str, id: Uuid) -> String {
    cohort_api::graphql::ids::encode(tag, id).0
}

/// The groups W3 selects by. DATASET.md names groups 1, 2 and 3, but groups 2 and 3 are homed in
/// books 2 and 3, which user 1 cannot read, and reading a group needs READ on its home book
/// (DESIGN §1): Cohort answers NOT_FOUND, as it must. The nearest selection user 1 may make has
/// the same shape over groups it can read: in group 1 and group 11, not in group 21.
pub const W3_GROUPS: (u64, u64, u64) = (1, 11, 21);

/// Checks one answer: `Err` says what is wrong with it.
pub type Check = Box<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// A request body plus the check of its answer.
pub struct Prepared {
    pub body: Value,
    pub check: Check,
}

pub fn data<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value, String> {
    if let Some(errors) = v.get("errors") {
        return Err(format!("errors: {}", truncate(&errors.to_string())));
    }
    let mut cur = v.get("data").ok_or("no data")?;
    for p in path {
        cur = cur.get(p).ok_or_else(|| format!("no {p} in the answer"))?;
    }
    Ok(cur)
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

fn ids_of(edges: &Value) -> Result<Vec<String>, String> {
    edges
        .as_array()
        .ok_or("edges is not a list")?
        .iter()
        .map(|e| {
            e.pointer("/node/id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| "edge without id".into())
        })
        .collect()
}

pub fn w1(size: &Size) -> Prepared {
    let mut visible: Vec<(String, u64)> = ds::members(size, 1)
        .filter(|m| ds::visible_to_user1(m.contact))
        .map(|m| (ds::sort_key(m.contact), m.contact))
        .collect();
    let total = visible.len() as u64;
    visible.sort();
    let expected: Vec<String> = visible.iter().take(50).map(|(_, c)| gid("Contact", ds::contact_id(*c))).collect();
    Prepared {
        body: json!({
            "operationName": "W1",
            "query": "query W1($g: ID!) { group(id: $g) { members(first: 50, orderBy: NAME) { totalCount edges { node { id displayName } } pageInfo { hasNextPage endCursor } } } }",
            "variables": { "g": gid("Group", ds::group_id(1)) },
        }),
        check: Box::new(move |v| {
            let m = data(v, &["group", "members"])?;
            let count = m.get("totalCount").and_then(Value::as_u64);
            if count != Some(total) {
                return Err(format!("totalCount {count:?}, expected {total}"));
            }
            let ids = ids_of(m.get("edges").ok_or("no edges")?)?;
            if ids != expected {
                return Err(format!("{} edges, not the expected first page of {}", ids.len(), expected.len()));
            }
            Ok(())
        }),
    }
}

pub fn w2(size: &Size) -> Prepared {
    let c = size.w2_contact();
    let mut names: Vec<String> = (1..=size.groups)
        .filter(|g| ds::group_book(*g) % 10 == 1 && ds::is_member(size, *g, c))
        .map(ds::group_name)
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    Prepared {
        body: json!({
            "operationName": "W2",
            "query": "query W2($c: ID!) { contact(id: $c) { id displayName emails { address } memberships { joinedAt source group { id name } } } }",
            "variables": { "c": gid("Contact", ds::contact_id(c)) },
        }),
        check: Box::new(move |v| {
            let ms = data(v, &["contact", "memberships"])?.as_array().ok_or("memberships is not a list")?;
            let got: Vec<&str> = ms.iter().filter_map(|m| m.pointer("/group/name").and_then(Value::as_str)).collect();
            if got.len() > 50 || got != names {
                return Err(format!("groups {got:?}, expected {names:?}"));
            }
            Ok(())
        }),
    }
}

pub fn w3(size: &Size) -> Prepared {
    let (a, b, none) = W3_GROUPS;
    let mut expected: Vec<u64> = ds::members(size, b)
        .map(|m| m.contact)
        .filter(|c| ds::visible_to_user1(*c) && ds::is_member(size, a, *c) && !ds::is_member(size, none, *c))
        .collect();
    expected.sort_unstable();
    let expected: Vec<String> = expected.iter().take(50).map(|c| gid("Contact", ds::contact_id(*c))).collect();
    Prepared {
        body: json!({
            "operationName": "W3",
            "query": "query W3($all: [ID!]!, $none: [ID!]!) { contacts(first: 50, orderBy: ID, filter: { groups: { all: $all, none: $none } }) { edges { node { id displayName } } pageInfo { hasNextPage endCursor } } }",
            "variables": {
                "all": [gid("Group", ds::group_id(a)), gid("Group", ds::group_id(b))],
                "none": [gid("Group", ds::group_id(none))],
            },
        }),
        check: Box::new(move |v| {
            let ids = ids_of(data(v, &["contacts", "edges"])?)?;
            if ids != expected {
                return Err(format!("{} contacts, not the expected {}", ids.len(), expected.len()));
            }
            Ok(())
        }),
    }
}

fn check_line(line: &Value, quantity: &str) -> Result<(), String> {
    let unit = line.get("unitPrice").and_then(Value::as_str).ok_or("no unitPrice")?;
    let total = line.get("lineTotal").and_then(Value::as_str).ok_or("no lineTotal")?;
    let (u, q, t) = (
        unit.parse::<rust_decimal::Decimal>().map_err(|_| "unitPrice is not a decimal")?,
        quantity.parse::<rust_decimal::Decimal>().map_err(|_| "bad quantity")?,
        total.parse::<rust_decimal::Decimal>().map_err(|_| "lineTotal is not a decimal")?,
    );
    if (u * q).round_dp(2) != t {
        return Err(format!("{unit} × {quantity} ≠ {total}"));
    }
    if line.get("source").and_then(Value::as_str) != Some("GROUP_LIST") {
        return Err(format!("source {:?}, expected GROUP_LIST", line.get("source")));
    }
    Ok(())
}

/// W4's inputs: the pricing contact, product 4,242, 12 units in EUR.
fn w4_input(size: &Size) -> Value {
    json!({
        "contactId": gid("Contact", ds::contact_id(size.pricing_contact())),
        "productId": gid("Product", ds::product_id(4242)),
        "quantity": "12",
        "currency": "EUR",
    })
}

pub fn w4(size: &Size) -> Prepared {
    let i = w4_input(size);
    Prepared {
        body: json!({
            "operationName": "W4",
            "query": "query W4($c: ID!, $p: ID!) { resolvePrice(input: { contactId: $c, productId: $p, quantity: \"12\", currency: \"EUR\" }) { unitPrice lineTotal currency source priceList { name } } }",
            "variables": { "c": i["contactId"], "p": i["productId"] },
        }),
        check: Box::new(|v| check_line(data(v, &["resolvePrice"])?, "12")),
    }
}

/// R4's endpoint (the REST facade's `resolvePrice`).
pub const RESOLVE_PRICE_PATH: &str = "/api/v1/prices:resolve";

/// The fields R4's answer must share with W4's (`/priceList/name` included).
const W4_FIELDS: [&str; 5] = ["/unitPrice", "/lineTotal", "/currency", "/source", "/priceList/name"];

/// R4: W4's inputs as the REST body (`ResolvePriceRequest`: the GraphQL input in camelCase JSON).
/// The answer is the price itself (no `data` envelope): W4's check, and every field W4 selects
/// equal to `w4_answer` (W4's `resolvePrice`, read through GraphQL before the run).
pub fn r4(size: &Size, w4_answer: Value) -> Prepared {
    Prepared {
        body: w4_input(size),
        check: Box::new(move |v| {
            if v.get("errors").is_some() || v.get("data").is_some() {
                return Err(format!("a GraphQL envelope, not the REST answer: {}", truncate(&v.to_string())));
            }
            check_line(v, "12")?;
            for f in W4_FIELDS {
                if v.pointer(f) != w4_answer.pointer(f) {
                    return Err(format!("{f} is {:?}; GraphQL (W4) answers {:?}", v.pointer(f), w4_answer.pointer(f)));
                }
            }
            Ok(())
        }),
    }
}

pub fn w5(size: &Size) -> Prepared {
    let c = size.pricing_contact();
    let lines: Vec<Value> = (1..=100u64)
        .map(|p| json!({ "productId": gid("Product", ds::product_id(p)), "quantity": (1 + p % 15).to_string() }))
        .collect();
    Prepared {
        body: json!({
            "operationName": "W5",
            "query": "query W5($c: ID!, $lines: [QuoteLineInput!]!) { quoteOrder(input: { contactId: $c, currency: \"EUR\", lines: $lines }) { total lines { quantity unitPrice lineTotal source } } }",
            "variables": { "c": gid("Contact", ds::contact_id(c)), "lines": lines },
        }),
        check: Box::new(|v| {
            let q = data(v, &["quoteOrder"])?;
            let lines = q.get("lines").and_then(Value::as_array).ok_or("no lines")?;
            if lines.len() != 100 {
                return Err(format!("{} lines, expected 100", lines.len()));
            }
            let mut sum = rust_decimal::Decimal::ZERO;
            for l in lines {
                let qty = l.get("quantity").and_then(Value::as_str).ok_or("no quantity")?;
                check_line(l, qty)?;
                sum += l["lineTotal"].as_str().unwrap_or("0").parse::<rust_decimal::Decimal>().unwrap_or_default();
            }
            let total = q.get("total").and_then(Value::as_str).ok_or("no total")?;
            if total.parse::<rust_decimal::Decimal>().ok() != Some(sum) {
                return Err(format!("total {total} is not the sum of the lines {sum}"));
            }
            Ok(())
        }),
    }
}

/// W6: the contact ids to add and remove, and how many of them the viewer can see.
pub fn w6_ids(size: &Size, as_admin: bool) -> (Vec<String>, u64) {
    let ids: Vec<u64> = size.w6_ring().map(|i| size.ring(i % size.contacts)).collect();
    let visible = if as_admin { ids.len() } else { ids.iter().filter(|c| ds::visible_to_user1(**c)).count() };
    (ids.iter().map(|c| gid("Contact", ds::contact_id(*c))).collect(), visible as u64)
}

pub fn w6_add(group: &str, ids: &[String], visible: u64) -> Prepared {
    let not_found = ids.len() as u64 - visible;
    Prepared {
        body: json!({
            "operationName": "W6Add",
            "query": "mutation W6Add($g: ID!, $ids: [ID!]!) { addGroupMembers(input: { groupId: $g, contactIds: $ids }) { addedCount alreadyMemberCount notFound } }",
            "variables": { "g": group, "ids": ids },
        }),
        check: Box::new(move |v| {
            let p = data(v, &["addGroupMembers"])?;
            let added = p.get("addedCount").and_then(Value::as_u64);
            let nf = p.get("notFound").and_then(Value::as_array).map(Vec::len).unwrap_or(usize::MAX) as u64;
            if added != Some(visible) || nf != not_found {
                return Err(format!("added {added:?}, notFound {nf}; expected {visible} and {not_found}"));
            }
            Ok(())
        }),
    }
}

pub fn w6_remove(group: &str, ids: &[String], visible: u64) -> Prepared {
    Prepared {
        body: json!({
            "operationName": "W6Remove",
            "query": "mutation W6Remove($g: ID!, $ids: [ID!]!) { removeGroupMembers(input: { groupId: $g, contactIds: $ids }) { removedCount notMemberCount } }",
            "variables": { "g": group, "ids": ids },
        }),
        check: Box::new(move |v| {
            let removed = data(v, &["removeGroupMembers", "removedCount"])?.as_u64();
            if removed != Some(visible) {
                return Err(format!("removed {removed:?}, expected {visible}"));
            }
            Ok(())
        }),
    }
}

/// The selection of W7's answer: the routed queue and worker are what the check compares.
pub const W7_QUERY: &str = "mutation W7($i: ReceiveMessageInput!) { receiveMessage(input: $i) { messageId duplicate message { id processingArea { id name } worker { id } } } }";

/// W7: one new message (no external id, so every call stores one) from `contact`, which must be
/// routed to `queue` and `worker`. `may_be_unreadable`: the routing may restrict the message to a
/// user group the caller is not in (the process area names a default user group), so a `null`
/// message is then accepted and only `messageId` is checked.
pub fn w7(contact: &str, queue: (&str, &str), worker: &str, may_be_unreadable: bool) -> Prepared {
    let (queue_id, queue_name) = (queue.0.to_owned(), queue.1.to_owned());
    let worker = worker.to_owned();
    Prepared {
        body: w7_body(contact, "W7 benchmark message"),
        check: Box::new(move |v| {
            let p = data(v, &["receiveMessage"])?;
            let id = p.get("messageId").and_then(Value::as_str).ok_or("no messageId")?;
            if cohort_api::graphql::ids::decode_any(id).map(|(tag, _)| tag).as_deref() != Some("Message") {
                return Err(format!("messageId {id} is not a message id"));
            }
            if p.get("duplicate") != Some(&Value::Bool(false)) {
                return Err(format!("duplicate {:?}, expected false", p.get("duplicate")));
            }
            let m = p.get("message").ok_or("no message in the answer")?;
            if m.is_null() {
                return if may_be_unreadable {
                    Ok(())
                } else {
                    Err("message is null, but the caller may read it".into())
                };
            }
            let (q, qn, w) = (
                m.pointer("/processingArea/id").and_then(Value::as_str),
                m.pointer("/processingArea/name").and_then(Value::as_str),
                m.pointer("/worker/id").and_then(Value::as_str),
            );
            if q != Some(queue_id.as_str()) || qn != Some(queue_name.as_str()) || w != Some(worker.as_str()) {
                return Err(format!(
                    "routed to queue {qn:?} ({q:?}), worker {w:?}; expected {queue_name} and {worker}"
                ));
            }
            Ok(())
        }),
    }
}

/// The request body of one `receiveMessage` (helpdesk, e-mail, no external id).
pub fn w7_body(contact: &str, subject: &str) -> Value {
    json!({
        "operationName": "W7",
        "query": W7_QUERY,
        "variables": { "i": {
            "contactId": contact, "processArea": "helpdesk", "channel": "EMAIL", "subject": subject,
            "body": "Hello,\nplease call me back about my order.\nRegards",
        } },
    })
}

pub const W8_QUERY: &str = "query W8($q: ID!) { messages(first: 50, filter: { processingAreaId: $q }) { totalCount edges { node { id subject receivedAt contact { id } } } pageInfo { hasNextPage endCursor } } }";

pub fn w8_body(queue: &str) -> Value {
    json!({ "operationName": "W8", "query": W8_QUERY, "variables": { "q": queue } })
}

/// W8: the first page of `queue`, which must hold `total` messages (all readable by the viewer),
/// newest first: exactly the ids `expected` (as a tenant admin read them in the setup), each from
/// one of `senders`.
pub fn w8(queue: &str, total: u64, expected: Vec<String>, senders: Vec<String>) -> Prepared {
    Prepared {
        body: w8_body(queue),
        check: Box::new(move |v| {
            let m = data(v, &["messages"])?;
            let count = m.get("totalCount").and_then(Value::as_u64);
            if count != Some(total) {
                return Err(format!("totalCount {count:?}, expected {total}"));
            }
            let edges = m.get("edges").ok_or("no edges")?;
            let ids = ids_of(edges)?;
            if ids.len() as u64 != total.min(50) || ids != expected {
                return Err(format!("{} edges, not the expected first page of {}", ids.len(), expected.len()));
            }
            let mut last: Option<&str> = None;
            for e in edges.as_array().into_iter().flatten() {
                let at = e.pointer("/node/receivedAt").and_then(Value::as_str).ok_or("edge without receivedAt")?;
                let at_time = chrono::DateTime::parse_from_rfc3339(at).map_err(|_| format!("receivedAt {at}"))?;
                if let Some(prev) = last.and_then(|p| chrono::DateTime::parse_from_rfc3339(p).ok())
                    && at_time > prev
                {
                    return Err(format!("not newest first: {at} after {prev}"));
                }
                last = Some(at);
                if e.pointer("/node/subject").and_then(Value::as_str).is_none() {
                    return Err("edge without subject".into());
                }
                let c = e.pointer("/node/contact/id").and_then(Value::as_str).ok_or("edge without contact")?;
                if !senders.iter().any(|s| s == c) {
                    return Err(format!("a message from {c}, not from the benchmark's senders"));
                }
            }
            let next = m.pointer("/pageInfo/hasNextPage").and_then(Value::as_bool);
            if next != Some(total > 50) {
                return Err(format!("hasNextPage {next:?} with {total} messages"));
            }
            Ok(())
        }),
    }
}

/// The single request of a read workload (W6 is a cycle of two mutations, prepared per group;
/// W7–W10 need their queues, responsibilities and contracts set up first, see `routing.rs` and
/// `tickets.rs`).
pub fn prepare(w: Workload, size: &Size) -> Option<Prepared> {
    Some(match w {
        Workload::W1 => w1(size),
        Workload::W2 => w2(size),
        Workload::W3 => w3(size),
        Workload::W4 => w4(size),
        Workload::W5 => w5(size),
        Workload::W6 | Workload::W7 | Workload::W8 | Workload::W9 | Workload::W10 | Workload::R4 | Workload::U1 => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_parses_from_its_name() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
            assert_eq!(Workload::parse(&w.name().to_lowercase()), Some(w));
        }
        assert_eq!(Workload::parse("W11"), None);
        assert_eq!(Workload::R4.rest_path(), Some("/api/v1/prices:resolve"));
        assert_eq!(Workload::W4.rest_path(), None);
    }

    #[test]
    fn r4_sends_w4s_inputs_and_wants_w4s_answer() {
        let size = Size::parse("m").expect("size m");
        let w4 = w4(&size);
        let w4_vars = &w4.body["variables"];
        let price = json!({ "unitPrice": "7.50", "lineTotal": "90.00", "currency": "EUR", "source": "GROUP_LIST",
            "priceList": { "id": "l", "name": "Group list 7" }, "product": { "id": "p", "sku": "S", "name": "N" },
            "quantity": "12", "group": { "id": "g", "name": "G" } });
        assert_eq!((w4.check)(&json!({ "data": { "resolvePrice": price } })), Ok(()));
        let p = r4(&size, price.clone());
        assert_eq!(p.body["contactId"], w4_vars["c"]);
        assert_eq!(p.body["productId"], w4_vars["p"]);
        assert_eq!((p.body["quantity"].as_str(), p.body["currency"].as_str()), (Some("12"), Some("EUR")));
        assert_eq!((p.check)(&price), Ok(()));
        let mut other = price.clone();
        other["priceList"]["name"] = json!("Default");
        assert!((p.check)(&other).is_err(), "another list than W4's");
        let mut wrong = price.clone();
        wrong["lineTotal"] = json!("91.00");
        assert!((p.check)(&wrong).is_err(), "12 × 7.50 ≠ 91.00");
        assert!((p.check)(&json!({ "data": { "resolvePrice": price } })).is_err(), "no GraphQL envelope");
        let problem = json!({ "type": "about:blank", "title": "Not Found", "status": 404, "code": "NOT_FOUND" });
        assert!((p.check)(&problem).is_err());
    }

    fn w7_answer(message: Value) -> Value {
        json!({ "data": { "receiveMessage": {
            "messageId": gid("Message", Uuid::nil()), "duplicate": false, "message": message } } })
    }

    #[test]
    fn w7_checks_the_routing_decision() {
        let p = w7("c", ("q", "Bench — VIP"), "u1", false);
        let good =
            json!({ "id": "m", "processingArea": { "id": "q", "name": "Bench — VIP" }, "worker": { "id": "u1" } });
        assert_eq!((p.check)(&w7_answer(good.clone())), Ok(()));
        let mut wrong = good.clone();
        wrong["worker"]["id"] = json!("u2");
        assert!((p.check)(&w7_answer(wrong)).is_err());
        assert!((p.check)(&w7_answer(Value::Null)).is_err(), "null only when it may be unreadable");
        assert_eq!((w7("c", ("q", "Bench — VIP"), "u1", true).check)(&w7_answer(Value::Null)), Ok(()));
        let mut dup = w7_answer(good);
        dup["data"]["receiveMessage"]["duplicate"] = json!(true);
        assert!((p.check)(&dup).is_err());
        assert!((p.check)(&json!({ "errors": [{ "message": "x" }] })).is_err());
    }

    #[test]
    fn w8_checks_count_page_order_and_senders() {
        let edge = |i: u32, at: &str| json!({ "node": { "id": format!("m{i}"), "subject": "s", "receivedAt": at, "contact": { "id": "c" } } });
        let edges: Vec<Value> = (0..50).map(|i| edge(i, "2026-12-02T10:00:00Z")).collect();
        let answer = |edges: &[Value], total: u64| json!({ "data": { "messages": { "totalCount": total, "edges": edges, "pageInfo": { "hasNextPage": total > 50, "endCursor": "x" } } } });
        let ids: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        let p = w8("q", 2000, ids.clone(), vec!["c".into()]);
        assert_eq!((p.check)(&answer(&edges, 2000)), Ok(()));
        assert!((p.check)(&answer(&edges, 1999)).is_err());
        assert!((p.check)(&answer(&edges[..49], 2000)).is_err());
        let mut later = edges.clone();
        later[1] = edge(1, "2026-12-02T11:00:00Z");
        assert!((p.check)(&answer(&later, 2000)).is_err(), "newest first");
        assert!((w8("q", 2000, ids, vec!["other".into()]).check)(&answer(&edges, 2000)).is_err());
    }
}
