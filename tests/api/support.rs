//! Test infrastructure: `TestApp` serves the real router on 127.0.0.1:0 over its own database —
//! an in-memory SQLite, or (when `COHORT_TEST_DATABASE_URL` is set) a fresh PostgreSQL database
//! cloned from a migrated template (`cohort_store::testing`) that is dropped when the app is
//! dropped, even if the test panicked.

#![allow(dead_code)]

use cohort_api::config::Settings;
use cohort_store::Store;
use serde_json::{Value, json};

/// `COHORT_TEST_LOG=cohort::sql=debug cargo test …` shows the server's log lines in tests.
pub fn init_test_logging() {
    if let Ok(filter) = std::env::var("COHORT_TEST_LOG") {
        cohort_api::telemetry::init(&filter, cohort_api::config::LogFormat::Pretty);
    }
}

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
/// The public-link signing keys of test servers (`COHORT_PUBLIC_LINK_KEYS`), newest first.
pub const LINK_KEYS: &str = "t2:second-link-key-that-is-long-enough-0123,t1:first-link-key-that-is-long-enough-01234";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database for one test. PostgreSQL databases are dropped on `Drop`.
pub struct TestDb {
    pub url: String,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb { url: "sqlite::memory:".into(), pg: None }),
            Backend::Postgres => {
                let admin = std::env::var("COHORT_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())?;
                let name = format!("cohort_t_{}", uuid::Uuid::new_v4().simple());
                // Cloned from the migrated template: `store.migrate()` then finds nothing pending.
                cohort_store::testing::create_migrated_postgres_database(&admin, &name)
                    .await
                    .expect("create test database");
                Some(TestDb { url: cohort_store::testing::with_database(&admin, &name), pg: Some((admin, name)) })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop is synchronous; run the async cleanup on a private runtime in its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Err(e) = cohort_store::testing::drop_postgres_database(&admin, &name).await {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                })
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The webhook worker, when the test's settings turn it on.
    pub worker: Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    _db: TestDb,
}

/// A listener on a free port and the test settings for a server on it over `url`.
async fn test_settings(url: &str) -> (tokio::net::TcpListener, Settings) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut settings = Settings::for_tests(url, SECRET);
    // Public links (double opt-in, preference centre) point at this server.
    settings.public.base_url = Some(format!("http://{addr}"));
    settings.public.link_keys = Some(LINK_KEYS.to_owned().into());
    (listener, settings)
}

type Served = (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>);

/// Serves the real router over `store` until the returned sender fires (or is dropped).
fn serve(listener: tokio::net::TcpListener, settings: &Settings, store: &Store) -> Served {
    let addr = listener.local_addr().expect("addr");
    let router = cohort_api::build(settings, store.clone()).expect("build app");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let limits = settings.server.clone();
    let server = tokio::spawn(async move {
        let _ = cohort_api::serve_with(listener, router, &limits, async {
            let _ = rx.await;
        })
        .await;
    });
    (addr, tx, server)
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Spawns with settings adjusted by `f` (e.g. other JWT keys or limits).
    pub async fn spawn_with(backend: Backend, f: impl FnOnce(&mut Settings)) -> Option<TestApp> {
        init_test_logging();
        let db = TestDb::new(backend).await?;
        let (listener, mut settings) = test_settings(&db.url).await;
        f(&mut settings);
        let store = Store::connect(&db.url, settings.database.clone()).await.expect("connect");
        store.migrate().await.expect("migrate");
        let worker = cohort_api::spawn_webhook_worker(&settings, &store);
        let (addr, tx, server) = serve(listener, &settings, &store);
        Some(TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            store,
            backend,
            shutdown: Some(tx),
            server: Some(server),
            worker,
            _db: db,
        })
    }

    /// A second server on this app's database (PostgreSQL only: an in-memory SQLite cannot be
    /// shared): a replica, as a deployment runs several behind a load balancer. The database is
    /// still owned (and dropped) by `self`.
    pub async fn replica(&self) -> Option<TestApp> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let url = self._db.url.clone();
        let (listener, settings) = test_settings(&url).await;
        let store = Store::connect(&url, settings.database.clone()).await.expect("connect");
        let (addr, tx, server) = serve(listener, &settings, &store);
        Some(TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            store,
            backend: self.backend,
            shutdown: Some(tx),
            server: Some(server),
            worker: None,
            _db: TestDb { url, pg: None },
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An HS256 token signed with the test secret.
    pub fn token(&self, tenant: &str, subject: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        cohort_api::auth::issue_hs256(SECRET.as_bytes(), "cohort", "cohort-api", tenant, subject, &roles, 3600)
            .expect("token")
    }

    pub fn actor(&self, tenant: &str, subject: &str, roles: &[&str]) -> Actor<'_> {
        Actor { app: self, token: Some(self.token(tenant, subject, roles)) }
    }

    pub fn anonymous(&self) -> Actor<'_> {
        Actor { app: self, token: None }
    }

    pub fn with_token(&self, token: &str) -> Actor<'_> {
        Actor { app: self, token: Some(token.to_owned()) }
    }

    /// POSTs a raw JSON body to /graphql; returns (status, body as JSON or Null).
    pub async fn post_json(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut req = self.client.post(self.url("/graphql")).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends every body to /graphql at once, each on its own task (parallel clients of one
    /// user), and returns the answers in the order of `bodies`.
    pub async fn post_parallel(&self, token: &str, bodies: Vec<Value>) -> Vec<Value> {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let req = self.client.post(self.url("/graphql")).bearer_auth(token).json(&body);
                tokio::spawn(async move { req.send().await.expect("send").json::<Value>().await.expect("json") })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    }

    /// Asks the server to shut down (gracefully) without waiting for it; see [`TestApp::stop`].
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((tx, handle)) = self.worker.take() {
            let _ = tx.send(true);
            handle.abort();
        }
    }
}

/// The SQL statements the server has run so far, read from its own metrics (a request's cost
/// is the difference around it).
pub async fn statements(app: &TestApp) -> u64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("cohort_db_statements_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap() as u64
}

/// A caller with a token (or none).
pub struct Actor<'a> {
    pub app: &'a TestApp,
    pub token: Option<String>,
}

impl Actor<'_> {
    /// The whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let (_, body) =
            self.app.post_json(self.token.as_deref(), &json!({"query": query, "variables": variables})).await;
        body
    }

    /// `data`, asserting there were no errors.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}\nquery: {query}");
        body["data"].clone()
    }

    /// The first error's `extensions.code`, asserting there was an error.
    pub async fn err(&self, query: &str, variables: Value) -> String {
        let body = self.gql(query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {body:#}\nquery: {query}"))
            .to_owned()
    }
}

/// Runs each listed `async fn name(app: TestApp)` once on SQLite and once on PostgreSQL (the
/// latter only when `COHORT_TEST_DATABASE_URL` is set; otherwise it reports itself skipped).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::support::TestApp::spawn($crate::support::Backend::Sqlite).await.expect("sqlite app");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    match $crate::support::TestApp::spawn($crate::support::Backend::Postgres).await {
                        Some(app) => super::$name(app).await,
                        None => eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set"),
                    }
                }
            )*
        }
    };
}

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
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

/// Like [`on_both_backends!`], for tests that build their own server (own settings): each
/// listed `async fn name(backend: Backend)` runs once per backend, in modules `custom_sqlite`
/// and `custom_postgres` (the function decides what to do when PostgreSQL is not configured).
#[macro_export]
macro_rules! on_both_backends_custom {
    ($($name:ident),* $(,)?) => {
        mod custom_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
            )*
        }
        mod custom_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Like [`on_both_backends!`], but each test's server comes from the calling module's
/// `async fn $spawn(Backend) -> Option<TestApp>` (e.g. one with the background worker on); the
/// tests land in modules `sqlite_worker` and `postgres_worker`.
#[macro_export]
macro_rules! on_both_backends_with {
    ($spawn:ident; $($name:ident),* $(,)?) => {
        mod sqlite_worker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = super::$spawn($crate::support::Backend::Sqlite).await.expect("sqlite app");
                    super::$name(app).await;
                }
            )*
        }
        mod postgres_worker {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    match super::$spawn($crate::support::Backend::Postgres).await {
                        Some(app) => super::$name(app).await,
                        None => eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set"),
                    }
                }
            )*
        }
    };
}

/// A small tenant most tests start from:
/// - `admin` (role admin), `agent` (role agent), `outsider` (role agent, no grants);
/// - books `own` (agent: WRITE, direct), `team` (agent: READ via user group "Support"),
///   `hidden` (agent: nothing);
/// - contacts: in `own` Anna Abbott (anna@own.example), Bruno Baker, Acme GmbH (company);
///   in `team` Clara Carter; in `hidden` Anna Hidden (anna@hidden.example), Secret AG.
pub struct World {
    pub tenant: String,
    pub own: String,
    pub team: String,
    pub hidden: String,
    pub contacts: std::collections::HashMap<&'static str, String>,
}

pub const CREATE_BOOK: &str = "mutation($n: String!) { createAddressBook(input: {name: $n}) { addressBook { id } } }";
pub const CREATE_CONTACT: &str = "mutation($i: CreateContactInput!) { createContact(input: $i) { contact { id } } }";

impl World {
    pub async fn build(app: &TestApp) -> World {
        let tenant = "acme".to_string();
        let admin = app.actor(&tenant, "admin", &["admin"]);
        let agent = app.actor(&tenant, "agent", &["agent"]);
        // The agent logs in once so that their user exists (just-in-time creation).
        let me = agent.ok("{ viewer { user { id } } }", json!({})).await;
        let agent_id = me["viewer"]["user"]["id"].as_str().unwrap().to_owned();
        let _ = app.actor(&tenant, "outsider", &["agent"]).ok("{ viewer { user { id } } }", json!({})).await;

        let mut books = vec![];
        for n in ["Own", "Team", "Hidden"] {
            let d = admin.ok(CREATE_BOOK, json!({"n": n})).await;
            books.push(d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned());
        }
        let g =
            admin.ok("mutation { createUserGroup(input: {name: \"Support\"}) { userGroup { id } } }", json!({})).await;
        let group_id = g["createUserGroup"]["userGroup"]["id"].as_str().unwrap().to_owned();
        admin
            .ok(
                "mutation($g: ID!, $u: [ID!]!) { addUserGroupMembers(input: {userGroupId: $g, userIds: $u}) { addedCount } }",
                json!({"g": group_id, "u": [agent_id]}),
            )
            .await;
        let grant = "mutation($b: ID!, $u: ID, $g: ID, $l: AccessLevel!) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, userGroupId: $g, level: $l}) { grant { level } } }";
        admin.ok(grant, json!({"b": books[0], "u": agent_id, "l": "WRITE"})).await;
        admin.ok(grant, json!({"b": books[1], "g": group_id, "l": "READ"})).await;

        let mut contacts = std::collections::HashMap::new();
        let specs: Vec<(&'static str, usize, Value)> = vec![
            (
                "anna",
                0,
                json!({"kind": "PERSON", "firstName": "Anna", "lastName": "Abbott", "emails": [{"address": "anna@own.example"}], "businessStatus": "lead_hot"}),
            ),
            (
                "bruno",
                0,
                json!({"kind": "PERSON", "firstName": "Bruno", "lastName": "Baker", "businessStatus": "customer"}),
            ),
            ("acme", 0, json!({"kind": "COMPANY", "companyName": "Acme GmbH"})),
            (
                "clara",
                1,
                json!({"kind": "PERSON", "firstName": "Clara", "lastName": "Carter", "businessStatus": "lead_hot"}),
            ),
            (
                "anna_hidden",
                2,
                json!({"kind": "PERSON", "firstName": "Anna", "lastName": "Hidden", "emails": [{"address": "anna@hidden.example"}], "businessStatus": "lead_hot"}),
            ),
            ("secret", 2, json!({"kind": "COMPANY", "companyName": "Secret AG"})),
        ];
        for (key, book, mut input) in specs {
            input["addressBookId"] = json!(books[book]);
            let d = admin.ok(CREATE_CONTACT, json!({"i": input})).await;
            contacts.insert(key, d["createContact"]["contact"]["id"].as_str().unwrap().to_owned());
        }
        World { tenant, own: books[0].clone(), team: books[1].clone(), hidden: books[2].clone(), contacts }
    }

    pub fn id(&self, key: &str) -> &str {
        &self.contacts[key]
    }
}
