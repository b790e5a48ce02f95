//! W9 and W10: SLA defaults over dataset M, set up as a tenant admin over HTTP on top of W7/W8's
//! routing setup (idempotent: a re-run finds what an earlier one created).
//!
//! - A business calendar "Bench — office" (Europe/Prague, Mon–Fri 08:00–17:00) and two contracts
//!   on it: "Bench — standard" (rank 1) and "Bench — premium" (rank 5).
//! - The routing contact's groups that set a responsibility themselves (W7's `direct` groups) get
//!   the standard contract as their default; their parent group 102 gets the premium one, which
//!   the ten inheriting groups (1011–1020) inherit (they set none themselves). So every one of the
//!   contact's groups has an effective default, and the winner — the highest rank — is inherited.
//! - W9 measures `createTicket` for the routing contact as a tenant admin (opening a ticket needs
//!   WRITE on the contact's book, which user 1 lacks; every call opens a ticket, routed like W7's
//!   messages); before the load, the statements of one `createTicket` are counted from
//!   `/metrics` for it and for the single-group contact (one candidate, inherited), interleaved.
//! - W10 tops the VIP queue up to [`W10_MIN_TICKETS`] tickets, then pages the work queue (nearest
//!   due time first).

use crate::dataset::{self as ds, Size};
use crate::routing::{self, Routing, VIP_QUEUE};
use crate::run::Client;
use crate::workloads::{Prepared, data, gid};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;

pub const CALENDAR: &str = "Bench — office";
pub const STANDARD: &str = "Bench — standard";
pub const PREMIUM: &str = "Bench — premium";
/// W10 pages a queue holding at least this many tickets.
pub const W10_MIN_TICKETS: u64 = 2_000;

/// What the SLA setup found or created.
pub struct Sla {
    pub routing: Routing,
    /// Candidates in the routing contact's SLA explanation (all its groups).
    pub candidates: usize,
}

async fn find_or_create(
    admin: &Client,
    list: &str,
    field: &str,
    name: &str,
    create: (&str, Value),
    created: &str,
) -> anyhow::Result<String> {
    let d = admin.ok(&format!("{{ {list} {{ id name }} }}"), json!({})).await?;
    if let Some(found) = d[field].as_array().and_then(|a| a.iter().find(|x| x["name"] == name)) {
        return Ok(found["id"].as_str().context("without id")?.to_owned());
    }
    let d = admin.ok(create.0, create.1).await?;
    Ok(d.pointer(created).and_then(Value::as_str).with_context(|| format!("no id in {created}"))?.to_owned())
}

async fn contract(
    admin: &Client,
    name: &str,
    rank: i32,
    calendar: &str,
    targets: (i32, i32),
) -> anyhow::Result<String> {
    find_or_create(
        admin,
        "slaContracts",
        "slaContracts",
        name,
        (
            "mutation($i: SlaContractInput!) { createSlaContract(input: $i) { slaContract { id } } }",
            json!({ "i": { "name": name, "rank": rank, "calendarId": calendar,
                           "defaultTargets": { "firstResponseMinutes": targets.0, "resolutionMinutes": targets.1 },
                           "severityTargets": [{ "severity": "CRITICAL", "targets": { "firstResponseMinutes": 15, "resolutionMinutes": 120 } }] } }),
        ),
        "/createSlaContract/slaContract/id",
    )
    .await
}

async fn set_default(admin: &Client, group: u64, contract: Option<&str>) -> anyhow::Result<()> {
    admin
        .ok(
            "mutation($i: SetGroupDefaultSlaInput!) { setGroupDefaultSla(input: $i) { group { id } } }",
            json!({ "i": { "groupId": gid("Group", ds::group_id(group)), "slaContractId": contract } }),
        )
        .await
        .with_context(|| format!("setGroupDefaultSla on group {group}"))?;
    Ok(())
}

/// Routing (W7/W8's setup), the calendar, both contracts and the group defaults.
pub async fn setup(admin: &Client, size: &Size) -> anyhow::Result<Sla> {
    let routing = routing::setup(admin, size).await?;
    let p = routing::plan(size);
    let intervals: Vec<Value> = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]
        .iter()
        .map(|d| json!({ "weekday": d, "start": "08:00", "end": "17:00" }))
        .collect();
    let calendar = find_or_create(
        admin,
        "businessCalendars",
        "businessCalendars",
        CALENDAR,
        (
            "mutation($i: BusinessCalendarInput!) { createBusinessCalendar(input: $i) { businessCalendar { id } } }",
            json!({ "i": { "name": CALENDAR, "timeZone": "Europe/Prague", "intervals": intervals } }),
        ),
        "/createBusinessCalendar/businessCalendar/id",
    )
    .await?;
    let standard = contract(admin, STANDARD, 1, &calendar, (240, 960)).await?;
    let premium = contract(admin, PREMIUM, 5, &calendar, (60, 480)).await?;
    // Setting the same default again changes nothing for the choice (it writes its event).
    for g in &p.direct {
        set_default(admin, *g, Some(&standard)).await?;
    }
    for g in &p.parents {
        set_default(admin, *g, Some(&premium)).await?;
    }
    for g in &p.inherited {
        set_default(admin, *g, None).await?;
    }
    let mut sla = Sla { routing, candidates: 0 };
    // One ticket each, checked like the load's, confirms the choice before anything is measured.
    let probe = admin.post(&w9_prepared(&sla, &sla.routing.contact, p.groups.len()).body).await?;
    sla.candidates = candidates(&probe)?;
    if sla.candidates != p.groups.len() || sla.candidates < 20 {
        bail!(
            "the routing contact's SLA choice has {} candidates, expected all its {} groups (≥ 20)",
            sla.candidates,
            p.groups.len()
        );
    }
    let single = admin.post(&w9_prepared(&sla, &sla.routing.single, 1).body).await?;
    if candidates(&single)? != 1 {
        bail!("the single-group contact's SLA choice has {} candidates, expected 1", candidates(&single)?);
    }
    Ok(sla)
}

fn candidates(v: &Value) -> anyhow::Result<usize> {
    let p = data(v, &["createTicket"]).map_err(anyhow::Error::msg)?;
    Ok(p.pointer("/slaExplanation/candidates").and_then(Value::as_array).context("no candidates")?.len())
}

pub const W9_QUERY: &str = "mutation W9($i: CreateTicketInput!) { createTicket(input: $i) { ticketId replayed
  ticket { id processingArea { id } worker { id } sla { contractName source dueFirstResponseAt dueResolutionAt } }
  slaExplanation { source candidates { chosen contract { name } } } } }";

/// W9: one new ticket (no idempotency key, so every call opens one) for `contact`, which has
/// `groups` candidate groups: premium (the highest rank) chosen from a group, routed to the VIP
/// queue and user 1.
fn w9_prepared(sla: &Sla, contact: &str, groups: usize) -> Prepared {
    let r = &sla.routing;
    let (queue, worker, may_be_unreadable) = (r.vip.clone(), r.worker.clone(), r.may_be_unreadable);
    Prepared {
        body: json!({
            "operationName": "W9",
            "query": W9_QUERY,
            "variables": { "i": { "contactId": contact, "subject": "W9 benchmark ticket", "channel": "EMAIL",
                                  "description": "The webshop refuses my order since this morning." } },
        }),
        check: Box::new(move |v| {
            let p = data(v, &["createTicket"])?;
            let id = p.get("ticketId").and_then(Value::as_str).ok_or("no ticketId")?;
            if cohort_api::graphql::ids::decode_any(id).map(|(tag, _)| tag).as_deref() != Some("Ticket") {
                return Err(format!("ticketId {id} is not a ticket id"));
            }
            if p.get("replayed") != Some(&Value::Bool(false)) {
                return Err("replayed, expected a new ticket".into());
            }
            let e = p.get("slaExplanation").ok_or("no slaExplanation")?;
            let c = e.get("candidates").and_then(Value::as_array).ok_or("no candidates")?;
            let chosen: Vec<&Value> = c.iter().filter(|c| c["chosen"] == true).collect();
            if e["source"] != "GROUP"
                || c.len() != groups
                || chosen.len() != 1
                || chosen[0].pointer("/contract/name") != Some(&json!(PREMIUM))
            {
                return Err(format!("SLA choice {e}, expected {PREMIUM} chosen among {groups} groups"));
            }
            let t = p.get("ticket").ok_or("no ticket in the answer")?;
            if t.is_null() {
                return if may_be_unreadable {
                    Ok(())
                } else {
                    Err("ticket is null, but the caller may read it".into())
                };
            }
            if t.pointer("/processingArea/id").and_then(Value::as_str) != Some(queue.as_str())
                || t.pointer("/worker/id").and_then(Value::as_str) != Some(worker.as_str())
            {
                return Err(format!("routed to {t}, expected {VIP_QUEUE} and {worker}"));
            }
            let s = t.get("sla").ok_or("no sla")?;
            if s["contractName"] != PREMIUM
                || s["source"] != "GROUP"
                || !s["dueFirstResponseAt"].is_string()
                || !s["dueResolutionAt"].is_string()
            {
                return Err(format!("ticket SLA {s}, expected {PREMIUM} from a group with both due times"));
            }
            Ok(())
        }),
    }
}

pub fn w9(sla: &Sla) -> Prepared {
    w9_prepared(sla, &sla.routing.contact, sla.candidates)
}

/// Statements of one `createTicket` for the routing contact and for the single-group contact.
pub async fn statements(viewer: &Client, base: &str, sla: &Sla) -> anyhow::Result<String> {
    let many = w9(sla);
    let one = w9_prepared(sla, &sla.routing.single, 1);
    let (cost_many, cost_one) = routing::compare_statements(viewer, base, &many, &one).await?;
    Ok(format!(
        "statements per createTicket: {} groups ({} SLA candidates, 10 inherited) {} vs 1 group (1 candidate, inherited) {}",
        sla.routing.groups,
        sla.candidates,
        routing::show(&cost_many),
        routing::show_verdict(&cost_one, &cost_many)
    ))
}

pub const W10_QUERY: &str = "query W10($q: ID!) { tickets(first: 50, filter: { processingAreaId: $q }) { totalCount
  edges { node { id subject status contact { id } sla { dueFirstResponseAt dueResolutionAt } } } pageInfo { hasNextPage endCursor } } }";

fn w10_body(queue: &str) -> Value {
    json!({ "operationName": "W10", "query": W10_QUERY, "variables": { "q": queue } })
}

async fn page_as_admin(admin: &Client, queue: &str) -> anyhow::Result<(u64, Vec<String>)> {
    routing::first_page(admin, &w10_body(queue), "tickets").await
}

/// What W10's answer must be: the queue's ticket count and first page.
pub struct W10Expected {
    total: u64,
    ids: Vec<String>,
}

impl W10Expected {
    pub fn note(&self) -> String {
        format!("{VIP_QUEUE} holds {} tickets (totalCount; W9 runs add to it)", self.total)
    }
}

/// Tops the VIP queue up to [`W10_MIN_TICKETS`] (parallel `createTicket` as a tenant admin:
/// opening a ticket needs WRITE on the contact's book), then takes the expected count and first
/// page from the admin's reading.
pub async fn w10_expected(admin: Arc<Client>, sla: &Sla, parallel: usize) -> anyhow::Result<W10Expected> {
    let (have, _) = page_as_admin(&admin, &sla.routing.vip).await?;
    if have < W10_MIN_TICKETS {
        let missing = W10_MIN_TICKETS - have;
        eprintln!("W10: opening {missing} tickets in {VIP_QUEUE} first");
        routing::top_up(admin.clone(), missing, parallel, || w9(sla), "createTicket").await?;
    }
    let (total, ids) = page_as_admin(&admin, &sla.routing.vip).await?;
    if total < W10_MIN_TICKETS {
        bail!("{VIP_QUEUE} holds {total} tickets after the top-up, expected at least {W10_MIN_TICKETS}");
    }
    Ok(W10Expected { total, ids })
}

/// The nearest due time of a ticket in the answer (what the work queue is ordered by).
fn nearest_due(node: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    ["dueFirstResponseAt", "dueResolutionAt"]
        .iter()
        .filter_map(|f| node.pointer(&format!("/sla/{f}")).and_then(Value::as_str))
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .min()
}

/// W10: the first page of the VIP queue's tickets: exactly the admin's count and ids, nearest due
/// time first, every ticket from one of the two benchmark contacts.
pub fn w10(sla: &Sla, e: &W10Expected) -> Prepared {
    let (total, expected) = (e.total, e.ids.clone());
    let senders = [sla.routing.contact.clone(), sla.routing.single.clone()];
    Prepared {
        body: w10_body(&sla.routing.vip),
        check: Box::new(move |v| {
            let t = data(v, &["tickets"])?;
            let count = t.get("totalCount").and_then(Value::as_u64);
            if count != Some(total) {
                return Err(format!("totalCount {count:?}, expected {total}"));
            }
            let edges = t.get("edges").and_then(Value::as_array).ok_or("no edges")?;
            let ids: Vec<&str> = edges.iter().filter_map(|e| e.pointer("/node/id").and_then(Value::as_str)).collect();
            if ids.len() != expected.len() || ids.iter().zip(&expected).any(|(a, b)| a != b) {
                return Err(format!("{} edges, not the expected first page of {}", ids.len(), expected.len()));
            }
            let mut last = None;
            for e in edges {
                let node = &e["node"];
                let due = nearest_due(node).ok_or("a ticket without due times")?;
                if last.is_some_and(|l| due < l) {
                    return Err(format!("not nearest due first: {due} after {last:?}"));
                }
                last = Some(due);
                let c = node.pointer("/contact/id").and_then(Value::as_str).ok_or("ticket without contact")?;
                if !senders.iter().any(|s| s == c) {
                    return Err(format!("a ticket of {c}, not of the benchmark's contacts"));
                }
            }
            if t.pointer("/pageInfo/hasNextPage").and_then(Value::as_bool) != Some(total > 50) {
                return Err(format!("hasNextPage wrong with {total} tickets"));
            }
            Ok(())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_due_time_is_the_earlier_of_both() {
        let node = json!({ "sla": { "dueFirstResponseAt": "2026-12-02T10:00:00Z", "dueResolutionAt": "2026-12-02T09:00:00+00:00" } });
        assert_eq!(nearest_due(&node).map(|d| d.to_rfc3339()), Some("2026-12-02T09:00:00+00:00".to_owned()));
        let paused = json!({ "sla": { "dueFirstResponseAt": "2026-12-02T10:00:00Z", "dueResolutionAt": null } });
        assert_eq!(nearest_due(&paused).map(|d| d.to_rfc3339()), Some("2026-12-02T10:00:00+00:00".to_owned()));
        assert_eq!(nearest_due(&json!({ "sla": null })), None);
    }
}
