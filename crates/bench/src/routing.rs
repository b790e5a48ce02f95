//! W7 and W8: the setup of responsibility and routing over dataset M, done as a tenant admin over
//! HTTP (idempotent: re-running it against the same database finds what an earlier run created).
//!
//! - Queues "Bench — general" and "Bench — VIP" (unrestricted), the process area `helpdesk` (if
//!   absent) with the general queue as its default.
//! - The routing contact is the pricing contact (999,991 in M, visible to user 1), in 20 extra
//!   groups plus its ring groups. A responsibility "worker user 1, queue Bench — VIP" is set on
//!   each of its groups, except the last ten extra groups: those inherit it from their parent
//!   (group 102 in M), which exercises the closure table. `route` confirms the candidates.
//! - The single-group contact (created once in book 1, found again by its e-mail) is a member of
//!   one group only, the first of the inheriting ones, so it has exactly one candidate.
//! - W7 measures `receiveMessage` for the routing contact; before the load, the statements of one
//!   `receiveMessage` are counted from `/metrics` for both contacts, interleaved.
//! - W8 tops the VIP queue up to [`W8_MIN_MESSAGES`] messages, then pages it.

use crate::dataset::{self as ds, Size};
use crate::run::{Client, scrape};
use crate::workloads::{self, Prepared, gid};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub const GENERAL_QUEUE: &str = "Bench — general";
pub const VIP_QUEUE: &str = "Bench — VIP";
pub const AREA: &str = "helpdesk";
/// The single-group contact's e-mail address (how a re-run finds it).
pub const SINGLE_EMAIL: &str = "w7-single-group@example.com";
/// W8 pages a queue holding at least this many messages.
pub const W8_MIN_MESSAGES: u64 = 2_000;
/// Interleaved rounds of the statement count (after one unmeasured call per contact).
const STATEMENT_ROUNDS: usize = 5;

/// Which groups get a responsibility, from dataset arithmetic alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The contact W7 posts for (the pricing contact).
    pub contact: u64,
    /// All its groups.
    pub groups: Vec<u64>,
    /// Its groups that set the responsibility themselves.
    pub direct: Vec<u64>,
    /// Its groups that set none and inherit it from a parent in `parents`.
    pub inherited: Vec<u64>,
    pub parents: Vec<u64>,
    /// The one group of the single-group contact (an inheriting one).
    pub single_group: u64,
}

pub fn plan(size: &Size) -> Plan {
    let contact = size.pricing_contact();
    let groups = ds::groups_of(size, contact);
    let inherited: Vec<u64> = size.pricing_extra_groups().skip(10).collect();
    let mut parents: Vec<u64> = inherited.iter().filter_map(|g| ds::group_parent(*g)).collect();
    parents.dedup();
    let direct = groups.iter().copied().filter(|g| !inherited.contains(g)).collect();
    Plan { contact, single_group: inherited[0], groups, direct, inherited, parents }
}

/// What the setup found or created, as global ids.
pub struct Routing {
    pub vip: String,
    /// The worker every responsibility names: user 1.
    pub worker: String,
    pub contact: String,
    pub single: String,
    /// The routing contact's groups and how many of them are candidates (all), inherited ones.
    pub groups: usize,
    pub candidates: usize,
    pub inherited: usize,
    /// The process area names a default user group, so messages may be restricted to it.
    pub may_be_unreadable: bool,
}

async fn queue(admin: &Client, existing: &[Value], name: &str) -> anyhow::Result<String> {
    if let Some(q) = existing.iter().find(|q| q["name"] == name) {
        if !q["userGroup"].is_null() {
            bail!("the queue '{name}' exists but is restricted to a user group; W7/W8 expect it open");
        }
        return Ok(q["id"].as_str().context("queue without id")?.to_owned());
    }
    let d = admin
        .ok(
            "mutation($n: String!) { createProcessingArea(input: { name: $n, description: \"cohort-bench W7/W8\" }) { processingArea { id } } }",
            json!({ "n": name }),
        )
        .await?;
    Ok(d.pointer("/createProcessingArea/processingArea/id").and_then(Value::as_str).context("no queue id")?.to_owned())
}

async fn single_contact(admin: &Client, group: &str) -> anyhow::Result<String> {
    let book = gid("AddressBook", ds::book_id(1));
    let d = admin
        .ok(
            "query($b: ID!, $s: String!) { contacts(first: 1, orderBy: ID, filter: { addressBookIds: [$b], search: $s }) { edges { node { id } } } }",
            json!({ "b": book, "s": SINGLE_EMAIL }),
        )
        .await?;
    let id = match d.pointer("/contacts/edges/0/node/id").and_then(Value::as_str) {
        Some(id) => id.to_owned(),
        None => {
            let d = admin
                .ok(
                    "mutation($i: CreateContactInput!) { createContact(input: $i) { contact { id } } }",
                    json!({ "i": { "addressBookId": book, "kind": "PERSON", "firstName": "Bench", "lastName": "Single-group",
                                   "emails": [{ "address": SINGLE_EMAIL }] } }),
                )
                .await?;
            d.pointer("/createContact/contact/id").and_then(Value::as_str).context("no contact id")?.to_owned()
        }
    };
    let d = admin.ok("query($c: ID!) { contact(id: $c) { memberships { group { id } } } }", json!({ "c": id })).await?;
    let groups: Vec<&str> = d
        .pointer("/contact/memberships")
        .and_then(Value::as_array)
        .context("no memberships")?
        .iter()
        .filter_map(|m| m.pointer("/group/id").and_then(Value::as_str))
        .collect();
    match groups.as_slice() {
        [] => {
            admin
                .ok(
                    "mutation($g: ID!, $c: ID!) { addGroupMembers(input: { groupId: $g, contactIds: [$c] }) { addedCount } }",
                    json!({ "g": group, "c": id }),
                )
                .await?;
        }
        [g] if *g == group => {}
        other => bail!("the single-group contact {SINGLE_EMAIL} is in {} groups, expected only {group}", other.len()),
    }
    Ok(id)
}

const ROUTE: &str = "query($c: ID!, $a: String!) { route(contactId: $c, processArea: $a) { worker { id } processingArea { id } explanation { candidates { inherited } } } }";

/// (candidates, inherited candidates) of `contact`'s decision, checking it names `r`'s worker
/// and VIP queue.
async fn candidates(admin: &Client, r: &Routing, contact: &str) -> anyhow::Result<(usize, usize)> {
    let d = admin.ok(ROUTE, json!({ "c": contact, "a": AREA })).await?;
    let route = &d["route"];
    if route.pointer("/worker/id").and_then(Value::as_str) != Some(&r.worker)
        || route.pointer("/processingArea/id").and_then(Value::as_str) != Some(&r.vip)
    {
        bail!("route({contact}) is not user 1 in {VIP_QUEUE}: {route}");
    }
    let c = route.pointer("/explanation/candidates").and_then(Value::as_array).context("no candidates")?;
    Ok((c.len(), c.iter().filter(|c| c["inherited"] == true).count()))
}

/// Creates (or finds) queues, process area, responsibilities and the single-group contact.
pub async fn setup(admin: &Client, size: &Size) -> anyhow::Result<Routing> {
    let p = plan(size);
    let d = admin.ok("{ processingAreas { id name userGroup { id } } }", json!({})).await?;
    let existing = d["processingAreas"].as_array().cloned().unwrap_or_default();
    let general = queue(admin, &existing, GENERAL_QUEUE).await?;
    let vip = queue(admin, &existing, VIP_QUEUE).await?;
    let d = admin.ok("{ processAreas { id key defaultUserGroup { id } } }", json!({})).await?;
    let found = d["processAreas"].as_array().and_then(|a| a.iter().find(|a| a["key"] == AREA)).cloned();
    let (area, may_be_unreadable) = match found {
        Some(a) => (a["id"].as_str().context("area without id")?.to_owned(), !a["defaultUserGroup"].is_null()),
        None => {
            let d = admin
                .ok(
                    "mutation($q: ID!) { createProcessArea(input: { key: \"helpdesk\", name: \"Helpdesk\", defaultProcessingAreaId: $q }) { processArea { id } } }",
                    json!({ "q": general }),
                )
                .await?;
            (
                d.pointer("/createProcessArea/processArea/id")
                    .and_then(Value::as_str)
                    .context("no area id")?
                    .to_owned(),
                false,
            )
        }
    };
    let worker = gid("User", ds::user_id(1));
    // Setting the same responsibility again is a no-op for routing (it only writes its event).
    for g in p.direct.iter().chain(&p.parents) {
        admin
            .ok(
                "mutation($i: SetGroupResponsibilityInput!) { setGroupResponsibility(input: $i) { responsibility { worker { id } } } }",
                json!({ "i": { "groupId": gid("Group", ds::group_id(*g)), "processAreaId": area, "workerId": worker, "processingAreaId": vip } }),
            )
            .await
            .with_context(|| format!("setGroupResponsibility on group {g}"))?;
    }
    // The inheriting groups set nothing themselves (clearing what is not there is a no-op).
    for g in &p.inherited {
        admin
            .ok(
                "mutation($i: ClearGroupResponsibilityInput!) { clearGroupResponsibility(input: $i) { cleared } }",
                json!({ "i": { "groupId": gid("Group", ds::group_id(*g)), "processAreaId": area } }),
            )
            .await?;
    }
    let single = single_contact(admin, &gid("Group", ds::group_id(p.single_group))).await?;
    let mut r = Routing {
        vip,
        worker,
        contact: gid("Contact", ds::contact_id(p.contact)),
        single,
        groups: p.groups.len(),
        candidates: 0,
        inherited: 0,
        may_be_unreadable,
    };
    (r.candidates, r.inherited) = candidates(admin, &r, &r.contact).await?;
    if r.candidates < 20 || r.candidates != p.groups.len() || r.inherited != p.inherited.len() {
        bail!(
            "contact {} has {} candidate groups ({} inherited), expected all its {} groups (≥ 20, {} inherited)",
            p.contact,
            r.candidates,
            r.inherited,
            p.groups.len(),
            p.inherited.len()
        );
    }
    let (one, _) = candidates(admin, &r, &r.single).await?;
    if one != 1 {
        bail!("the single-group contact has {one} candidates, expected 1");
    }
    Ok(r)
}

pub fn w7(r: &Routing) -> Prepared {
    workloads::w7(&r.contact, (&r.vip, VIP_QUEUE), &r.worker, r.may_be_unreadable)
}

/// Statements of one `receiveMessage` for the routing contact and for the single-group contact,
/// counted from the server's `/metrics` around each call (run while nothing else talks to it).
pub async fn statements(viewer: &Client, base: &str, r: &Routing) -> anyhow::Result<String> {
    let many = workloads::w7(&r.contact, (&r.vip, VIP_QUEUE), &r.worker, r.may_be_unreadable);
    let one = workloads::w7(&r.single, (&r.vip, VIP_QUEUE), &r.worker, r.may_be_unreadable);
    let (cost_many, cost_one) = compare_statements(viewer, base, &many, &one).await?;
    Ok(format!(
        "statements per receiveMessage: {} groups ({} candidates, {} inherited) {} vs 1 group (1 candidate, inherited) {}",
        r.groups,
        r.candidates,
        r.inherited,
        show(&cost_many),
        show_verdict(&cost_one, &cost_many)
    ))
}

/// The statements of each of `many` and `one` (two requests whose cost must not differ),
/// interleaved over [`STATEMENT_ROUNDS`] rounds after one uncounted call of each, every call
/// bracketed by two reads of `cohort_db_statements_total` on `/metrics`.
pub async fn compare_statements(
    viewer: &Client,
    base: &str,
    many: &Prepared,
    one: &Prepared,
) -> anyhow::Result<(Vec<u64>, Vec<u64>)> {
    let (mut cost_many, mut cost_one) = (vec![], vec![]);
    // The first call of each is not counted (a request path's first call may differ).
    for round in 0..=STATEMENT_ROUNDS {
        for (p, costs) in [(one, &mut cost_one), (many, &mut cost_many)] {
            let (before, ..) = scrape(&viewer.http, base).await?;
            let v = viewer.post(&p.body).await?;
            let (after, ..) = scrape(&viewer.http, base).await?;
            (p.check)(&v).map_err(|e| anyhow::anyhow!("the request answered wrongly: {e}"))?;
            if round > 0 {
                costs.push(after.saturating_sub(before));
            }
        }
    }
    Ok((cost_many, cost_one))
}

pub fn show(c: &[u64]) -> String {
    format!("[{}]", c.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))
}

/// `one`'s counts and whether every count of both is the same.
pub fn show_verdict(one: &[u64], many: &[u64]) -> String {
    let verdict = if many.iter().chain(one).all(|c| Some(c) == one.first()) {
        format!("equal: {} statements each, independent of the number of groups", one[0])
    } else {
        "NOT equal".to_owned()
    };
    format!("{} — {verdict}", show(one))
}

/// Sends `missing` requests of `prepared()` from `parallel` (at most 16) connections, checking
/// each answer: how W8 and W10 fill their queues before measuring.
pub async fn top_up(
    client: Arc<Client>,
    missing: u64,
    parallel: usize,
    prepared: impl Fn() -> Prepared,
    what: &'static str,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = vec![];
    for _ in 0..parallel.clamp(1, 16) {
        let (client, next, p) = (client.clone(), next.clone(), prepared());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < missing {
                let v = client.post(&p.body).await?;
                (p.check)(&v).map_err(|e| anyhow::anyhow!("{what} answered wrongly: {e}"))?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn page_as_admin(admin: &Client, queue: &str) -> anyhow::Result<(u64, Vec<String>)> {
    first_page(admin, &workloads::w8_body(queue), "messages").await
}

/// `totalCount` and the ids of the first page of the connection `field` in `body`'s answer:
/// the expected answer of a queue workload, as an admin reads it.
pub async fn first_page(admin: &Client, body: &Value, field: &str) -> anyhow::Result<(u64, Vec<String>)> {
    let v = admin.post(body).await?;
    let m = workloads::data(&v, &[field]).map_err(anyhow::Error::msg)?;
    let total = m.get("totalCount").and_then(Value::as_u64).context("no totalCount")?;
    let ids = m
        .get("edges")
        .and_then(Value::as_array)
        .context("no edges")?
        .iter()
        .map(|e| e.pointer("/node/id").and_then(Value::as_str).map(str::to_owned).context("edge without id"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((total, ids))
}

/// What W8's answer must be: the queue's message count and first page.
pub struct W8Expected {
    total: u64,
    ids: Vec<String>,
}

impl W8Expected {
    /// W8's cost depends on the queue's size (`totalCount` counts every readable message).
    pub fn note(&self) -> String {
        format!("{VIP_QUEUE} holds {} messages (totalCount; W7 runs add to it)", self.total)
    }
}

/// W8: tops the VIP queue up to [`W8_MIN_MESSAGES`] (parallel `receiveMessage` as the viewer),
/// then takes the expected count and first page from a tenant admin's reading.
pub async fn w8_expected(
    admin: &Client,
    viewer: Arc<Client>,
    r: &Routing,
    parallel: usize,
) -> anyhow::Result<W8Expected> {
    let (have, _) = page_as_admin(admin, &r.vip).await?;
    if have < W8_MIN_MESSAGES {
        let missing = W8_MIN_MESSAGES - have;
        eprintln!("W8: posting {missing} messages into {VIP_QUEUE} first");
        top_up(viewer, missing, parallel, || w7(r), "receiveMessage").await?;
    }
    let (total, ids) = page_as_admin(admin, &r.vip).await?;
    if total < W8_MIN_MESSAGES {
        bail!("{VIP_QUEUE} holds {total} messages after the top-up, expected at least {W8_MIN_MESSAGES}");
    }
    Ok(W8Expected { total, ids })
}

pub fn w8(r: &Routing, e: &W8Expected) -> Prepared {
    workloads::w8(&r.vip, e.total, e.ids.clone(), vec![r.contact.clone(), r.single.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routing_contact_has_20_or_more_candidates_ten_of_them_inherited() {
        for size in [Size::S, Size::M] {
            let p = plan(&size);
            assert_eq!(p.contact, size.pricing_contact());
            assert!(p.groups.len() >= 20, "{size:?}: {:?}", p.groups);
            assert_eq!(p.direct.len() + p.inherited.len(), p.groups.len());
            assert_eq!(p.inherited.len(), 10);
            assert!(p.inherited.iter().all(|g| p.groups.contains(g) && !p.direct.contains(g)));
            assert!(p.inherited.iter().all(|g| ds::group_parent(*g).is_some_and(|pa| p.parents.contains(&pa))));
            assert!(p.inherited.contains(&p.single_group));
        }
        let m = plan(&Size::M);
        assert_eq!((m.parents.as_slice(), m.single_group), ([102].as_slice(), 1011));
        assert!(m.groups.len() > 20, "in M the ring adds groups: {:?}", m.groups);
    }
}
