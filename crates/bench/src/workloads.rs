//! The workloads W1–W6 as GraphQL requests, each with the exact answer dataset M implies.
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
}

impl Workload {
    pub fn parse(s: &str) -> Option<Workload> {
        Some(match s.to_ascii_uppercase().as_str() {
            "W1" => Workload::W1,
            "W2" => Workload::W2,
            "W3" => Workload::W3,
            "W4" => Workload::W4,
            "W5" => Workload::W5,
            "W6" => Workload::W6,
            _ => return None,
        })
    }
    pub fn name(&self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
            Workload::W6 => "W6",
        }
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

fn data<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value, String> {
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

pub fn w4(size: &Size) -> Prepared {
    let c = size.pricing_contact();
    Prepared {
        body: json!({
            "operationName": "W4",
            "query": "query W4($c: ID!, $p: ID!) { resolvePrice(input: { contactId: $c, productId: $p, quantity: \"12\", currency: \"EUR\" }) { unitPrice lineTotal currency source priceList { name } } }",
            "variables": { "c": gid("Contact", ds::contact_id(c)), "p": gid("Product", ds::product_id(4242)) },
        }),
        check: Box::new(|v| check_line(data(v, &["resolvePrice"])?, "12")),
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

/// The single request of a read workload (W6 is a cycle of two mutations, prepared per group).
pub fn prepare(w: Workload, size: &Size) -> Option<Prepared> {
    Some(match w {
        Workload::W1 => w1(size),
        Workload::W2 => w2(size),
        Workload::W3 => w3(size),
        Workload::W4 => w4(size),
        Workload::W5 => w5(size),
        Workload::W6 => return None,
    })
}
