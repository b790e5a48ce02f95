//! `cohort-bench webhooks`: events delivered per second to a local receiver, and the latency from
//! commit to delivery.
//!
//! 1. A receiver on 127.0.0.1 (an ephemeral port) verifies every delivery's Standard Webhooks
//!    signature and notes when it arrived; it answers 204.
//! 2. As a tenant admin, an endpoint is created for it, filtered to `contact.status_changed`
//!    (the server must allow the host: `COHORT_WEBHOOK_ALLOW_HOSTS=127.0.0.1`).
//! 3. `connections` producers each own one contact of dataset M and flip its business status
//!    between `lead_warm` and `lead_hot`: every mutation commits exactly one event.
//! 4. Delivered/s: events over the time from the first mutation to the last delivery. Latency:
//!    arrival minus the event's `timestamp` (its commit time, same clock). Duplicates: deliveries
//!    of an id already seen. Bad signatures are counted; the endpoint is deleted at the end.

use crate::dataset::{self as ds};
use crate::report::Samples;
use crate::run::Client;
use crate::workloads::gid;
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct WebhookArgs {
    pub admin: Client,
    pub events: u64,
    pub connections: usize,
}

#[derive(Default)]
struct Received {
    /// webhook-id → (arrival, event timestamp)
    first: HashMap<String, (DateTime<Utc>, Instant, DateTime<Utc>)>,
    duplicates: u64,
    bad_signatures: u64,
    total: u64,
}

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Received>>,
    secret: Arc<OnceLock<Vec<u8>>>,
    counting: Arc<std::sync::atomic::AtomicBool>,
}

fn verifies(key: &[u8], id: &str, ts: &str, body: &str, signatures: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return false };
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    signatures.split(' ').any(|s| s == expected)
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let now = Utc::now();
    let at = Instant::now();
    if !r.counting.load(std::sync::atomic::Ordering::Relaxed) {
        return axum::http::StatusCode::NO_CONTENT;
    }
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    let ok = r.secret.get().is_some_and(|k| verifies(k, &id, &ts, &body, &sig));
    let committed = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("timestamp").and_then(Value::as_str).and_then(|t| t.parse::<DateTime<Utc>>().ok()));
    if let Ok(mut g) = r.got.lock() {
        g.total += 1;
        if !ok {
            g.bad_signatures += 1;
        }
        match g.first.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => g.duplicates += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                if let Some(c) = committed {
                    v.insert((now, at, c));
                }
            }
        }
    }
    axum::http::StatusCode::NO_CONTENT
}

const STATUS: &str =
    "mutation($c: ID!, $s: String) { setContactBusinessStatus(input: {contactId: $c, status: $s}) { contact { id } } }";

pub async fn run(a: WebhookArgs) -> anyhow::Result<String> {
    let r = Receiver {
        got: Arc::default(),
        secret: Arc::default(),
        counting: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let d = a
        .admin
        .ok(
            "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret webhookEndpoint { id } } }",
            json!({ "i": { "url": url, "eventTypes": ["contact.status_changed"], "description": "cohort-bench webhooks" } }),
        )
        .await
        .context("createWebhookEndpoint (does the server allow 127.0.0.1 in COHORT_WEBHOOK_ALLOW_HOSTS?)")?;
    let endpoint =
        d.pointer("/createWebhookEndpoint/webhookEndpoint/id").and_then(Value::as_str).context("no id")?.to_owned();
    let secret = d.pointer("/createWebhookEndpoint/secret").and_then(Value::as_str).context("no secret")?;
    let key = STANDARD.decode(secret.strip_prefix("whsec_").context("not a whsec_ secret")?)?;
    let _ = r.secret.set(key);
    let result = measure(&a, &r).await;
    // Always remove the endpoint: a later run must not deliver to this receiver's dead port.
    a.admin
        .ok(
            "mutation($i: DeleteWebhookEndpointInput!) { deleteWebhookEndpoint(input: $i) { deletedId } }",
            json!({ "i": { "id": endpoint } }),
        )
        .await?;
    result
}

async fn measure(a: &WebhookArgs, r: &Receiver) -> anyhow::Result<String> {
    let producers = a.connections.max(1);
    // Contacts 1, 2, … (book 1): each producer flips its own contact, so producers never queue
    // on one row. Each starts from `lead_warm` (unmeasured; whatever that emits is not counted).
    let contacts: Vec<String> = (1..=producers as u64).map(|k| gid("Contact", ds::contact_id(k))).collect();
    for c in &contacts {
        a.admin.ok(STATUS, json!({ "c": c, "s": "lead_warm" })).await?;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    r.counting.store(true, std::sync::atomic::Ordering::Relaxed);
    let per = a.events / producers as u64;
    let total = per * producers as u64;
    let start = Instant::now();
    let mut tasks = vec![];
    for c in contacts {
        let admin = a.admin.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let s = if i % 2 == 0 { "lead_hot" } else { "lead_warm" };
                admin.ok(STATUS, json!({ "c": c, "s": s })).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let produced = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = r.got.lock().map(|g| g.first.len() as u64).unwrap_or(0);
        if n >= total {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {n} of {total} events were delivered within 120 s of the last commit");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let g = r.got.lock().map_err(|_| anyhow::anyhow!("receiver lock poisoned"))?;
    let last = g.first.values().map(|v| v.1).max().context("no deliveries")?;
    let mut h = Samples::new();
    for (arrived, _, committed) in g.first.values() {
        let us = (*arrived - *committed).num_microseconds().unwrap_or(0).max(1) as u64;
        h.record(us);
    }
    let span = last.duration_since(start).as_secs_f64();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(format!(
        "webhooks: {total} events from {producers} producers in {:.1} s ({:.0} commits/s); delivered {} in {span:.1} s = {:.0} events/s; commit→delivery p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms; duplicates {}, bad signatures {}, requests {}",
        produced.as_secs_f64(),
        total as f64 / produced.as_secs_f64(),
        g.first.len(),
        g.first.len() as f64 / span,
        ms(0.5),
        ms(0.95),
        ms(0.99),
        h.max() as f64 / 1000.0,
        g.duplicates,
        g.bad_signatures,
        g.total,
    ))
}
