//! Persisted queries over HTTP: Apollo's automatic persisted queries (`extensions.persistedQuery`)
//! and trusted documents (`COHORT_TRUSTED_DOCUMENTS`) — the protocol by hand (register, hit,
//! miss, mismatch, hash-only GET, mutations over GET, limits, cache off and bounded, trusted mode,
//! a bad manifest at start-up), and Apollo Client's own persisted-query link
//! (`tests/js/apollo-persisted.mjs`) against both modes.

use crate::on_both_backends;
use crate::support::{Backend, CREATE_BOOK, TempDir, TestApp};
use cohort_api::persisted::{TrustedDocuments, sha256_hex};
use reqwest::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{Value, json};
use std::sync::Arc;

const GQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

const BOOKS: &str = "query Books($first: Int) { addressBooks(first: $first) { totalCount edges { node { name } } } }";
const TYPENAME: &str = "query T { __typename }";

/// A response, read whole.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
    }

    fn message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap_or("")
    }

    fn header(&self, name: reqwest::header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Refused as a whole: one error with `code`, no `data`.
    fn assert_refused(&self, status: u16, code: &str, what: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{what}: {}", self.body);
        assert!(self.body.get("data").is_none(), "{what}: no data expected: {}", self.body);
    }
}

async fn read(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

async fn post(app: &TestApp, token: Option<&str>, accept: &str, body: &Value) -> Reply {
    let mut req =
        app.client.post(app.url("/graphql")).header(ACCEPT, accept).header(CONTENT_TYPE, JSON).body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    read(req.send().await.expect("request")).await
}

async fn get(app: &TestApp, token: Option<&str>, accept: &str, params: &[(&str, String)]) -> Reply {
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

/// Apollo's `extensions` for `doc`'s hash.
fn pq(doc: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(doc)}})
}

/// A request naming `doc` by hash only.
fn hash_only(doc: &str) -> Value {
    json!({"extensions": pq(doc)})
}

/// A request sending `doc` with its hash.
fn with_hash(doc: &str) -> Value {
    json!({"query": doc, "extensions": pq(doc)})
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// A query `levels` deep (over the default depth limit 12 from 12 on).
fn deep(levels: usize) -> String {
    let mut sel = "id".to_owned();
    for _ in 0..levels {
        sel = format!("company {{ {sel} }}");
    }
    format!("query Deep($id: ID!) {{ contact(id: $id) {{ {sel} }} }}")
}

async fn spawn_with(backend: Backend, f: impl FnOnce(&mut cohort_api::config::Settings)) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, f).await;
    if app.is_none() {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
    }
    app
}

/// A trusted-documents manifest in Apollo's format.
fn apollo_manifest(docs: &[(&str, &str)]) -> String {
    let operations: Vec<Value> = docs
        .iter()
        .map(|(name, body)| json!({"id": sha256_hex(body), "name": name, "type": "query", "body": body}))
        .collect();
    json!({"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}).to_string()
}

fn trusted(manifest: &str) -> Option<Arc<TrustedDocuments>> {
    Some(Arc::new(TrustedDocuments::parse("test manifest", manifest).expect("manifest")))
}

// ---------------------------------------------------------------------------------------------
// Automatic persisted queries

/// Unknown hash → `PERSISTED_QUERY_NOT_FOUND` (200 under both media types, never cached); hash
/// and document → checked, run, stored; then the hash alone runs it, over POST and GET.
async fn apq_miss_register_hit(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    for accept in [GQL_RESPONSE, JSON] {
        let r = post(&app, Some(&admin), accept, &hash_only(BOOKS)).await;
        r.assert_refused(200, "PERSISTED_QUERY_NOT_FOUND", "a miss");
        assert_eq!(r.message(), "PersistedQueryNotFound", "the message Apollo's clients look for");
        assert_eq!(r.header(CACHE_CONTROL), "private, no-cache, must-revalidate");
    }
    let r = get(&app, Some(&admin), GQL_RESPONSE, &[("extensions", pq(BOOKS).to_string())]).await;
    r.assert_refused(200, "PERSISTED_QUERY_NOT_FOUND", "a miss over GET");
    assert!(r.header(CACHE_CONTROL).contains("no-cache"), "a GET miss must not be cached");

    let vars = json!({"variables": {"first": 5}});
    app.with_token(&admin).ok(CREATE_BOOK, json!({"n": "Registered"})).await;
    let r = post(&app, Some(&admin), GQL_RESPONSE, &merge(with_hash(BOOKS), vars.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let expected = json!({"addressBooks": {"totalCount": 1, "edges": [{"node": {"name": "Registered"}}]}});
    assert_eq!(r.body["data"], expected);

    // Registered: the hash alone runs it — with other variables, too.
    let r = post(&app, Some(&admin), GQL_RESPONSE, &merge(hash_only(BOOKS), vars.clone())).await;
    assert_eq!((r.status, &r.body["data"]), (200, &expected), "{}", r.body);
    let r = post(&app, Some(&admin), GQL_RESPONSE, &hash_only(BOOKS)).await;
    assert_eq!(r.body["data"], expected, "without variables: {}", r.body);
    // GET with the hash only: a short URL that stays the same (cacheable by URL).
    let params = [
        ("operationName", "Books".to_owned()),
        ("variables", json!({"first": 5}).to_string()),
        ("extensions", pq(BOOKS).to_string()),
    ];
    let r = get(&app, Some(&admin), GQL_RESPONSE, &params).await;
    assert_eq!((r.status, &r.body["data"]), (200, &expected), "{}", r.body);
    // The GraphQL-over-HTTP spec's `documentId` names the same document.
    let id = format!("sha256:{}", sha256_hex(BOOKS));
    let r = get(&app, Some(&admin), JSON, &[("documentId", id.clone()), ("variables", "{\"first\":5}".into())]).await;
    assert_eq!((r.status, &r.body["data"]), (200, &expected), "{}", r.body);
    let r = post(&app, Some(&admin), GQL_RESPONSE, &json!({"documentId": id, "variables": {"first": 5}})).await;
    assert_eq!(r.body["data"], expected, "{}", r.body);
    // Anonymous callers run a registered document as anonymous: no data.
    let r = post(&app, None, JSON, &merge(hash_only(BOOKS), vars)).await;
    assert_eq!(r.code(), "UNAUTHENTICATED", "{}", r.body);
    // Batches resolve each entry.
    let r = post(&app, Some(&admin), JSON, &json!([hash_only(BOOKS), hash_only(TYPENAME), with_hash(TYPENAME)])).await;
    let out = r.body.as_array().expect("a batch answer");
    assert!(out[0]["data"]["addressBooks"].is_object(), "{}", r.body);
    assert_eq!(out[1]["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{}", r.body);
    assert_eq!(out[2]["data"], json!({"__typename": "Query"}), "{}", r.body);
    let r = post(&app, None, JSON, &hash_only(TYPENAME)).await;
    assert_eq!(r.body, json!({"data": {"__typename": "Query"}}), "registered from a batch");
}

/// A hash that is not the document's SHA-256 is refused and stores nothing — neither under the
/// hash sent nor under the document's real one. Malformed extensions are 400.
async fn apq_mismatch_is_refused_and_not_stored(app: TestApp) {
    let other = "query Other { __typename }";
    let wrong = json!({"query": other, "extensions": pq(TYPENAME)});
    for accept in [GQL_RESPONSE, JSON] {
        let r = post(&app, None, accept, &wrong).await;
        r.assert_refused(400, "BAD_USER_INPUT", "hash of another document");
    }
    let r = get(&app, None, JSON, &[("query", other.into()), ("extensions", pq(TYPENAME).to_string())]).await;
    r.assert_refused(400, "BAD_USER_INPUT", "hash of another document over GET");
    for doc in [TYPENAME, other] {
        post(&app, None, JSON, &hash_only(doc)).await.assert_refused(200, "PERSISTED_QUERY_NOT_FOUND", doc);
    }
    for ext in [
        json!({"persistedQuery": {"version": 2, "sha256Hash": sha256_hex(TYPENAME)}}),
        json!({"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}}),
        json!({"persistedQuery": {"version": 1}}),
        json!({"persistedQuery": "yes"}),
    ] {
        post(&app, None, JSON, &json!({"extensions": ext})).await.assert_refused(400, "BAD_REQUEST", &ext.to_string());
    }
    let r = post(&app, None, JSON, &json!({"documentId": sha256_hex(TYPENAME)})).await;
    r.assert_refused(400, "BAD_REQUEST", "documentId without its sha256: prefix");
}

/// Mutations stay POST-only: a registered mutation named by hash over GET is 405, and a mutation
/// sent with its hash over GET is refused before it runs and is not stored.
async fn apq_mutation_over_get_is_refused(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    let r =
        post(&app, Some(&admin), JSON, &merge(with_hash(CREATE_BOOK), json!({"variables": {"n": "By POST"}}))).await;
    assert!(r.body["data"]["createAddressBook"]["addressBook"]["id"].is_string(), "{}", r.body);
    let params = [("variables", json!({"n": "By GET"}).to_string()), ("extensions", pq(CREATE_BOOK).to_string())];
    let r = get(&app, Some(&admin), GQL_RESPONSE, &params).await;
    r.assert_refused(405, "BAD_REQUEST", "a registered mutation over GET");
    assert_eq!(r.header(ALLOW), "POST");

    let fresh = "mutation Fresh($n: String!) { createAddressBook(input: {name: $n}) { addressBook { id } } }";
    let params = [
        ("query", fresh.to_owned()),
        ("variables", json!({"n": "By GET"}).to_string()),
        ("extensions", pq(fresh).to_string()),
    ];
    get(&app, Some(&admin), JSON, &params).await.assert_refused(
        405,
        "BAD_REQUEST",
        "a mutation with its hash over GET",
    );
    let r = post(&app, Some(&admin), JSON, &merge(hash_only(fresh), json!({"variables": {"n": "x"}}))).await;
    r.assert_refused(200, "PERSISTED_QUERY_NOT_FOUND", "not stored by the refused GET");
    let d = app.with_token(&admin).ok("{ addressBooks { edges { node { name } } } }", json!({})).await;
    assert_eq!(d["addressBooks"]["edges"], json!([{"node": {"name": "By POST"}}]), "nothing ran over GET");
}

/// Depth, aliases and complexity apply to persisted documents as to sent ones, and a refused
/// document is never stored.
async fn apq_limits_apply(app: TestApp) {
    let admin = app.token("acme", "admin", &["admin"]);
    let aliases = format!("{{ {} }}", (0..60).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
    let complex = "{ contacts(first: 100) { edges { node { memberships { group { members(first: 100) { edges { node { id displayName } } } } } } } } }";
    let too_deep = deep(20);
    for (doc, code) in [
        (too_deep.as_str(), "GRAPHQL_VALIDATION_FAILED"),
        (&aliases, "BAD_REQUEST"),
        (complex, "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let body = merge(with_hash(doc), json!({"variables": {"id": "x"}}));
        post(&app, Some(&admin), GQL_RESPONSE, &body).await.assert_refused(400, code, doc);
        let r = post(&app, Some(&admin), GQL_RESPONSE, &hash_only(doc)).await;
        r.assert_refused(200, "PERSISTED_QUERY_NOT_FOUND", "a refused document is not stored");
    }
    // Within the limits, the same shapes are stored and run.
    let shallow = deep(3);
    let r = post(&app, Some(&admin), JSON, &merge(with_hash(&shallow), json!({"variables": {"id": "x"}}))).await;
    assert_eq!(r.code(), "NOT_FOUND", "it ran: {}", r.body);
    let r = post(&app, Some(&admin), JSON, &merge(hash_only(&shallow), json!({"variables": {"id": "x"}}))).await;
    assert_eq!(r.code(), "NOT_FOUND", "and was stored: {}", r.body);
}

/// `COHORT_APQ_CACHE_SIZE=0`: hashes are not understood (`PERSISTED_QUERY_NOT_SUPPORTED`, which
/// tells Apollo's link to stop sending them); documents sent as usual run.
async fn apq_cache_size_zero_is_off(backend: Backend) {
    let Some(app) = spawn_with(backend, |s| s.persisted.apq_cache_size = 0).await else { return };
    for body in [hash_only(TYPENAME), with_hash(TYPENAME)] {
        let r = post(&app, None, GQL_RESPONSE, &body).await;
        r.assert_refused(200, "PERSISTED_QUERY_NOT_SUPPORTED", "APQ off");
        assert_eq!(r.message(), "PersistedQueryNotSupported");
    }
    let r = post(&app, None, GQL_RESPONSE, &json!({"query": TYPENAME})).await;
    assert_eq!(r.body, json!({"data": {"__typename": "Query"}}));
}

/// The cache is bounded: beyond `COHORT_APQ_CACHE_SIZE` the least recently used document goes.
async fn apq_cache_is_bounded(backend: Backend) {
    let Some(app) = spawn_with(backend, |s| s.persisted.apq_cache_size = 2).await else { return };
    let docs = ["query A { __typename }", "query B { __typename }", "query C { __typename }"];
    for doc in &docs[..2] {
        assert_eq!(post(&app, None, JSON, &with_hash(doc)).await.status, 200);
    }
    // `A` used again, so `B` is the least recently used when `C` arrives.
    assert_eq!(post(&app, None, JSON, &hash_only(docs[0])).await.body["data"]["__typename"], "Query");
    assert_eq!(post(&app, None, JSON, &with_hash(docs[2])).await.status, 200);
    for (doc, kept) in docs.iter().zip([true, false, true]) {
        let r = post(&app, None, JSON, &hash_only(doc)).await;
        assert_eq!(r.code() != "PERSISTED_QUERY_NOT_FOUND", kept, "{doc}: {}", r.body);
    }
}

// ---------------------------------------------------------------------------------------------
// Trusted documents

/// Only the manifest's documents run: by hash (POST and GET), or sent as text whose hash is
/// listed. Unlisted text is `TRUSTED_DOCUMENT_REQUIRED`, an unknown hash
/// `PERSISTED_QUERY_NOT_FOUND` — 400 under `application/graphql-response+json`, 200 under
/// `application/json`, like a document that fails validation. Nothing is learnt from requests,
/// limits still apply, and mutations stay POST-only.
async fn trusted_documents_only(backend: Backend) {
    let deep = deep(20);
    let manifest = apollo_manifest(&[("Books", BOOKS), ("CreateBook", CREATE_BOOK), ("Deep", &deep)]);
    let Some(app) = spawn_with(backend, |s| s.persisted.trusted = trusted(&manifest)).await else { return };
    let admin = app.token("acme", "admin", &["admin"]);
    let vars = json!({"variables": {"first": 5}});

    // Listed: by hash, by hash over GET, by `documentId`, and as text.
    let r = post(&app, Some(&admin), JSON, &merge(hash_only(CREATE_BOOK), json!({"variables": {"n": "Listed"}}))).await;
    assert!(r.body["data"]["createAddressBook"]["addressBook"]["id"].is_string(), "{}", r.body);
    let expected = json!({"addressBooks": {"totalCount": 1, "edges": [{"node": {"name": "Listed"}}]}});
    for body in [
        merge(hash_only(BOOKS), vars.clone()),
        merge(json!({"query": BOOKS}), vars.clone()),
        merge(with_hash(BOOKS), vars.clone()),
        json!({"documentId": format!("sha256:{}", sha256_hex(BOOKS)), "variables": {"first": 5}}),
    ] {
        let r = post(&app, Some(&admin), GQL_RESPONSE, &body).await;
        assert_eq!((r.status, &r.body["data"]), (200, &expected), "{body}: {}", r.body);
    }
    let params = [("variables", json!({"first": 5}).to_string()), ("extensions", pq(BOOKS).to_string())];
    let r = get(&app, Some(&admin), GQL_RESPONSE, &params).await;
    assert_eq!((r.status, &r.body["data"]), (200, &expected), "{}", r.body);

    // Unlisted text, alone or with its (correct) hash; an unknown hash; a wrong pair.
    let unlisted = "query Unlisted { addressBooks { totalCount } }";
    for (accept, status) in [(GQL_RESPONSE, 400), (JSON, 200)] {
        for body in [json!({"query": unlisted}), with_hash(unlisted)] {
            let r = post(&app, Some(&admin), accept, &body).await;
            r.assert_refused(status, "TRUSTED_DOCUMENT_REQUIRED", &format!("{accept}: {body}"));
        }
        let r = post(&app, Some(&admin), accept, &hash_only(unlisted)).await;
        r.assert_refused(status, "PERSISTED_QUERY_NOT_FOUND", &format!("{accept}: unknown hash"));
        let r = get(&app, Some(&admin), accept, &[("query", unlisted.into())]).await;
        r.assert_refused(status, "TRUSTED_DOCUMENT_REQUIRED", &format!("{accept}: unlisted over GET"));
    }
    let r = post(&app, Some(&admin), JSON, &json!({"query": unlisted, "extensions": pq(BOOKS)})).await;
    r.assert_refused(400, "BAD_USER_INPUT", "a listed hash with another document");
    let r = post(&app, Some(&admin), JSON, &json!([hash_only(BOOKS), {"query": unlisted}])).await;
    assert_eq!(r.body[0]["data"]["addressBooks"]["totalCount"], 1, "{}", r.body);
    assert_eq!(r.body[1]["errors"][0]["extensions"]["code"], "TRUSTED_DOCUMENT_REQUIRED", "{}", r.body);
    // Nothing is learnt: the unlisted document sent with its hash is still unknown.
    let r = post(&app, Some(&admin), JSON, &hash_only(unlisted)).await;
    r.assert_refused(200, "PERSISTED_QUERY_NOT_FOUND", "not learnt");

    // The limits apply to listed documents too; mutations stay POST-only.
    let r = post(&app, Some(&admin), GQL_RESPONSE, &merge(hash_only(&deep), json!({"variables": {"id": "x"}}))).await;
    r.assert_refused(400, "GRAPHQL_VALIDATION_FAILED", "a listed document over the depth limit");
    let params = [("variables", json!({"n": "GET"}).to_string()), ("extensions", pq(CREATE_BOOK).to_string())];
    get(&app, Some(&admin), JSON, &params).await.assert_refused(405, "BAD_REQUEST", "a listed mutation over GET");

    // Introspection is off here: an introspection query is refused like any unlisted document.
    let r = post(&app, Some(&admin), JSON, &json!({"query": "{ __schema { queryType { name } } }"})).await;
    r.assert_refused(200, "TRUSTED_DOCUMENT_REQUIRED", "introspection off");
}

/// Introspection stays governed by `COHORT_INTROSPECTION`: where it is on, documents that only
/// introspect run without being listed (GraphiQL, codegen); where it is off, listing an
/// introspection query does not turn it on.
async fn trusted_documents_and_introspection(backend: Backend) {
    let schema_query = "query IntrospectionQuery { __schema { queryType { name } } }";
    let manifest = apollo_manifest(&[("Books", BOOKS), ("IntrospectionQuery", schema_query)]);
    let Some(app) = spawn_with(backend, |s| {
        s.persisted.trusted = trusted(&manifest);
        s.introspection = true;
    })
    .await
    else {
        return;
    };
    for q in ["{ __schema { types { name } } }", "query { __type(name: \"Contact\") { name } __typename }"] {
        let r = post(&app, None, JSON, &json!({"query": q})).await;
        assert!(r.body["data"].is_object(), "{q}: {}", r.body);
    }
    let r =
        post(&app, None, JSON, &json!({"query": "{ __schema { types { name } } addressBooks { totalCount } }"})).await;
    r.assert_refused(200, "TRUSTED_DOCUMENT_REQUIRED", "introspection mixed with data");
    drop(app);

    let Some(app) = spawn_with(backend, |s| s.persisted.trusted = trusted(&manifest)).await else { return };
    let r = post(&app, None, JSON, &hash_only(schema_query)).await;
    // (With introspection disabled, async-graphql resolves `__schema` to null.)
    assert_eq!(r.body, json!({"data": {"__schema": null}}), "introspection stays off");
    let r = post(&app, None, JSON, &json!({"query": "{ __type(name: \"Contact\") { name } }"})).await;
    r.assert_refused(200, "TRUSTED_DOCUMENT_REQUIRED", "unlisted introspection with introspection off");
}

/// A manifest with a wrong hash (or one that cannot be read) stops `cohort serve` before the
/// database is touched, and the message names the variable and the entry.
#[test]
fn a_bad_manifest_is_refused_at_start() {
    let tmp = TempDir::new("cohort-manifest");
    let dir = &tmp.0;
    let db = dir.join("untouched.db");
    let good = "query Good { __typename }";
    let bad = json!({"format": "apollo-persisted-query-manifest", "version": 1, "operations": [
        {"id": sha256_hex(good), "name": "Good", "type": "query", "body": good},
        {"id": sha256_hex(good), "name": "Tampered", "type": "query", "body": "query Tampered { __typename }"},
    ]});
    let manifest = dir.join("manifest.json");
    std::fs::write(&manifest, bad.to_string()).unwrap();
    let serve = |path: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cohort"))
            .arg("serve")
            .env_clear()
            .env("COHORT_LISTEN", "127.0.0.1:0")
            .env("COHORT_LOG", "warn")
            .env("COHORT_JWT_SECRET", crate::support::SECRET)
            .env("COHORT_DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("COHORT_TRUSTED_DOCUMENTS", path)
            .output()
            .expect("run cohort serve");
        assert!(!out.status.success(), "cohort serve started with the manifest {}", path.display());
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let out = serve(&manifest);
    assert!(out.contains("COHORT_TRUSTED_DOCUMENTS") && out.contains("operations[1] (\"Tampered\")"), "{out}");
    assert!(out.contains("is not the SHA-256 of its document"), "{out}");
    let out = serve(&dir.join("missing.json"));
    assert!(out.contains("COHORT_TRUSTED_DOCUMENTS") && out.contains("missing.json"), "{out}");
    assert!(!db.exists(), "the database was touched before the manifest was checked");
}

// ---------------------------------------------------------------------------------------------
// Apollo Client's persisted-query link

/// Where the Node test tools are: `COHORT_TEST_NODE_MODULES` (set by `.ci/run`'s
/// `ensure_node_tools`), else `~/.cache/cohort-node/node_modules`. `None` (the test says it was
/// skipped) when node or @apollo/client is missing — unless `COHORT_TEST_REQUIRE_NODE_TOOLS=1`
/// (CI), then the test fails. Also used by `browser_apollo.rs` (which bundles with esbuild and
/// subscribes with graphql-ws, installed with the rest).
pub(crate) fn node_modules() -> Option<std::path::PathBuf> {
    let required = std::env::var("COHORT_TEST_REQUIRE_NODE_TOOLS").is_ok_and(|v| v == "1");
    let dir = std::env::var_os("COHORT_TEST_NODE_MODULES")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/cohort-node/node_modules")));
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let found = dir.filter(|d| {
        ["@apollo/client/link/persisted-queries", "graphql", "graphql-ws", "esbuild"].iter().all(|p| d.join(p).is_dir())
    });
    let missing = match (&found, node) {
        (Some(_), true) => return found,
        (_, false) => "node is not installed",
        (None, true) => "@apollo/client, graphql-ws or esbuild is not installed (COHORT_TEST_NODE_MODULES)",
    };
    assert!(!required, "COHORT_TEST_REQUIRE_NODE_TOOLS=1 but {missing}");
    eprintln!(
        "\n!!!!!!!!!! SKIPPED: Apollo Client test: {missing}. Install with\n\
         !!!!!!!!!! npm install --prefix ~/.cache/cohort-node @apollo/client@4.3.8 graphql@16.11.0 rxjs@7.8.2 \
         graphql-ws@6.4.2 esbuild@0.28.2\n"
    );
    None
}

/// Runs `tests/js/apollo-persisted.mjs` (copied next to a `node_modules` link, so its ESM imports
/// resolve) and returns its JSON report.
async fn run_apollo(modules: &std::path::Path, dir: &std::path::Path, args: Vec<String>) -> Value {
    let script = dir.join("apollo-persisted.mjs");
    if !script.exists() {
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/apollo-persisted.mjs"), &script).unwrap();
        std::os::unix::fs::symlink(modules, dir.join("node_modules")).unwrap();
    }
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("node").arg(script).args(args).output())
        .await
        .unwrap()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "node failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Each step's requests as (method, sent the document, status).
fn shape(report: &Value, step: &str) -> Vec<(String, bool, u64)> {
    let s = &report["steps"][step];
    s["requests"]
        .as_array()
        .unwrap_or_else(|| panic!("no step {step}: {report}"))
        .iter()
        .map(|r| {
            assert!(r["hash"].is_string() || r["sentDocument"] == true, "{step}: {r}");
            (r["method"].as_str().unwrap().to_owned(), r["sentDocument"] == true, r["status"].as_u64().unwrap())
        })
        .collect()
}

fn ok(report: &Value, step: &str) -> Value {
    let s = &report["steps"][step];
    assert!(s["error"].is_null() && s["data"].is_object(), "{step}: {s}");
    s["data"].clone()
}

/// Apollo Client 4's `PersistedQueryLink` (SHA-256 from Node's crypto) against both modes:
/// - automatic persisted queries: an operation's first request is hash-only and misses, the link
///   sends it again with the document; from then on it is hash-only — over POST, and over GET
///   with `useGETForHashedQueries` (a mutation stays POST);
/// - trusted documents, from the manifest of what the client sent: listed operations are
///   hash-only from their first request; an unlisted one is refused (`TRUSTED_DOCUMENT_REQUIRED`
///   after the link's retry with the document), and the link keeps using hashes afterwards.
async fn apollo_client_persisted_query_link(backend: Backend) {
    let Some(modules) = node_modules() else { return };
    let Some(app) = spawn_with(backend, |_| {}).await else { return };
    let tmp = TempDir::new("cohort-apollo");
    let dir = tmp.0.clone();
    let token = app.token("acme", "admin", &["admin"]);
    let manifest = dir.join("manifest.json");
    let args = vec!["apq".into(), app.url("/graphql"), token.clone(), manifest.display().to_string()];
    let apq = run_apollo(&modules, &dir, args).await;
    let post = |sent: bool, status: u64| ("POST".to_owned(), sent, status);
    let get = |sent: bool, status: u64| ("GET".to_owned(), sent, status);
    assert_eq!(shape(&apq, "first"), [post(false, 200), post(true, 200)], "a miss, then the document: {apq}");
    assert_eq!(ok(&apq, "first")["viewer"]["user"]["subject"], "admin");
    assert_eq!(shape(&apq, "again"), [post(false, 200)], "hash-only: {apq}");
    assert_eq!(ok(&apq, "again"), ok(&apq, "first"));
    assert_eq!(shape(&apq, "getKnown"), [get(false, 200)], "hash-only over GET: {apq}");
    ok(&apq, "getKnown");
    assert_eq!(shape(&apq, "getNew"), [get(false, 200), post(true, 200)], "{apq}");
    assert_eq!(shape(&apq, "getNewAgain"), [get(false, 200)], "{apq}");
    assert_eq!(ok(&apq, "getNewAgain")["addressBooks"]["totalCount"], 0);
    assert_eq!(shape(&apq, "mutation"), [post(false, 200), post(true, 200)], "{apq}");
    assert_eq!(shape(&apq, "mutationAgain"), [post(false, 200)], "{apq}");
    assert_eq!(ok(&apq, "mutationAgain")["createAddressBook"]["addressBook"]["name"], "APQ two");
    let d = app.with_token(&token).ok("{ addressBooks { totalCount } }", json!({})).await;
    assert_eq!(d["addressBooks"]["totalCount"], 2, "each mutation ran once");
    drop(app);

    // The documents the client sent, as an Apollo manifest: only they run now.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let docs = trusted(&text);
    assert_eq!(docs.as_ref().map(|d| d.len()), Some(3), "{text}");
    let Some(app) = spawn_with(backend, |s| s.persisted.trusted = docs).await else { return };
    let args = vec!["trusted".into(), app.url("/graphql"), token];
    let tr = run_apollo(&modules, &dir, args).await;
    assert_eq!(shape(&tr, "first"), [post(false, 200)], "listed: hash-only from the start: {tr}");
    assert_eq!(ok(&tr, "first")["viewer"]["user"]["subject"], "admin");
    assert_eq!(shape(&tr, "getKnown"), [get(false, 200)], "{tr}");
    assert_eq!(shape(&tr, "mutation"), [post(false, 200)], "{tr}");
    assert_eq!(ok(&tr, "mutation")["createAddressBook"]["addressBook"]["name"], "Trusted");
    // Apollo Client 4 asks for application/graphql-response+json: refusals are 400.
    assert_eq!(shape(&tr, "unlisted"), [post(false, 400), post(true, 400)], "{tr}");
    assert_eq!(tr["steps"]["unlisted"]["error"], json!(["TRUSTED_DOCUMENT_REQUIRED"]), "{tr}");
    assert_eq!(shape(&tr, "afterUnlisted"), [post(false, 200)], "the link keeps sending hashes: {tr}");
}

on_both_backends!(
    apq_miss_register_hit,
    apq_mismatch_is_refused_and_not_stored,
    apq_mutation_over_get_is_refused,
    apq_limits_apply,
);

crate::on_both_backends_custom!(
    apq_cache_size_zero_is_off,
    apq_cache_is_bounded,
    trusted_documents_only,
    trusted_documents_and_introspection,
    apollo_client_persisted_query_link,
);
