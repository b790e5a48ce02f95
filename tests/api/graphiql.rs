//! GraphiQL offline: `/graphiql` and every file it loads come from the binary (vendored, pinned,
//! checksummed; see `crates/api/src/graphiql.rs`), under a `Content-Security-Policy` that allows
//! nothing outside the origin. Checked over HTTP (headers, content types, 404s, the off switch)
//! and in real headless Chromium with the network blocked (every host name fails to resolve and
//! every connection but to 127.0.0.1 goes to a dead proxy): GraphiQL renders, takes the initial
//! query from `?query=` and the persisted headers from `localStorage`, its docs explorer lists
//! `Query.contacts`, a query runs, and every resource the page loaded came from 127.0.0.1.
//!
//! The browser part needs Debian's `chromium` and `chromium-driver` and follows `browser.rs`:
//! skipped without them unless `COHORT_TEST_REQUIRE_BROWSER=1` (then it fails); the screenshot
//! goes to `$COHORT_ARTIFACTS_DIR/graphiql.png` (default `target/ci-artifacts`). The WebDriver
//! client is the shared one in `webdriver.rs`. Every wait is bounded (20 s); nothing asserts on
//! timing.

use crate::support::{Backend, TestApp};
use crate::webdriver::{ChromeDriver, SessionOptions, browser_available, save_screenshot};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

/// The longest any single wait in the browser polls (page loads, elements, texts).
const WAIT: Duration = Duration::from_secs(20);

/// The page's initial query, as `?query=` (`{ viewer { user { subject } } }`).
const QUERY_PARAM: &str = "%7B%20viewer%20%7B%20user%20%7B%20subject%20%7D%20%7D%20%7D";
const QUERY: &str = "{ viewer { user { subject } } }";
const SUBJECT: &str = "graphiql-admin";
/// The vendored files (each listed in SHA256SUMS) and their content types.
const VENDORED: [(&str, &str); 4] = [
    ("graphiql.min.js", "text/javascript; charset=utf-8"),
    ("graphiql.min.css", "text/css; charset=utf-8"),
    ("react.production.min.js", "text/javascript; charset=utf-8"),
    ("react-dom.production.min.js", "text/javascript; charset=utf-8"),
];

// ---------------------------------------------------------------------------------------------
// Over HTTP

async fn graphiql_app() -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |s| {
        s.graphiql = true;
        s.introspection = true;
    })
    .await
    .expect("sqlite app")
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The `src`/`href` URLs in the page.
fn page_urls(html: &str) -> Vec<String> {
    let mut urls = vec![];
    for attr in ["src=\"", "href=\""] {
        for rest in html.split(attr).skip(1) {
            urls.push(rest[..rest.find('"').expect("closing quote")].to_owned());
        }
    }
    urls
}

fn sha256sums() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/api/assets/graphiql/SHA256SUMS");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_is_404_when_off() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite app");
    for path in ["/graphiql".to_owned(), cohort_api::graphiql::asset_url("graphiql.min.js")] {
        let r = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path} with GraphiQL off");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_page_and_assets_over_http() {
    let app = graphiql_app().await;
    let r = app.client.get(app.url("/graphiql")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    let csp = header(&r, "content-security-policy").to_owned();
    assert_eq!(csp, cohort_api::graphiql::CONTENT_SECURITY_POLICY);
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.split("; ").any(|d| d == directive), "the policy has `{directive}`: {csp}");
    }
    for external in ["http", "*", "unsafe-eval", "blob:"] {
        assert!(!csp.contains(external), "the policy allows nothing external (`{external}`): {csp}");
    }
    let script_src = csp.split("; ").find(|d| d.starts_with("script-src")).unwrap();
    assert_eq!(script_src, "script-src 'self'", "no inline script");
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script:\n{html}");

    let sums = sha256sums();
    let urls = page_urls(&html);
    let mut seen = vec![];
    for url in urls.iter().filter(|u| *u != "data:,") {
        assert!(url.starts_with("/graphiql/assets/"), "the page loads {url}");
        let r = app.client.get(app.url(url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{url}");
        assert_eq!(header(&r, "cache-control"), "public, max-age=31536000, immutable", "{url}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{url}");
        let etag = header(&r, "etag").to_owned();
        let ct = header(&r, "content-type").to_owned();
        let name = url.rsplit('/').next().unwrap().to_owned();
        let body = r.bytes().await.unwrap();
        if let Some((_, want)) = VENDORED.iter().find(|(n, _)| *n == name) {
            assert_eq!(&ct, want, "{url}");
            let sum: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
            assert!(sums.lines().any(|l| l == format!("{sum}  {name}")), "{name} ({sum}) is as in SHA256SUMS");
            seen.push(name.clone());
        } else {
            assert!(["init.js", "page.css"].contains(&name.as_str()), "the page loads {url}");
        }
        // Revalidation with the ETag.
        let r = app.client.get(app.url(url)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 304, "{url} with If-None-Match {etag}");
    }
    seen.sort();
    let mut want: Vec<String> = VENDORED.iter().map(|(n, _)| n.to_string()).collect();
    want.sort();
    assert_eq!(seen, want, "the page loads every vendored file");

    let tagged = urls.iter().find(|u| u.ends_with("/graphiql.min.js")).unwrap();
    let dir = tagged.rsplit_once('/').unwrap().0;
    for bad in [
        format!("{dir}/nope.js"),
        format!("{dir}/SHA256SUMS"),
        format!("{dir}/graphiql.js"),
        "/graphiql/assets/0.0.0-000000000000/graphiql.min.js".to_owned(),
        "/graphiql/assets/graphiql.min.js".to_owned(),
    ] {
        let r = app.client.get(app.url(&bad)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// In Chromium, offline

/// The text of the CodeMirror editor inside `css` (GraphiQL 3's editors are CodeMirror 5, which
/// hangs its instance on the wrapper element), or `None` while it is not there.
const EDITOR_VALUE: &str = "var w = document.querySelector(arguments[0] + ' .CodeMirror'); \
                            return w && w.CodeMirror ? w.CodeMirror.getValue() : null;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_offline_in_chromium() {
    if !browser_available() {
        return;
    }
    let app = graphiql_app().await;
    let token = app.token("graphiql", SUBJECT, &["admin"]);
    let driver = ChromeDriver::start().await;
    // Without a network: no host name resolves, and every connection except to 127.0.0.1 goes to
    // a proxy that is not there.
    let options = SessionOptions { offline: true, browser_log: true, window: (1280, 900), wait: WAIT, languages: None };
    let b = driver.session(options).await;

    // ---- The network is blocked: the CDNs GraphiQL used to come from are unreachable.
    for cdn in ["https://unpkg.com/graphiql/graphiql.min.js", "https://cdn.jsdelivr.net/npm/graphiql/graphiql.min.js"] {
        let reached = b.try_cmd(reqwest::Method::POST, "/url", Some(json!({"url": cdn}))).await;
        let msg = match reached {
            Err(e) => e["message"].as_str().unwrap_or_default().to_owned(),
            Ok(_) => {
                let url = b.cmd(reqwest::Method::GET, "/url", None).await;
                panic!("Chromium reached {cdn} (now at {url}): the network is not blocked")
            }
        };
        assert!(msg.contains("net::ERR_"), "{cdn} fails with a network error: {msg}");
        eprintln!("blocked as intended: {cdn}: {}", msg.lines().next().unwrap_or_default());
    }

    let _ = b.browser_log().await; // (the failed navigations above)

    // ---- GraphiQL renders; then the admin's token goes into its persisted headers.
    let page = app.url(&format!("/graphiql?query={QUERY_PARAM}"));
    b.goto(&page).await;
    b.find(".graphiql-container").await;
    let script = "localStorage.clear(); \
                  localStorage.setItem('graphiql:headers', JSON.stringify({Authorization: 'Bearer ' + arguments[0]})); \
                  return localStorage.getItem('graphiql:headers');";
    let stored = b.exec(script, json!([token])).await;
    assert!(stored.as_str().is_some_and(|s| s.contains("Bearer ")), "{stored}");
    b.cmd(reqwest::Method::POST, "/refresh", None).await;
    b.find(".graphiql-container").await;

    // The initial query is the one from `?query=`, the headers the persisted ones.
    let query = b
        .wait_for("the query editor", || async {
            b.exec(EDITOR_VALUE, json!([".graphiql-query-editor"])).await.as_str().map(str::to_owned)
        })
        .await;
    assert_eq!(query, QUERY, "the query editor starts with ?query=");
    let headers_tab = b.find_text(".graphiql-editor-tools button", "Headers").await;
    b.click(&headers_tab).await;
    let headers = b
        .wait_for("the headers editor", || async {
            b.exec(EDITOR_VALUE, json!([".graphiql-editor-tool .graphiql-editor:not(.hidden)"]))
                .await
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .await;
    assert!(headers.contains(&format!("Bearer {token}")), "the headers editor has the persisted token: {headers}");

    // ---- The docs explorer (from the introspection GraphiQL ran) lists Query.contacts.
    let docs = b.find("button[aria-label='Show Documentation Explorer']").await;
    b.click(&docs).await;
    b.find(".graphiql-doc-explorer").await;
    let query_type = b.find_text(".graphiql-doc-explorer a.graphiql-doc-explorer-type-name", "Query").await;
    b.click(&query_type).await;
    b.find_text(".graphiql-doc-explorer-title", "Query").await;
    let contacts = b.find_text(".graphiql-doc-explorer a.graphiql-doc-explorer-field-name", "contacts").await;
    b.click(&contacts).await;
    b.find_text(".graphiql-doc-explorer-title", "contacts").await;

    // ---- The query runs, with the persisted headers.
    let run = b.find("button.graphiql-execute-button").await;
    b.click(&run).await;
    let response = b
        .wait_for("the response", || async {
            let text = b.exec(EDITOR_VALUE, json!([".graphiql-response"])).await;
            let v: Value = serde_json::from_str(text.as_str()?).ok()?;
            v.get("data").or(v.get("errors")).map(|_| v.clone())
        })
        .await;
    assert_eq!(response, json!({"data": {"viewer": {"user": {"subject": SUBJECT}}}}), "the result pane");

    // ---- The settings dialog opens and closes (GraphiQL's dialogs insert a `<style>` element,
    // what the policy's `style-src 'unsafe-inline'` is for).
    let settings = b.find("button[aria-label='Open settings dialog']").await;
    b.click(&settings).await;
    b.find_text(".graphiql-dialog-title", "Settings").await;
    let close = b.find(".graphiql-dialog .graphiql-dialog-close").await;
    b.click(&close).await;
    b.wait_for("the settings dialog to close", || async {
        b.try_find(".graphiql-dialog").await.is_none().then_some(())
    })
    .await;

    // ---- Everything came from this server, and nothing was refused or failed.
    let loaded = b
        .exec(
            "return [location.href].concat(performance.getEntriesByType('navigation').map(e => e.name), \
             performance.getEntriesByType('resource').map(e => e.name));",
            json!([]),
        )
        .await;
    let loaded: Vec<&str> = loaded.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let origin = format!("{}/", app.base);
    assert!(origin.starts_with("http://127.0.0.1:"));
    for url in &loaded {
        assert!(url.starts_with(&origin), "the page loaded {url}, not from {origin}: {loaded:#?}");
    }
    for (name, _) in VENDORED {
        assert!(loaded.iter().any(|u| u.ends_with(&format!("/{name}"))), "{name} was loaded: {loaded:#?}");
    }
    assert!(loaded.iter().any(|u| u.ends_with("/graphql")), "GraphiQL fetched /graphql: {loaded:#?}");
    let log = b.browser_log().await;
    if std::env::var_os("COHORT_TEST_BROWSER_LOG").is_some() {
        eprintln!("browser log: {log:#?}");
    }
    let problems: Vec<&Value> = log
        .iter()
        .filter(|e| {
            let msg = e["message"].as_str().unwrap_or_default();
            e["level"] == "SEVERE" || msg.contains("Content Security Policy") || msg.contains("Refused to")
        })
        .collect();
    assert!(problems.is_empty(), "the browser reported: {problems:#?}");

    save_screenshot("graphiql.png", &b.screenshot().await);
}
