//! GraphQL subscriptions over WebSocket, on `/graphql`: the `graphql-transport-ws` protocol (the
//! `graphql-ws` library's, which Apollo Client, urql, GraphiQL, Python `gql`, Hasura's and
//! PostGraphile's clients speak).
//!
//! async-graphql runs the protocol itself ([`async_graphql::http::WebSocket`], the engine inside
//! async-graphql-axum's `GraphQLWebSocket`); this module serves it on axum's WebSocket and adds
//! what the protocol asks of a server that the engine leaves out, and Cohort's limits:
//!
//! - **Upgrade**: a `GET /graphql` with `Upgrade: websocket` offering the subprotocol
//!   `graphql-transport-ws` (otherwise 400); over `COHORT_WS_MAX_CONNECTIONS` open WebSockets,
//!   503. Every other request to `/graphql` goes on to the HTTP handlers.
//! - **Authentication at `connection_init`**: its payload's `authorization` (`Bearer …`), `token`
//!   or `headers.authorization`, admitted by the same [`cohort_store::Gate`] as an HTTP request's
//!   bearer token. A missing or refused token closes the socket with `4403 Forbidden`; no
//!   `connection_init` within `COHORT_WS_INIT_TIMEOUT_SECS`, `4408`; `subscribe` before the
//!   acknowledgement, `4401`; a second `connection_init`, `4429`; a subscription id in use,
//!   `4409`; a message that is not the protocol's, `4400`. Each subscription re-admits the token
//!   for every delivery batch (see [`crate::graphql::events::EventSubscription`]).
//! - **Subscriptions only**: queries and mutations are refused here (`BAD_REQUEST`): over HTTP
//!   they are metered for data usage and bounded per request. A subscription selects exactly one
//!   root field. Documents pass the same depth, complexity and alias limits as over HTTP (the
//!   schema's extensions), and the same persisted-document rules ([`crate::persisted`]).
//! - **Bounds**: at most `COHORT_WS_MAX_SUBSCRIPTIONS` subscriptions at once per connection (one
//!   more gets an `error` message, `RATE_LIMITED`); messages up to `COHORT_MAX_BODY_BYTES`; the
//!   socket is read only as fast as the engine takes messages, and written as fast as the client
//!   reads (a client that stops reading is cut off after `COHORT_KEEP_ALIVE_TIMEOUT_SECS`).
//! - **Keep-alive**: the server sends the protocol's `ping` every `COHORT_WS_PING_SECS`; a client
//!   silent for two intervals (no `pong`, nothing) is closed (`3008`).
//! - **Shutdown**: open WebSockets are closed with `1001` and hold the server's drain until then.
//! - **Metrics**: `cohort_ws_connections`, `cohort_subscriptions` (gauges) and
//!   `cohort_subscription_messages_total`; a log line when a WebSocket closes.

use crate::config::SubscriptionLimits;
use crate::graphql::events::LiveConnection;
use crate::graphql::loaders::Loaders;
use crate::graphql::{RequestLoader, TenantKey};
use crate::http::AppState;
use crate::server::ConnectionSlot;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest};
use async_graphql::futures_util::{SinkExt, StreamExt, stream};
use async_graphql::http::{WebSocket as Engine, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Data, ServerError, ServerResult, Variables};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cohort_store::Refused;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;

/// The one subprotocol served.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The WebSocket side of the HTTP state: the limits and the open-connection count.
pub struct LiveState {
    pub limits: SubscriptionLimits,
    connections: Arc<Semaphore>,
}

impl LiveState {
    pub fn new(limits: &SubscriptionLimits) -> LiveState {
        LiveState { limits: limits.clone(), connections: Arc::new(Semaphore::new(limits.max_connections)) }
    }
}

/// Set in a WebSocket connection's request data: such requests may only subscribe.
struct OverWebSocket;

/// Route layer of `/graphql`: a WebSocket upgrade is served here, every other request goes on.
pub async fn upgrade_or_next(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !wants_websocket(req.headers()) {
        return next.run(req).await;
    }
    upgrade(st, req).await
}

fn wants_websocket(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

fn refusal(status: StatusCode, message: &str, code: &str) -> Response {
    let body = json!({ "errors": [ { "message": message, "extensions": { "code": code } } ] });
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

async fn upgrade(st: AppState, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    let offered = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL);
    if !offered {
        let message = format!("a GraphQL WebSocket must offer the subprotocol {PROTOCOL} (Sec-WebSocket-Protocol)");
        return refusal(StatusCode::BAD_REQUEST, &message, "BAD_REQUEST");
    }
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let Ok(permit) = st.live.connections.clone().try_acquire_owned() else {
        tracing::warn!(limit = st.live.limits.max_connections, "WebSocket limit reached: upgrade refused with 503");
        let mut r = refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket connections; retry shortly",
            "SERVICE_UNAVAILABLE",
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let slot = parts.extensions.get::<ConnectionSlot>().cloned();
    let rid = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let max = st.limits.max_body_bytes;
    // The request's span (with its request id) follows the connection.
    let span = tracing::Span::current();
    ws.protocols([PROTOCOL]).max_message_size(max).max_frame_size(max).on_upgrade(move |socket| {
        async move {
            serve(st, socket, rid, slot).await;
            drop(permit);
        }
        .instrument(span)
    })
}

/// Resolves when the server shuts down (never, for a connection without a slot).
async fn stopping(slot: &mut Option<ConnectionSlot>) {
    match slot {
        Some(s) => s.stopping().await,
        None => std::future::pending().await,
    }
}

async fn serve(st: AppState, socket: WebSocket, rid: String, mut slot: Option<ConnectionSlot>) {
    let opened = Instant::now();
    let limits = st.live.limits.clone();
    st.metrics.ws_connections.inc();
    let (mut sink, mut source) = socket.split();
    // The engine reads what the loop below lets through, and only as fast as it takes it.
    let (to_engine, mut from_socket) = mpsc::channel::<Vec<u8>>(8);
    let input = stream::poll_fn(move |cx| from_socket.poll_recv(cx));
    let init: Arc<Mutex<InitOutcome>> = Arc::default();
    let engine = Engine::new(st.schema.clone(), input, WebSocketProtocols::GraphQLWS)
        .on_connection_init(connection_init(st.clone(), rid.clone(), init.clone(), limits.poll_interval))
        .keepalive_timeout(limits.ping_interval * 2);
    let mut engine = std::pin::pin!(engine);
    let mut conn = Conn {
        st: &st,
        max_subscriptions: limits.max_subscriptions,
        acked: false,
        active: HashSet::new(),
        completed_by_client: HashSet::new(),
        rid,
    };
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let init_deadline = tokio::time::sleep(limits.init_timeout);
    let mut init_deadline = std::pin::pin!(init_deadline);
    let close: Option<(u16, String)> = loop {
        tokio::select! {
            _ = stopping(&mut slot) => break Some((1001, "server shutting down".into())),
            out = engine.next() => match out {
                None => break Some((1000, String::new())),
                Some(WsMessage::Text(text)) => {
                    let Some(text) = conn.outgoing(text) else { continue };
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Some(WsMessage::Close(code, reason)) => break Some(close_code(code, reason, &init)),
            },
            msg = source.next(), if to_engine.capacity() > 0 => match msg {
                None | Some(Err(_)) => break None,
                // The client closes: answer its close frame (the closing handshake).
                Some(Ok(Message::Close(frame))) => break Some(frame.map_or((1000, String::new()), |f| (f.code, String::new()))),
                Some(Ok(Message::Text(text))) => match conn.incoming(text.as_str()) {
                    Incoming::Forward(bytes) => {
                        // Never full: this branch runs only with room in the channel.
                        let _ = to_engine.try_send(bytes);
                    }
                    Incoming::Reply(reply) => {
                        if sink.send(Message::Text(reply.into())).await.is_err() {
                            break None;
                        }
                    }
                    Incoming::Close(code, reason) => break Some((code, reason)),
                },
                Some(Ok(Message::Binary(_))) => break Some((4400, "graphql-transport-ws messages are text".into())),
                // WebSocket-level ping and pong frames: tungstenite answers pings itself.
                Some(Ok(_)) => {}
            },
            _ = ping.tick(), if conn.acked => {
                if sink.send(Message::Text(r#"{"type":"ping"}"#.into())).await.is_err() {
                    break None;
                }
            }
            _ = &mut init_deadline, if !conn.acked => break Some((4408, "Connection initialisation timeout".into())),
        }
    };
    let code = close.as_ref().map_or(1006, |c| c.0);
    if let Some((code, reason)) = close {
        let reason = truncate(reason, 120);
        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
    }
    st.metrics.subscriptions.dec_by(conn.active.len() as i64);
    st.metrics.ws_connections.dec();
    // One line per WebSocket, like the access log's per request (never the token).
    let who = init.lock().ok().and_then(|i| i.who);
    tracing::info!(
        target: "cohort::ws",
        code,
        seconds = opened.elapsed().as_secs_f64(),
        tenant_id = who.map(|w| w.0.to_string()).unwrap_or_default(),
        user_id = who.map(|w| w.1.to_string()).unwrap_or_default(),
        "WebSocket closed"
    );
}

/// A close reason fits a control frame (at most 123 bytes).
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The engine's close codes, as `graphql-transport-ws` names the cases: a refused
/// `connection_init` is `4403` (the engine says `1002`), `subscribe` before the acknowledgement
/// `4401` (the engine: `1011`), an unreadable message `4400` (the engine: `1002`).
fn close_code(code: u16, reason: String, init: &Mutex<InitOutcome>) -> (u16, String) {
    if let Some((code, reason)) = init.lock().ok().and_then(|mut i| i.refused.take()) {
        return (code, reason.into());
    }
    match code {
        1011 if reason.starts_with("The handshake is not completed") => (4401, "Unauthorized".into()),
        1002 => (4400, reason),
        _ => (code, reason),
    }
}

/// The token a `connection_init` payload carries: `authorization` (`Bearer …`), `token`, or
/// `headers.authorization` (key case ignored).
fn token_of(payload: &Value) -> Option<String> {
    let get = |o: &Value, key: &str| -> Option<String> {
        o.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_owned)
    };
    let bearer = |s: String| -> Option<String> {
        let t = s.trim();
        let t = match t.split_once(char::is_whitespace) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ if t.eq_ignore_ascii_case("bearer") => "",
            _ => t,
        };
        (!t.is_empty()).then(|| t.to_owned())
    };
    get(payload, "authorization")
        .or_else(|| get(payload, "token"))
        .or_else(|| {
            payload
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("headers"))
                .and_then(|(_, h)| get(h, "authorization"))
        })
        .and_then(bearer)
}

/// What `connection_init` came to, for the loop: the close code of a refusal, or who connected.
#[derive(Default)]
struct InitOutcome {
    refused: Option<(u16, &'static str)>,
    /// (tenant id, user id).
    who: Option<(uuid::Uuid, uuid::Uuid)>,
}

/// `connection_init`: the token admitted, and the connection's request data built from it.
fn connection_init(
    st: AppState,
    rid: String,
    outcome: Arc<Mutex<InitOutcome>>,
    poll_interval: std::time::Duration,
) -> impl FnOnce(Value) -> std::pin::Pin<Box<dyn Future<Output = async_graphql::Result<Data>> + Send>> + Send + 'static
{
    move |payload| {
        Box::pin(async move {
            let refuse = |code: u16, reason: &'static str| {
                if let Ok(mut o) = outcome.lock() {
                    o.refused = Some((code, reason));
                }
                async_graphql::Error::new(reason)
            };
            let Some(token) = token_of(&payload) else {
                tracing::debug!("WebSocket connection_init without a token");
                return Err(refuse(4403, "Forbidden"));
            };
            match st.gate.admit_renewable(&token, Some(&rid)).await {
                Ok((handle, admission)) => {
                    if let Ok(mut o) = outcome.lock() {
                        o.who = Some((handle.viewer().tenant_id().0, handle.viewer().user_id().0));
                    }
                    let loaders: RequestLoader = async_graphql::dataloader::DataLoader::with_cache(
                        Loaders::new(handle.clone()),
                        crate::telemetry::request_spawner(tracing::Span::current()),
                        async_graphql::dataloader::HashMapCache::default(),
                    );
                    // The connection may live for hours: every result reads afresh.
                    loaders.enable_all_cache(false);
                    let mut data = Data::default();
                    data.insert(LiveConnection { admission, commits: handle.event_commits(), poll_interval });
                    data.insert(TenantKey(handle.viewer().tenant_key().to_owned()));
                    data.insert(loaders);
                    data.insert(handle);
                    data.insert(OverWebSocket);
                    Ok(data)
                }
                Err(Refused::Unauthenticated(reason)) => {
                    tracing::debug!(%reason, "WebSocket token rejected");
                    Err(refuse(4403, "Forbidden"))
                }
                Err(Refused::Internal(e)) => {
                    tracing::error!(error = %e, request_id = %rid, "resolving a WebSocket viewer failed");
                    Err(refuse(1011, "internal error"))
                }
            }
        })
    }
}

/// What to do with a client message.
enum Incoming {
    /// Hand it to the engine.
    Forward(Vec<u8>),
    /// Answer it here (the engine never sees it).
    Reply(String),
    /// Close the connection.
    Close(u16, String),
}

/// The loop's view of one connection: the subscriptions it has open.
struct Conn<'a> {
    st: &'a AppState,
    max_subscriptions: usize,
    acked: bool,
    active: HashSet<String>,
    /// Subscriptions the client completed: the engine's `complete` for each is not passed on
    /// (the protocol has the server send none after the client's).
    completed_by_client: HashSet<String>,
    /// The upgrade request's id: `INTERNAL` errors carry it, as over HTTP.
    rid: String,
}

fn error_message(id: &str, errors: Value) -> String {
    json!({ "id": id, "type": "error", "payload": errors }).to_string()
}

impl Conn<'_> {
    fn incoming(&mut self, text: &str) -> Incoming {
        let forward = |t: &str| Incoming::Forward(t.as_bytes().to_vec());
        // Anything unreadable goes to the engine, which closes the connection over it.
        let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(text) else { return forward(text) };
        let kind = msg.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        // Only `graphql-transport-ws` messages reach the engine: it also accepts the legacy
        // protocol's `start`/`stop` as aliases of `subscribe`/`complete`, which would pass by the
        // checks below (trusted documents, the subscription limit, duplicate ids).
        match kind.as_str() {
            "connection_init" | "ping" | "pong" => return forward(text),
            "subscribe" | "complete" => {}
            other => return Incoming::Close(4400, format!("Unknown message type: {}", other.escape_debug())),
        }
        let Some(id) = msg.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return Incoming::Close(4400, format!("A {kind} message needs an id"));
        };
        match kind.as_str() {
            "subscribe" => {
                if self.active.contains(&id) {
                    return Incoming::Close(4409, format!("Subscriber for {id} already exists"));
                }
                if self.active.len() >= self.max_subscriptions {
                    let message = format!(
                        "too many subscriptions on this connection (limit {}); complete one first",
                        self.max_subscriptions
                    );
                    return Incoming::Reply(error_message(
                        &id,
                        json!([{ "message": message, "extensions": { "code": "RATE_LIMITED" } }]),
                    ));
                }
                // Persisted documents and trusted-documents mode apply as over HTTP.
                if let Some(Value::Object(payload)) = msg.remove("payload") {
                    match self.st.persisted.resolve(payload) {
                        Ok((payload, _)) => {
                            msg.insert("payload".into(), Value::Object(payload));
                        }
                        Err(r) => return Incoming::Reply(error_message(&id, r.body()["errors"].clone())),
                    }
                }
                self.active.insert(id);
                self.st.metrics.subscriptions.inc();
                forward(&Value::Object(msg).to_string())
            }
            "complete" => {
                if self.active.remove(&id) {
                    self.st.metrics.subscriptions.dec();
                    self.completed_by_client.insert(id);
                }
                forward(text)
            }
            _ => forward(text),
        }
    }

    /// Notes what the engine tells the client, and gives errors the codes the HTTP layer gives
    /// them (see `http::execute_one`). `None`: not for the client.
    fn outgoing(&mut self, text: String) -> Option<String> {
        let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(&text) else { return Some(text) };
        match msg.get("type").and_then(Value::as_str) {
            Some("connection_ack") => {
                self.acked = true;
                Some(text)
            }
            Some("complete") => {
                let id = msg.get("id").and_then(Value::as_str).unwrap_or_default();
                if self.completed_by_client.remove(id) {
                    return None;
                }
                if self.active.remove(id) {
                    self.st.metrics.subscriptions.dec();
                }
                Some(text)
            }
            Some("next") => {
                self.st.metrics.subscription_messages.inc();
                let Some(errors) =
                    msg.get_mut("payload").and_then(|p| p.get_mut("errors")).and_then(Value::as_array_mut)
                else {
                    return Some(text);
                };
                for e in errors.iter_mut().filter_map(Value::as_object_mut) {
                    code_error(e, &self.rid);
                }
                Some(Value::Object(msg).to_string())
            }
            _ => Some(text),
        }
    }
}

/// An error without `extensions.code` comes from async-graphql itself: a request-level one
/// (syntax, validation; it has no `path`) or a value coercion (`BAD_USER_INPUT`). An `INTERNAL`
/// one gets the request id to quote.
fn code_error(e: &mut Map<String, Value>, rid: &str) {
    let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
    let request_level = !e.contains_key("path") && !message.starts_with("Invalid value for argument");
    let ext = e.entry("extensions").or_insert_with(|| json!({}));
    let Some(ext) = ext.as_object_mut() else { return };
    if !ext.contains_key("code") {
        let code = if request_level { "GRAPHQL_VALIDATION_FAILED" } else { "BAD_USER_INPUT" };
        ext.insert("code".into(), json!(code));
    }
    if ext.get("code").and_then(Value::as_str) == Some("INTERNAL") {
        ext.insert("requestId".into(), json!(rid));
    }
}

// ---------------------------------------------------------------------------------------------
// Rules for documents over WebSocket.

/// A schema extension: over a WebSocket only subscriptions run, and every subscription selects
/// exactly one root field (GraphQL spec, "Single root field") — so one `subscribe` is one stream,
/// and `COHORT_WS_MAX_SUBSCRIPTIONS` bounds the streams.
pub struct WebSocketRules;

impl ExtensionFactory for WebSocketRules {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(WebSocketRulesExt::default())
    }
}

/// One request's instance (extensions are made per request): the operation it names.
#[derive(Default)]
struct WebSocketRulesExt {
    operation_name: Mutex<Option<String>>,
}

fn coded(message: &str, code: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

/// The response keys of a selection set's fields, through fragments.
fn root_keys<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, keys: &mut HashSet<&'a str>, depth: usize) {
    if depth > 16 {
        return;
    }
    for s in &set.items {
        match &s.node {
            Selection::Field(f) => {
                keys.insert(f.node.alias.as_ref().map_or(f.node.name.node.as_str(), |a| a.node.as_str()));
            }
            Selection::InlineFragment(f) => root_keys(doc, &f.node.selection_set.node, keys, depth + 1),
            Selection::FragmentSpread(f) => {
                if let Some(fr) = doc.fragments.get(&f.node.fragment_name.node) {
                    root_keys(doc, &fr.node.selection_set.node, keys, depth + 1);
                }
            }
        }
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for WebSocketRulesExt {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if let Ok(mut name) = self.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let refuse = |message: &str, code: &str| {
            // Over HTTP, a refusal before execution (see `RequestFailed`).
            crate::graphql::mark_failed(ctx);
            Err(coded(message, code))
        };
        for (_, op) in doc.operations.iter() {
            if op.node.ty != OperationType::Subscription {
                continue;
            }
            let mut keys = HashSet::new();
            root_keys(&doc, &op.node.selection_set.node, &mut keys, 0);
            if keys.len() != 1 || keys.iter().any(|k| k.starts_with("__")) {
                return refuse(
                    "a subscription selects exactly one root field (and not an introspection field)",
                    "GRAPHQL_VALIDATION_FAILED",
                );
            }
        }
        let name = self.operation_name.lock().ok().and_then(|n| n.clone());
        let chosen = match (&doc.operations, name.as_deref()) {
            (DocumentOperations::Single(op), _) => Some(op),
            (DocumentOperations::Multiple(ops), Some(n)) => ops.get(n),
            // No such operation: async-graphql refuses the request itself.
            (DocumentOperations::Multiple(_), None) => None,
        };
        let Some(op) = chosen else { return Ok(doc) };
        match (ctx.data_opt::<OverWebSocket>().is_some(), op.node.ty == OperationType::Subscription) {
            (true, false) => refuse(
                "only subscriptions run over WebSocket; send queries and mutations to POST /graphql",
                "BAD_REQUEST",
            ),
            (false, true) => refuse(
                "subscriptions run over WebSocket: open /graphql with the subprotocol graphql-transport-ws",
                "BAD_REQUEST",
            ),
            _ => Ok(doc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_usual_places_in_the_init_payload() {
        assert_eq!(token_of(&json!({"authorization": "Bearer abc"})).as_deref(), Some("abc"));
        assert_eq!(token_of(&json!({"Authorization": "bearer abc "})).as_deref(), Some("abc"));
        assert_eq!(token_of(&json!({"token": "abc"})).as_deref(), Some("abc"));
        assert_eq!(token_of(&json!({"headers": {"Authorization": "Bearer abc"}})).as_deref(), Some("abc"));
        assert_eq!(token_of(&json!({"authorization": "Bearer "})), None);
        assert_eq!(token_of(&json!({"authorization": "BEARER\tabc"})).as_deref(), Some("abc"));
        assert_eq!(token_of(&json!({"authorization": 7})), None);
        assert_eq!(token_of(&Value::Null), None);
    }

    #[test]
    fn close_codes_follow_the_protocol() {
        let none = Mutex::new(InitOutcome::default());
        assert_eq!(close_code(1011, "The handshake is not completed.".into(), &none).0, 4401);
        assert_eq!(close_code(1002, "expected value".into(), &none).0, 4400);
        assert_eq!(close_code(4429, "Too many initialisation requests.".into(), &none).0, 4429);
        let refused = Mutex::new(InitOutcome { refused: Some((4403, "Forbidden")), who: None });
        assert_eq!(close_code(1002, "Forbidden".into(), &refused), (4403, "Forbidden".into()));
        assert_eq!(truncate("é".repeat(100), 121).len(), 120);
    }

    #[test]
    fn errors_get_the_codes_http_gives_them() {
        let coded = |e: Value| {
            let mut e = e.as_object().expect("test value").clone();
            code_error(&mut e, "rid-1");
            Value::Object(e)["extensions"].clone()
        };
        assert_eq!(coded(json!({"message": "Unknown field"})), json!({"code": "GRAPHQL_VALIDATION_FAILED"}));
        assert_eq!(coded(json!({"message": "Invalid value for argument \"a\""})), json!({"code": "BAD_USER_INPUT"}));
        assert_eq!(coded(json!({"message": "x", "path": ["events"]})), json!({"code": "BAD_USER_INPUT"}));
        let internal = json!({"message": "internal error", "path": ["events"], "extensions": {"code": "INTERNAL"}});
        assert_eq!(coded(internal), json!({"code": "INTERNAL", "requestId": "rid-1"}));
        assert_eq!(coded(json!({"message": "no", "extensions": {"code": "FORBIDDEN"}})), json!({"code": "FORBIDDEN"}));
    }

    #[test]
    fn one_root_field_per_subscription() {
        let count = |q: &str| {
            let doc = async_graphql::parser::parse_query(q).expect("test value");
            let (_, op) = doc.operations.iter().next().expect("test value");
            let mut keys = HashSet::new();
            root_keys(&doc, &op.node.selection_set.node, &mut keys, 0);
            keys.len()
        };
        assert_eq!(count("subscription { events { id } }"), 1);
        assert_eq!(count("subscription { events { id } events { type } }"), 1, "one field, merged");
        assert_eq!(count("subscription { a: events { id } b: events { id } }"), 2);
        assert_eq!(count("subscription { ...F } fragment F on Subscription { a: events { id } events { id } }"), 2);
    }
}
