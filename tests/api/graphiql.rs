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
//! client is the minimal part of `browser.rs`'s that this test needs. Every wait is bounded;
//! nothing asserts on timing.

use crate::support::{Backend, TestApp};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any single wait polls (page loads, elements, chromedriver start-up).
const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);
/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

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
// A minimal W3C WebDriver client (the part of browser.rs's this test needs)

/// Polls `f` until it gives `Some`, for at most [`WAIT`]; panics naming `what` otherwise.
async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > WAIT {
            panic!("timed out after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bare HTTP/1.1 request with no body, for `Drop` (no async runtime to lean on there).
fn blocking_request(port: u16, method: &str, path: &str) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    if s.write_all(req.as_bytes()).is_ok() {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
}

/// `chromedriver` on a free local port, shut down and killed on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
    base: String,
    http: reqwest::Client,
    dir: TempDir,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let dir = TempDir::new("cohort-chromedriver");
        let log = dir.0.join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().expect("client");
        let mut d = ChromeDriver { child, port, base: format!("http://127.0.0.1:{port}"), http, dir };
        let (http, status) = (d.http.clone(), format!("{}/status", d.base));
        let ready = {
            let child = &mut d.child;
            wait_for("chromedriver to be ready", || {
                let (http, status) = (http.clone(), status.clone());
                let exited = child.try_wait().ok().flatten();
                async move {
                    if let Some(e) = exited {
                        return Some(Err(format!("chromedriver exited: {e}")));
                    }
                    let v: Value = http.get(&status).send().await.ok()?.json().await.ok()?;
                    v["value"]["ready"].as_bool().filter(|r| *r).map(|_| Ok(()))
                }
            })
            .await
        };
        if let Err(e) = ready {
            panic!("{e}\n{}", d.log());
        }
        d
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.0.join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A new headless Chromium session without a network: no host name resolves, and every
    /// connection except to 127.0.0.1 goes to a proxy that is not there (port 9, discard).
    async fn offline_session(&self) -> Session {
        let profile = TempDir::new("cohort-chromium-profile");
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-quic",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-dev-shm-usage",
                            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                            "--proxy-server=127.0.0.1:9",
                            "--proxy-bypass-list=127.0.0.1",
                            format!("--user-data-dir={}", profile.0.display()),
                        ],
                    },
                },
            },
        });
        let resp = self.http.post(format!("{}/session", self.base)).json(&caps).send().await;
        let v: Value = match resp {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(e) => panic!("new session: {e}\n{}", self.log()),
        };
        let Some(id) = v["value"]["sessionId"].as_str() else {
            panic!("could not start Chromium: {v:#}\n{}", self.log());
        };
        let s = Session {
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.base),
            driver_port: self.port,
            id: id.to_owned(),
            _profile: profile,
        };
        s.cmd(reqwest::Method::POST, "/timeouts", Some(json!({"pageLoad": 20_000, "script": 10_000, "implicit": 0})))
            .await;
        s.cmd(reqwest::Method::POST, "/window/rect", Some(json!({"width": 1280, "height": 900}))).await;
        s
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // Ends any session still open (so Chromium exits too), then the driver itself.
        blocking_request(self.port, "GET", "/shutdown");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session (deleted on drop: Chromium exits).
struct Session {
    http: reqwest::Client,
    base: String,
    driver_port: u16,
    id: String,
    _profile: TempDir,
}

impl Drop for Session {
    fn drop(&mut self) {
        blocking_request(self.driver_port, "DELETE", &format!("/session/{}", self.id));
    }
}

impl Session {
    /// A WebDriver command: `Ok(value)`, or `Err(the error object)`.
    async fn try_cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.map_err(|e| json!({"error": "transport", "message": e.to_string()}))?;
        let ok = resp.status().is_success();
        let v: Value = resp.json().await.map_err(|e| json!({"error": "bad json", "message": e.to_string()}))?;
        if ok { Ok(v["value"].clone()) } else { Err(v["value"].clone()) }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_cmd(method.clone(), path, body).await {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {method} {path} failed: {e:#}"),
        }
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn try_find(&self, css: &str) -> Option<String> {
        let v = self
            .try_cmd(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
            .await
            .ok()?;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// The first element matching `css`, waiting for it to appear.
    async fn find(&self, css: &str) -> String {
        wait_for(&format!("an element matching `{css}`"), || self.try_find(css)).await
    }

    /// The elements matching `css` and their texts (trimmed), or `None` if one went stale.
    async fn try_texts(&self, css: &str) -> Option<Vec<(String, String)>> {
        let v = self
            .try_cmd(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css})))
            .await
            .ok()?;
        let mut out = vec![];
        for el in v.as_array()?.iter().filter_map(|e| e[ELEMENT].as_str()) {
            let t = self.try_cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None).await.ok()?;
            out.push((el.to_owned(), t.as_str()?.trim().to_owned()));
        }
        Some(out)
    }

    /// The first element matching `css` whose text is `text`, waiting for it.
    async fn find_text(&self, css: &str, text: &str) -> String {
        wait_for(&format!("`{css}` reading {text:?}"), || async move {
            self.try_texts(css).await?.into_iter().find(|(_, t)| t == text).map(|(el, _)| el)
        })
        .await
    }

    async fn click(&self, el: &str) {
        self.cmd(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; its return value.
    async fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// The browser's console and network log since the last call.
    async fn browser_log(&self) -> Vec<Value> {
        let v = self.cmd(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// A PNG of the viewport.
    async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = STANDARD.decode(b64.as_str().expect("screenshot is base64")).expect("base64 screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG");
        png
    }
}

/// `$COHORT_ARTIFACTS_DIR` (default `target/ci-artifacts` in the checkout), created.
fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("COHORT_ARTIFACTS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("ci-artifacts"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Whether the browser is here; `false` means "skip" (and panics where CI requires it).
fn browser_available() -> bool {
    let missing: Vec<&str> = [CHROMEDRIVER, CHROMIUM].into_iter().filter(|p| !Path::new(p).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("COHORT_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!(
            "COHORT_TEST_REQUIRE_BROWSER=1 but {} missing (apt-get install chromium chromium-driver)",
            missing.join(" and ")
        );
    }
    eprintln!("skipped: {} missing (apt-get install chromium chromium-driver)", missing.join(" and "));
    false
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
    let b = driver.offline_session().await;

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
    let query = wait_for("the query editor", || async {
        b.exec(EDITOR_VALUE, json!([".graphiql-query-editor"])).await.as_str().map(str::to_owned)
    })
    .await;
    assert_eq!(query, QUERY, "the query editor starts with ?query=");
    let headers_tab = b.find_text(".graphiql-editor-tools button", "Headers").await;
    b.click(&headers_tab).await;
    let headers = wait_for("the headers editor", || async {
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
    let response = wait_for("the response", || async {
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
    wait_for("the settings dialog to close", || async { b.try_find(".graphiql-dialog").await.is_none().then_some(()) })
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

    let png = b.screenshot().await;
    let path = artifacts_dir().join("graphiql.png");
    std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
}
