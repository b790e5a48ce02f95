//! Live updates: `subscription { events }` over WebSocket (`graphql-transport-ws` on `/graphql`).
//!
//! With a real client — Python `gql` over `websockets` (`scripts/gql_subscribe.py`) — an admin's
//! subscription receives the events of mutations made after subscribing, once each, in order and
//! filtered by type; `after` (an `events` cursor or an event id) replays what followed it; an
//! agent gets `FORBIDDEN`; a bad or missing token is refused at `connection_init` (close 4403).
//!
//! With a raw protocol client (tokio-tungstenite), what the protocol and Cohort's limits ask of
//! the server: the subprotocol at the upgrade, the init timeout (4408), subscribe before the
//! acknowledgement (4401), a second init (4429), a duplicate id (4409), queries and mutations
//! refused, one root field, the request guards (aliases), subscriptions per connection
//! (`RATE_LIMITED`), the protocol's ping and the cut-off of a silent client (3008), the gauges in
//! `/metrics`, an expiring token ending the subscription, shutdown (1001), events written by
//! another replica arriving by the poll (PostgreSQL), and trusted-documents mode over WebSocket.

use crate::on_both_backends_with;
use crate::support::{Backend, CREATE_BOOK, CREATE_CONTACT, SECRET, TestApp};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const CREATE_GROUP: &str = "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }";
const ADD: &str = "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount } }";
const EVENTS: &str = "query($t: [String!], $a: String) { events(first: 100, types: $t, after: $a) {
    edges { cursor node { id type occurredAt subjects payload actor { subject } } } } }";
const SUBSCRIBE: &str = "subscription($t: [String!], $a: String) {
    events(types: $t, after: $a) { id type occurredAt subjects payload actor { subject } } }";

/// A server with short intervals, so the protocol's timers show within a test.
async fn live(backend: Backend) -> Option<TestApp> {
    live_with(backend, |_| {}).await
}

async fn live_with(backend: Backend, f: impl FnOnce(&mut cohort_api::config::Settings)) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, |s| {
        s.subscriptions.max_subscriptions = 2;
        s.subscriptions.ping_interval = Duration::from_millis(700);
        s.subscriptions.init_timeout = Duration::from_secs(1);
        s.subscriptions.poll_interval = Duration::from_millis(200);
        s.jwt.leeway_secs = 0;
        f(s);
    })
    .await;
    if app.is_none() {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
    }
    app
}

on_both_backends_with!(live;
    python_gql_receives_new_events_once_in_order_and_filtered,
    python_gql_replays_after_a_cursor_or_an_event_id,
    python_gql_agent_is_forbidden_and_bad_tokens_are_refused,
    the_protocol_handshake_and_its_close_codes,
    subscribe_rules_limits_and_gauges,
    pings_and_silent_clients,
    an_expired_token_ends_the_subscription,
    shutdown_closes_websockets,
    events_of_another_replica_arrive_by_polling,
);

/// Trusted-documents mode holds over WebSocket too: only the manifest's documents subscribe.
async fn trusted(backend: Backend) -> Option<TestApp> {
    let hash = cohort_api::persisted::sha256_hex(SUBSCRIBE);
    let manifest = json!({
        hash: SUBSCRIBE,
        cohort_api::persisted::sha256_hex(CREATE_BOOK): CREATE_BOOK,
        cohort_api::persisted::sha256_hex(EVENTS): EVENTS,
    });
    let docs = cohort_api::persisted::TrustedDocuments::parse("test", &manifest.to_string()).expect("manifest");
    live_with(backend, move |s| s.persisted.trusted = Some(std::sync::Arc::new(docs))).await
}

mod trusted_documents {
    use super::{only_trusted_documents_subscribe, trusted};
    crate::on_both_backends_with!(trusted; only_trusted_documents_subscribe);
}

// ---------------------------------------------------------------------------------------------
// Python `gql`

/// Whether python3 can import `module` (`.ci/run` installs `gql[websockets]` and sets
/// `COHORT_TEST_REQUIRE_PYTHON_TOOLS=1`, which turns a missing one into a failure).
fn python_has(module: &str) -> bool {
    let required = std::env::var("COHORT_TEST_REQUIRE_PYTHON_TOOLS").is_ok_and(|v| v == "1");
    let has = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(has || !required, "COHORT_TEST_REQUIRE_PYTHON_TOOLS=1 but python3 cannot import {module}");
    if !has {
        eprintln!("skipped: python3 cannot import {module}");
    }
    has
}

/// `scripts/gql_subscribe.py` running against the app; its output lines as JSON.
struct PyClient {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<Value>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PyClient {
    fn start(app: &TestApp, token: &str, spec: Value) -> PyClient {
        use std::io::{BufRead, Read};
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gql_subscribe.py");
        let mut child = std::process::Command::new("python3")
            .args([script, &app.url("/graphql"), token, &spec.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "unparsed": line }));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stderr.take().expect("stderr"), stderr.clone());
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            *sink.lock().unwrap() = s;
        });
        PyClient { child, lines, stderr }
    }

    /// The next line the client prints (at most 30 s).
    async fn next(&mut self) -> Value {
        match tokio::time::timeout(Duration::from_secs(30), self.lines.recv()).await {
            Ok(Some(v)) => v,
            other => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!(
                    "gql client: {}; stderr:\n{}",
                    if other.is_ok() { "ended" } else { "no output for 30 s" },
                    self.stderr.lock().unwrap()
                );
            }
        }
    }

    /// Reads `n` events, then the client's `done`.
    async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = vec![];
        for _ in 0..n {
            let line = self.next().await;
            out.push(line.get("event").cloned().unwrap_or_else(|| panic!("expected an event, got {line}")));
        }
        let done = self.next().await;
        assert_eq!(done["done"], json!(true), "{done}");
        out
    }
}

impl Drop for PyClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fields the subscription selects, from an `events` query node.
fn same_fields(node: &Value) -> Value {
    json!({
        "id": node["id"], "type": node["type"], "occurredAt": node["occurredAt"],
        "subjects": node["subjects"], "payload": node["payload"], "actor": node["actor"],
    })
}

async fn events_after(admin: &crate::support::Actor<'_>, types: Value, after: Value) -> Vec<Value> {
    let d = admin.ok(EVENTS, json!({"t": types, "a": after})).await;
    d["events"]["edges"].as_array().expect("edges").iter().map(|e| e["node"].clone()).collect()
}

fn id_of(d: &Value, pointer: &str) -> String {
    d.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} in {d}")).to_owned()
}

async fn python_gql_receives_new_events_once_in_order_and_filtered(app: TestApp) {
    if !python_has("gql.transport.websockets") {
        return;
    }
    let token = app.token("acme", "admin", &["admin"]);
    let admin = app.with_token(&token);
    let book = id_of(&admin.ok(CREATE_BOOK, json!({"n": "Own"})).await, "/createAddressBook/addressBook/id");
    let before = events_after(&admin, json!(["group.*"]), Value::Null).await.len();
    let mut client = PyClient::start(
        &app,
        &token,
        json!({
            "query": SUBSCRIBE, "variables": {"t": ["group.*"]}, "expect": 3, "timeout": 60,
            "warmup": {"query": CREATE_GROUP, "variables": {"i": {"addressBookId": book, "name": "Warm-up"}}},
        }),
    );
    let ready = client.next().await;
    assert_eq!(ready["ready"], json!(true), "{ready}");
    let warmups = events_after(&admin, json!(["group.*"]), Value::Null).await.len() - before;
    assert!(warmups >= 1);

    // Mutations after subscribing: a contact (not a group event), a group, a member added.
    let input = json!({"kind": "PERSON", "firstName": "Anna", "lastName": "Abbott", "addressBookId": book});
    let anna = id_of(&admin.ok(CREATE_CONTACT, json!({"i": input})).await, "/createContact/contact/id");
    let g = id_of(
        &admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": book, "name": "Top"}})).await,
        "/createGroup/group/id",
    );
    admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [anna]}})).await;
    let second = id_of(
        &admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": book, "name": "Second"}})).await,
        "/createGroup/group/id",
    );

    let got = client.events(3).await;
    let expected: Vec<Value> = events_after(&admin, json!(["group.*"]), Value::Null).await[before + warmups..]
        .iter()
        .map(same_fields)
        .collect();
    assert_eq!(got, expected, "the events of the mutations, in order, each once, group events only");
    let types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["group.created", "group.members_added", "group.created"]);
    assert_eq!(got[0]["subjects"], json!([g]));
    assert_eq!(got[2]["subjects"], json!([second]));
    assert_eq!(got[1]["actor"]["subject"], "admin");
}

async fn python_gql_replays_after_a_cursor_or_an_event_id(app: TestApp) {
    if !python_has("gql.transport.websockets") {
        return;
    }
    let token = app.token("acme", "admin", &["admin"]);
    let admin = app.with_token(&token);
    let book = id_of(&admin.ok(CREATE_BOOK, json!({"n": "Own"})).await, "/createAddressBook/addressBook/id");
    for n in ["A", "B", "C"] {
        let input = json!({"kind": "PERSON", "firstName": n, "lastName": "Replay", "addressBookId": book});
        admin.ok(CREATE_CONTACT, json!({"i": input})).await;
    }
    let d = admin.ok(EVENTS, json!({"t": Value::Null, "a": Value::Null})).await;
    let edges = d["events"]["edges"].as_array().expect("edges").clone();
    assert_eq!(edges.len(), 4, "{d}");
    let expected: Vec<Value> = edges[1..].iter().map(|e| same_fields(&e["node"])).collect();

    // After an `events` cursor: the three contacts, at once.
    let spec = json!({"query": SUBSCRIBE, "variables": {"a": edges[0]["cursor"]}, "expect": 3, "timeout": 60});
    assert_eq!(PyClient::start(&app, &token, spec).events(3).await, expected);
    // After an event's id (what a subscriber has at hand), filtered: the last two contacts.
    let spec = json!({
        "query": SUBSCRIBE, "variables": {"a": edges[1]["node"]["id"], "t": ["contact.created"]},
        "expect": 2, "timeout": 60,
    });
    assert_eq!(PyClient::start(&app, &token, spec).events(2).await, expected[1..]);
    // A cursor that is neither: BAD_USER_INPUT on `after`.
    let spec = json!({"query": SUBSCRIBE, "variables": {"a": "garbage"}, "expect": 1, "timeout": 60});
    let line = PyClient::start(&app, &token, spec).next().await;
    assert_eq!(line["error"][0]["extensions"]["code"], "BAD_USER_INPUT", "{line}");
}

async fn python_gql_agent_is_forbidden_and_bad_tokens_are_refused(app: TestApp) {
    if !python_has("gql.transport.websockets") {
        return;
    }
    let subscribe = json!({"query": SUBSCRIBE, "expect": 1, "timeout": 60});
    let agent = app.token("acme", "agent", &["agent"]);
    let line = PyClient::start(&app, &agent, subscribe.clone()).next().await;
    assert_eq!(line["error"][0]["extensions"]["code"], "FORBIDDEN", "{line}");
    assert_eq!(line["error"][0]["path"], json!(["events"]), "{line}");

    let wrong_key = cohort_api::auth::issue_hs256(
        b"another-secret-that-is-long-enough-for-hs256",
        "cohort",
        "cohort-api",
        "acme",
        "admin",
        &["admin".into()],
        3600,
    )
    .expect("token");
    let expired =
        cohort_api::auth::issue_hs256(SECRET.as_bytes(), "cohort", "cohort-api", "acme", "admin", &["admin".into()], 0)
            .expect("token");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for bad in ["not-a-jwt", "", wrong_key.as_str(), expired.as_str()] {
        let line = PyClient::start(&app, bad, subscribe.clone()).next().await;
        assert_eq!(line["refused"]["code"], 4403, "{bad}: {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// The protocol, with a raw client

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(app: &TestApp) -> String {
    app.url("/graphql").replacen("http", "ws", 1)
}

async fn connect(app: &TestApp) -> Ws {
    let mut req = ws_url(app).into_client_request().expect("request");
    req.headers_mut().insert("sec-websocket-protocol", "graphql-ws, graphql-transport-ws".parse().unwrap());
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("upgrade");
    assert_eq!(resp.headers()["sec-websocket-protocol"], "graphql-transport-ws", "the only protocol served");
    ws
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into())).await.expect("send");
}

#[derive(Debug, PartialEq)]
enum Got {
    Json(Value),
    Closed(u16),
}

/// The next message (a `ping` is answered and skipped unless `pings`), at most 10 s.
async fn recv_with(ws: &mut Ws, pings: bool) -> Got {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message within 10 s");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if v["type"] == "ping" && !pings {
                    send(ws, json!({"type": "pong"})).await;
                    continue;
                }
                return Got::Json(v);
            }
            Some(Ok(Message::Close(frame))) => return Got::Closed(frame.map_or(1005, |f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return Got::Closed(1006),
        }
    }
}

async fn recv(ws: &mut Ws) -> Value {
    match recv_with(ws, false).await {
        Got::Json(v) => v,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn closed(ws: &mut Ws) -> u16 {
    match recv_with(ws, false).await {
        Got::Closed(code) => code,
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

/// Connected and acknowledged with `token`.
async fn ready(app: &TestApp, token: &str) -> Ws {
    let mut ws = connect(app).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "connection_ack"}));
    ws
}

/// The id of the newest event: subscribing `after` it, nothing written later can be missed,
/// however long the server takes to start the subscription.
async fn newest_event(admin: &crate::support::Actor<'_>) -> Value {
    let all = events_after(admin, Value::Null, Value::Null).await;
    all.last().expect("an event")["id"].clone()
}

fn subscribe(id: &str, query: &str, variables: Value) -> Value {
    json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
}

async fn the_protocol_handshake_and_its_close_codes(app: TestApp) {
    let token = app.token("acme", "admin", &["admin"]);
    // The upgrade needs the subprotocol.
    let err = tokio_tungstenite::connect_async(ws_url(&app)).await.expect_err("no subprotocol");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    // A GET without the upgrade is still a query.
    let r = app.client.get(app.url("/graphql?query=%7B__typename%7D")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // No connection_init in time.
    let mut ws = connect(&app).await;
    assert_eq!(closed(&mut ws).await, 4408);
    // Subscribe before the acknowledgement.
    let mut ws = connect(&app).await;
    send(&mut ws, subscribe("1", SUBSCRIBE, json!({}))).await;
    assert_eq!(closed(&mut ws).await, 4401);
    // Missing, malformed and refused tokens: 4403, whichever way the token comes.
    for payload in [
        Value::Null,
        json!({}),
        json!({"authorization": "Bearer nope"}),
        json!({"token": "nope"}),
        json!({"headers": {"Authorization": "Basic abc"}}),
    ] {
        let mut ws = connect(&app).await;
        send(&mut ws, json!({"type": "connection_init", "payload": payload})).await;
        assert_eq!(closed(&mut ws).await, 4403, "{payload}");
    }
    for payload in [json!({"token": token}), json!({"headers": {"Authorization": format!("Bearer {token}")}})] {
        let mut ws = connect(&app).await;
        send(&mut ws, json!({"type": "connection_init", "payload": payload})).await;
        assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    }
    // A second init.
    let mut ws = ready(&app, &token).await;
    send(&mut ws, json!({"type": "connection_init", "payload": {"token": token}})).await;
    assert_eq!(closed(&mut ws).await, 4429);
    // Something that is not a protocol message.
    let mut ws = ready(&app, &token).await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(closed(&mut ws).await, 4400);
    // The legacy protocol's `start`/`stop` (which the engine would take as `subscribe` and
    // `complete`, past the trusted-document and limit checks), unknown types, and a subscribe
    // without an id are refused.
    for msg in [
        json!({"type": "start", "id": "s1", "payload": {"query": SUBSCRIBE}}),
        json!({"type": "stop", "id": "s1"}),
        json!({"type": "connection_terminate"}),
        json!({"type": "subscribe", "payload": {"query": SUBSCRIBE}}),
    ] {
        let mut ws = ready(&app, &token).await;
        send(&mut ws, msg.clone()).await;
        assert_eq!(closed(&mut ws).await, 4400, "{msg}");
    }
    // A client's close is answered.
    let mut ws = ready(&app, &token).await;
    ws.close(None).await.unwrap();
    assert!(matches!(recv_with(&mut ws, false).await, Got::Closed(_)));
}

async fn subscribe_rules_limits_and_gauges(app: TestApp) {
    let token = app.token("acme", "admin", &["admin"]);
    let admin = app.with_token(&token);
    admin.ok(CREATE_BOOK, json!({"n": "Base"})).await;
    let mark = newest_event(&admin).await;
    let mut ws = ready(&app, &token).await;

    // Queries and mutations go over HTTP.
    send(&mut ws, subscribe("q", "{ viewer { user { id } } }", json!({}))).await;
    let m = recv(&mut ws).await;
    assert_eq!((m["id"].as_str(), m["type"].as_str()), (Some("q"), Some("next")), "{m}");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{m}");
    assert_eq!(recv(&mut ws).await, json!({"id": "q", "type": "complete"}));
    // One root field per subscription.
    send(&mut ws, subscribe("two", "subscription { a: events { id } b: events { id } }", json!({}))).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{m}");
    assert_eq!(recv(&mut ws).await["type"], "complete");
    // The HTTP request guards apply (here: aliases).
    let aliases: String = (0..60).map(|i| format!("a{i}: id ")).collect();
    send(&mut ws, subscribe("aliases", &format!("subscription {{ events {{ {aliases} }} }}"), json!({}))).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{m}");
    assert!(m["payload"]["errors"][0]["message"].as_str().unwrap().contains("aliases"), "{m}");
    assert_eq!(recv(&mut ws).await["type"], "complete");
    // Unknown types: BAD_USER_INPUT, as for the query.
    send(&mut ws, subscribe("types", SUBSCRIBE, json!({"t": ["group.exploded"]}))).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{m}");
    assert_eq!(recv(&mut ws).await["type"], "complete");
    // Over HTTP, a subscription is refused before it runs.
    let (_, body) = app.post_json(Some(&token), &json!({"query": "subscription { events { id } }"})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{body}");
    assert!(body.get("data").is_none(), "{body}");

    // Two subscriptions per connection here; a third is refused, the others go on.
    send(&mut ws, subscribe("s1", SUBSCRIBE, json!({"t": ["address_book.*"], "a": mark}))).await;
    send(&mut ws, subscribe("s2", SUBSCRIBE, json!({"t": ["contact.*"], "a": mark}))).await;
    send(&mut ws, subscribe("s3", SUBSCRIBE, json!({}))).await;
    let m = recv(&mut ws).await;
    assert_eq!((m["id"].as_str(), m["type"].as_str()), (Some("s3"), Some("error")), "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "RATE_LIMITED", "{m}");
    let gauge = |text: &str, name: &str| {
        text.lines().find(|l| l.starts_with(&format!("{name} "))).map(|l| l.split(' ').nth(1).unwrap().to_owned())
    };
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(gauge(&metrics, "cohort_subscriptions").as_deref(), Some("2"), "{metrics}");
    assert_eq!(gauge(&metrics, "cohort_ws_connections").as_deref(), Some("1"));

    let book = id_of(&admin.ok(CREATE_BOOK, json!({"n": "Live"})).await, "/createAddressBook/addressBook/id");
    let m = recv(&mut ws).await;
    assert_eq!((m["id"].as_str(), m["type"].as_str()), (Some("s1"), Some("next")), "{m}");
    assert_eq!(m["payload"]["data"]["events"]["subjects"], json!([book]));
    // Completing one makes room; a duplicate id closes the connection (4409).
    send(&mut ws, json!({"id": "s1", "type": "complete"})).await;
    send(&mut ws, subscribe("s3", SUBSCRIBE, json!({"t": ["contact.created"], "a": mark}))).await;
    let input = json!({"kind": "PERSON", "firstName": "Live", "lastName": "One", "addressBookId": book});
    admin.ok(CREATE_CONTACT, json!({"i": input})).await;
    let mut ids = vec![];
    for _ in 0..2 {
        let m = recv(&mut ws).await;
        assert_eq!(m["payload"]["data"]["events"]["type"], "contact.created", "{m}");
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(ids, ["s2", "s3"]);
    send(&mut ws, subscribe("s2", SUBSCRIBE, json!({}))).await;
    assert_eq!(closed(&mut ws).await, 4409);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!(gauge(&metrics, "cohort_subscriptions").as_deref(), Some("0"), "{metrics}");
    assert_eq!(gauge(&metrics, "cohort_ws_connections").as_deref(), Some("0"));
    let sent = gauge(&metrics, "cohort_subscription_messages_total").expect("counter");
    assert!(sent.parse::<f64>().unwrap() >= 7.0, "{sent}");
}

async fn pings_and_silent_clients(app: TestApp) {
    let token = app.token("acme", "admin", &["admin"]);
    // The server pings; a client that answers stays.
    let mut ws = ready(&app, &token).await;
    for _ in 0..4 {
        assert_eq!(recv_with(&mut ws, true).await, Got::Json(json!({"type": "ping"})));
        send(&mut ws, json!({"type": "pong"})).await;
    }
    // The client may ping too.
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    // A client that sends nothing is closed after two intervals.
    let mut silent = ready(&app, &token).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    loop {
        match recv_with(&mut silent, true).await {
            Got::Json(v) => assert_eq!(v["type"], "ping"),
            Got::Closed(code) => {
                assert_eq!(code, 3008);
                break;
            }
        }
    }
}

async fn an_expired_token_ends_the_subscription(app: TestApp) {
    let short =
        cohort_api::auth::issue_hs256(SECRET.as_bytes(), "cohort", "cohort-api", "acme", "admin", &["admin".into()], 3)
            .expect("token");
    let mut ws = ready(&app, &short).await;
    send(&mut ws, subscribe("s", SUBSCRIBE, json!({}))).await;
    // Each batch (here: every 200 ms) admits the token again; once it has expired, the
    // subscription ends instead of reading with it.
    let m = recv(&mut ws).await;
    assert_eq!((m["id"].as_str(), m["type"].as_str()), (Some("s"), Some("next")), "{m}");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{m}");
    assert_eq!(recv(&mut ws).await, json!({"id": "s", "type": "complete"}));
    // And a new subscription on that connection fails the same way.
    send(&mut ws, subscribe("t", SUBSCRIBE, json!({}))).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{m}");
}

async fn shutdown_closes_websockets(mut app: TestApp) {
    let token = app.token("acme", "admin", &["admin"]);
    let mut ws = ready(&app, &token).await;
    send(&mut ws, subscribe("s", SUBSCRIBE, json!({}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.begin_shutdown();
    assert_eq!(closed(&mut ws).await, 1001);
    tokio::time::timeout(Duration::from_secs(10), app.stop()).await.expect("the server drains");
}

/// Events written through another replica (no in-process wake-up) arrive by the poll.
async fn events_of_another_replica_arrive_by_polling(app: TestApp) {
    let Some(replica) = app.replica().await else {
        eprintln!("skipped: replicas need PostgreSQL");
        return;
    };
    let token = app.token("acme", "admin", &["admin"]);
    app.with_token(&token).ok(CREATE_BOOK, json!({"n": "Here"})).await;
    let mark = newest_event(&app.with_token(&token)).await;
    let mut ws = ready(&app, &token).await;
    send(&mut ws, subscribe("s", SUBSCRIBE, json!({"a": mark}))).await;
    let d = replica.with_token(&token).ok(CREATE_BOOK, json!({"n": "Elsewhere"})).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["payload"]["data"]["events"]["subjects"], json!([d["createAddressBook"]["addressBook"]["id"]]));
}

async fn only_trusted_documents_subscribe(app: TestApp) {
    let token = app.token("acme", "admin", &["admin"]);
    app.with_token(&token).ok(CREATE_BOOK, json!({"n": "First"})).await;
    let mark = newest_event(&app.with_token(&token)).await;
    let mut ws = ready(&app, &token).await;
    send(&mut ws, subscribe("no", "subscription { events { id } }", json!({}))).await;
    let m = recv(&mut ws).await;
    assert_eq!((m["id"].as_str(), m["type"].as_str()), (Some("no"), Some("error")), "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "TRUSTED_DOCUMENT_REQUIRED", "{m}");
    // By hash alone, as a client built with the manifest sends it.
    let hash = cohort_api::persisted::sha256_hex(SUBSCRIBE);
    let by_hash = json!({"id": "yes", "type": "subscribe", "payload": {
        "variables": {"a": mark}, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}}});
    send(&mut ws, by_hash).await;
    let d = app.with_token(&token).ok(CREATE_BOOK, json!({"n": "Trusted"})).await;
    let m = recv(&mut ws).await;
    assert_eq!(m["id"], "yes", "{m}");
    assert_eq!(m["payload"]["data"]["events"]["subjects"], json!([d["createAddressBook"]["addressBook"]["id"]]));
}
