//! Tests of the `cohort` binary and the schema: the real binary started on a random port over an
//! empty SQLite file; `cohort schema` against the committed `schema.graphql`; migrations
//! up → down → up on SQLite and PostgreSQL; `cohort token`; `cohort openapi` against the committed
//! `openapi.json`, which validates as OpenAPI 3.1.

use cohort_store::{Store, StoreOptions};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "cli-test-secret-cli-test-secret-0123456789";

#[test]
fn schema_graphql_is_up_to_date() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql");
    let generated = cohort_api::sdl();
    assert!(
        committed == generated,
        "schema.graphql is stale: regenerate it with `cargo run -- schema > schema.graphql`"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cohort")).arg("schema").output().expect("run cohort schema");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), generated);
}

#[test]
fn openapi_json_is_up_to_date() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).expect("openapi.json");
    let generated = cohort_api::openapi_json();
    assert!(
        committed == generated,
        "openapi.json is stale: regenerate it with `cargo run -q -- openapi > openapi.json`"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cohort")).arg("openapi").output().expect("run cohort openapi");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), generated);
    let doc: Value = serde_json::from_str(&generated).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
}

/// `openapi.json` is a valid OpenAPI 3.1 document by `openapi-spec-validator` (which `.ci/run`
/// installs, setting `COHORT_TEST_REQUIRE_PYTHON_TOOLS=1`: then a missing validator fails the
/// test; elsewhere it is skipped, loudly).
#[test]
fn openapi_json_validates_as_openapi_3_1() {
    let required = std::env::var("COHORT_TEST_REQUIRE_PYTHON_TOOLS").is_ok_and(|v| v == "1");
    let has = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(has || !required, "COHORT_TEST_REQUIRE_PYTHON_TOOLS=1 but python3 cannot import openapi_spec_validator");
    if !has {
        eprintln!("skipped: python3 cannot import openapi_spec_validator");
        return;
    }
    let script = "import json, sys\n\
from openapi_spec_validator import OpenAPIV31SpecValidator, validate\n\
validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
print('valid')\n";
    let out = Command::new("python3")
        .args(["-c", script, concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "openapi.json is not valid OpenAPI 3.1:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Server {
    child: Child,
    addr: String,
    /// Every JSON log line the server wrote so far.
    logs: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cohort serve` on 127.0.0.1:0 and reads the bound address from its JSON log.
fn start(db_url: &str, extra: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cohort"));
    cmd.arg("serve")
        .env_clear()
        .env("COHORT_DATABASE_URL", db_url)
        .env("COHORT_LISTEN", "127.0.0.1:0")
        .env("COHORT_JWT_SECRET", SECRET)
        .env("COHORT_LOG_FORMAT", "json")
        .env("COHORT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn cohort");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "listening" {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                // Secrets never reach the log.
                assert!(!line.contains(SECRET), "the JWT secret appeared in a log line");
                kept.lock().unwrap().push(v);
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("server did not report its address");
    Server { child, addr, logs }
}

fn token(tenant: &str, sub: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["token", "--tenant", tenant, "--subject", sub, "--role", role, "--ttl", "10m"])
        .env_clear()
        .env("COHORT_JWT_SECRET", SECRET)
        .output()
        .expect("cohort token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn real_binary_migrates_an_empty_sqlite_file_and_serves() {
    let dir = std::env::temp_dir().join(format!("cohort-e2e-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("fresh.db");
    let server = start(&format!("sqlite://{}", db.display()), &[]);
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = client.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");

    let admin = token("e2e", "boss", "admin");
    let q = json!({"query": "mutation { createAddressBook(input: {name: \"Customers\"}) { addressBook { name myAccess } } }"});
    let body: Value =
        client.post(format!("{base}/graphql")).bearer_auth(&admin).json(&q).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["data"]["createAddressBook"]["addressBook"], json!({"name": "Customers", "myAccess": "MANAGE"}));
    let q = json!({"query": "{ viewer { tenant isAdmin user { subject } } addressBooks { edges { node { name } } } }"});
    let body: Value =
        client.post(format!("{base}/graphql")).bearer_auth(&admin).json(&q).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["data"]["viewer"], json!({"tenant": "e2e", "isAdmin": true, "user": {"subject": "boss"}}));
    assert!(db.exists(), "the SQLite file was created");

    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cohort_graphql_operations_total"));

    // Graceful shutdown on SIGTERM.
    #[cfg(unix)]
    {
        let pid = server.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut server = server;
        let mut exited = None;
        for _ in 0..100 {
            if let Ok(Some(s)) = server.child.try_wait() {
                exited = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(exited.is_some_and(|s| s.success()), "cohort did not exit cleanly on SIGTERM");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn token_command_needs_a_secret_and_known_roles() {
    let out = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["token", "--tenant", "t", "--subject", "s", "--role", "admin"])
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("COHORT_JWT_SECRET"));
    let out = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args(["token", "--tenant", "t", "--subject", "s", "--role", "root"])
        .env_clear()
        .env("COHORT_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!token("t", "s", "agent").is_empty());
}

async fn up_down_up(url: &str) {
    let store = Store::connect(url, StoreOptions::default()).await.expect("connect");
    store.migrate().await.expect("up");
    let tables = store.table_names().await.unwrap();
    for t in ["tenants", "users", "address_books", "address_book_grants", "contacts", "contact_status_history"] {
        assert!(tables.iter().any(|x| x == t), "{t} missing after up: {tables:?}");
    }
    assert!(store.is_ready().await);
    store.migrate_down_all().await.expect("down");
    let after_down = store.table_names().await.unwrap();
    assert_eq!(after_down, vec!["seaql_migrations".to_string()], "down leaves only the migration ledger");
    assert!(!store.is_ready().await, "not ready with migrations pending");
    store.migrate().await.expect("up again");
    assert_eq!(store.table_names().await.unwrap(), tables);
    assert!(store.is_ready().await);
}

#[tokio::test]
async fn migrations_up_down_up_sqlite() {
    up_down_up("sqlite::memory:").await;
}

#[tokio::test]
async fn migrations_up_down_up_postgres() {
    let Some(admin) = std::env::var("COHORT_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
        return;
    };
    let name = format!("cohort_m_{}", uuid::Uuid::new_v4().simple());
    cohort_store::testing::create_postgres_database(&admin, &name).await.unwrap();
    up_down_up(&cohort_store::testing::with_database(&admin, &name)).await;
    cohort_store::testing::drop_postgres_database(&admin, &name).await.unwrap();
}

#[test]
fn bad_pool_and_connection_settings_refuse_to_start_with_a_clear_message() {
    for (var, value, says) in [
        ("COHORT_DATABASE_MAX_CONNECTIONS", "0", "COHORT_DATABASE_MAX_CONNECTIONS must be 1 to 1000"),
        ("COHORT_DATABASE_MAX_CONNECTIONS", "many", "COHORT_DATABASE_MAX_CONNECTIONS must be a number"),
        ("COHORT_DATABASE_ACQUIRE_TIMEOUT_MS", "0", "COHORT_DATABASE_ACQUIRE_TIMEOUT_MS must be at least 1"),
        ("COHORT_HEADER_READ_TIMEOUT_SECS", "0", "COHORT_HEADER_READ_TIMEOUT_SECS must be 1 to 300"),
        ("COHORT_HEADER_READ_TIMEOUT_SECS", "10s", "COHORT_HEADER_READ_TIMEOUT_SECS must be a number"),
        ("COHORT_KEEP_ALIVE_TIMEOUT_SECS", "0", "COHORT_KEEP_ALIVE_TIMEOUT_SECS must be 1 to 3600"),
        ("COHORT_MAX_CONNECTIONS", "0", "COHORT_MAX_CONNECTIONS must be 1 to 1000000"),
        ("COHORT_MAX_CONNECTIONS", "-1", "COHORT_MAX_CONNECTIONS must be a number"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cohort"))
            .args(["serve"])
            .env_clear()
            .env("COHORT_DATABASE_URL", "sqlite::memory:")
            .env("COHORT_LISTEN", "127.0.0.1:0")
            .env("COHORT_JWT_SECRET", SECRET)
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{var}={value}: {err}");
    }
}

/// Two `cohort serve` processes on one PostgreSQL database share the webhook queue; one is
/// killed with SIGKILL in the middle of delivering and started again. Every one of 1,000 events
/// reaches the receiver; duplicates (at least once: a killed worker may have sent a message it
/// could not record) are counted and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_webhooks_and_survive_kill_9() {
    let Some(admin_url) = std::env::var("COHORT_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
        return;
    };
    let name = format!("cohort_t_{}", uuid::Uuid::new_v4().simple());
    cohort_store::testing::create_migrated_postgres_database(&admin_url, &name).await.expect("database");
    let db = cohort_store::testing::with_database(&admin_url, &name);
    // A receiver that takes a little time per message, so that deliveries are in flight when
    // one server is killed.
    let got: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let sink = sink.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(15)).await;
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                sink.lock().unwrap().push(id);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let env = [
        ("COHORT_WEBHOOK_ALLOW_HOSTS", "127.0.0.1"),
        ("COHORT_WEBHOOK_POLL_MS", "50"),
        ("COHORT_WEBHOOK_LEASE_SECS", "4"),
        ("COHORT_WEBHOOK_TIMEOUT_SECS", "2"),
        ("COHORT_WEBHOOK_RETRY_SCHEDULE", "1s,1s,1s,1s,1s"),
    ];
    let a = start(&db, &env);
    let mut b = start(&db, &env);
    let client = reqwest::Client::new();
    let admin = token("t", "admin", "admin");
    let gql = |addr: String, q: Value| {
        let (client, admin) = (client.clone(), admin.clone());
        async move {
            let v: Value = client
                .post(format!("http://{addr}/graphql"))
                .bearer_auth(admin)
                .json(&q)
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json");
            assert!(v.get("errors").is_none(), "{v}");
            v
        }
    };
    let book = gql(
        a.addr.clone(),
        json!({"query": "mutation { createAddressBook(input: {name: \"B\"}) { addressBook { id } } }"}),
    )
    .await;
    let book = book["data"]["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    gql(
        a.addr.clone(),
        json!({"query": "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, eventTypes: [\"group.created\"]}) { secret } }", "variables": {"u": hook}}),
    )
    .await;
    const N: usize = 1000;
    let mut tasks = vec![];
    for i in 0..N {
        let addr = if i % 2 == 0 { a.addr.clone() } else { b.addr.clone() };
        let q = json!({"query": "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }", "variables": {"i": {"addressBookId": book, "name": format!("G{i}")}}});
        tasks.push(tokio::spawn(gql(addr, q)));
        if tasks.len() == 8 {
            for t in tasks.drain(..) {
                t.await.unwrap();
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Kill B while deliveries are under way, then bring it back.
    for _ in 0..600 {
        if got.lock().unwrap().len() >= N / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.child.kill().expect("kill -9");
    let _ = b.child.wait();
    let b2 = start(&db, &env);
    let mut unique = 0;
    for _ in 0..1200 {
        unique = got.lock().unwrap().iter().collect::<std::collections::HashSet<_>>().len();
        if unique >= N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = got.lock().unwrap().len();
    eprintln!(
        "webhooks across two processes and a kill -9: {N} events, {unique} delivered, {} duplicates",
        total - unique
    );
    assert_eq!(unique, N, "every event delivered after the kill");
    drop(a);
    drop(b2);
    cohort_store::testing::drop_postgres_database(&admin_url, &name).await.expect("drop database");
}

/// Runs `cohort serve` to its failure (it must not start) and returns what it printed.
fn serve_fails(env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cohort"));
    cmd.arg("serve").env_clear().env("COHORT_LISTEN", "127.0.0.1:0").env("COHORT_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run cohort serve");
    assert!(!out.status.success(), "cohort serve started with {env:?}");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn configuration_is_checked_before_the_database_and_errors_say_where() {
    let dir = std::env::temp_dir().join(format!("cohort-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("untouched.db");
    let url = format!("sqlite://{}", db.display());
    // A bad key file fails before the database is opened: the file is never created.
    let out = serve_fails(&[("COHORT_DATABASE_URL", &url), ("COHORT_JWT_PUBLIC_KEYS", "/nonexistent/keys.pem")]);
    assert!(out.contains("COHORT_JWT_PUBLIC_KEYS") || out.contains("/nonexistent/keys.pem"), "{out}");
    assert!(!db.exists(), "the database was touched before the configuration was checked");
    // An unreachable PostgreSQL names host and port, never the password.
    let out = serve_fails(&[
        ("COHORT_DATABASE_URL", "postgres://cohort:hunter2-secret@127.0.0.1:1/cohort"),
        ("COHORT_JWT_SECRET", SECRET),
        ("COHORT_DATABASE_ACQUIRE_TIMEOUT_MS", "2000"),
    ]);
    assert!(out.contains("127.0.0.1:1") && out.contains("'cohort'"), "{out}");
    assert!(!out.contains("hunter2-secret"), "the password leaked: {out}");
    // A SQLite file in a directory that does not exist names the path.
    let out =
        serve_fails(&[("COHORT_DATABASE_URL", "sqlite:///nonexistent-dir/cohort.db"), ("COHORT_JWT_SECRET", SECRET)]);
    assert!(out.contains("/nonexistent-dir/cohort.db"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One access-log line per request at `info`: method, route, status, duration, request id,
/// tenant and user ids — never the token.
#[tokio::test]
async fn every_request_has_one_access_log_line_without_the_token() {
    let dir = std::env::temp_dir().join(format!("cohort-log-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = start(&format!("sqlite://{}", dir.join("log.db").display()), &[]);
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let admin = token("logs", "boss", "admin");
    let r = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&admin)
        .header("x-request-id", "rid-access-log-1")
        .json(&json!({"query": "{ viewer { tenant } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{base}/healthz")).header("x-request-id", "rid-access-log-2").send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The REST facade: its route template (with the literal colon), and who asked — also when
    // the answer is a problem.
    let r = client
        .post(format!("{base}/api/v1/prices:resolve"))
        .bearer_auth(&admin)
        .header("x-request-id", "rid-access-log-3")
        .json(&json!({"contactId": "bm9uZQ", "sku": "X", "quantity": "1", "currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let mut access = vec![];
    for _ in 0..100 {
        access = server
            .logs
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["message"] == "request" && v.get("route").is_some())
            .cloned()
            .collect();
        if access.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let by_rid = |rid: &str| {
        let lines: Vec<&Value> = access.iter().filter(|v| v.to_string().contains(rid)).collect();
        assert_eq!(lines.len(), 1, "one access line for {rid}: {access:#?}");
        lines[0].clone()
    };
    let g = by_rid("rid-access-log-1");
    assert_eq!(
        (g["level"].as_str(), g["method"].as_str(), g["route"].as_str()),
        (Some("INFO"), Some("POST"), Some("/graphql"))
    );
    assert_eq!(g["status"], 200);
    assert!(g["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{g}");
    assert!(uuid::Uuid::parse_str(g["tenant_id"].as_str().unwrap()).is_ok(), "{g}");
    assert!(uuid::Uuid::parse_str(g["user_id"].as_str().unwrap()).is_ok(), "{g}");
    let h = by_rid("rid-access-log-2");
    assert_eq!((h["route"].as_str(), h["user_id"].as_str()), (Some("/healthz"), Some("")));
    let rest = by_rid("rid-access-log-3");
    assert_eq!((rest["route"].as_str(), rest["status"].as_u64()), (Some("/api/v1/prices:resolve"), Some(404)));
    assert!(uuid::Uuid::parse_str(rest["user_id"].as_str().unwrap()).is_ok(), "{rest}");
    let all = server.logs.lock().unwrap().iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n");
    assert!(!all.contains(&admin), "a token reached the log");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Migration 18 replaces an index of `group_memberships`. SQLite plans by `sqlite_stat1`, and a
/// new index without statistics next to analysed ones lost W1 its plan on dataset M (490 → 21
/// requests a second): on an analysed database the migration analyses the table again.
#[tokio::test]
async fn replacing_an_index_keeps_sqlite_statistics_complete() {
    use cohort_migrations::sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, Statement};
    use cohort_migrations::{Migrator, MigratorTrait};
    let path = std::env::temp_dir().join(format!("cohort-m18-{}.db", uuid::Uuid::new_v4().simple()));
    let db = Database::connect(ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display())).to_owned())
        .await
        .unwrap();
    let before_18 = Migrator::migrations().iter().position(|m| m.name() == "m20261207_000018_selection_index").unwrap();
    Migrator::up(&db, Some(before_18 as u32)).await.unwrap();
    // A membership row (foreign keys off: only the statistics matter here), then statistics.
    db.execute_unprepared("PRAGMA foreign_keys = OFF").await.unwrap();
    db.execute_unprepared(
        "INSERT INTO group_memberships (tenant_id, group_id, contact_id, address_book_id, sort_name, joined_at, source) \
         VALUES (x'01', x'02', x'03', x'04', 'a', '2026-01-01T00:00:00Z', 'IMPORT')",
    )
    .await
    .unwrap();
    db.execute_unprepared("ANALYZE").await.unwrap();
    let indexes = |db: &cohort_migrations::sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            let sql = "SELECT idx FROM sqlite_stat1 WHERE tbl = 'group_memberships' ORDER BY idx";
            let rows = db.query_all_raw(Statement::from_string(DatabaseBackend::Sqlite, sql)).await.unwrap();
            rows.iter().map(|r| r.try_get::<String>("", "idx").unwrap()).collect::<Vec<_>>()
        }
    };
    assert!(indexes(&db).await.contains(&"ix_memberships_book".to_owned()));
    Migrator::up(&db, None).await.unwrap();
    let after = indexes(&db).await;
    assert!(after.contains(&"ix_memberships_book_contact".to_owned()), "{after:?}");
    assert!(!after.contains(&"ix_memberships_book".to_owned()), "{after:?}");
    // And back: the old index gets its statistics again.
    Migrator::down(&db, Some(1)).await.unwrap();
    let back = indexes(&db).await;
    assert!(back.contains(&"ix_memberships_book".to_owned()), "{back:?}");
    assert!(!back.contains(&"ix_memberships_book_contact".to_owned()), "{back:?}");
    db.close().await.unwrap();
    let _ = std::fs::remove_file(&path);
}
