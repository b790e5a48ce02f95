//! A minimal W3C WebDriver client for the browser tests (`browser.rs`, `graphiql.rs`): headless
//! Chromium driven through `chromedriver` (a child process) over HTTP, with nothing but `reqwest`
//! and `serde_json`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`).
//! Without them [`browser_available`] says the test is skipped — unless
//! `COHORT_TEST_REQUIRE_BROWSER=1` (CI), then it fails. Screenshots go to `$COHORT_ARTIFACTS_DIR`
//! (default `target/ci-artifacts`).
//!
//! Every wait is bounded (polls up to the session's [`SessionOptions::wait`], or
//! [`STARTUP_WAIT`] for chromedriver itself); nothing asserts on timing.

use crate::support::TempDir;
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
/// The longest chromedriver may take to come up.
const STARTUP_WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);
/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Polls `f` until it gives `Some`, for at most `within`; panics naming `what` otherwise.
async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > within {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
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

/// How [`ChromeDriver::session`] sets up a headless Chromium session.
pub(crate) struct SessionOptions<'a> {
    /// The languages pages are asked for in (`Accept-Language`, e.g. `"en-GB,en"`); Chromium's
    /// own default when `None`.
    pub languages: Option<&'a str>,
    /// No network: no host name resolves, and every connection except to 127.0.0.1 goes to a
    /// proxy that is not there (port 9, discard).
    pub offline: bool,
    /// Keep the browser's console and network log, for [`Session::browser_log`].
    pub browser_log: bool,
    /// The window's width and height.
    pub window: (u32, u32),
    /// The longest any single wait in the session polls (elements, texts, [`Session::wait_for`]),
    /// and the page-load timeout.
    pub wait: Duration,
}

impl Default for SessionOptions<'_> {
    fn default() -> Self {
        SessionOptions {
            languages: None,
            offline: false,
            browser_log: false,
            window: (1024, 900),
            wait: Duration::from_secs(10),
        }
    }
}

/// `chromedriver` on a free local port, shut down and killed on drop.
pub(crate) struct ChromeDriver {
    child: Child,
    port: u16,
    base: String,
    http: reqwest::Client,
    dir: TempDir,
}

impl ChromeDriver {
    pub(crate) async fn start() -> ChromeDriver {
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
            wait_for("chromedriver to be ready", STARTUP_WAIT, || {
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

    /// A new headless Chromium session, set up as `options` say.
    pub(crate) async fn session(&self, options: SessionOptions<'_>) -> Session {
        let profile = TempDir::new("cohort-chromium-profile");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .map(str::to_owned)
        .into();
        if options.offline {
            args.extend(
                [
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    "--proxy-server=127.0.0.1:9",
                    "--proxy-bypass-list=127.0.0.1",
                ]
                .map(str::to_owned),
            );
        }
        args.push(format!("--user-data-dir={}", profile.0.display()));
        let mut chrome = json!({ "binary": CHROMIUM, "args": args });
        if let Some(languages) = options.languages {
            chrome["prefs"] = json!({ "intl.accept_languages": languages });
        }
        let mut always = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": chrome,
        });
        if options.browser_log {
            always["goog:loggingPrefs"] = json!({ "browser": "ALL" });
        }
        let caps = json!({ "capabilities": { "alwaysMatch": always } });
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
            wait: options.wait,
            _profile: profile,
        };
        let page_load = options.wait.as_millis() as u64;
        s.cmd(
            reqwest::Method::POST,
            "/timeouts",
            Some(json!({"pageLoad": page_load, "script": 10_000, "implicit": 0})),
        )
        .await;
        let (width, height) = options.window;
        s.cmd(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
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
pub(crate) struct Session {
    http: reqwest::Client,
    base: String,
    driver_port: u16,
    id: String,
    wait: Duration,
    _profile: TempDir,
}

impl Drop for Session {
    fn drop(&mut self) {
        blocking_request(self.driver_port, "DELETE", &format!("/session/{}", self.id));
    }
}

impl Session {
    /// Polls `f` until it gives `Some`, for at most the session's wait; panics naming `what`
    /// otherwise.
    pub(crate) async fn wait_for<T, F, Fut>(&self, what: &str, f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        wait_for(what, self.wait, f).await
    }

    /// A WebDriver command: `Ok(value)`, or `Err(the error object)`.
    pub(crate) async fn try_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
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

    pub(crate) async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_cmd(method.clone(), path, body).await {
            Ok(v) => v,
            Err(e) => panic!("WebDriver {method} {path} failed: {e:#}"),
        }
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub(crate) async fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    pub(crate) async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or_default().to_owned()
    }

    pub(crate) async fn try_find(&self, css: &str) -> Option<String> {
        let v = self
            .try_cmd(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
            .await
            .ok()?;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// The first element matching `css`, waiting for it to appear.
    pub(crate) async fn find(&self, css: &str) -> String {
        self.wait_for(&format!("an element matching `{css}`"), || self.try_find(css)).await
    }

    pub(crate) async fn find_all(&self, css: &str) -> Vec<String> {
        let v =
            self.cmd(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        v.as_array()
            .map(|a| a.iter().filter_map(|e| e[ELEMENT].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
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
    pub(crate) async fn find_text(&self, css: &str, text: &str) -> String {
        self.wait_for(&format!("`{css}` reading {text:?}"), || async move {
            self.try_texts(css).await?.into_iter().find(|(_, t)| t == text).map(|(el, _)| el)
        })
        .await
    }

    pub(crate) async fn text(&self, el: &str) -> String {
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) async fn attribute(&self, el: &str, name: &str) -> Option<String> {
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/attribute/{name}"), None)
            .await
            .as_str()
            .map(str::to_owned)
    }

    pub(crate) async fn selected(&self, el: &str) -> bool {
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/selected"), None)
            .await
            .as_bool()
            .expect("selected is a boolean")
    }

    pub(crate) async fn click(&self, el: &str) {
        self.cmd(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    /// The text of the first element matching `css`, once it is `expected` (bounded wait).
    pub(crate) async fn wait_text(&self, css: &str, expected: &str) -> String {
        self.wait_for(&format!("`{css}` to read {expected:?}"), || async move {
            let el = self.try_find(css).await?;
            let t = self.try_cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None).await.ok()?;
            let t = t.as_str()?.trim().to_owned();
            (t == expected).then_some(t)
        })
        .await
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page; its return value.
    pub(crate) async fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// The browser's console and network log since the last call (needs
    /// [`SessionOptions::browser_log`]).
    pub(crate) async fn browser_log(&self) -> Vec<Value> {
        let v = self.cmd(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// A PNG of the viewport.
    pub(crate) async fn screenshot(&self) -> Vec<u8> {
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

/// Writes `png` to `$COHORT_ARTIFACTS_DIR/<name>` and says where.
pub(crate) fn save_screenshot(name: &str, png: &[u8]) -> PathBuf {
    let path = artifacts_dir().join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("screenshot: {}", path.display());
    path
}

/// Whether the browser is here; `false` means "skip" (and panics where CI requires it).
pub(crate) fn browser_available() -> bool {
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
