//! The REST facade (`/api/v1/...`, issue 19): every endpoint's success, error codes and RFC 9457
//! problem bodies, `Idempotency-Key` replays (also concurrent ones), routing, metrics and CORS,
//! the OpenAPI document, a client generated from it, and that the facade is the GraphQL API
//! underneath (same answers, same data-usage accounting and refusals).
//!
//! The endpoints over the sync operations (`setGroupMembersByExternalId`, `upsertContacts`,
//! `changes`) are tested in [`by_external_id`].

use crate::on_both_backends;
use crate::support::{Actor, Backend, TempDir, TestApp, World};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const PROBLEM_BASE: &str = "https://cohort.dev/problems/";
/// A well-formed global id that names nothing.
const UNKNOWN_CONTACT: &str = "Q29udGFjdDowMTlhMDAwMDAwMDA3MDAwODAwMDAwMDAwMDAwMDAwMA";

/// One REST answer.
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// A JSON success with `status`.
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.header("content-type"), "application/json", "{}", self.text);
        &self.body
    }

    /// An RFC 9457 problem with `status` and `code`, of the documented shape.
    fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.header("content-type"), "application/problem+json", "{}", self.text);
        let b = &self.body;
        assert_eq!(b["status"], status, "{b}");
        assert_eq!(b["code"], code, "{b}");
        assert_eq!(b["type"], format!("{PROBLEM_BASE}{}", code.to_ascii_lowercase().replace('_', "-")), "{b}");
        assert!(b["title"].as_str().is_some_and(|t| !t.is_empty()), "{b}");
        assert!(b["detail"].as_str().is_some_and(|t| !t.is_empty()), "{b}");
        assert!(b["requestId"].is_string(), "{b}");
        for k in b.as_object().unwrap().keys() {
            assert!(
                ["type", "title", "status", "detail", "code", "requestId", "field", "errors"].contains(&k.as_str()),
                "unexpected member {k}: {b}"
            );
        }
        b
    }

    /// The problem without its request id (which differs per request).
    fn problem_sans_id(&self) -> Value {
        let mut b = self.body.clone();
        b.as_object_mut().unwrap().remove("requestId");
        b
    }
}

/// A request to the facade: `token` as bearer, `body` as JSON, extra headers.
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, text, body }
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Reply {
    call(app, "POST", path, Some(token), Some(body), &[]).await
}

/// A raw body with a content type (for the 400 and 415 cases).
async fn raw(app: &TestApp, method: &str, path: &str, token: &str, content_type: &str, body: &str) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, text, body }
}

/// The transport refusals every JSON endpoint gives: 401 without or with a bad token, 415 for
/// another media type, 400 for a body that is not JSON — each a problem.
async fn refuses_bad_requests(app: &TestApp, method: &str, path: &str, token: &str, body: &Value) {
    let r = call(app, method, path, None, Some(body), &[]).await;
    r.problem(401, "UNAUTHENTICATED");
    assert!(r.header("www-authenticate").starts_with("Bearer"), "{path}");
    call(app, method, path, Some("not-a-token"), Some(body), &[]).await.problem(401, "UNAUTHENTICATED");
    raw(app, method, path, token, "text/plain", &body.to_string()).await.problem(415, "UNSUPPORTED_MEDIA_TYPE");
    raw(app, method, path, token, "application/json; charset=latin1", &body.to_string())
        .await
        .problem(415, "UNSUPPORTED_MEDIA_TYPE");
    raw(app, method, path, token, "application/json", "{\"contactId\": ").await.problem(400, "BAD_REQUEST");
    raw(app, method, path, token, "application/json", "").await.problem(400, "BAD_REQUEST");
}

async fn product(admin: &Actor<'_>, sku: &str, price: &str) -> String {
    let d = admin
        .ok(
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { id } } }",
            json!({"i": {"sku": sku, "name": format!("Product {sku}"), "listPrice": price, "currency": "EUR"}}),
        )
        .await;
    d["createProduct"]["product"]["id"].as_str().unwrap().to_owned()
}

/// A price list "Gold" with `sku` at `price`, assigned to a new group of `contact` in `book`.
async fn gold_price(admin: &Actor<'_>, book: &str, contact: &str, sku_id: &str, price: &str) {
    let d = admin
        .ok("mutation { createPriceList(input: {name: \"Gold\", currency: \"EUR\"}) { priceList { id } } }", json!({}))
        .await;
    let list = d["createPriceList"]["priceList"]["id"].as_str().unwrap().to_owned();
    admin
        .ok(
            "mutation($l: ID!, $p: ID!, $f: Decimal!) { setPriceListItems(input: {priceListId: $l, items: [{productId: $p, fixedPrice: $f}]}) { itemCount } }",
            json!({"l": list, "p": sku_id, "f": price}),
        )
        .await;
    let g = crate::groups::group(admin, book, "Gold customers", None).await;
    admin
        .ok(
            "mutation($g: ID!, $l: ID!) { assignGroupPriceList(input: {groupId: $g, priceListId: $l, priority: 1}) { group { id } } }",
            json!({"g": g, "l": list}),
        )
        .await;
    admin.ok(crate::groups::ADD, json!({"i": {"groupId": g, "contactIds": [contact]}})).await;
}

const PRICE_FIELDS: &str =
    "product { id sku name } quantity unitPrice lineTotal currency source priceList { id name } group { id name }";

/// `POST /api/v1/prices:resolve`: the GraphQL answer, as JSON; every refusal as a problem.
async fn prices_resolve(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let token = agent.token.clone().unwrap();
    let p = product(&admin, "P-1", "100").await;
    gold_price(&admin, &w.own, w.id("anna"), &p, "80").await;
    let ask = json!({"contactId": w.id("anna"), "sku": "P-1", "quantity": "2.5", "currency": "EUR"});
    let r = post(&app, "/api/v1/prices:resolve", &token, &ask).await;
    let body = r.ok(200).clone();
    assert_eq!(
        (body["unitPrice"].as_str(), body["lineTotal"].as_str(), body["source"].as_str()),
        (Some("80"), Some("200.00"), Some("GROUP_LIST")),
        "{body}"
    );
    assert_eq!(body["priceList"]["name"], "Gold");
    assert_eq!(body["group"]["name"], "Gold customers");
    assert_eq!(body["product"], json!({"id": p, "sku": "P-1", "name": "Product P-1"}));
    // Exactly what GraphQL answers: the same operation underneath.
    let q = format!("query($i: ResolvePriceInput!) {{ resolvePrice(input: $i) {{ {PRICE_FIELDS} }} }}");
    assert_eq!(agent.ok(&q, json!({"i": ask})).await["resolvePrice"], body);
    // By product id, with the list price (no list for Bruno).
    let by_id = json!({"contactId": w.id("bruno"), "productId": p, "quantity": "1", "currency": "EUR"});
    let b = post(&app, "/api/v1/prices:resolve", &token, &by_id).await;
    assert_eq!(b.ok(200)["source"], "LIST_PRICE");
    assert_eq!(b.body["priceList"], Value::Null);
    assert_eq!(b.body["group"], Value::Null);

    refuses_bad_requests(&app, "POST", "/api/v1/prices:resolve", &token, &ask).await;
    // A hidden contact and one that never existed: the same answer.
    let hidden = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": w.id("anna_hidden"), "sku": "P-1", "quantity": "1", "currency": "EUR"}),
    )
    .await;
    let unknown = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": UNKNOWN_CONTACT, "sku": "P-1", "quantity": "1", "currency": "EUR"}),
    )
    .await;
    hidden.problem(404, "NOT_FOUND");
    unknown.problem(404, "NOT_FOUND");
    assert_eq!(hidden.problem_sans_id(), unknown.problem_sans_id());
    let r = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": w.id("anna"), "sku": "NOPE", "quantity": "1", "currency": "EUR"}),
    )
    .await;
    r.problem(404, "NOT_FOUND");
    // Bad input, named: by the body's shape, and by the rules.
    let r = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": w.id("anna"), "sku": "P-1", "quantity": 2.5, "currency": "EUR"}),
    )
    .await;
    assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "quantity");
    let r = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": w.id("anna"), "sku": "P-1", "quantity": "1"}),
    )
    .await;
    assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "currency");
    let r = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": w.id("anna"), "sku": "P-1", "quantity": "1", "currency": "EUR", "qty": 1}),
    )
    .await;
    assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "qty");
    let r = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": w.id("anna"), "sku": "P-1", "quantity": "0", "currency": "EUR"}),
    )
    .await;
    assert!(r.problem(422, "BAD_USER_INPUT")["field"].is_string(), "{}", r.text);
    let r = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": w.id("anna"), "sku": "P-1", "quantity": "1", "currency": "EURO"}),
    )
    .await;
    assert!(r.problem(422, "BAD_USER_INPUT")["field"].is_string(), "{}", r.text);
    // No price: no list in CHF, and the list price is in EUR.
    let r = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": w.id("bruno"), "sku": "P-1", "quantity": "1", "currency": "CHF"}),
    )
    .await;
    r.problem(422, "NO_PRICE");
    // Another method on the route: 405, with Allow.
    let r = call(&app, "GET", "/api/v1/prices:resolve", Some(&token), None, &[]).await;
    r.problem(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow"), "POST");
}

/// `POST /api/v1/quotes`: every line priced, the total; refusals as problems.
async fn quotes(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let token = agent.token.clone().unwrap();
    let p = product(&admin, "Q-1", "10").await;
    product(&admin, "Q-2", "2.5").await;
    gold_price(&admin, &w.own, w.id("anna"), &p, "8").await;
    let ask = json!({"contactId": w.id("anna"), "currency": "EUR", "lines": [{"sku": "Q-1", "quantity": "3"}, {"productId": p, "quantity": "1"}, {"sku": "Q-2", "quantity": "4"}]});
    let r = post(&app, "/api/v1/quotes", &token, &ask).await;
    let body = r.ok(200).clone();
    assert_eq!(body["total"], "42.00", "{body}");
    assert_eq!(body["lines"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["lines"][2]["source"], "LIST_PRICE");
    let q = format!(
        "query($i: QuoteOrderInput!) {{ quoteOrder(input: $i) {{ currency total lines {{ {PRICE_FIELDS} }} }} }}"
    );
    assert_eq!(agent.ok(&q, json!({"i": ask})).await["quoteOrder"], body);
    // A quote is a read: READ on the contact's book is enough (Clara's).
    let clara = json!({"contactId": w.id("clara"), "currency": "EUR", "lines": [{"sku": "Q-2", "quantity": "1"}]});
    assert_eq!(post(&app, "/api/v1/quotes", &token, &clara).await.ok(200)["total"], "2.50");

    refuses_bad_requests(&app, "POST", "/api/v1/quotes", &token, &ask).await;
    let hidden = post(
        &app,
        "/api/v1/quotes",
        &token,
        &json!({"contactId": w.id("anna_hidden"), "currency": "EUR", "lines": [{"sku": "Q-1", "quantity": "1"}]}),
    )
    .await;
    let unknown = post(
        &app,
        "/api/v1/quotes",
        &token,
        &json!({"contactId": UNKNOWN_CONTACT, "currency": "EUR", "lines": [{"sku": "Q-1", "quantity": "1"}]}),
    )
    .await;
    hidden.problem(404, "NOT_FOUND");
    assert_eq!(hidden.problem_sans_id(), unknown.problem_sans_id());
    let r =
        post(&app, "/api/v1/quotes", &token, &json!({"contactId": w.id("anna"), "currency": "EUR", "lines": []})).await;
    assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "lines");
    let r = post(&app, "/api/v1/quotes", &token, &json!({"contactId": w.id("anna"), "currency": "EUR", "lines": [{"sku": "Q-1", "quantity": "1"}, {"sku": "Q-1"}]})).await;
    assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "lines[1].quantity");
    let r = post(
        &app,
        "/api/v1/quotes",
        &token,
        &json!({"contactId": w.id("bruno"), "currency": "CHF", "lines": [{"sku": "Q-2", "quantity": "1"}]}),
    )
    .await;
    r.problem(422, "NO_PRICE");
}

fn order_body(contact: &str, quantity: &str) -> Value {
    json!({"contactId": contact, "currency": "EUR", "lines": [{"sku": "O-1", "quantity": quantity}]})
}

async fn order_count(admin: &Actor<'_>, contact: &str) -> i64 {
    let d = admin.ok("query($c: ID!) { contact(id: $c) { orders { totalCount } } }", json!({"c": contact})).await;
    d["contact"]["orders"]["totalCount"].as_i64().unwrap()
}

/// `POST /api/v1/orders` (201, `Location`), `GET /api/v1/orders/{id}`, and `Idempotency-Key`:
/// a replay answers the first order and places nothing; the key with another body conflicts.
async fn orders_place_read_and_replay(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let token = agent.token.clone().unwrap();
    product(&admin, "O-1", "12.5").await;
    let body = order_body(w.id("anna"), "2");
    let key = [("idempotency-key", "order-4711")];
    let first = call(&app, "POST", "/api/v1/orders", Some(&token), Some(&body), &key).await;
    let order = first.ok(201).clone();
    assert_eq!((order["total"].as_str(), order["lineCount"].as_i64()), (Some("25.00"), Some(1)), "{order}");
    assert_eq!(order["contact"], json!({"id": w.id("anna"), "displayName": "Anna Abbott"}));
    assert_eq!(order["lines"][0]["sku"], "O-1");
    let location = first.header("location").to_owned();
    assert_eq!(location, format!("/api/v1/orders/{}", order["id"].as_str().unwrap()));
    assert_eq!(first.header("idempotent-replayed"), "", "a first answer is not a replay");
    // The Location reads the same order.
    let read = call(&app, "GET", &location, Some(&token), None, &[]).await;
    assert_eq!(read.ok(200), &order);
    // The retry: the same answer, marked, and still one order.
    let again = call(&app, "POST", "/api/v1/orders", Some(&token), Some(&body), &key).await;
    assert_eq!(again.ok(201), &order);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.header("location"), location);
    assert_eq!(order_count(&admin, w.id("anna")).await, 1);
    // The draft's structured-field string form names the same key.
    let quoted =
        call(&app, "POST", "/api/v1/orders", Some(&token), Some(&body), &[("idempotency-key", "\"order-4711\"")]).await;
    assert_eq!(quoted.ok(201), &order);
    // The key with another body: CONFLICT, nothing placed.
    let other = call(&app, "POST", "/api/v1/orders", Some(&token), Some(&order_body(w.id("anna"), "3")), &key).await;
    other.problem(409, "CONFLICT");
    assert_eq!(order_count(&admin, w.id("anna")).await, 1);
    // Keys are per user: the admin's identical key is another request.
    let admin_token = admin.token.clone().unwrap();
    let by_admin = call(&app, "POST", "/api/v1/orders", Some(&admin_token), Some(&body), &key).await;
    assert_ne!(by_admin.ok(201)["id"], order["id"]);
    // Without a key, each request places an order.
    post(&app, "/api/v1/orders", &token, &body).await.ok(201);
    assert_eq!(order_count(&admin, w.id("anna")).await, 3);
    // A bad key is about the header.
    for bad in ["\"\"", &"k".repeat(201)] {
        let r = call(&app, "POST", "/api/v1/orders", Some(&token), Some(&body), &[("idempotency-key", bad)]).await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "Idempotency-Key", "{bad}");
    }
    assert_eq!(order_count(&admin, w.id("anna")).await, 3);

    refuses_bad_requests(&app, "POST", "/api/v1/orders", &token, &body).await;
    // Placing needs WRITE: Clara's book is READ for the agent.
    post(&app, "/api/v1/orders", &token, &order_body(w.id("clara"), "1")).await.problem(403, "FORBIDDEN");
    // Only admins may price an order for another date.
    let mut backdated = order_body(w.id("anna"), "1");
    backdated["at"] = json!("2020-01-01T00:00:00Z");
    post(&app, "/api/v1/orders", &token, &backdated).await.problem(403, "FORBIDDEN");
    let hidden = post(&app, "/api/v1/orders", &token, &order_body(w.id("anna_hidden"), "1")).await;
    let unknown = post(&app, "/api/v1/orders", &token, &order_body(UNKNOWN_CONTACT, "1")).await;
    hidden.problem(404, "NOT_FOUND");
    assert_eq!(hidden.problem_sans_id(), unknown.problem_sans_id());
    let r = post(&app, "/api/v1/orders", &token, &order_body(w.id("anna"), "0")).await;
    assert!(r.problem(422, "BAD_USER_INPUT")["field"].is_string(), "{}", r.text);
    let mut chf = order_body(w.id("anna"), "1");
    chf["currency"] = json!("CHF");
    post(&app, "/api/v1/orders", &token, &chf).await.problem(422, "NO_PRICE");
    assert_eq!(order_count(&admin, w.id("anna")).await, 3, "refusals place nothing");

    // Reading: a hidden contact's order answers like one that never existed.
    let theirs = admin
        .ok(
            "mutation($c: ID!) { placeOrder(input: {contactId: $c, currency: \"EUR\", lines: [{sku: \"O-1\", quantity: \"1\"}]}) { order { id } } }",
            json!({"c": w.id("anna_hidden")}),
        )
        .await;
    let hidden_order = theirs["placeOrder"]["order"]["id"].as_str().unwrap().to_owned();
    let a = call(&app, "GET", &format!("/api/v1/orders/{hidden_order}"), Some(&token), None, &[]).await;
    let b = call(
        &app,
        "GET",
        "/api/v1/orders/T3JkZXI6MDE5YTAwMDAwMDAwNzAwMDgwMDAwMDAwMDAwMDAwMDA",
        Some(&token),
        None,
        &[],
    )
    .await;
    a.problem(404, "NOT_FOUND");
    assert_eq!(a.problem_sans_id(), b.problem_sans_id());
    call(&app, "GET", &format!("/api/v1/orders/{hidden_order}"), Some(&admin_token), None, &[]).await.ok(200);
    call(&app, "GET", &location, None, None, &[]).await.problem(401, "UNAUTHENTICATED");
}

/// GraphQL `placeOrder(input: {idempotencyKey})`, which the REST header maps to.
async fn graphql_place_order_replays_with_its_key(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    product(&admin, "O-1", "3").await;
    let place = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { replayed order { id total } } }";
    let mut input = order_body(w.id("anna"), "2");
    input["idempotencyKey"] = json!("k-1");
    let first = agent.ok(place, json!({"i": input})).await["placeOrder"].clone();
    assert_eq!(first["replayed"], false);
    let again = agent.ok(place, json!({"i": input})).await["placeOrder"].clone();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["order"], first["order"]);
    // "2.00" is the same quantity as "2".
    input["lines"][0]["quantity"] = json!("2.00");
    assert_eq!(agent.ok(place, json!({"i": input})).await["placeOrder"]["order"], first["order"]);
    input["lines"][0]["quantity"] = json!("5");
    assert_eq!(agent.err(place, json!({"i": input})).await, "CONFLICT");
    assert_eq!(order_count(&admin, w.id("anna")).await, 1);
    // A failed first request remembers nothing: the key works once the request does.
    let mut bad = order_body(w.id("anna"), "0");
    bad["idempotencyKey"] = json!("k-2");
    assert_eq!(agent.err(place, json!({"i": bad})).await, "BAD_USER_INPUT");
    bad["lines"][0]["quantity"] = json!("1");
    assert_eq!(agent.ok(place, json!({"i": bad})).await["placeOrder"]["replayed"], false);
    assert_eq!(order_count(&admin, w.id("anna")).await, 2);
}

/// Parallel `POST /api/v1/orders` with one `Idempotency-Key` place one order: every answer is
/// that order (or, while the first is in flight, the conflict answer).
async fn parallel_orders_with_one_key_place_one(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let token = app.token(&w.tenant, "agent", &["agent"]);
    product(&admin, "O-1", "7").await;
    let body = order_body(w.id("anna"), "3");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let req = app
                .client
                .post(app.url("/api/v1/orders"))
                .bearer_auth(&token)
                .header("idempotency-key", "parallel-1")
                .json(&body);
            tokio::spawn(async move {
                let r = req.send().await.expect("send");
                (r.status().as_u16(), r.json::<Value>().await.expect("json"))
            })
        })
        .collect();
    let mut orders = vec![];
    for t in tasks {
        let (status, b) = t.await.expect("task");
        match status {
            201 => orders.push(b),
            409 => assert_eq!(b["code"], "CONFLICT", "{b}"),
            _ => panic!("HTTP {status}: {b}"),
        }
    }
    assert!(!orders.is_empty());
    assert!(orders.iter().all(|o| o == &orders[0]), "one order for all: {orders:#?}");
    assert_eq!(order_count(&admin, w.id("anna")).await, 1, "exactly one order on {:?}", app.backend);
}

/// The routes: the OpenAPI document without a token, unknown routes and methods as problems,
/// the route templates (with the literal colon) as bounded metric labels.
async fn routes_document_and_metrics(app: TestApp) {
    let r = call(&app, "GET", "/api/v1/openapi.json", None, None, &[]).await;
    let doc = r.ok(200);
    assert_eq!(doc, &serde_json::from_str::<Value>(&cohort_api::openapi_json()).unwrap());
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/prices:resolve",
        "/api/v1/quotes",
        "/api/v1/orders",
        "/api/v1/orders/{id}",
        "/api/v1/contacts:upsert",
        "/api/v1/contacts/{system}/{externalId}",
        "/api/v1/groups/{id}/members",
        "/api/v1/changes",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let token = app.token("acme", "agent", &["agent"]);
    for path in ["/api/v1/nope", "/api/v1/prices", "/api/v1/prices:quote", "/api/v1/orders/x/y", "/api/v1"] {
        call(&app, "POST", path, Some(&token), Some(&json!({})), &[]).await.problem(404, "NOT_FOUND");
    }
    let r = call(&app, "DELETE", "/api/v1/quotes", Some(&token), None, &[]).await;
    r.problem(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.header("allow"), "POST");
    let r = call(&app, "POST", "/api/v1/groups/x/members", Some(&token), Some(&json!({})), &[]).await;
    assert_eq!(r.header("allow"), "PUT");
    // A literal ':' in the path routes; the answer carries the request id it was logged with.
    let r = post(
        &app,
        "/api/v1/prices:resolve",
        &token,
        &json!({"contactId": UNKNOWN_CONTACT, "sku": "X", "quantity": "1", "currency": "EUR"}),
    )
    .await;
    r.problem(404, "NOT_FOUND");
    assert_eq!(r.body["requestId"], r.header("x-request-id"));
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for label in ["route=\"/api/v1/prices:resolve\"", "route=\"/api/v1/{*rest}\"", "route=\"/api/v1/openapi.json\""] {
        assert!(metrics.contains(label), "{label} in the metrics");
    }
    assert!(!metrics.contains("/api/v1/nope"), "unknown paths never become labels");
    assert!(metrics.contains("operation=\"RestResolvePrice\""), "the operation is counted like GraphQL's");
}

/// Browsers on the configured origins may call the facade: PUT and `Idempotency-Key` pass the
/// preflight, and `Location` / `Idempotent-Replayed` are readable.
async fn cors_covers_the_facade(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.cors_origins = vec!["https://spa.example".into()]).await else {
        return;
    };
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/groups/g/members"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    assert_eq!(h("access-control-allow-origin"), "https://spa.example");
    assert!(h("access-control-allow-methods").contains("put"), "{}", h("access-control-allow-methods"));
    assert!(h("access-control-allow-headers").contains("idempotency-key"), "{}", h("access-control-allow-headers"));
    let r = call(&app, "POST", "/api/v1/quotes", None, Some(&json!({})), &[("origin", "https://spa.example")]).await;
    r.problem(401, "UNAUTHENTICATED");
    let exposed = r.header("access-control-expose-headers").to_ascii_lowercase();
    assert!(exposed.contains("location") && exposed.contains("idempotent-replayed"), "{exposed}");
}

async fn usage_operations(a: &Actor<'_>) -> Vec<(String, i64)> {
    let d = a.ok("{ viewer { dataUsage { operations { operation requests } } } }", json!({})).await;
    d["viewer"]["dataUsage"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["operation"].as_str().unwrap().to_owned(), o["requests"].as_i64().unwrap()))
        .collect()
}

/// REST requests are accounted exactly like GraphQL ones (the same settlement underneath): the
/// user's data usage counts them under the operation's root field.
async fn rest_reads_are_metered_like_graphql(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let token = agent.token.clone().unwrap();
    product(&admin, "M-1", "1").await;
    let ask = json!({"contactId": w.id("anna"), "sku": "M-1", "quantity": "1", "currency": "EUR"});
    post(&app, "/api/v1/prices:resolve", &token, &ask).await.ok(200);
    post(&app, "/api/v1/prices:resolve", &token, &ask).await.ok(200);
    agent.ok("query($i: ResolvePriceInput!) { resolvePrice(input: $i) { unitPrice } }", json!({"i": ask})).await;
    let ops = usage_operations(&agent).await;
    assert!(ops.contains(&("resolvePrice".into(), 3)), "{ops:?}");
}

/// Whether python3 can import `module` (`.ci/run` installs the tools and sets
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

/// Generates a Python client from the document the server serves (openapi-python-client,
/// offline: an unusable proxy is set for the generator, so a download would fail) and runs
/// `scripts/rest_client.py` in `mode` with it; its JSON output, or `None` when the tools are
/// missing.
async fn run_generated_client(app: &TestApp, mode: &str, token: &str, params: Value) -> Option<Value> {
    if !python_has("openapi_python_client") {
        return None;
    }
    let dir = TempDir::new("cohort-rest-client");
    let doc = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().text().await.unwrap();
    std::fs::write(dir.0.join("openapi.json"), doc).unwrap();
    std::fs::write(dir.0.join("config.yaml"), "package_name_override: cohort_client\npost_hooks: []\n").unwrap();
    let (base, token, params, mode) = (app.base.clone(), token.to_owned(), params.to_string(), mode.to_owned());
    let root = dir.0.clone();
    let out = tokio::task::spawn_blocking(move || {
        let generated = std::process::Command::new("python3")
            .args(["-m", "openapi_python_client", "generate", "--meta", "none", "--path"])
            .arg(root.join("openapi.json"))
            .arg("--output-path")
            .arg(root.join("cohort_client"))
            .arg("--config")
            .arg(root.join("config.yaml"))
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("PIP_NO_INDEX", "1")
            .output()
            .unwrap();
        let log =
            format!("{}{}", String::from_utf8_lossy(&generated.stdout), String::from_utf8_lossy(&generated.stderr));
        assert!(generated.status.success(), "openapi-python-client failed:\n{log}");
        assert!(!log.contains("Warning"), "the generator had to leave something out:\n{log}");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rest_client.py");
        std::process::Command::new("python3")
            .arg(script)
            .arg(&root)
            .args([&mode, &base, &token, &params])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the generated client failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_str(stdout.trim()).expect("the script's JSON"))
}

/// A client generated from the OpenAPI document resolves a price, and reads a refusal as a
/// `Problem`.
async fn generated_client_resolves_a_price(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let p = product(&admin, "G-1", "100").await;
    gold_price(&admin, &w.own, w.id("anna"), &p, "90").await;
    let token = app.token(&w.tenant, "agent", &["agent"]);
    let params = json!({"contactId": w.id("anna"), "hiddenId": w.id("anna_hidden"), "sku": "G-1", "quantity": "2"});
    let Some(out) = run_generated_client(&app, "prices", &token, params).await else {
        return;
    };
    assert_eq!(
        out,
        json!({"sku": "G-1", "quantity": "2", "unitPrice": "90", "lineTotal": "180.00", "currency": "EUR",
            "source": "GROUP_LIST", "priceList": "Gold", "problemType": format!("{PROBLEM_BASE}not-found")})
    );
}

on_both_backends!(
    prices_resolve,
    quotes,
    orders_place_read_and_replay,
    graphql_place_order_replays_with_its_key,
    parallel_orders_with_one_key_place_one,
    routes_document_and_metrics,
    rest_reads_are_metered_like_graphql,
    generated_client_resolves_a_price,
);

crate::on_both_backends_custom!(cors_covers_the_facade);

/// The endpoints over the sync operations: `PUT /api/v1/groups/{id}/members`,
/// `POST /api/v1/contacts:upsert`, `PUT /api/v1/contacts/{system}/{externalId}`,
/// `GET /api/v1/changes`.
mod by_external_id {
    use super::*;

    const SET_EXTERNAL_ID: &str = "mutation($n: ID!, $s: String!, $i: String!) { setExternalId(input: {nodeId: $n, system: $s, id: $i}) { node { id } } }";

    async fn member_names(admin: &Actor<'_>, g: &str) -> Vec<String> {
        let d = admin
            .ok(
                "query($g: ID!) { group(id: $g) { members(first: 100) { edges { node { displayName } } } } }",
                json!({"g": g}),
            )
            .await;
        let mut v: Vec<String> = d["group"]["members"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["displayName"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    }

    /// `PUT /api/v1/groups/{id}/members`: the diff, replays by `Idempotency-Key`, refusals.
    async fn set_group_members(app: TestApp) {
        let w = World::build(&app).await;
        let admin = app.actor(&w.tenant, "admin", &["admin"]);
        let agent = app.actor(&w.tenant, "agent", &["agent"]);
        let token = agent.token.clone().unwrap();
        for (c, x) in [("anna", "E-1"), ("bruno", "E-2"), ("acme", "E-3"), ("clara", "E-4"), ("anna_hidden", "E-9")] {
            admin.ok(SET_EXTERNAL_ID, json!({"n": w.id(c), "s": "erp", "i": x})).await;
        }
        let g = crate::groups::group(&admin, &w.own, "Key accounts", None).await;
        let path = format!("/api/v1/groups/{g}/members");
        let put = |body: Value, key: Option<&'static str>| {
            let (app, path, token) = (&app, path.clone(), token.clone());
            async move {
                let h: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
                call(app, "PUT", &path, Some(&token), Some(&body), &h).await
            }
        };
        let r = put(json!({"system": "erp", "externalIds": ["E-1", "E-2", "E-9", "E-404"]}), Some("members-1")).await;
        assert_eq!(
            r.ok(200),
            &json!({"added": 2, "removed": 0, "unchanged": 0, "notFound": ["E-9", "E-404"]}),
            "a hidden contact's id is not found, like an unknown one"
        );
        assert_eq!(member_names(&admin, &g).await, ["Anna Abbott", "Bruno Baker"]);
        // The same key and body: the first answer again, nothing changed.
        let again =
            put(json!({"system": "erp", "externalIds": ["E-1", "E-2", "E-9", "E-404"]}), Some("members-1")).await;
        assert_eq!(again.ok(200), &r.body);
        // The same key with another body: CONFLICT, nothing changed.
        put(json!({"system": "erp", "externalIds": ["E-3"]}), Some("members-1")).await.problem(409, "CONFLICT");
        assert_eq!(member_names(&admin, &g).await, ["Anna Abbott", "Bruno Baker"]);
        // Without a key, the next list: one joins, one leaves, one stays.
        let r = put(json!({"system": "erp", "externalIds": ["E-2", "E-3"]}), None).await;
        assert_eq!(r.ok(200), &json!({"added": 1, "removed": 1, "unchanged": 1, "notFound": []}));
        assert_eq!(member_names(&admin, &g).await, ["Acme GmbH", "Bruno Baker"]);

        refuses_bad_requests(&app, "PUT", &path, &token, &json!({"system": "erp", "externalIds": []})).await;
        // A group in a book the agent may only read: FORBIDDEN.
        let team_group = crate::groups::group(&admin, &w.team, "Team group", None).await;
        let r = call(
            &app,
            "PUT",
            &format!("/api/v1/groups/{team_group}/members"),
            Some(&token),
            Some(&json!({"system": "erp", "externalIds": []})),
            &[],
        )
        .await;
        r.problem(403, "FORBIDDEN");
        // Hidden and unknown groups: the same answer.
        let hidden_group = crate::groups::group(&admin, &w.hidden, "Hidden group", None).await;
        let body = json!({"system": "erp", "externalIds": ["E-1"]});
        let a =
            call(&app, "PUT", &format!("/api/v1/groups/{hidden_group}/members"), Some(&token), Some(&body), &[]).await;
        let b = call(
            &app,
            "PUT",
            "/api/v1/groups/R3JvdXA6MDE5YTAwMDAwMDAwNzAwMDgwMDAwMDAwMDAwMDAwMDA/members",
            Some(&token),
            Some(&body),
            &[],
        )
        .await;
        a.problem(404, "NOT_FOUND");
        assert_eq!(a.problem_sans_id(), b.problem_sans_id());
        // Bad input, named.
        let r = put(json!({"system": "erp", "externalIds": "E-1"}), None).await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "externalIds");
        let r = put(json!({"externalIds": []}), None).await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "system");
        let r = put(json!({"system": "ERP SYSTEM!", "externalIds": ["E-1"]}), None).await;
        assert!(r.problem(422, "BAD_USER_INPUT")["field"].is_string(), "{}", r.text);
        assert_eq!(member_names(&admin, &g).await, ["Acme GmbH", "Bruno Baker"]);
    }

    fn ada() -> Value {
        json!({"externalId": "C-1", "kind": "PERSON", "firstName": "Ada", "lastName": "Lovelace", "emails": [{"address": "ada@example.com"}]})
    }

    /// `POST /api/v1/contacts:upsert` and `PUT /api/v1/contacts/{system}/{externalId}`.
    async fn upsert_contacts(app: TestApp) {
        let w = World::build(&app).await;
        let agent = app.actor(&w.tenant, "agent", &["agent"]);
        let token = agent.token.clone().unwrap();
        let batch = json!({"addressBookId": w.own, "system": "erp", "contacts": [ada(), {"externalId": "C-2", "kind": "COMPANY", "companyName": "Engines Ltd"}]});
        let r = post(&app, "/api/v1/contacts:upsert", &token, &batch).await;
        let b = r.ok(200).clone();
        assert_eq!(
            (b["committed"].as_bool(), b["created"].as_i64(), b["failed"].as_i64()),
            (Some(true), Some(2), Some(0)),
            "{b}"
        );
        let c = &b["results"][0]["contact"];
        assert_eq!(c["displayName"], "Ada Lovelace");
        assert_eq!(c["externalIds"], json!([{"system": "erp", "value": "C-1"}]));
        assert_eq!(c["addressBook"]["id"], w.own);
        assert_eq!(b["results"][0]["error"], Value::Null);
        // Again: unchanged.
        let again = post(&app, "/api/v1/contacts:upsert", &token, &batch).await;
        assert_eq!(again.ok(200)["unchanged"], 2);
        // Atomic (the default): one bad item writes none; the problem lists it.
        let bad = json!({"addressBookId": w.own, "system": "erp", "contacts": [{"externalId": "C-3", "kind": "PERSON", "lastName": "New"}, {"externalId": "C-4", "kind": "PERSON", "lastName": "Bad", "emails": [{"address": "not-an-address"}]}]});
        let r = post(&app, "/api/v1/contacts:upsert", &token, &bad).await;
        let p = r.problem(422, "BAD_USER_INPUT");
        assert_eq!(p["errors"].as_array().map(Vec::len), Some(1), "{p}");
        assert_eq!(p["errors"][0]["index"], 1);
        assert_eq!(p["errors"][0]["externalId"], "C-4");
        let one = json!({"addressBookId": w.own, "kind": "PERSON", "lastName": "New"});
        let put_path = "/api/v1/contacts/erp/C-3";
        // Non-atomic: the good one is written, the answer tells each fate.
        let mut partial = bad.clone();
        partial["atomic"] = json!(false);
        let r = post(&app, "/api/v1/contacts:upsert", &token, &partial).await;
        let b = r.ok(200);
        assert_eq!(
            (b["committed"].as_bool(), b["created"].as_i64(), b["failed"].as_i64()),
            (Some(true), Some(1), Some(1)),
            "{b}"
        );
        assert_eq!(b["results"][1]["status"], "FAILED");
        assert_eq!(b["results"][1]["contact"], Value::Null);
        assert_eq!(b["results"][1]["error"]["code"], "BAD_USER_INPUT");

        // PUT one: 200 when it exists (unchanged or updated), 201 when created.
        let r = call(&app, "PUT", put_path, Some(&token), Some(&one), &[]).await;
        assert_eq!(r.ok(200)["status"], "UNCHANGED");
        let mut renamed = one.clone();
        renamed["firstName"] = json!("Nia");
        let r = call(&app, "PUT", put_path, Some(&token), Some(&renamed), &[]).await;
        assert_eq!(r.ok(200)["status"], "UPDATED");
        assert_eq!(r.body["contact"]["displayName"], "Nia New");
        // `null` clears a name; an omitted one stays.
        let mut cleared = one.clone();
        cleared["firstName"] = Value::Null;
        let r = call(&app, "PUT", put_path, Some(&token), Some(&cleared), &[]).await;
        assert_eq!(r.ok(200)["contact"]["firstName"], Value::Null);
        // An external id with a slash, percent-encoded in the path.
        let r = call(&app, "PUT", "/api/v1/contacts/erp/K%2F77", Some(&token), Some(&one), &[]).await;
        assert_eq!(r.ok(201)["status"], "CREATED");
        assert_eq!(r.body["contact"]["externalIds"], json!([{"system": "erp", "value": "K/77"}]));
        // A failing item is the answer's problem.
        let mut broken = one.clone();
        broken["emails"] = json!([{"address": "not-an-address"}]);
        let r = call(&app, "PUT", "/api/v1/contacts/erp/C-5", Some(&token), Some(&broken), &[]).await;
        assert!(r.problem(422, "BAD_USER_INPUT")["field"].is_string(), "{}", r.text);
        let r = call(
            &app,
            "PUT",
            "/api/v1/contacts/erp/C-5",
            Some(&token),
            Some(&json!({"addressBookId": w.own, "kind": "ROBOT"})),
            &[],
        )
        .await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "kind");
        let r = call(
            &app,
            "PUT",
            "/api/v1/contacts/erp/C-5",
            Some(&token),
            Some(&json!({"addressBookId": w.own, "kind": "PERSON", "externalId": "X"})),
            &[],
        )
        .await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "externalId", "the path names it");

        refuses_bad_requests(&app, "POST", "/api/v1/contacts:upsert", &token, &batch).await;
        refuses_bad_requests(&app, "PUT", put_path, &token, &one).await;
        // Writing needs WRITE on the book: the team book is READ for the agent.
        let mut team = batch.clone();
        team["addressBookId"] = json!(w.team);
        post(&app, "/api/v1/contacts:upsert", &token, &team).await.problem(403, "FORBIDDEN");
        let mut team_one = one.clone();
        team_one["addressBookId"] = json!(w.team);
        call(&app, "PUT", "/api/v1/contacts/erp/C-7", Some(&token), Some(&team_one), &[])
            .await
            .problem(403, "FORBIDDEN");
        // A hidden book and one that never existed: the same answer.
        let mut hidden = batch.clone();
        hidden["addressBookId"] = json!(w.hidden);
        let mut unknown = batch.clone();
        unknown["addressBookId"] = json!("QWRkcmVzc0Jvb2s6MDE5YTAwMDAwMDAwNzAwMDgwMDAwMDAwMDAwMDAwMDA");
        let a = post(&app, "/api/v1/contacts:upsert", &token, &hidden).await;
        let b = post(&app, "/api/v1/contacts:upsert", &token, &unknown).await;
        a.problem(404, "NOT_FOUND");
        assert_eq!(a.problem_sans_id(), b.problem_sans_id());
        // An external id another book's contact holds conflicts.
        let admin = app.actor(&w.tenant, "admin", &["admin"]);
        admin.ok(SET_EXTERNAL_ID, json!({"n": w.id("anna_hidden"), "s": "erp", "i": "TAKEN"})).await;
        let r = call(&app, "PUT", "/api/v1/contacts/erp/TAKEN", Some(&token), Some(&one), &[]).await;
        r.problem(409, "CONFLICT");
        let mut taken = batch.clone();
        taken["contacts"][1]["externalId"] = json!("TAKEN");
        let r = post(&app, "/api/v1/contacts:upsert", &token, &taken).await;
        assert_eq!(r.problem(409, "CONFLICT")["errors"][0]["externalId"], "TAKEN");
    }

    /// `GET /api/v1/changes`: the empty first page, then what changed, by type, paged.
    async fn changes_feed(app: TestApp) {
        let w = World::build(&app).await;
        let admin = app.actor(&w.tenant, "admin", &["admin"]);
        let token = admin.token.clone().unwrap();
        let start = call(&app, "GET", "/api/v1/changes", Some(&token), None, &[]).await;
        let page = start.ok(200).clone();
        assert_eq!(page["changes"], json!([]));
        let cursor = page["cursor"].as_str().unwrap().to_owned();
        admin.ok(SET_EXTERNAL_ID, json!({"n": w.id("bruno"), "s": "erp", "i": "B-1"})).await;
        crate::groups::group(&admin, &w.own, "Fresh group", None).await;
        let r = call(&app, "GET", &format!("/api/v1/changes?since={cursor}"), Some(&token), None, &[]).await;
        let all = r.ok(200).clone();
        let types: Vec<&str> = all["changes"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert!(types.contains(&"CONTACT") && types.contains(&"GROUP"), "{all}");
        let bruno = all["changes"].as_array().unwrap().iter().find(|c| c["id"] == w.id("bruno")).expect("bruno");
        assert_eq!(bruno["operation"], "UPSERTED");
        assert_eq!(bruno["externalIds"], json!([{"system": "erp", "value": "B-1"}]));
        // Only contacts; one per page.
        let r = call(
            &app,
            "GET",
            &format!("/api/v1/changes?since={cursor}&types=contact&first=1"),
            Some(&token),
            None,
            &[],
        )
        .await;
        let one = r.ok(200);
        assert_eq!(one["changes"].as_array().map(Vec::len), Some(1));
        assert_eq!(one["changes"][0]["type"], "CONTACT");
        // The same as GraphQL's answer.
        let q = "query($s: String) { changes(since: $s, types: [CONTACT], first: 1) { changes { cursor type operation id externalIds { system value } changedAt } cursor hasMore } }";
        assert_eq!(&admin.ok(q, json!({"s": cursor})).await["changes"], one);

        call(&app, "GET", "/api/v1/changes", None, None, &[]).await.problem(401, "UNAUTHENTICATED");
        let r = call(&app, "GET", "/api/v1/changes?types=contacts", Some(&token), None, &[]).await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "types");
        let r = call(&app, "GET", "/api/v1/changes?first=many", Some(&token), None, &[]).await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "first");
        let r = call(&app, "GET", "/api/v1/changes?first=0", Some(&token), None, &[]).await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "first");
        let r = call(&app, "GET", "/api/v1/changes?sinse=x", Some(&token), None, &[]).await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "sinse");
        let r = call(&app, "GET", "/api/v1/changes?since=not-a-cursor", Some(&token), None, &[]).await;
        assert_eq!(r.problem(422, "BAD_USER_INPUT")["field"], "since");
    }

    /// One implementation underneath: a user at the data-usage block is refused by the REST
    /// facade exactly as by GraphQL (the same code and words), for the same read.
    async fn data_usage_limit_refuses_rest_as_graphql(app: TestApp) {
        let w = World::build(&app).await;
        let admin = app.actor(&w.tenant, "admin", &["admin"]);
        let agent = app.actor(&w.tenant, "agent", &["agent"]);
        let token = agent.token.clone().unwrap();
        let start = call(&app, "GET", "/api/v1/changes", Some(&token), None, &[]).await;
        let cursor = start.ok(200)["cursor"].as_str().unwrap().to_owned();
        admin
            .ok(
                "mutation { setDataUsagePolicy(input: {scope: TENANT, blockContacts: 2}) { policy { blockContacts } } }",
                json!({}),
            )
            .await;
        // Two contacts seen: at the limit.
        for c in ["anna", "acme"] {
            agent.ok("query($c: ID!) { contact(id: $c) { id } }", json!({"c": w.id(c)})).await;
        }
        // Two contacts the agent has not seen change.
        for (c, x) in [("bruno", "B-1"), ("clara", "C-1")] {
            admin.ok(SET_EXTERNAL_ID, json!({"n": w.id(c), "s": "erp", "i": x})).await;
        }
        let r =
            call(&app, "GET", &format!("/api/v1/changes?since={cursor}&types=contact"), Some(&token), None, &[]).await;
        let p = r.problem(403, "DATA_USAGE_LIMIT").clone();
        let q = "query($s: String) { changes(since: $s, types: [CONTACT]) { changes { id } } }";
        let g = agent.gql(q, json!({"s": cursor})).await;
        assert_eq!(g["errors"][0]["extensions"]["code"], "DATA_USAGE_LIMIT", "{g}");
        assert_eq!(g["errors"][0]["message"], p["detail"]);
        // The same for an order of a contact the agent has not seen today (`GET /orders/{id}`).
        product(&admin, "U-1", "1").await;
        let placed = admin
            .ok(
                "mutation($c: ID!) { placeOrder(input: {contactId: $c, currency: \"EUR\", lines: [{sku: \"U-1\", quantity: \"1\"}]}) { order { id } } }",
                json!({"c": w.id("bruno")}),
            )
            .await;
        let order = placed["placeOrder"]["order"]["id"].as_str().unwrap().to_owned();
        let r = call(&app, "GET", &format!("/api/v1/orders/{order}"), Some(&token), None, &[]).await;
        let p = r.problem(403, "DATA_USAGE_LIMIT").clone();
        let g = agent.gql("query($o: ID!) { order(id: $o) { contact { displayName } } }", json!({"o": order})).await;
        assert_eq!(g["errors"][0]["extensions"]["code"], "DATA_USAGE_LIMIT", "{g}");
        assert_eq!(g["errors"][0]["message"], p["detail"]);
        // An admin lifts the block: both read again.
        let me = agent.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].clone();
        admin
            .ok(
                "mutation($u: ID!) { liftDataUsageBlock(input: {userId: $u}) { usage { liftedAt } } }",
                json!({"u": me}),
            )
            .await;
        let r =
            call(&app, "GET", &format!("/api/v1/changes?since={cursor}&types=contact"), Some(&token), None, &[]).await;
        assert_eq!(r.ok(200)["changes"].as_array().map(Vec::len), Some(2));
    }

    /// A client generated from the OpenAPI document upserts contacts.
    async fn generated_client_upserts_contacts(app: TestApp) {
        let w = World::build(&app).await;
        let token = app.token(&w.tenant, "agent", &["agent"]);
        let Some(out) = run_generated_client(&app, "upsert", &token, json!({"addressBookId": w.own})).await else {
            return;
        };
        assert_eq!(
            out,
            json!({"statuses": [["CREATED", "CREATED"], ["UNCHANGED", "UNCHANGED"]], "displayName": "Ada Lovelace",
                "emails": ["ada@example.com"], "externalIds": [["erp", "C-1"]]})
        );
    }

    on_both_backends!(
        set_group_members,
        upsert_contacts,
        changes_feed,
        data_usage_limit_refuses_rest_as_graphql,
        generated_client_upserts_contacts,
    );
}
