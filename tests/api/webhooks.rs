//! Webhooks over real HTTP: a receiver started by the test (on 127.0.0.1, allowed by
//! `COHORT_WEBHOOK_ALLOW_HOSTS` in the test's settings) verifies every signature with the
//! Standard Webhooks algorithm — implemented here again, independently of the server's — and
//! answers as each test scripts it: errors, slowness, redirects.

use crate::support::{Backend, TestApp, World};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret webhookEndpoint { id enabled eventTypes } } }";
const DELIVERIES: &str = "query { webhookEndpoints { id enabled disabledAt failingSince deliveries(first: 50) { totalCount edges { node { id eventId eventType status nextAttemptAt
    attempts { attempt statusCode errorClass responseExcerpt nextAttemptAt } } } } } }";

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// What the receiver answers: a script of (status, delay) consumed one per request, then 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<(u16, u64)>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |axum::extract::State(s): axum::extract::State<Receiver>,
                     headers: axum::http::HeaderMap,
                     body: String| async move {
                        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                        s.got.lock().unwrap().push(Received {
                            id: h("webhook-id"),
                            timestamp: h("webhook-timestamp"),
                            signature: h("webhook-signature"),
                            body,
                        });
                        let (status, delay) = s.script.lock().unwrap().pop_front().unwrap_or((200, 0));
                        if delay > 0 {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                        }
                        let mut resp =
                            axum::response::Response::new(axum::body::Body::from(format!("answer {status}")));
                        *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                        if status == 302 {
                            resp.headers_mut()
                                .insert("location", "http://169.254.169.254/latest/meta-data".parse().unwrap());
                        }
                        resp
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (r, format!("http://{addr}/hook"))
    }

    fn script(&self, steps: &[(u16, u64)]) {
        self.script.lock().unwrap().extend(steps.iter().copied());
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..600 {
            if self.got.lock().unwrap().len() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver got {} requests, expected {n}", self.got.lock().unwrap().len());
    }
}

/// The Standard Webhooks verification: any `v1,` signature made with `secret` over
/// `id.timestamp.body` matches.
fn verifies(r: &Received, secret: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

async fn app_with_worker(backend: Backend, f: impl Fn(&mut cohort_api::config::WebhookSettings)) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| {
        s.webhooks.worker = true;
        s.webhooks.allow_hosts = vec!["127.0.0.1".into()];
        s.webhooks.retry_schedule = vec![chrono::Duration::milliseconds(300), chrono::Duration::milliseconds(300)];
        s.webhooks.poll_interval = Duration::from_millis(30);
        s.webhooks.timeout = Duration::from_secs(2);
        f(&mut s.webhooks);
    })
    .await
}

macro_rules! both {
    ($($name:ident => $settings:ident),* $(,)?) => {
        mod sqlite_worker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::app_with_worker(crate::support::Backend::Sqlite, super::$settings).await.expect("app");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres_worker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    match super::app_with_worker(crate::support::Backend::Postgres, super::$settings).await {
                        Some(app) => super::$name(app).await,
                        None => eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set"),
                    }
                }
            )*
        }
    };
}

/// Signed, retried after a 500, filtered by type, thin, and signed twice during a rotation.
async fn signed_retried_filtered_and_rotated(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let (rx, url) = Receiver::start().await;
    rx.script(&[(500, 0)]);
    let d = admin.ok(CREATE, json!({"i": {"url": url, "eventTypes": ["group.*"], "description": "ERP"}})).await;
    let secret = d["createWebhookEndpoint"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    // Not in the filter: never sent.
    admin
        .ok(
            crate::support::CREATE_CONTACT,
            json!({"i": {"addressBookId": w.own, "kind": "PERSON", "firstName": "Not", "lastName": "Sent"}}),
        )
        .await;
    let g = crate::groups::group(&admin, &w.own, "Webhook group", None).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[0].id, got[1].id, "a retry is the same message");
    for r in &got {
        assert!(verifies(r, &secret), "signature of {r:?}");
        assert!(!verifies(r, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "a wrong secret must not verify");
    }
    let body: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(body["type"], "group.created");
    assert_eq!(body["data"]["subjects"][0], json!({"type": "Group", "id": g}));
    assert_eq!(body["data"]["id"], json!(got[1].id));
    assert!(!got[1].body.contains("Webhook group"), "payloads carry ids, not names");
    // The log: a 500 with its excerpt and a scheduled retry, then the success.
    let mut delivered = false;
    for _ in 0..100 {
        let d = admin.ok(DELIVERIES, json!({})).await;
        let node = &d["webhookEndpoints"][0]["deliveries"]["edges"][0]["node"];
        if node["status"] == "SUCCEEDED" {
            assert_eq!(node["eventType"], "group.created");
            assert_eq!(node["attempts"][0]["statusCode"], 500);
            assert_eq!(node["attempts"][0]["errorClass"], "HTTP_STATUS");
            assert_eq!(node["attempts"][0]["responseExcerpt"], "answer 500");
            assert!(node["attempts"][0]["nextAttemptAt"].is_string());
            assert_eq!(node["attempts"][1]["statusCode"], 200);
            assert_eq!(node["attempts"][1]["errorClass"], Value::Null);
            assert_eq!(
                d["webhookEndpoints"][0]["deliveries"]["edges"].as_array().unwrap().len(),
                1,
                "the contact was filtered out"
            );
            assert_eq!(d["webhookEndpoints"][0]["deliveries"]["totalCount"], 1);
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(delivered, "the delivery never succeeded");
    // Rotation: both signatures during the grace period.
    let id = d["createWebhookEndpoint"]["webhookEndpoint"]["id"].clone();
    let r = admin.ok("mutation($id: ID!) { rotateWebhookSecret(input: {id: $id, graceHours: 1}) { secret webhookEndpoint { previousSecretValidUntil } } }", json!({"id": id})).await;
    let new_secret = r["rotateWebhookSecret"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(r["rotateWebhookSecret"]["webhookEndpoint"]["previousSecretValidUntil"].is_string());
    crate::groups::group(&admin, &w.own, "After rotation", None).await;
    let got = rx.wait_for(3).await;
    assert_eq!(got[2].signature.split(' ').count(), 2, "{:?}", got[2]);
    assert!(verifies(&got[2], &new_secret) && verifies(&got[2], &secret));
    // Admins only.
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    assert_eq!(agent.err(CREATE, json!({"i": {"url": "https://hooks.example.com/x"}})).await, "FORBIDDEN");
    assert_eq!(agent.err("{ webhookEndpoints { id } }", json!({})).await, "FORBIDDEN");
}

/// A timeout is a failed attempt; an endpoint that keeps failing is disabled (with its event)
/// and its pending deliveries fail; re-enabled, a redelivery goes through.
async fn timeouts_failures_disabling_and_redelivery(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let (rx, url) = Receiver::start().await;
    // Slower than the 2 s timeout: a failed attempt. With `disable_after` 0 s the first failure
    // disables the endpoint, so the retry that was due is not attempted and the delivery fails.
    rx.script(&[(200, 3000)]);
    let d = admin.ok(CREATE, json!({"i": {"url": url, "eventTypes": ["group.created"]}})).await;
    let id = d["createWebhookEndpoint"]["webhookEndpoint"]["id"].clone();
    crate::groups::group(&admin, &w.own, "Slow", None).await;
    let mut last = Value::Null;
    for _ in 0..200 {
        last = admin.ok(DELIVERIES, json!({})).await;
        if last["webhookEndpoints"][0]["deliveries"]["edges"][0]["node"]["status"] == "FAILED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let node = &last["webhookEndpoints"][0]["deliveries"]["edges"][0]["node"];
    assert_eq!(node["status"], "FAILED", "{last:#}");
    let classes: Vec<&Value> = node["attempts"].as_array().unwrap().iter().map(|a| &a["errorClass"]).collect();
    assert_eq!(classes, vec![&json!("TIMEOUT")]);
    assert_eq!(node["nextAttemptAt"], Value::Null);
    // Failing continuously for longer than `disable_after` (here 0 s): disabled, with its event.
    let ep = &last["webhookEndpoints"][0];
    assert_eq!(ep["enabled"], false);
    assert!(ep["disabledAt"].is_string());
    let ev = admin
        .ok(
            "{ events(first: 50, types: [\"webhook_endpoint.disabled\"]) { edges { node { type subjects } } } }",
            json!({}),
        )
        .await;
    assert_eq!(ev["events"]["edges"].as_array().unwrap().len(), 1);
    // While disabled nothing new is queued for it.
    crate::groups::group(&admin, &w.own, "While disabled", None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received().len(), 1);
    // Re-enabled and redelivered: the receiver is healthy now.
    admin.ok("mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, enabled: true}) { webhookEndpoint { enabled failingSince } } }", json!({"id": id})).await;
    let delivery = node["id"].clone();
    admin
        .ok(
            "mutation($d: ID!) { redeliverWebhook(input: {deliveryId: $d}) { delivery { status } } }",
            json!({"d": delivery}),
        )
        .await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].id, got[0].id, "the same message again");
}

/// Redirects are not followed (after the last attempt of the schedule the delivery fails); URLs
/// pointing inside are refused when configured.
async fn outbound_policy(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    for bad in [
        "http://hooks.example.com/x",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://user:pass@hooks.example.com/",
        "not a url",
    ] {
        assert_eq!(admin.err(CREATE, json!({"i": {"url": bad}})).await, "BAD_USER_INPUT", "{bad}");
    }
    assert_eq!(
        admin.err(CREATE, json!({"i": {"url": "https://hooks.example.com/x", "eventTypes": ["nope.*"]}})).await,
        "BAD_USER_INPUT"
    );
    let (rx, url) = Receiver::start().await;
    rx.script(&[(302, 0), (302, 0), (302, 0)]);
    admin.ok(CREATE, json!({"i": {"url": url, "eventTypes": ["group.created"]}})).await;
    crate::groups::group(&admin, &w.own, "Redirected", None).await;
    let mut classes = vec![];
    for _ in 0..200 {
        let d = admin.ok(DELIVERIES, json!({})).await;
        let node = &d["webhookEndpoints"][0]["deliveries"]["edges"][0]["node"];
        if node["status"] == "FAILED" {
            classes = node["attempts"].as_array().unwrap().iter().map(|a| a["errorClass"].clone()).collect();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(classes, vec![json!("REDIRECT"); 3]);
    assert_eq!(rx.received().len(), 3, "the redirect target was never asked");
}

/// Replicas share the queue: three workers on one database, 120 events, every event delivered
/// exactly once (in a normal run SKIP LOCKED claims never overlap).
async fn workers_share_the_queue_without_duplicates(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let (rx, url) = Receiver::start().await;
    admin.ok(CREATE, json!({"i": {"url": url, "eventTypes": ["group.created"]}})).await;
    let mut extra = vec![];
    for _ in 0..2 {
        let mut s = cohort_api::config::Settings::for_tests("unused", "unused");
        s.webhooks.worker = true;
        s.webhooks.allow_hosts = vec!["127.0.0.1".into()];
        s.webhooks.poll_interval = Duration::from_millis(20);
        s.webhooks.concurrency = 4;
        extra.push(cohort_api::spawn_webhook_worker(&s, &app.store).expect("worker"));
    }
    let token = app.token(&w.tenant, "admin", &["admin"]);
    let mut tasks = vec![];
    for i in 0..120 {
        let (http, u, t, book) = (app.client.clone(), app.url("/graphql"), token.clone(), w.own.clone());
        tasks.push(tokio::spawn(async move {
            let q = json!({"query": "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }", "variables": {"i": {"addressBookId": book, "name": format!("G{i}")}}});
            let v: Value = http.post(u).bearer_auth(t).json(&q).send().await.unwrap().json().await.unwrap();
            assert!(v.get("errors").is_none(), "{v}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = rx.wait_for(120).await;
    // Give any late duplicate the chance to arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = rx.received().len().max(got.len());
    let ids: HashSet<String> = rx.received().into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 120, "every event delivered");
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in rx.received() {
        *per_id.entry(r.id).or_default() += 1;
    }
    let duplicates = got - ids.len();
    eprintln!("webhooks: 120 events, 3 workers, {got} requests, {duplicates} duplicates");
    assert_eq!(duplicates, 0, "{per_id:?}");
    for (tx, h) in extra {
        let _ = tx.send(true);
        let _ = h.await;
    }
}

/// The worker emits `ticket.sla_breached` once per ticket and target when a due time passes.
async fn sla_breaches_are_emitted_once(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let c = admin
        .ok("mutation { createBusinessCalendar(input: {name: \"24x7\", timeZone: \"UTC\", alwaysOpen: true}) { businessCalendar { id } } }", json!({}))
        .await;
    let cal = c["createBusinessCalendar"]["businessCalendar"]["id"].clone();
    let k = admin
        .ok("mutation($c: ID!) { createSlaContract(input: {name: \"Fast\", rank: 1, calendarId: $c, defaultTargets: {firstResponseMinutes: 10, resolutionMinutes: 60}}) { slaContract { id } } }", json!({"c": cal}))
        .await;
    admin
        .ok(
            "mutation($k: ID) { setTenantDefaultSla(input: {slaContractId: $k}) { slaContract { id } } }",
            json!({"k": k["createSlaContract"]["slaContract"]["id"]}),
        )
        .await;
    admin.ok("mutation { createProcessingArea(input: {name: \"Q\"}) { processingArea { id } } }", json!({})).await;
    let q = admin.ok("{ processingAreas { id } }", json!({})).await;
    admin
        .ok("mutation($q: ID!) { createProcessArea(input: {key: \"helpdesk\", name: \"Helpdesk\", defaultProcessingAreaId: $q}) { processArea { id } } }", json!({"q": q["processingAreas"][0]["id"]}))
        .await;
    // Opened two hours ago: both targets (10 and 60 min) are breached; opened 30 minutes ago:
    // only the first response.
    let ago = |m| (chrono::Utc::now() - chrono::Duration::minutes(m)).to_rfc3339();
    let mk = "mutation($c: ID!, $at: DateTime!) { createTicket(input: {contactId: $c, subject: \"Late\", channel: EMAIL, openedAt: $at}) { ticketId } }";
    admin.ok(mk, json!({"c": w.id("anna"), "at": ago(120)})).await;
    admin.ok(mk, json!({"c": w.id("bruno"), "at": ago(30)})).await;
    let q = "{ events(first: 100, types: [\"ticket.sla_breached\"]) { edges { node { payload subjects } } } }";
    let mut n = 0;
    for _ in 0..200 {
        n = admin.ok(q, json!({})).await["events"]["edges"].as_array().unwrap().len();
        if n >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 3, "two targets of the first ticket, the first response of the second");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = admin.ok(q, json!({})).await;
    let edges = d["events"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 3, "once per ticket and target");
    let mut targets: Vec<String> =
        edges.iter().map(|e| e["node"]["payload"]["target"].as_str().unwrap().to_owned()).collect();
    targets.sort();
    assert_eq!(targets, vec!["firstResponse", "firstResponse", "resolution"]);
}

fn quick(_: &mut cohort_api::config::WebhookSettings) {}
fn disable_at_once(s: &mut cohort_api::config::WebhookSettings) {
    s.disable_after = chrono::Duration::zero();
}

both!(
    signed_retried_filtered_and_rotated => quick,
    timeouts_failures_disabling_and_redelivery => disable_at_once,
    outbound_policy => quick,
    workers_share_the_queue_without_duplicates => quick,
    sla_breaches_are_emitted_once => quick,
);
