//! `cohort-bench forms`: public web-form submissions per second, and their latency.
//!
//! 1. As the admin of a fresh tenant (`forms-<run id>`, created just in time by its first
//!    request): an intake address book, four public groups (Greece, Italy, Spain, Turkey), a
//!    consent text and a web form offering the four (single or double opt-in).
//! 2. `connections` clients post `submissions` JSON submissions in total to
//!    `/public/v1/forms/{key}/submissions`, taking the next one from a shared list: each a new
//!    e-mail address choosing two of the groups, except every tenth, which repeats an earlier
//!    address (the known-contact path) with a pair of its own (the same pair or another).
//! 3. Measured: submissions/s (all answers over the wall time of the load), latency per request
//!    (HDR histogram; 202 answers and other answers apart), status codes, whether every 429
//!    carried `Retry-After`, and the server's `cohort_db_statements_total` before and after.
//! 4. Verified through GraphQL, from the submissions answered 202: contacts in the intake book =
//!    distinct addresses; per group, the distinct (address, group) pairs = `memberCount` and
//!    `consentSummary.confirmed` (single opt-in) or `consentSummary.pending` with `memberCount`
//!    0 (double opt-in); `consent.confirmation_requested` events = accepted submissions (double
//!    opt-in: every one asks, as none is confirmed) or 0 (single opt-in).
//!
//! Every answer must be 202, unless `--expect-limited` (a server with its default rate limits):
//! then 202 and 429 are expected, at least one 429, and every 429 must carry `Retry-After`.

use crate::report::Samples;
use crate::run::{Client, scrape};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct FormArgs {
    pub url: String,
    pub secret: String,
    pub issuer: String,
    pub audience: String,
    pub submissions: usize,
    pub connections: usize,
    pub double_opt_in: bool,
    pub expect_limited: bool,
}

const COUNTRIES: [&str; 4] = ["Greece", "Italy", "Spain", "Turkey"];
/// The six pairs of the four groups.
const PAIRS: [(usize, usize); 6] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];

struct Submission {
    email: String,
    groups: (usize, usize),
    repeat: bool,
}

/// The submissions of a run: every tenth (from the 10th on) repeats the address of the one at
/// half its index (long answered at any concurrency but the first few).
fn plan(run: &str, n: usize) -> Vec<Submission> {
    let mut out: Vec<Submission> = Vec::with_capacity(n);
    for i in 0..n {
        if i % 10 == 9 {
            let email = out[i / 2].email.clone();
            out.push(Submission { email, groups: PAIRS[(i * 5 + 1) % 6], repeat: true });
        } else {
            out.push(Submission {
                email: format!("p{i}.{run}@example.com"),
                groups: PAIRS[(i * 7 + 3) % 6],
                repeat: false,
            });
        }
    }
    out
}

/// What one client saw.
struct Seen {
    accepted: Samples,
    other: Samples,
    statuses: BTreeMap<u16, u64>,
    /// Indices of the submissions answered 202.
    ok: Vec<usize>,
    limited_without_retry_after: u64,
    retry_after: Vec<u64>,
    transport_errors: u64,
    first_problem: Option<String>,
    /// When each answer arrived, from the start of the load.
    done: Vec<Duration>,
}

impl Seen {
    fn new() -> anyhow::Result<Seen> {
        Ok(Seen {
            accepted: Samples::new(),
            other: Samples::new(),
            statuses: BTreeMap::new(),
            ok: vec![],
            limited_without_retry_after: 0,
            retry_after: vec![],
            transport_errors: 0,
            first_problem: None,
            done: vec![],
        })
    }

    fn merge(&mut self, o: Seen) -> anyhow::Result<()> {
        self.accepted.add(&o.accepted);
        self.other.add(&o.other);
        for (s, n) in o.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.ok.extend(o.ok);
        self.limited_without_retry_after += o.limited_without_retry_after;
        self.retry_after.extend(o.retry_after);
        self.transport_errors += o.transport_errors;
        self.done.extend(o.done);
        if self.first_problem.is_none() {
            self.first_problem = o.first_problem;
        }
        Ok(())
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

async fn setup(admin: &Client, run: &str, double_opt_in: bool) -> anyhow::Result<(String, Vec<String>, String)> {
    admin
        .ok(
            "mutation($n: String) { setPublicProfile(input: {publicName: $n}) { publicName } }",
            json!({ "n": format!("Cohort bench travel {run}") }),
        )
        .await
        .context("setPublicProfile")?;
    let d = admin
        .ok(
            "mutation($n: String!) { createAddressBook(input: {name: $n}) { addressBook { id } } }",
            json!({ "n": format!("Web intake {run}") }),
        )
        .await
        .context("createAddressBook")?;
    let book = d.pointer("/createAddressBook/addressBook/id").and_then(Value::as_str).context("no book id")?.to_owned();
    let mut groups = vec![];
    for c in COUNTRIES {
        let d = admin
            .ok(
                "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }",
                json!({ "i": { "addressBookId": book, "name": format!("WEB-{c} (internal)"), "publicName": c,
                               "publicDescription": format!("Offers for {c}") } }),
            )
            .await
            .with_context(|| format!("createGroup {c}"))?;
        groups.push(d.pointer("/createGroup/group/id").and_then(Value::as_str).context("no group id")?.to_owned());
    }
    let d = admin
        .ok(
            "mutation($b: String!) { createConsentText(input: {purpose: \"travel-offers\", language: \"en\", body: $b}) { consentText { id } } }",
            json!({ "b": "I would like to receive travel offers by e-mail.\nI can withdraw this at any time." }),
        )
        .await
        .context("createConsentText")?;
    let text = d
        .pointer("/createConsentText/consentText/id")
        .and_then(Value::as_str)
        .context("no consent text id")?
        .to_owned();
    let d = admin
        .ok(
            "mutation($i: CreateWebFormInput!) { createWebForm(input: $i) { webForm { id key } } }",
            json!({ "i": {
                "name": format!("Travel offers {run}"),
                "intakeAddressBookId": book,
                "groupIds": groups,
                "consentTextId": text,
                "doubleOptIn": double_opt_in,
                "title": "Travel offers by e-mail",
            } }),
        )
        .await
        .context("createWebForm")?;
    let key = d.pointer("/createWebForm/webForm/key").and_then(Value::as_str).context("no form key")?.to_owned();
    Ok((book, groups, key))
}

/// Counts the tenant's `consent.confirmation_requested` events (pages of 100).
async fn confirmation_events(admin: &Client) -> anyhow::Result<u64> {
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let d = admin
            .ok(
                "query($a: String) { events(first: 100, after: $a, types: [\"consent.confirmation_requested\"]) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
                json!({ "a": after }),
            )
            .await
            .context("events")?;
        n += d.pointer("/events/edges").and_then(Value::as_array).map_or(0, |e| e.len() as u64);
        if d.pointer("/events/pageInfo/hasNextPage").and_then(Value::as_bool) != Some(true) {
            return Ok(n);
        }
        after = d.pointer("/events/pageInfo/endCursor").and_then(Value::as_str).map(str::to_owned);
    }
}

pub async fn run(a: FormArgs) -> anyhow::Result<String> {
    let base = a.url.trim_end_matches('/').trim_end_matches("/graphql").to_owned();
    let connections = a.connections.max(1);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let tenant = format!("forms-{run}");
    let token = cohort_api::auth::issue_hs256(
        a.secret.as_bytes(),
        &a.issuer,
        &a.audience,
        &tenant,
        "bench-admin",
        &["admin".to_owned()],
        3600,
    )?;
    let admin = Client { http: http.clone(), graphql: format!("{base}/graphql"), token };
    let (book, groups, key) = setup(&admin, &run, a.double_opt_in).await.context("setup")?;
    let plan = Arc::new(plan(&run, a.submissions));
    let groups = Arc::new(groups);
    let submit_url = Arc::new(format!("{base}/public/v1/forms/{key}/submissions"));

    let load_before = loadavg();
    let (stmts_before, _, database) = scrape(&http, &base).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = vec![];
    for _ in 0..connections {
        let (http, plan, groups, url, next) =
            (http.clone(), plan.clone(), groups.clone(), submit_url.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::new()?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(s) = plan.get(i) else { break };
                let body = json!({ "email": s.email, "groups": [groups[s.groups.0], groups[s.groups.1]] }).to_string();
                let t = Instant::now();
                let res = http
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header("accept", "application/json")
                    .body(body)
                    .send()
                    .await;
                let (status, retry_after, text) = match res {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let retry_after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .map(|v| v.trim().parse::<u64>().map_err(|_| v.to_owned()));
                        match r.text().await {
                            Ok(text) => (status, retry_after, text),
                            Err(e) => (0, None, e.to_string()),
                        }
                    }
                    Err(e) => (0, None, e.to_string()),
                };
                let us = (t.elapsed().as_micros() as u64).max(1);
                seen.done.push(start.elapsed());
                *seen.statuses.entry(status).or_default() += 1;
                if status == 202 {
                    seen.accepted.record(us);
                    seen.ok.push(i);
                    continue;
                }
                seen.other.record(us);
                if status == 0 {
                    seen.transport_errors += 1;
                }
                if status == 429 {
                    match retry_after {
                        Some(Ok(secs)) => seen.retry_after.push(secs),
                        Some(Err(v)) => {
                            seen.limited_without_retry_after += 1;
                            seen.first_problem.get_or_insert_with(|| format!("429 with Retry-After '{v}'"));
                        }
                        None => seen.limited_without_retry_after += 1,
                    }
                    continue;
                }
                seen.first_problem
                    .get_or_insert_with(|| format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
            }
            anyhow::Ok(seen)
        }));
    }
    let mut seen = Seen::new()?;
    for t in tasks {
        seen.merge(t.await??)?;
    }
    let wall = start.elapsed();
    let (stmts_after, _, _) = scrape(&http, &base).await?;
    let load_after = loadavg();

    // What the accepted submissions imply.
    let accepted: Vec<&Submission> = seen.ok.iter().map(|&i| &plan[i]).collect();
    let emails: HashSet<&str> = accepted.iter().map(|s| s.email.as_str()).collect();
    let mut pairs: Vec<HashSet<&str>> = vec![HashSet::new(); COUNTRIES.len()];
    for s in &accepted {
        pairs[s.groups.0].insert(&s.email);
        pairs[s.groups.1].insert(&s.email);
    }
    let mut mismatches: Vec<String> = vec![];
    let mut checks: Vec<String> = vec![];
    let d = admin
        .ok("query($b: ID!) { addressBook(id: $b) { contacts(first: 1) { totalCount } } }", json!({ "b": book }))
        .await
        .context("intake book")?;
    let contacts = d.pointer("/addressBook/contacts/totalCount").and_then(Value::as_u64).context("no totalCount")?;
    checks.push(format!("contacts {contacts}/{}", emails.len()));
    if contacts != emails.len() as u64 {
        mismatches
            .push(format!("the intake book has {contacts} contacts, {} distinct e-mails were accepted", emails.len()));
    }
    for (k, g) in groups.iter().enumerate() {
        let d = admin
            .ok(
                "query($g: ID!) { group(id: $g) { memberCount consentSummary { confirmed pending withdrawn } } }",
                json!({ "g": g }),
            )
            .await
            .context("group")?;
        let get = |p: &str| d.pointer(p).and_then(Value::as_u64).unwrap_or(u64::MAX);
        let (members, confirmed, pending) =
            (get("/group/memberCount"), get("/group/consentSummary/confirmed"), get("/group/consentSummary/pending"));
        let want = pairs[k].len() as u64;
        let (want_members, want_confirmed, want_pending) = if a.double_opt_in { (0, 0, want) } else { (want, want, 0) };
        checks.push(if a.double_opt_in {
            format!("{} pending {pending}/{want_pending}", COUNTRIES[k])
        } else {
            format!("{} members {members}/{want_members}", COUNTRIES[k])
        });
        if (members, confirmed, pending) != (want_members, want_confirmed, want_pending) {
            mismatches.push(format!(
                "{}: memberCount {members}, confirmed {confirmed}, pending {pending}; expected {want_members}, {want_confirmed}, {want_pending}",
                COUNTRIES[k]
            ));
        }
    }
    let events = confirmation_events(&admin).await?;
    let want_events = if a.double_opt_in { accepted.len() as u64 } else { 0 };
    checks.push(format!("confirmation_requested events {events}/{want_events}"));
    if events != want_events {
        mismatches.push(format!("{events} consent.confirmation_requested events, expected {want_events}"));
    }

    let total = plan.len() as u64;
    let repeats = plan.iter().filter(|s| s.repeat).count();
    let secs = wall.as_secs_f64();
    let ms = |h: &Samples, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let mut out = format!(
        "forms ({}, {database}, tenant {tenant}): {total} submissions ({repeats} repeats of an earlier e-mail) from {connections} connections in {secs:.2} s = {:.1} submissions/s ({:.1} accepted/s)\n",
        if a.double_opt_in { "double opt-in" } else { "single opt-in" },
        total as f64 / secs,
        accepted.len() as f64 / secs,
    );
    let statuses: Vec<String> = seen
        .statuses
        .iter()
        .map(|(s, n)| if *s == 0 { format!("no answer ×{n}") } else { format!("{s} ×{n}") })
        .collect();
    out += &format!("  answers: {}\n", statuses.join(", "));
    for (label, h) in [("202", &seen.accepted), ("other", &seen.other)] {
        if !h.is_empty() {
            out += &format!(
                "  latency {label} ({}): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
                h.len(),
                ms(h, 0.5),
                ms(h, 0.9),
                ms(h, 0.99),
                h.max() as f64 / 1000.0
            );
        }
    }
    if seen.statuses.contains_key(&429) {
        let (lo, hi) =
            (seen.retry_after.iter().min().copied().unwrap_or(0), seen.retry_after.iter().max().copied().unwrap_or(0));
        out += &format!(
            "  429 answers: {} with Retry-After ({lo}–{hi} s), {} without\n",
            seen.retry_after.len(),
            seen.limited_without_retry_after
        );
    }
    let stmts = stmts_after.saturating_sub(stmts_before);
    out += &format!(
        "  statements: {stmts} over the load = {:.1} per submission ({:.1} per accepted one; server-wide, so the webhook worker's fan-out of the events counts too)\n",
        stmts as f64 / total.max(1) as f64,
        stmts as f64 / accepted.len().max(1) as f64
    );
    // Does it slow down as the tenant grows? Answers per second in each fifth of the load (not
    // for a limited run, whose 429 answers take no time).
    seen.done.sort();
    let fifth = seen.done.len() / 5;
    if fifth > 1 && seen.statuses.len() == 1 && seen.statuses.contains_key(&202) {
        let rates: Vec<String> = (0..5)
            .map(|k| {
                let from = if k == 0 { Duration::ZERO } else { seen.done[k * fifth - 1] };
                let to = seen.done[((k + 1) * fifth).min(seen.done.len()) - 1];
                format!("{:.0}", fifth as f64 / (to - from).as_secs_f64().max(1e-9))
            })
            .collect();
        out += &format!("  answers/s by fifth of the load: {}\n", rates.join(" / "));
    }
    out += &format!("  load average before {load_before}, after {load_after}\n");
    out += &format!(
        "  verified: {}{}",
        checks.join(", "),
        if mismatches.is_empty() { " — all match" } else { " — MISMATCH" }
    );
    if let Some(p) = &seen.first_problem {
        out += &format!("\n  first unexpected answer: {p}");
    }
    println!("{out}");

    if !mismatches.is_empty() {
        bail!("verification failed: {}", mismatches.join("; "));
    }
    let non_202: u64 = seen.statuses.iter().filter(|(s, _)| **s != 202).map(|(_, n)| n).sum();
    if a.expect_limited {
        let unexpected: u64 = seen.statuses.iter().filter(|(s, _)| **s != 202 && **s != 429).map(|(_, n)| n).sum();
        if unexpected > 0 {
            bail!("{unexpected} answers were neither 202 nor 429");
        }
        if !seen.statuses.contains_key(&429) {
            bail!("--expect-limited, but the limiter never answered 429");
        }
        if seen.limited_without_retry_after > 0 {
            bail!("{} 429 answers had no (numeric) Retry-After", seen.limited_without_retry_after);
        }
    } else if non_202 > 0 {
        bail!("{non_202} of {total} submissions were not answered 202");
    }
    Ok(out)
}
