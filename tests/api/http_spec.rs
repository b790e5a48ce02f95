//! GraphQL over HTTP, following the graphql-http `serverAudits`: media-type negotiation, request
//! parameter checks, status codes for `application/graphql-response+json` versus legacy
//! `application/json`, GET rules; then the request limits (refused before any resolver runs),
//! introspection and suggestions, the operational endpoints and request ids.

use crate::on_both_backends;
use crate::support::{Backend, CREATE_BOOK, CREATE_CONTACT, TestApp};
use reqwest::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

const GQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// A response, read whole.
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    fn content_type(&self) -> String {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    }

    fn code(&self) -> Value {
        self.json()["errors"][0]["extensions"]["code"].clone()
    }

    /// The media type without parameters.
    fn media_type(&self) -> String {
        self.content_type().split(';').next().unwrap_or("").trim().to_ascii_lowercase()
    }
}

async fn read(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    Reply { status, headers, text }
}

/// POSTs `body` to /graphql with the given `Accept` and `Content-Type` (`None`: not sent; reqwest
/// then sends `Accept: */*`).
async fn post(
    app: &TestApp,
    accept: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut req = app.client.post(app.url("/graphql")).body(body);
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    read(req.send().await.expect("request")).await
}

/// POSTs a JSON value as `application/json`.
async fn post_json(app: &TestApp, accept: &str, body: &Value) -> Reply {
    post(app, Some(accept), Some(JSON), body.to_string()).await
}

async fn post_json_as(app: &TestApp, token: &str, accept: &str, body: &Value) -> Reply {
    let req = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header(ACCEPT, accept)
        .header(CONTENT_TYPE, JSON)
        .body(body.to_string());
    read(req.send().await.expect("request")).await
}

/// GETs /graphql with URL-encoded parameters.
async fn get(app: &TestApp, accept: &str, token: Option<&str>, params: &[(&str, &str)]) -> Reply {
    let mut url = reqwest::Url::parse(&app.url("/graphql")).expect("url");
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    let mut req = app.client.get(url).header(ACCEPT, accept);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    read(req.send().await.expect("request")).await
}

/// A GET sent over a bare socket, without any `Accept` header (reqwest always adds one).
/// Returns (status, lower-cased headers, body).
async fn raw_get_without_accept(app: &TestApp, path_and_query: &str) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let host = app.base.trim_start_matches("http://").to_owned();
    let request = format!("GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&host).expect("connect");
        s.write_all(request.as_bytes()).expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).expect("read");
        out
    })
    .await
    .expect("join");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")),
        "a chunked body would need decoding"
    );
    (status, headers, body.to_owned())
}

fn assert_no_data(r: &Reply, what: &str) {
    assert!(r.json().get("data").is_none(), "{what}: no `data` expected: {}", r.text);
}

async fn spawn_with(backend: Backend, f: impl FnOnce(&mut cohort_api::config::Settings)) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, f).await;
    if app.is_none() {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
    }
    app
}

// ---------------------------------------------------------------------------------------------
// Media types.

async fn accepts_graphql_response_json(app: TestApp) {
    let r = post_json(&app, GQL_RESPONSE, &json!({"query": "{ __typename }"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.media_type(), GQL_RESPONSE);
    assert!(r.content_type().to_ascii_lowercase().contains("charset=utf-8"), "{}", r.content_type());
    assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}));
}

async fn accepts_application_json(app: TestApp) {
    let r = post_json(&app, JSON, &json!({"query": "{ __typename }"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.media_type(), JSON);
    assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}));
}

async fn wildcard_accept_answers_json(app: TestApp) {
    let r = post_json(&app, "*/*", &json!({"query": "{ __typename }"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.media_type(), JSON);
    assert_eq!(r.json()["data"]["__typename"], "Query");
    // The first acceptable entry of a list wins.
    let r = post_json(
        &app,
        "text/html, application/graphql-response+json, application/json",
        &json!({"query": "{ __typename }"}),
    )
    .await;
    assert_eq!(r.media_type(), GQL_RESPONSE);
    // Nothing acceptable: 406.
    let r = post_json(&app, "text/html", &json!({"query": "{ __typename }"})).await;
    assert_eq!(r.status, 406);
}

async fn get_without_accept_answers_json(app: TestApp) {
    let (status, headers, body) = raw_get_without_accept(&app, "/graphql?query=%7B__typename%7D").await;
    assert_eq!(status, 200, "{body}");
    let ct =
        headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.to_ascii_lowercase()).expect("content-type");
    assert!(ct.starts_with("application/json"), "{ct}");
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body, json!({"data": {"__typename": "Query"}}));
}

async fn get_with_accept(app: TestApp) {
    for (accept, media) in [(GQL_RESPONSE, GQL_RESPONSE), (JSON, JSON)] {
        let r = get(&app, accept, None, &[("query", "{ __typename }")]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.media_type(), media);
        assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}));
    }
}

async fn utf8_charset_accepted(app: TestApp) {
    for ct in ["application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"] {
        let r = post(&app, Some(GQL_RESPONSE), Some(ct), json!({"query": "{ __typename }"}).to_string()).await;
        assert_eq!(r.status, 200, "{ct}: {}", r.text);
        assert_eq!(r.json()["data"]["__typename"], "Query", "{ct}");
    }
}

async fn unsupported_content_type_is_415(app: TestApp) {
    let body = json!({"query": "{ __typename }"}).to_string();
    let r = post(&app, Some(GQL_RESPONSE), None, body.clone()).await;
    assert_eq!(r.status, 415, "no content type: {}", r.text);
    for ct in ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"] {
        let r = post(&app, Some(GQL_RESPONSE), Some(ct), body.clone()).await;
        assert_eq!(r.status, 415, "{ct}: {}", r.text);
    }
}

async fn empty_body_is_refused(app: TestApp) {
    let r = post(&app, Some(GQL_RESPONSE), Some(JSON), "").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "empty body");
    let r = post(&app, Some(JSON), Some(JSON), "").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "empty body");
}

// ---------------------------------------------------------------------------------------------
// Request parameters.

/// Bodies whose parameters have the wrong shape.
fn bad_parameter_bodies() -> Vec<(&'static str, Value)> {
    let q = "{ __typename }";
    vec![
        ("missing query", json!({})),
        ("null query", json!({"query": null})),
        ("query object", json!({"query": {"obj": "ect"}})),
        ("query number", json!({"query": 0})),
        ("query boolean", json!({"query": false})),
        ("query array", json!({"query": ["array"]})),
        ("operationName object", json!({"query": q, "operationName": {"obj": "ect"}})),
        ("operationName number", json!({"query": q, "operationName": 0})),
        ("operationName boolean", json!({"query": q, "operationName": false})),
        ("operationName array", json!({"query": q, "operationName": ["array"]})),
        ("variables string", json!({"query": q, "variables": "string"})),
        ("variables number", json!({"query": q, "variables": 0})),
        ("variables boolean", json!({"query": q, "variables": false})),
        ("variables array", json!({"query": q, "variables": ["array"]})),
        ("extensions string", json!({"query": q, "extensions": "string"})),
        ("extensions number", json!({"query": q, "extensions": 0})),
        ("extensions boolean", json!({"query": q, "extensions": false})),
        ("extensions array", json!({"query": q, "extensions": ["array"]})),
        ("body string", json!("{ __typename }")),
        ("body number", json!(1)),
    ]
}

async fn bad_parameters_are_400_with_graphql_response_json(app: TestApp) {
    for (what, body) in bad_parameter_bodies() {
        let r = post_json(&app, GQL_RESPONSE, &body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.media_type(), GQL_RESPONSE, "{what}");
        assert_eq!(r.code(), "BAD_REQUEST", "{what}");
        assert_no_data(&r, what);
    }
}

async fn bad_parameters_are_400_with_errors_with_application_json(app: TestApp) {
    for (what, body) in bad_parameter_bodies() {
        let r = post_json(&app, JSON, &body).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.media_type(), JSON, "{what}");
        assert_eq!(r.code(), "BAD_REQUEST", "{what}");
        assert_no_data(&r, what);
    }
}

async fn bad_get_parameters_are_refused(app: TestApp) {
    let r = get(&app, GQL_RESPONSE, None, &[]).await;
    assert_eq!(r.status, 400, "missing query: {}", r.text);
    assert_no_data(&r, "missing query");
    for (what, params) in [
        ("variables not JSON", [("query", "{ __typename }"), ("variables", "{not json")]),
        ("variables a string", [("query", "{ __typename }"), ("variables", "\"string\"")]),
        ("extensions an array", [("query", "{ __typename }"), ("extensions", "[]")]),
    ] {
        let r = get(&app, GQL_RESPONSE, None, &params).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.code(), "BAD_REQUEST", "{what}");
        assert_no_data(&r, what);
        let r = get(&app, JSON, None, &params).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.code(), "BAD_REQUEST", "{what}");
        assert_no_data(&r, what);
    }
}

async fn null_parameters_are_accepted(app: TestApp) {
    for (what, body) in [
        ("null variables", json!({"query": "{ __typename }", "variables": null})),
        ("null operationName", json!({"query": "{ __typename }", "operationName": null})),
        ("null extensions", json!({"query": "{ __typename }", "extensions": null})),
        ("map extensions", json!({"query": "{ __typename }", "extensions": {"some": "value"}})),
        ("all null", json!({"query": "{ __typename }", "variables": null, "operationName": null, "extensions": null})),
    ] {
        for accept in [GQL_RESPONSE, JSON] {
            let r = post_json(&app, accept, &body).await;
            assert_eq!(r.status, 200, "{what} ({accept}): {}", r.text);
            assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}), "{what} ({accept})");
        }
    }
}

async fn map_variables_are_used(app: TestApp) {
    let q = "query Type($name: String!) { __type(name: $name) { name } }";
    let r = post_json(&app, GQL_RESPONSE, &json!({"query": q, "variables": {"name": "sometype"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().get("errors").is_none(), "{}", r.text);
    let r = get(&app, GQL_RESPONSE, None, &[("query", q), ("variables", r#"{"name":"sometype"}"#)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().get("errors").is_none(), "{}", r.text);
    // The operation name selects among several operations.
    let doc = "query A { a: __typename } query B { b: __typename }";
    let r = post_json(&app, GQL_RESPONSE, &json!({"query": doc, "operationName": "B"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"data": {"b": "Query"}}));
    let r = get(&app, GQL_RESPONSE, None, &[("query", doc), ("operationName", "A")]).await;
    assert_eq!(r.json(), json!({"data": {"a": "Query"}}));
}

async fn json_parse_failure(app: TestApp) {
    let r = post(&app, Some(GQL_RESPONSE), Some(JSON), r#"{ "not a JSON"#).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "bad JSON");
    let r = post(&app, Some(JSON), Some(JSON), r#"{ "not a JSON"#).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "bad JSON");
}

async fn document_parse_failure(app: TestApp) {
    // `8f31403dfe404bccbb0e835f2629c6a7` is not a name (it starts with a digit), so this audit
    // document of graphql-http fails to parse, as `{` does.
    for doc in ["{", "{ 8f31403dfe404bccbb0e835f2629c6a7 }"] {
        let r = post_json(&app, GQL_RESPONSE, &json!({"query": doc})).await;
        assert_eq!(r.status, 400, "{doc}: {}", r.text);
        assert_eq!(r.code(), "GRAPHQL_PARSE_FAILED", "{doc}");
        assert_no_data(&r, doc);
        let r = post_json(&app, JSON, &json!({"query": doc})).await;
        assert_eq!(r.status, 200, "{doc}: {}", r.text);
        assert_eq!(r.code(), "GRAPHQL_PARSE_FAILED", "{doc}");
        assert_no_data(&r, doc);
    }
}

async fn document_validation_failure(app: TestApp) {
    for doc in ["{ f8f31403dfe404bccbb0e835f2629c6a7 }", "{ viewer { nope } }", "{ __typename ...Missing }"] {
        let r = post_json(&app, GQL_RESPONSE, &json!({"query": doc})).await;
        assert_eq!(r.status, 400, "{doc}: {}", r.text);
        assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED", "{doc}");
        assert_no_data(&r, doc);
        let r = post_json(&app, JSON, &json!({"query": doc})).await;
        assert_eq!(r.status, 200, "{doc}: {}", r.text);
        assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED", "{doc}");
        assert_no_data(&r, doc);
    }
}

/// The rules about variable definitions (all used, all defined, input types only) are validation
/// rules like any other (GraphQL spec §5.8): their failures are `GRAPHQL_VALIDATION_FAILED`, not
/// `BAD_USER_INPUT` (which is for bad values).
async fn variable_rule_violations_are_validation_failures(app: TestApp) {
    for doc in [
        "query($x: String!) { __typename }",
        "{ __type(name: $y) { name } }",
        "query($x: Contact) { __type(name: $x) { name } }",
    ] {
        for accept in [GQL_RESPONSE, JSON] {
            let r = post_json(&app, accept, &json!({"query": doc, "variables": {"x": "X", "y": "Y"}})).await;
            assert_eq!(r.status, if accept == GQL_RESPONSE { 400 } else { 200 }, "{doc}: {}", r.text);
            assert_no_data(&r, doc);
            assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED", "{doc} ({accept}): {}", r.text);
        }
    }
}

async fn get_mutation_is_405(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    for (accept, query, op) in [
        (GQL_RESPONSE, "mutation { __typename }", None),
        (JSON, "mutation { __typename }", None),
        (GQL_RESPONSE, r#"mutation { createAddressBook(input: {name: "Via GET"}) { addressBook { id } } }"#, None),
        (
            GQL_RESPONSE,
            r#"query Q { __typename } mutation M { createAddressBook(input: {name: "Via GET"}) { addressBook { id } } }"#,
            Some("M"),
        ),
    ] {
        let mut params = vec![("query", query)];
        if let Some(op) = op {
            params.push(("operationName", op));
        }
        let r = get(&app, accept, Some(&admin), &params).await;
        assert_eq!(r.status, 405, "{query}: {}", r.text);
        assert_eq!(r.headers.get(ALLOW).and_then(|v| v.to_str().ok()), Some("POST"), "{query}");
        assert_no_data(&r, query);
    }
    let d = app.with_token(&admin).ok("{ addressBooks { edges { node { name } } } }", json!({})).await;
    assert_eq!(d["addressBooks"]["edges"], json!([]), "no mutation ran");
    // The query of the same document is fine over GET.
    let r = get(
        &app,
        GQL_RESPONSE,
        Some(&admin),
        &[("query", "query Q { __typename } mutation M { __typename }"), ("operationName", "Q")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"data": {"__typename": "Query"}}));
}

// ---------------------------------------------------------------------------------------------
// Limits: refused before any resolver runs.

async fn book_names(app: &TestApp, admin: &str) -> Vec<String> {
    let d = app.with_token(admin).ok("{ addressBooks(first: 100) { edges { node { name } } } }", json!({})).await;
    d["addressBooks"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn too_many_aliases_refused(app: TestApp) {
    let doc = format!("{{ {} }}", (0..2000).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
    let r = post_json(&app, GQL_RESPONSE, &json!({"query": doc})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "2000 aliases");
    let r = post_json(&app, JSON, &json!({"query": doc})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "2000 aliases");

    // Over the limit (50) with mutations: none of them runs.
    let admin = app.token("acme", "admin", &["admin"]);
    let doc = format!(
        "mutation {{ {} }}",
        (0..51)
            .map(|i| format!("b{i}: createAddressBook(input: {{name: \"Alias {i}\"}}) {{ addressBook {{ id }} }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let r = post_json_as(&app, &admin, GQL_RESPONSE, &json!({"query": doc})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "51 aliased mutations");
    assert!(book_names(&app, &admin).await.is_empty());

    // At the limit, the aliases resolve.
    let doc = format!("{{ {} }}", (0..50).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
    let r = post_json(&app, GQL_RESPONSE, &json!({"query": doc})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["a49"], "Query");
}

async fn oversized_batch_refused(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    let batch: Vec<Value> =
        (0..200).map(|i| json!({"query": CREATE_BOOK, "variables": {"n": format!("Batch {i}")}})).collect();
    let r = post_json_as(&app, &admin, GQL_RESPONSE, &Value::Array(batch)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "batch of 200");
    let r = post_json_as(&app, &admin, GQL_RESPONSE, &json!([])).await;
    assert_eq!(r.status, 400, "empty batch: {}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert!(book_names(&app, &admin).await.is_empty(), "no operation of the batch ran");

    // A batch within the limit (10) runs, in order.
    let batch: Vec<Value> =
        (0..2).map(|i| json!({"query": CREATE_BOOK, "variables": {"n": format!("Batch {i}")}})).collect();
    let r = post_json_as(&app, &admin, GQL_RESPONSE, &Value::Array(batch)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let out = r.json();
    assert_eq!(out.as_array().map(Vec::len), Some(2), "{out:#}");
    assert!(out[0]["data"]["createAddressBook"]["addressBook"]["id"].is_string(), "{out:#}");
    assert_eq!(book_names(&app, &admin).await, ["Batch 0", "Batch 1"]);
}

async fn too_many_operations_refused(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    let doc = (0..200)
        .map(|i| {
            format!("mutation m{i} {{ createAddressBook(input: {{name: \"Op {i}\"}}) {{ addressBook {{ id }} }} }}")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let r = post_json_as(&app, &admin, GQL_RESPONSE, &json!({"query": doc, "operationName": "m0"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "BAD_REQUEST");
    assert_no_data(&r, "200 operations");
    assert!(book_names(&app, &admin).await.is_empty(), "no operation ran");
}

/// A document over the complexity limit is refused before it runs, and the error says what it
/// costs and what the limit is (so a client can ask for fewer rows instead of guessing).
async fn too_complex_refused_with_cost_and_limit(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    let q = "{ contacts(first: 100) { edges { node { memberships { group { members(first: 100) { edges { node { id displayName } } } } } } } } }";
    let r = post_json_as(&app, &admin, GQL_RESPONSE, &json!({"query": q})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED");
    assert_no_data(&r, "too complex");
    let body: Value = serde_json::from_str(&r.text).unwrap();
    let ext = &body["errors"][0]["extensions"];
    let (cost, limit) = (ext["cost"].as_u64().unwrap(), ext["limit"].as_u64().unwrap());
    assert_eq!(limit, 2000);
    assert!(cost > limit, "{ext}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains(&cost.to_string()));
    // Within the limit, the same shape runs.
    let r = post_json_as(
        &app,
        &admin,
        GQL_RESPONSE,
        &json!({"query": "{ contacts(first: 10) { edges { node { id } } } }"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn too_deep_refused(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    let nested = |levels: usize| {
        let mut sel = "id".to_owned();
        for _ in 0..levels {
            sel = format!("company {{ {sel} }}");
        }
        format!("query($id: ID!) {{ contact(id: $id) {{ {sel} }} }}")
    };
    let actor = app.with_token(&admin);
    let d = actor.ok(CREATE_BOOK, json!({"n": "Deep"})).await;
    let book = d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    let d = actor.ok(CREATE_CONTACT, json!({"i": {"addressBookId": book, "kind": "PERSON", "lastName": "Deep"}})).await;
    let id = d["createContact"]["contact"]["id"].as_str().unwrap().to_owned();
    let r = post_json_as(&app, &admin, GQL_RESPONSE, &json!({"query": nested(20), "variables": {"id": id}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED");
    assert_no_data(&r, "20 levels");
    // Shallow enough, the same query executes.
    let r = post_json_as(&app, &admin, GQL_RESPONSE, &json!({"query": nested(3), "variables": {"id": id}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"data": {"contact": {"company": null}}}));
}

async fn body_over_limit_is_413(backend: Backend) {
    let Some(app) = spawn_with(backend, |s| s.limits.max_body_bytes = 1024).await else {
        return;
    };
    let filler = "x".repeat(4096);
    // The GraphQL-over-HTTP error shape, under whichever media type was negotiated.
    for accept in [GQL_RESPONSE, JSON] {
        let r = post_json(&app, accept, &json!({"query": "{ __typename }", "extensions": {"filler": filler}})).await;
        assert_eq!(r.status, 413, "{}", r.text);
        assert!(r.headers.contains_key("x-request-id"));
        assert_eq!(r.media_type(), accept);
        assert_eq!(r.code(), "PAYLOAD_TOO_LARGE", "{}", r.text);
        assert!(r.json()["errors"][0]["message"].as_str().unwrap().contains("1024 bytes"), "{}", r.text);
        assert!(r.json().get("data").is_none());
    }
    // Under the limit, fine.
    let r =
        post_json(&app, GQL_RESPONSE, &json!({"query": "{ __typename }", "extensions": {"filler": "x".repeat(512)}}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// The default limit is 1 MiB: one byte over it is refused with the same JSON shape.
async fn body_over_default_limit_is_413_json(app: TestApp) {
    let limit = cohort_api::config::Limits::default().max_body_bytes;
    let envelope = json!({"query": "{ __typename }", "extensions": {"filler": ""}}).to_string().len();
    let body =
        json!({"query": "{ __typename }", "extensions": {"filler": "x".repeat(limit + 1 - envelope)}}).to_string();
    assert_eq!(body.len(), limit + 1);
    let r = post(&app, None, Some(JSON), body).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.media_type(), JSON);
    assert_eq!(
        r.json(),
        json!({"errors": [{"message": format!("the request body is larger than {limit} bytes"), "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]})
    );
    // Exactly at the limit, the body is read (and executed).
    let body = json!({"query": "{ __typename }", "extensions": {"filler": "x".repeat(limit - envelope)}}).to_string();
    let r = post(&app, None, Some(JSON), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// Schema exposure.

async fn no_field_suggestions(app: TestApp) {
    let token = app.token("acme", "agent", &["agent"]);
    for doc in ["{ viewr { isAdmin } }", "{ viewer { isAdmn } }", "{ contacts(frist: 1) { totalCount } }"] {
        let r = post_json_as(&app, &token, GQL_RESPONSE, &json!({"query": doc})).await;
        assert_eq!(r.status, 400, "{doc}: {}", r.text);
        assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED", "{doc}");
        let body = r.json();
        for e in body["errors"].as_array().unwrap() {
            let m = e["message"].as_str().unwrap();
            assert!(!m.to_ascii_lowercase().contains("did you mean"), "{doc}: suggestion in {m:?}");
        }
    }
}

const SCHEMA_TYPES: &str = "{ __schema { types { name } } }";

async fn introspection_is_off_by_default(app: TestApp) {
    // With introspection disabled, async-graphql resolves `__schema` and `__type` to null.
    let token = app.token("acme", "agent", &["agent"]);
    for t in [None, Some(token.as_str())] {
        let send = |body: Value| {
            let app = &app;
            async move {
                match t {
                    Some(t) => post_json_as(app, t, JSON, &body).await,
                    None => post_json(app, JSON, &body).await,
                }
            }
        };
        let r = send(json!({"query": SCHEMA_TYPES})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"data": {"__schema": null}}), "introspection must be off");
        let r = send(json!({"query": r#"{ __type(name: "Contact") { fields { name } } }"#})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"data": {"__type": null}}), "introspection must be off");
    }
}

async fn introspection_can_be_enabled(backend: Backend) {
    let Some(app) = spawn_with(backend, |s| s.introspection = true).await else {
        return;
    };
    let r = post_json(&app, GQL_RESPONSE, &json!({"query": SCHEMA_TYPES})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert!(body.get("errors").is_none(), "{body:#}");
    let names: Vec<&str> =
        body["data"]["__schema"]["types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for t in ["Query", "Mutation", "Contact", "AddressBook", "User"] {
        assert!(names.contains(&t), "{t} missing from {names:?}");
    }
}

/// The exact documents graphql-js 16.9.0's `getIntrospectionQuery()` prints (vendored by
/// `scripts/vendor-introspection.sh`), as GraphiQL, gql, graphql-codegen, Rover and Postman send
/// them: they pass at the default depth limit of 12, while an introspection query that nests
/// list fields four deep (the one that multiplies an answer) is refused.
async fn standard_introspection_queries_pass(backend: Backend) {
    let Some(app) = spawn_with(backend, |s| s.introspection = true).await else {
        return;
    };
    for doc in [
        include_str!("../fixtures/introspection-graphql-js-16.9.0-default.graphql"),
        include_str!("../fixtures/introspection-graphql-js-16.9.0-all.graphql"),
    ] {
        let r = post_json(&app, GQL_RESPONSE, &json!({"query": doc, "operationName": "IntrospectionQuery"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        assert!(body.get("errors").is_none(), "{body:#}");
        let s = &body["data"]["__schema"];
        assert_eq!(s["queryType"]["name"], "Query");
        let query = s["types"].as_array().unwrap().iter().find(|t| t["name"] == "Query").unwrap();
        assert!(query["fields"].as_array().unwrap().iter().any(|f| f["name"] == "contacts"));
        // The deepest wrapper chain is answered in full: `[ID!]!` is NON_NULL → LIST → NON_NULL → ID.
        assert!(r.text.contains(r#""kind":"NON_NULL","name":null,"ofType":{"kind":"LIST""#), "wrapper chains");
    }
    let multiplying = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let r = post_json(&app, GQL_RESPONSE, &json!({"query": multiplying})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED");
    assert_no_data(&r, "nested introspection lists");
}

/// Whether python3 can import `module`. `.ci/run` installs the test tools (gql,
/// prometheus_client) and sets `COHORT_TEST_REQUIRE_PYTHON_TOOLS=1`, which turns a missing one
/// into a failure; elsewhere a test without them says it was skipped.
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

/// Python `gql` fetches the schema from the server (graphql-core's introspection query) and
/// runs a query it validated against it (`scripts/gql_schema.py`).
async fn python_gql_fetches_the_schema(backend: Backend) {
    if !python_has("gql.transport.requests") {
        return;
    }
    let Some(app) = spawn_with(backend, |s| s.introspection = true).await else {
        return;
    };
    let token = app.token("acme", "admin", &["admin"]);
    let url = app.url("/graphql");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gql_schema.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").args([script, &url, &token]).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gql failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("totalCount=0"), "{stdout}");
}

/// `/metrics` as the reference parsers read it (`scripts/parse_metrics.py`, `prometheus_client`):
/// classic text by default and OpenMetrics when asked, every family with its real type; and the
/// `operation` label stays bounded whatever names clients send.
async fn metrics_parse_and_stay_bounded(app: TestApp) {
    let token = app.token("acme", "agent", &["agent"]);
    for i in 0..8 {
        // Unauthenticated requests with random names mint no series …
        post_json(&app, JSON, &json!({"query": "{ __typename }", "operationName": format!("Rnd{i}x")})).await;
    }
    // … and authenticated ones at most MAX_OPERATION_LABELS.
    for i in 0..(cohort_api::metrics::MAX_OPERATION_LABELS + 20) {
        let q = format!("query N{i} {{ __typename }}");
        post_json_as(&app, &token, JSON, &json!({"query": q, "operationName": format!("N{i}")})).await;
    }
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let ops: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("cohort_graphql_operations_total{"))
        .filter_map(|l| l.split("operation=\"").nth(1)?.split('"').next())
        .collect();
    assert!(!ops.iter().any(|o| o.starts_with("Rnd")), "{ops:?}");
    assert!(ops.contains("unauthenticated") && ops.contains("other"), "{ops:?}");
    assert!(ops.len() <= cohort_api::metrics::MAX_OPERATION_LABELS + 3, "{} labels", ops.len());
    assert!(!text.contains("# EOF"), "classic text by default");
    if !python_has("prometheus_client") {
        return;
    }
    let url = app.url("/metrics");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/parse_metrics.py");
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("python3").args([script, &url]).output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["classic"]["contentType"].as_str().unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(v["openmetrics"]["contentType"].as_str().unwrap().starts_with("application/openmetrics-text"));
    for fmt in ["classic", "openmetrics"] {
        let f = &v[fmt]["families"];
        assert_eq!(f["cohort_graphql_operations"], "counter", "{fmt}: {f}");
        assert_eq!(f["cohort_db_statements"], "counter", "{fmt}: {f}");
        assert_eq!(f["cohort_http_request_duration_seconds"], "histogram", "{fmt}: {f}");
    }
}

/// A failed non-null root field nulls the whole `data` (spec §6.4.4; the nullable case is a unit
/// test in `http.rs`, as every nullable root field here answers `null` without an error).
/// `Product` and `PriceList` are `Node`s.
async fn failed_non_null_root_fields_null_the_data(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    let r =
        post_json_as(&app, &admin, JSON, &json!({"query": "{ __typename contacts(first: 500) { totalCount } }"})).await;
    let body = r.json();
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["contacts"]));
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // Through an alias and a fragment, too (`contact` is non-null: NOT_FOUND nulls `data`).
    let q = "query { t: __typename ...F } fragment F on Query { c: contact(id: \"nope\") { id } }";
    let body = post_json_as(&app, &admin, JSON, &json!({"query": q})).await.json();
    assert_eq!((body["data"].clone(), body["errors"][0]["path"].clone()), (Value::Null, json!(["c"])), "{body}");
    // A named operation without `operationName` (how Apollo Client sends every request).
    let q = "query Named { __typename contacts(first: 500) { totalCount } }";
    let body = post_json_as(&app, &admin, JSON, &json!({"query": q})).await.json();
    assert_eq!(body["data"], Value::Null, "a named single operation too: {body}");
    let d = app
        .with_token(&admin)
        .ok(
            "mutation { createProduct(input: {sku: \"N-1\", name: \"Node product\", listPrice: \"1.00\", currency: \"EUR\"}) { product { id } } }",
            json!({}),
        )
        .await;
    let id = d["createProduct"]["product"]["id"].clone();
    let n = app.with_token(&admin).ok("query($id: ID!) { node(id: $id) { __typename id } }", json!({"id": id})).await;
    assert_eq!(n["node"], json!({"__typename": "Product", "id": id}));
}

/// CORS for single-page apps on another origin: the preflight of an Apollo Client request with
/// client-awareness and trace-context headers is allowed, `x-request-id` is exposed, other
/// origins get no CORS grant, and `COHORT_CORS_HEADERS` replaces the list.
async fn cors_preflight_allows_what_browser_clients_send(backend: Backend) {
    let Some(app) = spawn_with(backend, |s| s.cors_origins = vec!["https://spa.example".into()]).await else {
        return;
    };
    let wanted = "content-type, authorization, apollographql-client-name, apollographql-client-version, traceparent, tracestate, baggage";
    let preflight = |origin: &str, headers: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", headers)
            .send()
    };
    let r = preflight("https://spa.example", wanted).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = |r: &reqwest::Response, n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(h(&r, "access-control-allow-origin"), "https://spa.example");
    let allowed = h(&r, "access-control-allow-headers").to_ascii_lowercase();
    for want in wanted.split(", ") {
        assert!(allowed.split(',').any(|a| a.trim() == want), "{want} not in {allowed}");
    }
    let r = preflight("https://evil.example", wanted).await.unwrap();
    assert_eq!(h(&r, "access-control-allow-origin"), "", "no grant for another origin");
    let r = app
        .client
        .post(app.url("/graphql"))
        .header("origin", "https://spa.example")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert!(h(&r, "access-control-expose-headers").to_ascii_lowercase().contains("x-request-id"));
    let Some(custom) = spawn_with(backend, |s| {
        s.cors_origins = vec!["https://spa.example".into()];
        s.cors_headers = vec!["content-type".into(), "x-tenant-hint".into()];
    })
    .await
    else {
        return;
    };
    let r = custom
        .client
        .request(reqwest::Method::OPTIONS, custom.url("/graphql"))
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-tenant-hint")
        .send()
        .await
        .unwrap();
    let allowed = h(&r, "access-control-allow-headers").to_ascii_lowercase();
    assert!(allowed.contains("x-tenant-hint") && !allowed.contains("traceparent"), "{allowed}");
}

// ---------------------------------------------------------------------------------------------
// Operational endpoints and request ids.

async fn health_and_readiness(app: TestApp) {
    let r = read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.media_type(), JSON);
    let expected = match app.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(r.json(), json!({"status": "ready", "database": expected}));
}

async fn metrics_are_exposed(app: TestApp) {
    // An authenticated, named operation: it runs SQL (the user is created just in time).
    let token = app.token("acme", "agent", &["agent"]);
    let r = post_json_as(
        &app,
        &token,
        JSON,
        &json!({"query": "query Probe { viewer { isAdmin } }", "operationName": "Probe"}),
    )
    .await;
    assert_eq!(r.json(), json!({"data": {"viewer": {"isAdmin": false}}}));
    let r = post_json(&app, JSON, &json!({"query": "{"})).await;
    assert_eq!(r.code(), "GRAPHQL_PARSE_FAILED");

    let r = read(app.client.get(app.url("/metrics")).send().await.unwrap()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.media_type(), "text/plain");
    for name in
        ["cohort_graphql_operations_total", "cohort_db_statements_total", "cohort_http_request_duration_seconds"]
    {
        assert!(r.text.contains(name), "{name} missing:\n{}", r.text);
    }
    assert!(
        r.text.lines().any(|l| l == r#"cohort_graphql_operations_total{operation="Probe",code="OK"} 1"#),
        "the Probe operation is counted once:\n{}",
        r.text
    );
    assert!(
        r.text
            .lines()
            .any(|l| l
                == r#"cohort_graphql_operations_total{operation="unauthenticated",code="GRAPHQL_PARSE_FAILED"} 1"#),
        "the parse failure is counted:\n{}",
        r.text
    );
    let statements: f64 = r
        .text
        .lines()
        .find_map(|l| l.strip_prefix("cohort_db_statements_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cohort_db_statements_total sample:\n{}", r.text));
    assert!(statements > 0.0, "SQL statements are counted:\n{}", r.text);
    assert!(
        r.text.lines().any(|l| l.starts_with("cohort_http_request_duration_seconds_count{route=\"/graphql\"}")),
        "the /graphql route is timed:\n{}",
        r.text
    );
}

async fn unknown_route_is_404_json(app: TestApp) {
    for path in ["/nope", "/graphql/extra", "/graphiql"] {
        let r = read(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        if path != "/graphiql" {
            assert_eq!(r.media_type(), JSON, "{path}");
            assert_eq!(r.code(), "NOT_FOUND", "{path}");
        }
    }
}

async fn every_response_has_a_request_id(app: TestApp) {
    let c = &app.client;
    let bearer_garbage = c
        .post(app.url("/graphql"))
        .bearer_auth("not-a-jwt")
        .header(CONTENT_TYPE, JSON)
        .body(json!({"query": "{ __typename }"}).to_string());
    let requests = vec![
        (
            "POST /graphql",
            c.post(app.url("/graphql")).header(CONTENT_TYPE, JSON).body(json!({"query": "{ __typename }"}).to_string()),
        ),
        ("GET /graphql", c.get(app.url("/graphql?query=%7B__typename%7D"))),
        ("GET mutation", c.get(app.url("/graphql?query=mutation%7B__typename%7D"))),
        ("415", c.post(app.url("/graphql")).body("{}")),
        ("401", bearer_garbage),
        ("/healthz", c.get(app.url("/healthz"))),
        ("/readyz", c.get(app.url("/readyz"))),
        ("/metrics", c.get(app.url("/metrics"))),
        ("404", c.get(app.url("/nope"))),
    ];
    let mut seen = std::collections::HashSet::new();
    for (what, req) in requests {
        let r = req.send().await.unwrap();
        let id = r
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{what}: no x-request-id"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!id.is_empty(), "{what}");
        assert!(seen.insert(id), "{what}: request ids are unique");
    }
    // A caller's own request id is kept.
    let r = c.get(app.url("/healthz")).header("x-request-id", "caller-chosen-id-42").send().await.unwrap();
    assert_eq!(r.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("caller-chosen-id-42"));
}

on_both_backends!(
    accepts_graphql_response_json,
    accepts_application_json,
    wildcard_accept_answers_json,
    get_without_accept_answers_json,
    get_with_accept,
    utf8_charset_accepted,
    unsupported_content_type_is_415,
    empty_body_is_refused,
    bad_parameters_are_400_with_graphql_response_json,
    bad_parameters_are_400_with_errors_with_application_json,
    bad_get_parameters_are_refused,
    null_parameters_are_accepted,
    map_variables_are_used,
    json_parse_failure,
    document_parse_failure,
    document_validation_failure,
    variable_rule_violations_are_validation_failures,
    get_mutation_is_405,
    too_many_aliases_refused,
    oversized_batch_refused,
    too_many_operations_refused,
    too_deep_refused,
    too_complex_refused_with_cost_and_limit,
    metrics_parse_and_stay_bounded,
    failed_non_null_root_fields_null_the_data,
    no_field_suggestions,
    introspection_is_off_by_default,
    health_and_readiness,
    metrics_are_exposed,
    unknown_route_is_404_json,
    every_response_has_a_request_id,
    body_over_default_limit_is_413_json,
);

crate::on_both_backends_custom!(
    body_over_limit_is_413,
    introspection_can_be_enabled,
    standard_introspection_queries_pass,
    cors_preflight_allows_what_browser_clients_send,
    python_gql_fetches_the_schema,
);
