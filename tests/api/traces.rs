//! Traces: W3C trace context in, `trace_id` in every log line of a request, spans (request →
//! GraphQL operation → SQL statements) out over OTLP/HTTP to a small receiver in the test.
//!
//! The subscriber and the tracer provider are process-global, so each test runs the real
//! `cohort serve` as a child process (JSON logs on its stderr) instead of a server in this
//! test binary.

use crate::support::{SECRET, TempDir};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";
/// A variable value that must not reach any span.
const SECRET_NAME: &str = "Book-with-a-secret-name-7c1e";

/// A running `cohort serve`; killed on drop if the test did not stop it.
struct Cohort {
    child: Child,
    addr: String,
    logs: Option<std::thread::JoinHandle<Vec<Value>>>,
}

impl Drop for Cohort {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cohort {
    fn start(db_url: &str, extra: &[(&str, &str)]) -> Cohort {
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
        // Every JSON line until the process ends (joined after it has exited).
        let logs = std::thread::spawn(move || {
            let mut lines = vec![];
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                if v["message"] == "listening" {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                lines.push(v);
            }
            lines
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("cohort did not report its address");
        Cohort { child, addr, logs: Some(logs) }
    }

    fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// Stops the server with SIGTERM (graceful shutdown, which flushes the spans) and returns
    /// every log line it wrote.
    async fn stop(mut self) -> Vec<Value> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut exited = None;
        for _ in 0..300 {
            if let Ok(Some(s)) = self.child.try_wait() {
                exited = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(exited.is_some_and(|s| s.success()), "cohort did not exit cleanly on SIGTERM");
        self.logs.take().expect("logs").join().expect("log reader")
    }
}

/// A local OTLP/HTTP receiver: `POST /v1/traces` with an `application/x-protobuf`
/// `ExportTraceServiceRequest`. Returns its base URL and the spans received so far, with the
/// `service.name` of their resource.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, Span)>>>) {
    let got: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                assert_eq!(ct, "application/x-protobuf", "OTLP/HTTP with protobuf bodies");
                let req = ExportTraceServiceRequest::decode(body).expect("an ExportTraceServiceRequest");
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|a| a.key == "service.name")
                        .map(|a| value_text(a.value.as_ref().and_then(|v| v.value.as_ref())))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            sink.lock().unwrap().push((service.clone(), span));
                        }
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse { partial_success: None }.encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, got)
}

fn value_text(v: Option<&any_value::Value>) -> String {
    match v {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).map(|a| value_text(a.value.as_ref().and_then(|v| v.value.as_ref())))
}

fn token() -> String {
    cohort_api::auth::issue_hs256(SECRET.as_bytes(), "cohort", "cohort-api", "traces", "boss", &["admin".into()], 600)
        .expect("token")
}

async fn post(client: &reqwest::Client, cohort: &Cohort, headers: &[(&str, &str)], body: Value) -> Value {
    let mut req = client.post(cohort.url()).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert!(v.get("errors").is_none(), "{v}");
    v
}

/// The lines logged inside the request with this `x-request-id`.
fn request_lines<'a>(logs: &'a [Value], rid: &str) -> Vec<&'a Value> {
    logs.iter().filter(|v| v["span"]["request_id"] == rid).collect()
}

/// The span tree below `root`, one line per span, for the failure messages (and the curious).
fn tree(spans: &[&Span], root: &Span) -> String {
    fn walk(spans: &[&Span], s: &Span, depth: usize, out: &mut String) {
        let attrs: Vec<String> = s
            .attributes
            .iter()
            .map(|a| format!("{}={:?}", a.key, value_text(a.value.as_ref().and_then(|v| v.value.as_ref()))))
            .collect();
        out.push_str(&format!("{}{} [{}] {}\n", "  ".repeat(depth), s.name, hex(&s.span_id), attrs.join(" ")));
        let mut children: Vec<&&Span> = spans.iter().filter(|c| c.parent_span_id == s.span_id).collect();
        children.sort_by_key(|c| c.start_time_unix_nano);
        for c in children {
            walk(spans, c, depth + 1, out);
        }
    }
    let mut out = format!("trace {} (parent {})\n", hex(&root.trace_id), hex(&root.parent_span_id));
    walk(spans, root, 0, &mut out);
    out
}

/// With export on: spans of a request arrive at the collector as request → graphql.operation →
/// SQL statements, in the caller's trace, without the token or any variable value; and every log
/// line of the request carries the trace id.
async fn spans_are_exported_in_the_callers_trace(db_url: &str, db_system: &str) {
    let (collector, got) = receiver().await;
    let cohort = Cohort::start(
        db_url,
        &[
            ("COHORT_OTLP_ENDPOINT", collector.as_str()),
            ("COHORT_OTLP_SERVICE_NAME", "cohort-under-test"),
            // Lines logged inside statement spans (each statement's text) must still be lines
            // of the request.
            ("COHORT_LOG", "info,cohort::sql=debug"),
        ],
    );
    let client = reqwest::Client::new();
    let bearer = format!("Bearer {}", token());
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    let create = json!({
        "query": "mutation CreateBook($n: String!) { createAddressBook(input: {name: $n}) { addressBook { id name } } }",
        "operationName": "CreateBook",
        "variables": {"n": SECRET_NAME},
    });
    let d = post(
        &client,
        &cohort,
        &[("authorization", &bearer), ("traceparent", &traceparent), ("x-request-id", "rid-traced-1")],
        create,
    )
    .await;
    assert_eq!(d["data"]["createAddressBook"]["addressBook"]["name"], SECRET_NAME);
    // No trace context: a trace of its own, whose id the log lines carry too. `node(id:)` reads
    // through the request's data loader, whose batches run as tasks of their own.
    let book = d["data"]["createAddressBook"]["addressBook"]["id"].as_str().expect("book id").to_owned();
    let read = json!({
        "query": "query Books($id: ID!) { node(id: $id) { ... on AddressBook { name } } }",
        "variables": {"id": book},
    });
    let r = post(&client, &cohort, &[("authorization", &bearer), ("x-request-id", "rid-untraced-2")], read).await;
    assert_eq!(r["data"]["node"]["name"], SECRET_NAME);
    let logs = cohort.stop().await;
    let spans: Vec<(String, Span)> = got.lock().unwrap().clone();
    assert!(spans.iter().all(|(service, _)| service == "cohort-under-test"), "service.name of the resource");
    let spans: Vec<&Span> = spans.iter().map(|(_, s)| s).collect();

    // The traced request: a server span under the caller's span, in the caller's trace.
    let in_trace: Vec<&Span> = spans.iter().copied().filter(|s| hex(&s.trace_id) == TRACE_ID).collect();
    let root = in_trace
        .iter()
        .copied()
        .find(|s| hex(&s.parent_span_id) == PARENT_SPAN_ID)
        .unwrap_or_else(|| panic!("no span is a child of the caller's span: {spans:#?}"));
    let shown = tree(&in_trace, root);
    eprintln!("{shown}");
    assert_eq!(root.name, "POST /graphql", "{shown}");
    assert_eq!(root.kind, opentelemetry_proto::tonic::trace::v1::span::SpanKind::Server as i32, "{shown}");
    assert_eq!(attr(root, "http.request.method").as_deref(), Some("POST"), "{shown}");
    assert_eq!(attr(root, "http.route").as_deref(), Some("/graphql"), "{shown}");
    assert_eq!(attr(root, "http.response.status_code").as_deref(), Some("200"), "{shown}");
    assert_eq!(in_trace.iter().filter(|s| hex(&s.parent_span_id) == PARENT_SPAN_ID).count(), 1, "{shown}");
    let by_id: HashMap<Vec<u8>, &Span> = in_trace.iter().map(|s| (s.span_id.clone(), *s)).collect();
    let below = |s: &Span, ancestor: &Span| {
        let mut cur = s.parent_span_id.clone();
        while let Some(p) = by_id.get(&cur) {
            if p.span_id == ancestor.span_id {
                return true;
            }
            cur = p.parent_span_id.clone();
        }
        false
    };
    assert!(
        in_trace.iter().all(|s| s.span_id == root.span_id || below(s, root)),
        "every span is below the request: {shown}"
    );
    let op = in_trace
        .iter()
        .copied()
        .find(|s| s.name == "graphql.operation")
        .unwrap_or_else(|| panic!("no graphql.operation span: {shown}"));
    assert_eq!(op.parent_span_id, root.span_id, "{shown}");
    assert_eq!(attr(op, "graphql.operation.name").as_deref(), Some("CreateBook"), "{shown}");
    assert_eq!(attr(op, "graphql.operation.type").as_deref(), Some("mutation"), "{shown}");
    let statements: Vec<&Span> =
        in_trace.iter().copied().filter(|s| s.name.starts_with("sea_orm.") && below(s, op)).collect();
    assert!(
        statements.iter().any(|s| attr(s, "db.statement").is_some_and(|q| q.contains("INSERT INTO"))
            && attr(s, "db.operation").as_deref() == Some("INSERT")),
        "an INSERT statement span below the operation: {shown}"
    );
    for s in &statements {
        assert_eq!(attr(s, "db.system").as_deref(), Some(db_system), "{shown}");
        assert_eq!(s.kind, opentelemetry_proto::tonic::trace::v1::span::SpanKind::Client as i32, "{shown}");
    }
    // Nothing secret left: not the token, not a variable's value, not the document.
    let token = token();
    for s in &spans {
        let text = format!("{} {:?} {:?}", s.name, s.attributes, s.events);
        assert!(!text.contains(SECRET_NAME), "a variable value reached a span: {}", tree(&[s], s));
        assert!(!text.contains(&token) && !text.contains(SECRET), "a secret reached a span: {}", tree(&[s], s));
        assert!(!text.contains("createAddressBook(input"), "the document reached a span: {}", tree(&[s], s));
    }

    // The untraced request: a root span with a new trace id — the one in its log lines.
    let lines = request_lines(&logs, "rid-untraced-2");
    let own_id = lines.first().and_then(|v| v["span"]["trace_id"].as_str()).expect("log lines of the second request");
    assert!(own_id.len() == 32 && own_id != TRACE_ID, "{own_id}");
    let own_root = spans
        .iter()
        .find(|s| hex(&s.trace_id) == own_id && s.parent_span_id.is_empty())
        .unwrap_or_else(|| panic!("no root span in trace {own_id}"));
    let own_op = spans
        .iter()
        .copied()
        .find(|s| s.name == "graphql.operation" && s.parent_span_id == own_root.span_id)
        .unwrap_or_else(|| panic!("no operation span in trace {own_id}"));
    assert_eq!(attr(own_op, "graphql.operation.name").as_deref(), Some("Books"));
    assert_eq!(attr(own_op, "graphql.operation.type").as_deref(), Some("query"));
    // The loader's statement (the book by id) is the operation's child too.
    assert!(
        spans.iter().any(|s| s.parent_span_id == own_op.span_id
            && attr(s, "db.statement").is_some_and(|q| q.contains("address_books") && q.contains(" IN "))),
        "the loader's statement below the operation: {}",
        tree(&spans.iter().copied().filter(|s| s.trace_id == own_root.trace_id).collect::<Vec<_>>(), own_root)
    );
    // Only the requests' traces: the webhook worker's and the metering's statements, outside
    // any request, are not exported.
    let traces: HashSet<String> = spans.iter().map(|s| hex(&s.trace_id)).collect();
    assert_eq!(traces, HashSet::from([TRACE_ID.to_owned(), own_id.to_owned()]), "{spans:#?}");

    // Every line of both requests carries its trace id, the access-log line included.
    for (rid, id) in [("rid-traced-1", TRACE_ID), ("rid-untraced-2", own_id)] {
        let lines = request_lines(&logs, rid);
        assert!(
            lines.iter().any(|v| v["message"] == "request" && v["route"] == "/graphql"),
            "access line of {rid}: {lines:#?}"
        );
        for l in &lines {
            assert_eq!(l["span"]["trace_id"], id, "{l}");
        }
        // Its statements' lines carry the ids too: the second request's only statement is its
        // data loader's (its viewer was resolved by the first), which runs in a task of its own.
        let traced: Vec<&Value> = lines.iter().copied().filter(|v| v["span"]["trace_id"] == id).collect();
        assert!(traced.iter().any(|v| v["sql"].is_string()), "statement lines of {rid}: {traced:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_spans_are_exported_in_the_callers_trace() {
    let dir = TempDir::new("cohort-traces");
    spans_are_exported_in_the_callers_trace(&format!("sqlite://{}", dir.0.join("t.db").display()), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_spans_are_exported_in_the_callers_trace() {
    let Some(admin) = std::env::var("COHORT_TEST_DATABASE_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
        return;
    };
    let name = format!("cohort_t_{}", uuid::Uuid::new_v4().simple());
    cohort_store::testing::create_migrated_postgres_database(&admin, &name).await.expect("database");
    spans_are_exported_in_the_callers_trace(&cohort_store::testing::with_database(&admin, &name), "postgresql").await;
    cohort_store::testing::drop_postgres_database(&admin, &name).await.expect("drop database");
}

/// Without an exporter, trace ids still exist: the caller's from `traceparent`, else a fresh one
/// per request; a malformed `traceparent` is ignored (a fresh id, the request is served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_the_trace_id_without_an_exporter() {
    let dir = TempDir::new("cohort-traceids");
    let cohort = Cohort::start(&format!("sqlite://{}", dir.0.join("t.db").display()), &[]);
    let client = reqwest::Client::new();
    let bearer = format!("Bearer {}", token());
    let q = json!({"query": "{ viewer { tenant } addressBooks { totalCount } }"});
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    post(
        &client,
        &cohort,
        &[("authorization", &bearer), ("traceparent", &traceparent), ("x-request-id", "rid-a")],
        q.clone(),
    )
    .await;
    post(&client, &cohort, &[("authorization", &bearer), ("x-request-id", "rid-b")], q.clone()).await;
    post(&client, &cohort, &[("authorization", &bearer), ("x-request-id", "rid-c")], q.clone()).await;
    let bad = "00-not-a-trace-id-01";
    post(&client, &cohort, &[("authorization", &bearer), ("traceparent", bad), ("x-request-id", "rid-d")], q).await;
    let logs = cohort.stop().await;
    let id_of = |rid: &str| {
        let lines = request_lines(&logs, rid);
        assert!(
            lines.iter().any(|v| v["message"] == "request" && v["route"] == "/graphql"),
            "access line of {rid}: {logs:#?}"
        );
        let ids: HashSet<&str> = lines.iter().map(|v| v["span"]["trace_id"].as_str().unwrap_or("missing")).collect();
        assert_eq!(ids.len(), 1, "one trace id in every line of {rid}: {lines:#?}");
        let id = ids.into_iter().next().unwrap_or_default().to_owned();
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
        id
    };
    assert_eq!(id_of("rid-a"), TRACE_ID);
    let (b, c, d) = (id_of("rid-b"), id_of("rid-c"), id_of("rid-d"));
    assert!(b != c && b != TRACE_ID && c != TRACE_ID && d != TRACE_ID && d != b, "fresh ids: {b} {c} {d}");
    assert!(!logs.iter().any(|v| v["message"] == "exporting traces over OTLP/HTTP"), "nothing is exported");
}

/// A bad `COHORT_OTLP_ENDPOINT` stops the start with a configuration error naming it, before
/// the database is touched.
#[test]
fn an_invalid_otlp_endpoint_is_refused_at_start() {
    let dir = TempDir::new("cohort-otlp-cfg");
    let db = dir.0.join("untouched.db");
    for (endpoint, says) in [
        ("collector:4318", "COHORT_OTLP_ENDPOINT must be an http(s) URL"),
        ("grpc://collector:4317", "COHORT_OTLP_ENDPOINT must be an http(s) URL"),
        ("http://user:hunter2@collector:4318", "COHORT_OTLP_ENDPOINT must not carry credentials"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cohort"))
            .arg("serve")
            .env_clear()
            .env("COHORT_DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("COHORT_LISTEN", "127.0.0.1:0")
            .env("COHORT_JWT_SECRET", SECRET)
            .env("COHORT_OTLP_ENDPOINT", endpoint)
            .output()
            .expect("run cohort serve");
        assert!(!out.status.success(), "{endpoint} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("configuration") && err.contains(says), "{endpoint}: {err}");
        assert!(!err.contains("hunter2"), "a credential was echoed: {err}");
        assert!(!db.exists(), "the database was touched before the configuration was checked");
    }
}

/// A collector that cannot be reached costs the requests nothing: they are served, the failed
/// export is logged, and the server still stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_does_not_break_requests() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let dir = TempDir::new("cohort-otlp-down");
    let endpoint = format!("http://127.0.0.1:{port}");
    let cohort =
        Cohort::start(&format!("sqlite://{}", dir.0.join("t.db").display()), &[("COHORT_OTLP_ENDPOINT", &endpoint)]);
    let client = reqwest::Client::new();
    let bearer = format!("Bearer {}", token());
    for i in 0..3 {
        let d = post(
            &client,
            &cohort,
            &[("authorization", &bearer)],
            json!({"query": "mutation($n: String!) { createAddressBook(input: {name: $n}) { addressBook { name } } }", "variables": {"n": format!("B{i}")}}),
        )
        .await;
        assert_eq!(d["data"]["createAddressBook"]["addressBook"]["name"], format!("B{i}"));
    }
    let logs = cohort.stop().await;
    assert!(
        logs.iter().any(|v| matches!(v["level"].as_str(), Some("WARN" | "ERROR")) && v.to_string().contains("export")),
        "the failed export is logged: {logs:#?}"
    );
}
