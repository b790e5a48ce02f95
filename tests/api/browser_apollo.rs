//! Apollo Client 4 in headless Chromium, on another origin than the API — what an SPA team meets
//! first. `tests/js/apollo-browser.mjs` is bundled with esbuild and served by a second local
//! server (`http://127.0.0.1:<other port>`, a different origin), whose page then talks to Cohort:
//!
//! - **CORS**: every request carries Apollo's client-awareness headers, `traceparent`,
//!   `tracestate` and `baggage`; the preflight admits them, and `x-request-id` is readable;
//! - **the normalised cache**: two queries selecting different sub-fields of one contact's
//!   business status and e-mails merge by `id`; the first query, asked again, needs no request;
//! - **errors**: a refused query reaches the page with its `extensions.code`;
//! - **persisted queries**: Apollo's link, hashes from WebCrypto, hashed queries over GET — a
//!   miss, the document sent once, then a hash-only hit;
//! - **a subscription**: `graphql-ws` through Apollo's `GraphQLWsLink`, replaying from a cursor;
//!   a mutation's event arrives, naming the new book.
//!
//! The browser has no network beyond 127.0.0.1. Needs Chromium (see `browser.rs`) and the Node
//! test tools (`esbuild`, `@apollo/client`, `graphql-ws`; see `persisted.rs`). The screenshot is
//! `apollo-cross-origin-<backend>.png` among the CI artefacts.

use crate::on_both_backends_custom;
use crate::persisted::node_modules;
use crate::support::{Backend, CREATE_BOOK, CREATE_CONTACT, TempDir, TestApp};
use crate::webdriver::{ChromeDriver, SessionOptions, browser_available, save_screenshot};
use axum::response::{Html, IntoResponse};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends_custom!(apollo_client_from_another_origin);

const TENANT: &str = "spa";
/// How often the test looks whether the page has finished (every 250 ms: at most 60 s).
const PAGE_POLLS: u32 = 240;

/// Bundles the page script for the browser (esbuild through its JavaScript API, so the package's
/// platform binary is found however npm installed it).
fn bundle(modules: &std::path::Path) -> String {
    let dir = TempDir::new("cohort-apollo-bundle");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/apollo-browser.mjs"), dir.0.join("app.mjs"))
        .expect("copy the page script");
    std::os::unix::fs::symlink(modules, dir.0.join("node_modules")).expect("link node_modules");
    let out = std::process::Command::new("node")
        .current_dir(&dir.0)
        .arg("-e")
        .arg(
            "require('esbuild').buildSync({entryPoints: ['app.mjs'], bundle: true, format: 'esm', \
             outfile: 'app.js', logLevel: 'warning', target: 'chrome120'})",
        )
        .output()
        .expect("run node");
    assert!(out.status.success(), "esbuild failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(dir.0.join("app.js")).expect("the bundle")
}

/// The SPA's own server: the page and its bundle, nothing else.
async fn serve_page(listener: tokio::net::TcpListener, bundle: String) -> tokio::task::JoinHandle<()> {
    let page = "<!doctype html><html><head><meta charset=utf-8><title>Cohort SPA (Apollo Client)</title><link rel=icon href=data:,>\
        <style>body{font:14px system-ui;margin:16px} td,th{vertical-align:top;text-align:left;padding:2px 8px}\
        pre{margin:0;max-height:160px;overflow:hidden;font-size:11px}</style></head>\
        <body><h1>Apollo Client 4 → Cohort (another origin)</h1><div id=out>running…</div>\
        <script type=module src=/app.js></script></body></html>";
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { Html(page) })).route(
        "/app.js",
        axum::routing::get(move || {
            let js = bundle.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], js).into_response() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

async fn apollo_client_from_another_origin(backend: Backend) {
    if !browser_available() {
        return;
    }
    let Some(modules) = node_modules() else { return };
    let bundle = tokio::task::spawn_blocking(move || bundle(&modules)).await.expect("bundle");

    // The SPA's origin: a second server on its own port.
    let page_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let spa_origin = format!("http://{}", page_listener.local_addr().expect("addr"));
    let origin = spa_origin.clone();
    let Some(app) = TestApp::spawn_with(backend, move |s| s.cors_origins = vec![origin]).await else { return };
    let page_server = serve_page(page_listener, bundle).await;
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };

    // ---- A contact with a business status and an e-mail, and the event feed's position.
    let admin = app.actor(TENANT, "spa-admin", &["admin"]);
    let d = admin.ok(CREATE_BOOK, json!({"n": "Customers"})).await;
    let book = d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    let i = json!({"addressBookId": book, "kind": "PERSON", "firstName": "Ada", "lastName": "Apollo",
                   "emails": [{"address": "ada@example.com", "label": "work"}], "businessStatus": "customer"});
    let d = admin.ok(CREATE_CONTACT, json!({"i": i})).await;
    let contact = d["createContact"]["contact"]["id"].as_str().unwrap().to_owned();
    let d = admin.ok("{ events(first: 100) { edges { cursor } } }", json!({})).await;
    let after = d["events"]["edges"].as_array().and_then(|e| e.last()).map(|e| e["cursor"].clone()).unwrap();
    let after = after.as_str().unwrap().to_owned();

    // ---- The page, opened from the SPA's origin.
    let token = app.token(TENANT, "spa-admin", &["admin"]);
    let ws = app.base.replacen("http://", "ws://", 1) + "/graphql";
    let mut url = reqwest::Url::parse(&format!("{spa_origin}/")).unwrap();
    url.query_pairs_mut()
        .append_pair("api", &app.url("/graphql"))
        .append_pair("ws", &ws)
        .append_pair("token", &token)
        .append_pair("after", &after)
        .append_pair("contact", &contact);
    let driver = ChromeDriver::start().await;
    let options = SessionOptions {
        offline: true,
        browser_log: true,
        window: (1280, 1400),
        wait: Duration::from_secs(20),
        languages: None,
    };
    let b = driver.session(options).await;
    b.goto(url.as_str()).await;
    // Bounded wait; when the page does not finish, the panic shows what it got to and what the
    // browser logged (the screenshot is saved either way).
    let mut report = Value::Null;
    for _ in 0..PAGE_POLLS {
        report = b.exec("return window.__cohort || null;", json!([])).await;
        if report["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    save_screenshot(&format!("apollo-cross-origin-{backend}.png"), &b.screenshot().await);
    if report["done"] != true {
        panic!("the page did not finish: {report:#}\nbrowser log: {:#?}", b.browser_log().await);
    }
    let steps = &report["steps"];
    assert!(steps.get("fatal").is_none(), "the page failed: {report:#}");
    for name in ["cors", "cache", "errors", "apq", "subscription"] {
        assert_eq!(steps[name]["ok"], true, "step {name}: {:#}", steps[name]);
    }
    let detail = |name: &str| steps[name]["detail"].clone();

    // CORS: the request went through (the preflight admitted every header) and the page could
    // read the exposed request id.
    let cors = detail("cors");
    assert_eq!(cors["subject"], "spa-admin", "{cors:#}");
    let reqs = cors["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1, "{cors:#}");
    assert_eq!(reqs[0]["status"], 200);
    assert!(reqs[0]["requestId"].as_str().is_some_and(|r| !r.is_empty()), "x-request-id is exposed: {cors:#}");

    // The cache: A and B each one request; A again none; both selections merged in one entity.
    let cache = detail("cache");
    assert_eq!(
        (&cache["requestsAfterA"], &cache["requestsAfterB"], &cache["requestsAfterAgain"]),
        (&json!(1), &json!(2), &json!(2)),
        "the second query's sub-fields must not evict the first's: {cache:#}"
    );
    assert_eq!(cache["again"], cache["first"], "{cache:#}");
    assert_eq!(cache["cached"], cache["first"], "{cache:#}");
    assert_eq!(cache["first"]["businessStatus"]["key"], "customer");
    assert_eq!(cache["first"]["emails"][0]["address"], "ada@example.com");
    assert_eq!(cache["second"]["emails"][0]["label"], "work");
    let entity = &cache["statusEntity"];
    for field in ["key", "label", "category"] {
        assert!(entity.get(field).is_some(), "the status entity holds both selections ({field}): {cache:#}");
    }

    // Errors: the code reaches Apollo.
    let errors = detail("errors");
    assert_eq!(errors["codes"], json!(["BAD_USER_INPUT"]), "{errors:#}");

    // APQ: GET hash-only (miss) → POST with the document → GET hash-only (hit).
    let apq = detail("apq");
    let shape: Vec<(String, bool, Value)> = apq["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["method"].as_str().unwrap_or_default().to_owned(), r["sentDocument"] == true, r["hash"].clone()))
        .collect();
    let methods: Vec<(&str, bool)> = shape.iter().map(|(m, d, _)| (m.as_str(), *d)).collect();
    assert_eq!(methods, [("GET", false), ("POST", true), ("GET", false)], "{apq:#}");
    assert!(shape.iter().all(|(_, _, h)| h.as_str().is_some_and(|h| h.len() == 64)), "{apq:#}");
    assert_eq!(apq["first"], apq["second"]);
    assert!(apq["first"].as_u64().is_some_and(|n| n >= 1), "{apq:#}");

    // The subscription: acknowledged, and the mutation's event arrived with its payload.
    let sub = detail("subscription");
    assert_eq!(sub["acknowledged"], true, "{sub:#}");
    assert_eq!(sub["event"]["type"], "address_book.created", "{sub:#}");
    assert_eq!(sub["created"]["name"], sub["name"]);
    let created_id = sub["created"]["id"].as_str().unwrap();
    assert_eq!(sub["event"]["subjects"], json!([created_id]), "{sub:#}");
    let d = admin.ok("query($id: ID!) { node(id: $id) { id } }", json!({"id": created_id})).await;
    assert_eq!(d["node"]["id"], created_id, "the book the page created exists");

    // Nothing failed in the browser: no refused preflight, no CORS or CSP complaint.
    let log = b.browser_log().await;
    let problems: Vec<&Value> = log
        .iter()
        .filter(|e| {
            let msg = e["message"].as_str().unwrap_or_default();
            e["level"] == "SEVERE" || msg.contains("CORS") || msg.contains("Refused to")
        })
        .collect();
    assert!(problems.is_empty(), "the browser reported: {problems:#?}");
    page_server.abort();
}
