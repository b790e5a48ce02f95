//! U1: `upsertContacts`, the integrators' sync, one request = one atomic batch of 1,000 contacts
//! into one address book, in three phases measured one after the other:
//!
//! - **create**: every batch has new external ids (unique per run, phase, connection and request):
//!   1,000 `CREATED`;
//! - **unchanged**: each connection re-sends a batch it created before the phase (unmeasured):
//!   1,000 `UNCHANGED`, nothing written;
//! - **10 % changed**: each connection re-sends its batch with 100 items changed (the last name,
//!   or the company name of a company; item `i` changes in round `r` when `i % 10 == r % 10`, so
//!   every changed item really differs from what is stored): 100 `UPDATED`, 900 `UNCHANGED`.
//!
//! Every answer is checked: committed, the four counts, `failed == 0`, and every result (index,
//! external id, status, a contact id). The book is new for every run (created by an admin, who
//! grants user 1 WRITE on it unless the run is `--admin`), so dataset M's books stay as they were;
//! the created contacts stay in it. Before each phase's load, one uncounted and
//! [`STATEMENT_ROUNDS`] counted batches are sent alone, each bracketed by two reads of
//! `cohort_db_statements_total`: the statements per batch of that phase.

use crate::dataset as ds;
use crate::report::{Figures, Stopwatch};
use crate::run::{Client, scrape};
use crate::workloads::{data, gid};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Contacts per request.
pub const BATCH: usize = 1000;
/// The source system of the external ids.
pub const SYSTEM: &str = "erp";
/// Counted batches per phase for the statements per batch.
pub const STATEMENT_ROUNDS: usize = 3;

pub const U1_QUERY: &str = "mutation U1($i: UpsertContactsInput!) { upsertContacts(input: $i) { committed created updated unchanged failed results { index externalId status contact { id } error { code message field } } } }";

const FIRST: [&str; 8] = ["Anna", "Jan", "Petra", "Tomáš", "Eva", "Martin", "Lucie", "Pavel"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Create,
    Unchanged,
    Changed,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Create, Phase::Unchanged, Phase::Changed];
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Create => "U1 create",
            Phase::Unchanged => "U1 unchanged",
            Phase::Changed => "U1 10% changed",
        }
    }
    fn tag(&self) -> &'static str {
        match self {
            Phase::Create => "n",
            Phase::Unchanged => "u",
            Phase::Changed => "c",
        }
    }
}

/// What an item of the answer must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    Updated,
    Unchanged,
}

impl Status {
    fn name(&self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Updated => "UPDATED",
            Status::Unchanged => "UNCHANGED",
        }
    }
}

/// A batch of [`BATCH`] contacts as the source system holds it: external id `<prefix>-<i>`,
/// and the version of each item's name (0: as created).
#[derive(Clone, Debug)]
pub struct Batch {
    prefix: String,
    versions: Vec<u32>,
}

impl Batch {
    pub fn new(prefix: String) -> Batch {
        Batch { prefix, versions: vec![0; BATCH] }
    }

    pub fn external_id(&self, i: usize) -> String {
        format!("{}-{i:04}", self.prefix)
    }

    /// Item `i` as `UpsertContactInput`: every fourth of five a person with an e-mail and a
    /// phone, every fifth a company with an e-mail.
    pub fn item(&self, i: usize) -> Value {
        let ext = self.external_id(i);
        let name = match self.versions[i] {
            0 => format!("Sync{}", i % 97),
            v => format!("Sync{} v{v}", i % 97),
        };
        let email = json!([{ "address": format!("{ext}@example.org"), "label": "work" }]);
        if i % 5 == 4 {
            json!({ "externalId": ext, "kind": "COMPANY", "companyName": format!("{name} s.r.o."), "emails": email, "phones": [] })
        } else {
            json!({
                "externalId": ext, "kind": "PERSON", "firstName": FIRST[i % FIRST.len()], "lastName": name,
                "emails": email, "phones": [{ "number": format!("+420 601 {:03} {:03}", i / 1000, i % 1000), "label": "mobile" }],
            })
        }
    }

    /// Round `round` of the changed phase: the 100 items with `i % 10 == round % 10` get name
    /// version `round` (which differs from their stored one as long as rounds grow). Returns
    /// whether each item changed.
    pub fn change(&mut self, round: u32) -> Vec<bool> {
        (0..BATCH)
            .map(|i| {
                let hit = i % 10 == (round % 10) as usize;
                if hit {
                    self.versions[i] = round;
                }
                hit
            })
            .collect()
    }

    /// The request body (atomic) into `book`, and what each item must answer.
    pub fn request(&self, book: &str, statuses: impl Fn(usize) -> Status) -> (Value, Vec<(String, Status)>) {
        let items: Vec<Value> = (0..BATCH).map(|i| self.item(i)).collect();
        let body = json!({
            "operationName": "U1",
            "query": U1_QUERY,
            "variables": { "i": { "addressBookId": book, "system": SYSTEM, "atomic": true, "contacts": items } },
        });
        (body, (0..BATCH).map(|i| (self.external_id(i), statuses(i))).collect())
    }
}

/// Checks an `upsertContacts` answer against what each item must say: committed, `failed` 0,
/// the counts, and every result in input order with its external id, status and a contact id.
pub fn check(v: &Value, want: &[(String, Status)]) -> Result<(), String> {
    let p = data(v, &["upsertContacts"])?;
    let results = p.get("results").and_then(Value::as_array).ok_or("no results")?;
    let failed = p.get("failed").and_then(Value::as_u64);
    if failed != Some(0) || p.get("committed") != Some(&Value::Bool(true)) {
        let first = results.iter().find(|r| r.get("status").and_then(Value::as_str) == Some("FAILED"));
        return Err(format!(
            "committed {:?}, failed {failed:?}; first failure: {}",
            p.get("committed"),
            first.map(|r| r.to_string()).unwrap_or_default()
        ));
    }
    for (field, status) in
        [("created", Status::Created), ("updated", Status::Updated), ("unchanged", Status::Unchanged)]
    {
        let expected = want.iter().filter(|(_, s)| *s == status).count() as u64;
        let got = p.get(field).and_then(Value::as_u64);
        if got != Some(expected) {
            return Err(format!("{field} {got:?}, expected {expected}"));
        }
    }
    if results.len() != want.len() {
        return Err(format!("{} results for {} items", results.len(), want.len()));
    }
    for (k, (r, (ext, status))) in results.iter().zip(want).enumerate() {
        let (index, got_ext, got_status) = (
            r.get("index").and_then(Value::as_u64),
            r.get("externalId").and_then(Value::as_str),
            r.get("status").and_then(Value::as_str),
        );
        if index != Some(k as u64) || got_ext != Some(ext.as_str()) || got_status != Some(status.name()) {
            return Err(format!(
                "result {k}: index {index:?}, {got_ext:?} {got_status:?}; expected {ext} {}",
                status.name()
            ));
        }
        let id = r.pointer("/contact/id").and_then(Value::as_str).unwrap_or_default();
        if cohort_api::graphql::ids::decode_any(id).map(|(tag, _)| tag).as_deref() != Some("Contact") {
            return Err(format!("result {k}: contact id {id:?} is not a contact id"));
        }
    }
    Ok(())
}

/// One connection's requests in a phase.
struct Conn {
    phase: Phase,
    book: String,
    prefix: String,
    round: u32,
    batch: Batch,
}

impl Conn {
    fn new(phase: Phase, book: &str, prefix: String) -> Conn {
        Conn { phase, book: book.to_owned(), batch: Batch::new(format!("{prefix}-seed")), prefix, round: 0 }
    }

    /// Creates the batch the unchanged and changed phases re-send (nothing for create).
    async fn seed(&self, viewer: &Client) -> anyhow::Result<()> {
        if self.phase == Phase::Create {
            return Ok(());
        }
        let (body, want) = self.batch.request(&self.book, |_| Status::Created);
        let v = viewer.post(&body).await?;
        check(&v, &want).map_err(|e| anyhow::anyhow!("seeding a batch: {e}"))
    }

    fn next_request(&mut self) -> (Value, Vec<(String, Status)>) {
        self.round += 1;
        match self.phase {
            Phase::Create => {
                Batch::new(format!("{}-{}", self.prefix, self.round)).request(&self.book, |_| Status::Created)
            }
            Phase::Unchanged => self.batch.request(&self.book, |_| Status::Unchanged),
            Phase::Changed => {
                let changed = self.batch.change(self.round);
                self.batch.request(&self.book, |i| if changed[i] { Status::Updated } else { Status::Unchanged })
            }
        }
    }
}

pub struct UpsertArgs<'a> {
    pub viewer: &'a Client,
    pub admin: &'a Client,
    /// The server's base URL (for /metrics).
    pub base: &'a str,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub as_admin: bool,
}

/// Runs the three phases; one result line each.
pub async fn run(a: UpsertArgs<'_>) -> anyhow::Result<Vec<Figures>> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let v = a
        .admin
        .ok(
            "mutation($n: String!) { createAddressBook(input: { name: $n, description: \"cohort-bench U1\" }) { addressBook { id } } }",
            json!({ "n": format!("U1 {run_id}") }),
        )
        .await
        .context("creating U1's address book")?;
    let book = v.pointer("/createAddressBook/addressBook/id").and_then(Value::as_str).context("no book id")?.to_owned();
    if !a.as_admin {
        a.admin
            .ok(
                "mutation($b: ID!, $u: ID!) { grantAddressBookAccess(input: { addressBookId: $b, userId: $u, level: WRITE }) { grant { level } } }",
                json!({ "b": book, "u": gid("User", ds::user_id(1)) }),
            )
            .await
            .context("granting user 1 WRITE on U1's address book")?;
    }
    let who = if a.as_admin { " (admin)" } else { "" };
    let mut figures = vec![];
    for phase in Phase::ALL {
        let mut conns: Vec<Conn> =
            (0..a.connections).map(|c| Conn::new(phase, &book, format!("u1-{run_id}-{}{c}", phase.tag()))).collect();
        for c in &conns {
            c.seed(a.viewer).await?;
        }
        // Statements per batch, one batch at a time (the first uncounted).
        let mut stmts = vec![];
        for round in 0..=STATEMENT_ROUNDS {
            let (body, want) = conns[0].next_request();
            let (before, ..) = scrape(&a.viewer.http, a.base).await?;
            let v = a.viewer.post(&body).await?;
            let (after, ..) = scrape(&a.viewer.http, a.base).await?;
            check(&v, &want).map_err(|e| anyhow::anyhow!("{} answered wrongly: {e}", phase.label()))?;
            if round > 0 {
                stmts.push(after.saturating_sub(before));
            }
        }
        let f = load(&a, conns, &format!("{}{who}", phase.label())).await?;
        let per_batch = stmts.iter().sum::<u64>() as f64 / stmts.len().max(1) as f64;
        let note = format!(
            "{:.0} contacts/s in batches of {BATCH}; statements per batch, one at a time: {} ({:.2} per contact)",
            f.per_second * BATCH as f64,
            crate::routing::show(&stmts),
            per_batch / BATCH as f64
        );
        eprintln!("{}: {note}", f.workload);
        figures.push(f.with_note(Some(note)));
    }
    Ok(figures)
}

/// `conns` sending batches back to back: warm-up, then the measured window.
async fn load(a: &UpsertArgs<'_>, conns: Vec<Conn>, label: &str) -> anyhow::Result<Figures> {
    let viewer = Arc::new(a.viewer.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let connections = conns.len();
    let mut tasks = vec![];
    for mut conn in conns {
        let (viewer, stop, measuring, errors, first_error) =
            (viewer.clone(), stop.clone(), measuring.clone(), errors.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let mut watch = Stopwatch::new();
            while !stop.load(Ordering::Relaxed) {
                // The body is built before the clock starts.
                let (body, want) = conn.next_request();
                let t = Instant::now();
                let res = viewer.post(&body).await;
                let elapsed = t.elapsed();
                let ok = match res {
                    Ok(v) => check(&v, &want).map_err(anyhow::Error::msg),
                    Err(e) => Err(e),
                };
                // A batch counts if it ends inside the window (as in `run.rs`: completions per
                // second).
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match ok {
                    Ok(()) => watch.record(elapsed),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut f) = first_error.lock() {
                            f.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
            }
            watch
        }));
    }
    tokio::time::sleep(a.warmup).await;
    let (stmts_before, _, database) = scrape(&a.viewer.http, a.base).await?;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut peak_rss = 0;
    while started.elapsed() < a.duration {
        tokio::time::sleep(Duration::from_millis(250).min(a.duration.saturating_sub(started.elapsed()))).await;
        if let Ok((_, rss, _)) = scrape(&a.viewer.http, a.base).await {
            peak_rss = peak_rss.max(rss);
        }
    }
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (stmts_after, _, _) = scrape(&a.viewer.http, a.base).await?;
    let mut merged = Stopwatch::new();
    for t in tasks {
        merged.merge(&t.await?);
    }
    let errors = errors.load(Ordering::Relaxed);
    if let Some(e) = first_error.lock().ok().and_then(|f| f.clone()) {
        eprintln!("first error: {e}");
    }
    let requests = merged.count() + errors;
    if requests == 0 {
        bail!("{label}: no batch completed inside the {:.0} s window; measure longer", a.duration.as_secs_f64());
    }
    Ok(Figures::from_stopwatch(
        label,
        "server",
        &database,
        connections,
        &merged,
        elapsed,
        errors,
        Some(stmts_after.saturating_sub(stmts_before) as f64 / requests as f64),
        (peak_rss > 0).then_some(peak_rss),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    /// The answer a correct server gives to `want`.
    fn answer(want: &[(String, Status)]) -> Value {
        let count = |s: Status| want.iter().filter(|(_, w)| *w == s).count();
        let results: Vec<Value> = want
            .iter()
            .enumerate()
            .map(|(i, (ext, s))| json!({ "index": i, "externalId": ext, "status": s.name(), "contact": { "id": gid("Contact", Uuid::nil()) }, "error": null }))
            .collect();
        json!({ "data": { "upsertContacts": {
            "committed": true, "created": count(Status::Created), "updated": count(Status::Updated),
            "unchanged": count(Status::Unchanged), "failed": 0, "results": results } } })
    }

    #[test]
    fn batches_have_distinct_ids_and_valid_items() {
        let b = Batch::new("u1-x-n0-1".into());
        let (body, want) = b.request("book", |_| Status::Created);
        let items = body.pointer("/variables/i/contacts").and_then(Value::as_array).expect("contacts");
        assert_eq!((items.len(), want.len()), (BATCH, BATCH));
        let ids: std::collections::HashSet<&str> = items.iter().filter_map(|i| i["externalId"].as_str()).collect();
        assert_eq!(ids.len(), BATCH);
        assert_eq!(items.iter().filter(|i| i["kind"] == "COMPANY").count(), BATCH / 5);
        assert_eq!(body.pointer("/variables/i/atomic"), Some(&json!(true)));
        assert_eq!(want[7].0, "u1-x-n0-1-0007");
        assert_eq!(items[7]["externalId"], "u1-x-n0-1-0007");
    }

    #[test]
    fn a_round_changes_a_tenth_and_always_to_something_new() {
        let mut b = Batch::new("p".into());
        let before: Vec<Value> = (0..BATCH).map(|i| b.item(i)).collect();
        for round in 1..=25 {
            let prev: Vec<Value> = (0..BATCH).map(|i| b.item(i)).collect();
            let changed = b.change(round);
            assert_eq!(changed.iter().filter(|c| **c).count(), BATCH / 10);
            for i in 0..BATCH {
                assert_eq!(b.item(i) != prev[i], changed[i], "round {round}, item {i}");
            }
        }
        assert_eq!(b.item(5)["externalId"], before[5]["externalId"], "the ids stay");
    }

    #[test]
    fn the_check_wants_every_count_and_every_item() {
        let mut conn = Conn::new(Phase::Changed, "book", "p".into());
        let (_, want) = conn.next_request();
        assert_eq!(want.iter().filter(|(_, s)| *s == Status::Updated).count(), 100);
        assert_eq!((want[1].1, want[2].1), (Status::Updated, Status::Unchanged), "round 1 changes i % 10 == 1");
        let good = answer(&want);
        assert_eq!(check(&good, &want), Ok(()));

        let mut bad = good.clone();
        bad["data"]["upsertContacts"]["updated"] = json!(99);
        assert!(check(&bad, &want).is_err(), "count");
        let mut bad = good.clone();
        bad["data"]["upsertContacts"]["results"][2]["status"] = json!("UPDATED");
        assert!(check(&bad, &want).is_err(), "an item's status");
        let mut bad = good.clone();
        bad["data"]["upsertContacts"]["results"][3]["externalId"] = json!("q-0003");
        assert!(check(&bad, &want).is_err(), "an item's external id");
        let mut bad = good.clone();
        bad["data"]["upsertContacts"]["results"][4]["contact"] = Value::Null;
        assert!(check(&bad, &want).is_err(), "no contact");
        let mut bad = good.clone();
        bad["data"]["upsertContacts"]["committed"] = json!(false);
        bad["data"]["upsertContacts"]["failed"] = json!(1);
        assert!(check(&bad, &want).unwrap_err().starts_with("committed"));
        let mut bad = good.clone();
        bad["data"]["upsertContacts"]["results"].as_array_mut().expect("results").pop();
        assert!(check(&bad, &want).is_err(), "a missing result");
        assert!(check(&json!({ "errors": [{ "message": "x" }] }), &want).is_err());

        // The unchanged phase re-sends the same batch; create makes new ids every time.
        let mut same = Conn::new(Phase::Unchanged, "book", "p".into());
        let (a, _) = same.next_request();
        let (b, want_b) = same.next_request();
        assert_eq!(a, b);
        assert!(want_b.iter().all(|(_, s)| *s == Status::Unchanged));
        let mut create = Conn::new(Phase::Create, "book", "p".into());
        let (_, w1) = create.next_request();
        let (_, w2) = create.next_request();
        assert_ne!(w1[0].0, w2[0].0);
    }
}
