//! Real headless Chromium against the public pages: a person opens the preference centre from
//! the link in a message, unticks a group and saves, and the change lands in the consent log,
//! the memberships and their history. Driven through the W3C WebDriver protocol over HTTP
//! (`chromedriver` as a child process), with nothing but `reqwest` and `serde_json`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`).
//! Without them the test says it is skipped — unless `COHORT_TEST_REQUIRE_BROWSER=1` (CI), then it
//! fails. Screenshots go to `$COHORT_ARTIFACTS_DIR` (default `target/ci-artifacts`).
//!
//! Every wait is bounded (polls up to [`WAIT`]); nothing asserts on timing.

use crate::on_both_backends;
use crate::support::{Actor, Backend, TestApp};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any single wait polls (page loads, elements, chromedriver start-up).
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);
/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

// ---------------------------------------------------------------------------------------------
// A minimal W3C WebDriver client

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

    /// A new headless Chromium session asking for pages in `languages` (`Accept-Language`).
    async fn session(&self, languages: &str) -> Session {
        let profile = TempDir::new("cohort-chromium-profile");
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
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
                            format!("--user-data-dir={}", profile.0.display()),
                        ],
                        "prefs": { "intl.accept_languages": languages },
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
        s.cmd(reqwest::Method::POST, "/timeouts", Some(json!({"pageLoad": 10_000, "script": 10_000, "implicit": 0})))
            .await;
        s.cmd(reqwest::Method::POST, "/window/rect", Some(json!({"width": 1024, "height": 900}))).await;
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

    async fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or_default().to_owned()
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

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v =
            self.cmd(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        v.as_array()
            .map(|a| a.iter().filter_map(|e| e[ELEMENT].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    async fn text(&self, el: &str) -> String {
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn attribute(&self, el: &str, name: &str) -> Option<String> {
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/attribute/{name}"), None)
            .await
            .as_str()
            .map(str::to_owned)
    }

    async fn selected(&self, el: &str) -> bool {
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/selected"), None)
            .await
            .as_bool()
            .expect("selected is a boolean")
    }

    async fn click(&self, el: &str) {
        self.cmd(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    /// The text of the first element matching `css`, once it is `expected` (bounded wait).
    async fn wait_text(&self, css: &str, expected: &str) -> String {
        wait_for(&format!("`{css}` to read {expected:?}"), || async move {
            let el = self.try_find(css).await?;
            let t = self.try_cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None).await.ok()?;
            let t = t.as_str()?.trim().to_owned();
            (t == expected).then_some(t)
        })
        .await
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

fn save_screenshot(name: &str, png: &[u8]) -> PathBuf {
    let path = artifacts_dir().join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
    path
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
// The test

const TENANT: &str = "sunny";
const GR_INTERNAL: &str = "GR-2026-internal";
const IT_INTERNAL: &str = "IT-2026-internal";
const BOOK_INTERNAL: &str = "Intake book 2026 (internal)";
const FORM_INTERNAL: &str = "Homepage signup form (internal)";

const CREATE_GROUP: &str = "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }";
const MEMBERS: &str = "query($g: ID!) { group(id: $g) {
    members(first: 50) { edges { node { id } source consent { action channel } } }
    membershipHistory(first: 50) { edges { node { action source contact { id } } } } } }";
const CONTACT: &str = "query($c: ID!, $gr: ID!, $it: ID!) { contact(id: $c) {
    greece: consentStatus(groupId: $gr) italy: consentStatus(groupId: $it)
    consents { action channel group { id } } } }";

on_both_backends!(preference_centre_in_chromium);

/// A public group (internal name and public name differ on purpose).
async fn create_group(admin: &Actor<'_>, book: &str, internal: &str, public: &str, description: &str) -> String {
    let i = json!({"name": internal, "addressBookId": book, "publicName": public, "publicDescription": description});
    let d = admin.ok(CREATE_GROUP, json!({"i": i})).await;
    d["createGroup"]["group"]["id"].as_str().unwrap().to_owned()
}

async fn preference_centre_in_chromium(app: TestApp) {
    if !browser_available() {
        return;
    }
    let backend = match app.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let admin = app.actor(TENANT, "admin", &["admin"]);

    // ---- Set-up through GraphQL: a public profile, two public groups, a single opt-in form.
    let d = admin
        .ok("mutation { setPublicProfile(input: {publicName: \"Sunny Travel\"}) { publicName } }", json!({}))
        .await;
    assert_eq!(d["setPublicProfile"]["publicName"], "Sunny Travel");
    let d = admin.ok(crate::support::CREATE_BOOK, json!({"n": BOOK_INTERNAL})).await;
    let book = d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    let greece = create_group(&admin, &book, GR_INTERNAL, "Greece", "Island hopping and city breaks in Athens").await;
    let italy = create_group(&admin, &book, IT_INTERNAL, "Italy", "Rome, Florence and the lakes").await;
    let d = admin
        .ok(
            "mutation($i: CreateConsentTextInput!) { createConsentText(input: $i) { consentText { id sha256 } } }",
            json!({"i": {"purpose": "travel-offers", "language": "en",
                         "body": "Yes, send me travel offers for the destinations I chose. I can withdraw at any time."}}),
        )
        .await;
    let text = d["createConsentText"]["consentText"]["id"].as_str().unwrap().to_owned();
    let d = admin
        .ok(
            "mutation($i: CreateWebFormInput!) { createWebForm(input: $i) { webForm { id key } } }",
            json!({"i": {"name": FORM_INTERNAL, "intakeAddressBookId": book, "groupIds": [greece, italy],
                         "consentTextId": text, "doubleOptIn": false, "fields": [], "allowedOrigins": []}}),
        )
        .await;
    let key = d["createWebForm"]["webForm"]["key"].as_str().unwrap().to_owned();

    // ---- Eva signs up for both on the website.
    let resp = app
        .client
        .post(app.url(&format!("/public/v1/forms/{key}/submissions")))
        .json(&json!({"email": "eva@example.com", "groups": [greece, italy]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "submission: {}", resp.text().await.unwrap_or_default());
    let d = admin.ok("{ contacts(filter: {search: \"eva\"}) { totalCount edges { node { id } } } }", json!({})).await;
    assert_eq!(d["contacts"]["totalCount"], 1, "{d:#}");
    let eva = d["contacts"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    for g in [&greece, &italy] {
        let d = admin.ok(MEMBERS, json!({"g": g})).await;
        let edges = d["group"]["members"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{d:#}");
        assert_eq!(edges[0]["node"]["id"], eva.as_str());
        assert_eq!(edges[0]["source"], "WEB_FORM");
    }
    let d = admin
        .ok("query($c: ID!) { preferenceLink(contactId: $c) { url listUnsubscribe expiresAt } }", json!({"c": eva}))
        .await;
    let link = d["preferenceLink"]["url"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}/public/v1/preferences/", app.base)), "{link}");

    // ---- In Chromium: open the link, untick Italy, save.
    let driver = ChromeDriver::start().await;
    {
        let b = driver.session("en-GB,en").await;
        b.goto(&link).await;
        b.wait_text("h1", "Your subscriptions").await;
        let html = b.find("html").await;
        assert_eq!(b.attribute(&html, "lang").await.as_deref(), Some("en"));
        let org = b.find("header strong").await;
        assert_eq!(b.text(&org).await.trim(), "Sunny Travel");
        let labels = b.find_all("label").await;
        let mut names = vec![];
        for l in &labels {
            names.push(b.text(l).await.trim().to_owned());
        }
        assert_eq!(names, ["Greece", "Italy"], "the checkboxes' labels");
        let source = b.source().await;
        assert!(source.contains("Sunny Travel") && source.contains("Greece") && source.contains("Italy"));
        for internal in [GR_INTERNAL, IT_INTERNAL, BOOK_INTERNAL, FORM_INTERNAL, TENANT] {
            assert!(!source.contains(internal), "the page shows the internal name {internal:?}:\n{source}");
        }
        let gr_box = format!("input[type=checkbox][name=subscribed][value=\"{greece}\"]");
        let it_box = format!("input[type=checkbox][name=subscribed][value=\"{italy}\"]");
        let (gr, it) = (b.find(&gr_box).await, b.find(&it_box).await);
        assert!(b.selected(&gr).await, "Greece starts ticked");
        assert!(b.selected(&it).await, "Italy starts ticked");
        assert!(b.try_find("#saved").await.is_none(), "no confirmation before saving");

        b.click(&it).await;
        assert!(!b.selected(&it).await, "the click unticked Italy");
        let save = b.find("button[name=action][value=save]").await;
        b.click(&save).await;

        // Post/redirect/get: the page comes back with the confirmation line.
        let saved = b.find("#saved").await;
        assert_eq!(b.text(&saved).await.trim(), "Your choices have been saved.");
        let url = b.current_url().await;
        assert!(url.starts_with(&link) && url.ends_with("?saved=1"), "after saving the browser is at {url}");
        let (gr, it) = (b.find(&gr_box).await, b.find(&it_box).await);
        assert!(b.selected(&gr).await, "Greece is still ticked after saving");
        assert!(!b.selected(&it).await, "Italy is unticked after saving");
        let source = b.source().await;
        for internal in [GR_INTERNAL, IT_INTERNAL] {
            assert!(!source.contains(internal), "the saved page shows the internal name {internal:?}");
        }
        save_screenshot(&format!("preference-centre-{backend}.png"), &b.screenshot().await);
    }

    // ---- What it did, through GraphQL.
    let d = admin.ok(MEMBERS, json!({"g": italy})).await;
    assert_eq!(d["group"]["members"]["edges"], json!([]), "Italy has no members: {d:#}");
    let history = d["group"]["membershipHistory"]["edges"].as_array().unwrap();
    assert!(
        history.iter().any(|e| e["node"]["action"] == "LEAVE"
            && e["node"]["source"] == "SELF_SERVICE"
            && e["node"]["contact"]["id"] == eva.as_str()),
        "Italy's history has Eva's LEAVE through the preference centre: {d:#}"
    );
    let d = admin.ok(MEMBERS, json!({"g": greece})).await;
    let edges = d["group"]["members"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "Greece keeps Eva: {d:#}");
    assert_eq!(edges[0]["node"]["id"], eva.as_str());
    assert_eq!(edges[0]["source"], "WEB_FORM");

    let d = admin.ok(CONTACT, json!({"c": eva, "gr": greece, "it": italy})).await;
    assert_eq!(d["contact"]["italy"], "WITHDRAWN", "{d:#}");
    assert_eq!(d["contact"]["greece"], "CONFIRMED", "{d:#}");
    let consents = d["contact"]["consents"].as_array().unwrap();
    assert!(
        consents.iter().any(|c| c["action"] == "WITHDRAWN"
            && c["channel"] == "PREFERENCE_LINK"
            && c["group"]["id"] == italy.as_str()),
        "Eva's consent log has Italy withdrawn through the preference link: {d:#}"
    );
    assert!(
        !consents.iter().any(|c| c["action"] == "WITHDRAWN" && c["group"]["id"] == greece.as_str()),
        "nothing was withdrawn for Greece: {d:#}"
    );

    // ---- A German browser gets the German page.
    {
        let b = driver.session("de-DE,de").await;
        b.goto(&link).await;
        b.wait_text("h1", "Ihre Abonnements").await;
        let html = b.find("html").await;
        assert_eq!(b.attribute(&html, "lang").await.as_deref(), Some("de"));
        let save = b.find("button[name=action][value=save]").await;
        assert_eq!(b.text(&save).await.trim(), "Speichern");
        save_screenshot(&format!("preference-centre-{backend}-de.png"), &b.screenshot().await);
    }
}
