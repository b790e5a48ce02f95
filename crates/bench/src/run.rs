//! `cohort-bench run`: drives a running server over HTTP and reports what it measured.

use crate::dataset::{self as ds, Size};
use crate::report::{Figures, Stopwatch};
use crate::routing;
use crate::tickets;
use crate::upserts;
use crate::workloads::{self, Prepared, Workload};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct RunArgs {
    pub url: String,
    pub workload: Workload,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub size: Size,
    pub secret: String,
    pub issuer: String,
    pub audience: String,
    /// Run as a tenant admin instead of user 1 (W6: every one of the 10,000 contacts is added).
    pub as_admin: bool,
}

#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) graphql: String,
    pub(crate) token: String,
}

impl Client {
    /// `data` of an answer without errors (setup requests).
    pub(crate) async fn ok(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let v = self.post(&json!({ "query": query, "variables": variables })).await?;
        if let Some(e) = v.get("errors") {
            bail!("{e}");
        }
        v.get("data").cloned().context("no data")
    }

    pub(crate) async fn post(&self, body: &Value) -> anyhow::Result<Value> {
        self.post_to(&self.graphql, "application/graphql-response+json", body).await
    }

    /// `body` as JSON to `url` (a REST endpoint: `accept` `application/json`); a status other than
    /// 2xx is an error carrying the answer (a problem document for REST).
    pub(crate) async fn post_to(&self, url: &str, accept: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self.http.post(url).bearer_auth(&self.token).header("accept", accept).json(body).send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        let v: Value = serde_json::from_slice(&bytes).with_context(|| format!("HTTP {status}: not JSON"))?;
        if !status.is_success() {
            bail!("HTTP {status}: {}", v);
        }
        Ok(v)
    }
}

fn token(args: &RunArgs, subject: &str, role: &str) -> anyhow::Result<String> {
    Ok(cohort_api::auth::issue_hs256(
        args.secret.as_bytes(),
        &args.issuer,
        &args.audience,
        ds::TENANT,
        subject,
        &[role.to_owned()],
        3600,
    )?)
}

/// `db_statements_total`, `process_resident_memory_bytes` and the database named by
/// `cohort_build_info` from the server's /metrics.
pub(crate) async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<(u64, u64, String)> {
    let text = http.get(format!("{base}/metrics")).send().await?.text().await?;
    let find = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
    };
    Ok((
        find("cohort_db_statements_total").context("the server's /metrics has no cohort_db_statements_total")?,
        find("cohort_process_resident_memory_peak_bytes")
            .or_else(|| find("process_resident_memory_bytes"))
            .unwrap_or(0),
        text.lines()
            .find(|l| l.starts_with("cohort_build_info{"))
            .and_then(|l| l.split("database=\"").nth(1))
            .and_then(|r| r.split('"').next())
            .unwrap_or("unknown")
            .to_owned(),
    ))
}

pub async fn run(args: RunArgs) -> anyhow::Result<Vec<Figures>> {
    let base = args.url.trim_end_matches('/').trim_end_matches("/graphql").to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    // W9 opens tickets, which needs WRITE on the contact's book; user 1 reads the W4/W5 contact's
    // book only, so W9 always runs as a tenant admin.
    let as_admin = args.as_admin || args.workload == Workload::W9;
    let (subject, role) = if as_admin { ("bench-admin".to_owned(), "admin") } else { (ds::subject(1), "agent") };
    let client = Arc::new(Client {
        http: http.clone(),
        graphql: format!("{base}/graphql"),
        token: token(&args, &subject, role)?,
    });
    let admin =
        Client { http: http.clone(), graphql: client.graphql.clone(), token: token(&args, "bench-admin", "admin")? };
    // Metering stays on, but the daily export budget (5,000 membership pairs by default) would
    // refuse W1 after 100 pages: a benchmark of refusals measures nothing. The benchmark tenant
    // therefore switches the budget off (what a tenant does for an integration it trusts).
    admin
        .ok(
            "mutation { setDataUsagePolicy(input: {scope: TENANT, membershipPairBudget: 0}) { policy { scope } } }",
            serde_json::json!({}),
        )
        .await
        .context("switching the benchmark tenant's export budget off")?;
    if args.workload == Workload::U1 {
        return upserts::run(upserts::UpsertArgs {
            viewer: &client,
            admin: &admin,
            base: &base,
            connections: args.connections,
            warmup: args.warmup,
            duration: args.duration,
            as_admin,
        })
        .await;
    }
    // R4 posts to a REST endpoint instead of /graphql.
    let rest_url = args.workload.rest_path().map(|p| format!("{base}{p}"));

    // Each connection runs its own request sequence: one request for W1–W5, W7 and W8, an
    // add/remove cycle on a group of its own for W6. W7/W8 first set up queues and
    // responsibilities as an admin (routing.rs); W7 counts its statements per message before the
    // load, W8 fills its queue. W9/W10 do the same for tickets, with default SLAs (tickets.rs).
    let mut plans: Vec<Vec<Prepared>> = vec![];
    let mut w6_groups: Vec<String> = vec![];
    let mut note = None;
    if matches!(args.workload, Workload::W7 | Workload::W8) {
        let r = routing::setup(&admin, &args.size).await.context("W7/W8 setup")?;
        if args.workload == Workload::W7 {
            let n = routing::statements(&client, &base, &r).await?;
            eprintln!("W7: {n}");
            note = Some(n);
            for _ in 0..args.connections {
                plans.push(vec![routing::w7(&r)]);
            }
        } else {
            let expected = routing::w8_expected(&admin, client.clone(), &r, args.connections).await?;
            eprintln!("W8: {}", expected.note());
            note = Some(expected.note());
            for _ in 0..args.connections {
                plans.push(vec![routing::w8(&r, &expected)]);
            }
        }
    } else if matches!(args.workload, Workload::W9 | Workload::W10) {
        let sla = tickets::setup(&admin, &args.size).await.context("W9/W10 setup")?;
        if args.workload == Workload::W9 {
            let n = tickets::statements(&client, &base, &sla).await?;
            eprintln!("W9: {n}");
            note = Some(n);
            for _ in 0..args.connections {
                plans.push(vec![tickets::w9(&sla)]);
            }
        } else {
            let expected = tickets::w10_expected(Arc::new(admin.clone()), &sla, args.connections).await?;
            eprintln!("W10: {}", expected.note());
            note = Some(expected.note());
            for _ in 0..args.connections {
                plans.push(vec![tickets::w10(&sla, &expected)]);
            }
        }
    } else if args.workload == Workload::W6 {
        let (ids, visible) = workloads::w6_ids(&args.size, args.as_admin);
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        for i in 0..args.connections {
            // Homed in book 51, where user 1 holds WRITE (DATASET.md: the 6th of its direct grants).
            let v = admin
                .post(&json!({
                    "query": "mutation($b: ID!, $n: String!) { createGroup(input: { addressBookId: $b, name: $n }) { group { id } } }",
                    "variables": { "b": workloads::gid("AddressBook", ds::book_id(51)), "n": format!("W6 {run_id} {i}") },
                }))
                .await?;
            let g = v
                .pointer("/data/createGroup/group/id")
                .and_then(Value::as_str)
                .with_context(|| format!("createGroup failed: {v}"))?;
            plans.push(vec![workloads::w6_add(g, &ids, visible), workloads::w6_remove(g, &ids, visible)]);
            w6_groups.push(g.to_owned());
        }
    } else if args.workload == Workload::R4 {
        // The answer W4 gets through GraphQL (checked by W4's check) is what R4 must answer.
        let w4 = workloads::w4(&args.size);
        let v = client.post(&w4.body).await?;
        (w4.check)(&v).map_err(|e| anyhow::anyhow!("W4 (for R4's expected answer) answered wrongly: {e}"))?;
        let expected = workloads::data(&v, &["resolvePrice"]).map_err(anyhow::Error::msg)?.clone();
        for _ in 0..args.connections {
            plans.push(vec![workloads::r4(&args.size, expected.clone())]);
        }
    } else {
        for _ in 0..args.connections {
            plans.push(vec![workloads::prepare(args.workload, &args.size).context("no such read workload")?]);
        }
    }
    // One check before measuring: a wrong dataset or server fails fast with the reason.
    for p in &plans[0] {
        let v = match &rest_url {
            Some(url) => client.post_to(url, "application/json", &p.body).await?,
            None => client.post(&p.body).await?,
        };
        (p.check)(&v).map_err(|e| anyhow::anyhow!("{} answered wrongly: {e}", args.workload.name()))?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut tasks = vec![];
    for plan in plans {
        let (client, stop, measuring, errors, first_error, rest_url) =
            (client.clone(), stop.clone(), measuring.clone(), errors.clone(), first_error.clone(), rest_url.clone());
        tasks.push(tokio::spawn(async move {
            let mut watches: Vec<Stopwatch> = plan.iter().map(|_| Stopwatch::new()).collect();
            while !stop.load(Ordering::Relaxed) {
                for (p, w) in plan.iter().zip(watches.iter_mut()) {
                    let t = Instant::now();
                    let res = match &rest_url {
                        Some(url) => client.post_to(url, "application/json", &p.body).await,
                        None => client.post(&p.body).await,
                    };
                    let elapsed = t.elapsed();
                    let ok = match res {
                        Ok(v) => (p.check)(&v).map_err(anyhow::Error::msg),
                        Err(e) => Err(e),
                    };
                    // Outside the window nothing is recorded, but a W6 cycle always runs to its
                    // end: stopping between its add and its remove would leave members behind
                    // and change the dataset for the next workload.
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    match ok {
                        Ok(()) => w.record(elapsed),
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut f) = first_error.lock() {
                                f.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                }
            }
            watches
        }));
    }
    tokio::time::sleep(args.warmup).await;
    let (stmts_before, _, database) = scrape(&http, &base).await?;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut peak_rss = 0;
    while started.elapsed() < args.duration {
        tokio::time::sleep(Duration::from_millis(250).min(args.duration.saturating_sub(started.elapsed()))).await;
        if let Ok((_, rss, _)) = scrape(&http, &base).await {
            peak_rss = peak_rss.max(rss);
        }
    }
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (stmts_after, _, _) = scrape(&http, &base).await?;
    let mut merged: Vec<Stopwatch> = vec![];
    for t in tasks {
        let watches = t.await?;
        if merged.is_empty() {
            merged = watches;
        } else {
            for (m, w) in merged.iter_mut().zip(watches) {
                m.merge(&w);
            }
        }
    }
    // W6 leaves the dataset as it found it: its (now empty) groups are deleted.
    if !w6_groups.is_empty() {
        for g in &w6_groups {
            let v = admin
                .post(&json!({
                    "query": "mutation($g: ID!) { deleteGroup(input: { id: $g }) { deletedId } }",
                    "variables": { "g": g },
                }))
                .await?;
            if v.get("errors").is_some() {
                bail!("could not delete W6 group {g}: {v}");
            }
        }
    }
    let errors = errors.load(Ordering::Relaxed);
    if let Some(e) = first_error.lock().ok().and_then(|f| f.clone()) {
        eprintln!("first error: {e}");
    }
    let requests: u64 = merged.iter().map(Stopwatch::count).sum::<u64>() + errors;
    // Statements seen by the server while measuring (requests in flight at either edge make this
    // approximate by at most one request per connection).
    let stmts = stmts_after.saturating_sub(stmts_before);
    let who = if as_admin { " (admin)" } else { "" };
    let label = |i: usize| match (args.workload, i) {
        (Workload::W6, 0) => format!("W6 add{who}"),
        (Workload::W6, _) => format!("W6 remove{who}"),
        (w, _) => format!("{}{who}", w.name()),
    };
    let figures: Vec<Figures> = merged
        .iter()
        .enumerate()
        .map(|(i, w)| {
            Figures::from_stopwatch(
                &label(i),
                "server",
                &database,
                args.connections,
                w,
                elapsed,
                errors,
                (requests > 0).then(|| stmts as f64 / requests as f64),
                (peak_rss > 0).then_some(peak_rss),
            )
            .with_note(note.clone())
        })
        .collect();
    Ok(figures)
}
