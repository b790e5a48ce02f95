//! Hostile input: generated strings — control characters and NUL, over-long values, mixed
//! scripts, right-to-left text, combining marks, emoji, LIKE wildcards — pushed through every
//! text input, filter, search term and cursor. The server never answers `INTERNAL` or a 5xx, a
//! refused value is `BAD_USER_INPUT` naming its field, nothing accepted holds a control
//! character (other than line feeds and tabs in free text), and SQLite and PostgreSQL answer
//! the same inputs identically (ids aside: no id is compared).

use crate::on_both_backends;
use crate::support::{Backend, TestApp, World};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

/// Few cases, a fixed seed: the same inputs on every run and on both backends.
const CASES: usize = 24;
const SEED: &[u8; 32] = b"cohort/hostile-input/seed/000001";

fn piece() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        // Control characters: C0 (NUL first), DEL, C1, and the line breaks free text allows.
        Just("\u{0}"),
        Just("\u{1}"),
        Just("\u{1b}[31m"),
        Just("\u{7f}"),
        Just("\u{85}"),
        Just("\u{9f}"),
        Just("\n"),
        Just("\t"),
        Just("\r\n"),
        Just(" "),
        // Text from all over.
        Just("Anna"),
        Just("Zoë"),
        Just("Ζωή"),
        Just("Дмитрий"),
        Just("李小龙"),
        Just("مرحبا"),
        Just("שלום"),
        Just("\u{202e}evil\u{202c}"),
        Just("\u{200f}"),
        Just("e\u{301}\u{302}\u{303}"),
        Just("👩\u{200d}💻"),
        Just("🇩🇪"),
        Just("\u{feff}"),
        Just("\u{fffd}"),
        Just("\u{10ffff}"),
        // Characters with a meaning somewhere.
        Just("%"),
        Just("_"),
        Just("\\"),
        Just("'"),
        Just("\""),
        Just("a@b.io"),
        Just("+49 30 1234"),
        Just("lead_hot"),
        Just("P-1"),
    ]
}

fn short() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..6).prop_map(|v| v.concat())
}

/// Longer than the limits: labels 50, SKUs 64, search terms 100, names 200, free text 2,000.
fn long() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("x"), Just("é"), Just("👩\u{200d}💻"), Just("李"), Just("\u{0}")],
        prop_oneof![Just(51usize), Just(65), Just(101), Just(201), Just(2001), Just(2600)],
    )
        .prop_map(|(c, n)| c.repeat(n))
}

fn hostile_string() -> impl Strategy<Value = String> {
    let mixed = (short(), long()).prop_map(|(a, b)| format!("{a}{b}"));
    let chars = prop::collection::vec(any::<char>(), 0..10).prop_map(String::from_iter);
    prop_oneof![4 => short(), 1 => long(), 1 => mixed, 2 => chars]
}

/// The generated inputs: deterministic (fixed seed), the same for both backends.
fn inputs() -> Vec<String> {
    let config = Config { cases: CASES as u32, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, SEED));
    let strategy = hostile_string();
    (0..CASES).map(|_| strategy.new_tree(&mut runner).expect("generate").current()).collect()
}

/// An app with the shared small world, a group and a product to aim at.
struct Target {
    app: TestApp,
    w: World,
    token: String,
    group: String,
}

impl Target {
    async fn new(app: TestApp) -> Target {
        let w = World::build(&app).await;
        let admin = app.actor(&w.tenant, "admin", &["admin"]);
        let d = admin
            .ok(
                "mutation($b: ID!) { createGroup(input: {addressBookId: $b, name: \"Hostile\"}) { group { id } } }",
                json!({"b": w.own}),
            )
            .await;
        let group = d["createGroup"]["group"]["id"].as_str().unwrap().to_owned();
        admin
            .ok(
                "mutation { createProduct(input: {sku: \"P-1\", name: \"Widget\", listPrice: \"10\", currency: \"EUR\"}) { product { sku } } }",
                json!({}),
            )
            .await;
        let token = app.token(&w.tenant, "admin", &["admin"]);
        Target { app, w, token, group }
    }
}

const CONTACT_FIELDS: &str = "firstName lastName companyName displayName emails { address label } phones { number label } businessStatus { key }";

/// Every operation that takes client text, with `s` in one text slot (the others valid).
fn operations(t: &Target, i: usize, s: &str) -> Vec<(&'static str, String, Value)> {
    let book = &t.w.own;
    let anna = t.w.id("anna");
    let create_contact = format!(
        "mutation($i: CreateContactInput!) {{ createContact(input: $i) {{ contact {{ {CONTACT_FIELDS} }} }} }}"
    );
    let person = |extra: Value| {
        let mut i = json!({"addressBookId": book, "kind": "PERSON", "lastName": "Hostile"});
        for (k, v) in extra.as_object().unwrap() {
            i[k] = v.clone();
        }
        json!({ "i": i })
    };
    let forged = format!("c1.{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!([s, uuid::Uuid::nil()])).unwrap()));
    let literal = serde_json::to_string(s).unwrap();
    let status = if i.is_multiple_of(2) { "customer" } else { "lead_warm" };
    vec![
        ("createContact.firstName", create_contact.clone(), person(json!({"firstName": s}))),
        ("createContact.lastName", create_contact.clone(), person(json!({"lastName": s}))),
        (
            "createContact.companyName",
            create_contact.clone(),
            json!({"i": {"addressBookId": book, "kind": "COMPANY", "companyName": s}}),
        ),
        ("createContact.emails.address", create_contact.clone(), person(json!({"emails": [{"address": s}]}))),
        (
            "createContact.emails.label",
            create_contact.clone(),
            person(json!({"emails": [{"address": format!("h{i}@example.com"), "label": s}]})),
        ),
        ("createContact.phones.number", create_contact.clone(), person(json!({"phones": [{"number": s}]}))),
        (
            "createContact.phones.label",
            create_contact.clone(),
            person(json!({"phones": [{"number": "+49 30 1234567", "label": s}]})),
        ),
        ("createContact.businessStatus", create_contact, person(json!({"businessStatus": s}))),
        (
            "updateContact.firstName",
            format!("mutation($i: UpdateContactInput!) {{ updateContact(input: $i) {{ contact {{ {CONTACT_FIELDS} }} }} }}"),
            json!({"i": {"id": anna, "firstName": s}}),
        ),
        (
            "updateContact.phones.label",
            format!("mutation($i: UpdateContactInput!) {{ updateContact(input: $i) {{ contact {{ {CONTACT_FIELDS} }} }} }}"),
            json!({"i": {"id": anna, "phones": [{"number": "030 123", "label": s}]}}),
        ),
        (
            "createGroup.name",
            "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { name description publicName publicDescription } } }".into(),
            json!({"i": {"addressBookId": book, "name": s}}),
        ),
        (
            "createGroup.description",
            "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { name description publicName publicDescription } } }".into(),
            json!({"i": {"addressBookId": book, "name": format!("Desc {i}"), "description": s}}),
        ),
        (
            "createGroup.publicName",
            "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { name description publicName publicDescription } } }".into(),
            json!({"i": {"addressBookId": book, "name": format!("Public {i}"), "publicName": s, "publicDescription": s}}),
        ),
        (
            "setContactBusinessStatus.note",
            "mutation($i: SetContactBusinessStatusInput!) { setContactBusinessStatus(input: $i) { contact { businessStatus { key } statusHistory(first: 1) { edges { node { note } } } } } }".into(),
            json!({"i": {"contactId": anna, "status": status, "note": s}}),
        ),
        (
            "setContactBusinessStatus.status",
            "mutation($i: SetContactBusinessStatusInput!) { setContactBusinessStatus(input: $i) { contact { businessStatus { key } } } }".into(),
            json!({"i": {"contactId": anna, "status": s}}),
        ),
        (
            "addGroupMembers.idempotencyKey",
            "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount alreadyMemberCount } }".into(),
            json!({"i": {"groupId": t.group, "contactIds": [anna], "idempotencyKey": s}}),
        ),
        (
            "removeGroupMembers.reason",
            "mutation($i: RemoveGroupMembersInput!) { removeGroupMembers(input: $i) { removedCount notMemberCount } }".into(),
            json!({"i": {"groupId": t.group, "contactIds": [anna], "reason": s}}),
        ),
        (
            "createProduct.sku",
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { sku name } } }".into(),
            json!({"i": {"sku": s, "name": "Hostile", "listPrice": "1", "currency": "EUR"}}),
        ),
        (
            "createProduct.name",
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { sku name } } }".into(),
            json!({"i": {"sku": format!("N-{i}"), "name": s, "listPrice": "1", "currency": "EUR"}}),
        ),
        (
            "createAddressBook.description",
            "mutation($i: CreateAddressBookInput!) { createAddressBook(input: $i) { addressBook { name description } } }".into(),
            json!({"i": {"name": format!("Book {i}"), "description": s}}),
        ),
        (
            "createUserGroup.name",
            "mutation($i: CreateUserGroupInput!) { createUserGroup(input: $i) { userGroup { name description } } }".into(),
            json!({"i": {"name": s, "description": s}}),
        ),
        (
            "createUser.subject",
            "mutation($i: CreateUserInput!) { createUser(input: $i) { user { subject name email } } }".into(),
            json!({"i": {"subject": s, "name": s}}),
        ),
        (
            "resolvePrice.sku",
            "query($i: ResolvePriceInput!) { resolvePrice(input: $i) { unitPrice product { sku } } }".into(),
            json!({"i": {"contactId": anna, "sku": s, "quantity": "1", "currency": "EUR"}}),
        ),
        (
            "contacts.filter.search",
            "query($f: ContactFilterInput) { contacts(first: 100, filter: $f) { totalCount edges { node { displayName } } } }".into(),
            json!({"f": {"search": s}}),
        ),
        (
            "contacts.filter.search (literal)",
            format!("{{ contacts(filter: {{search: {literal}}}) {{ totalCount }} }}"),
            json!({}),
        ),
        (
            "contacts.filter.businessStatus",
            "query($f: ContactFilterInput) { contacts(filter: $f) { totalCount } }".into(),
            json!({"f": {"businessStatus": [s]}}),
        ),
        (
            "groups.filter.search",
            "query($f: GroupFilterInput) { groups(first: 100, filter: $f) { edges { node { name } } } }".into(),
            json!({"f": {"search": s}}),
        ),
        (
            "products.search",
            "query($s: String) { products(first: 100, search: $s) { edges { node { sku name } } } }".into(),
            json!({"s": s}),
        ),
        ("events.types", "query($t: [String!]) { events(types: $t) { edges { node { type } } } }".into(), json!({"t": [s]})),
        (
            "contacts.after",
            "query($a: String) { contacts(first: 3, after: $a) { totalCount edges { node { displayName } } } }".into(),
            json!({"a": s}),
        ),
        (
            "contacts.after (forged)",
            "query($a: String) { contacts(first: 3, after: $a) { totalCount edges { node { displayName } } } }".into(),
            json!({"a": forged}),
        ),
        (
            "groups.after (forged)",
            "query($a: String) { groups(first: 3, after: $a) { edges { node { name } } } }".into(),
            json!({"a": forged}),
        ),
        (
            "products.after (forged)",
            "query($a: String) { products(first: 3, after: $a) { edges { node { sku } } } }".into(),
            json!({"a": forged}),
        ),
        (
            "statusHistory.after (forged)",
            "query($id: ID!, $a: String) { node(id: $id) { ... on Contact { statusHistory(first: 3, after: $a) { edges { node { note } } } } } }".into(),
            json!({"id": anna, "a": forged}),
        ),
    ]
}

/// One answer, normalised to what both backends must agree on: the data (which holds no ids)
/// or the errors' codes and fields.
#[derive(Debug, PartialEq)]
enum Outcome {
    Data(Value),
    Errors(Vec<(String, Option<String>)>),
}

fn has_control_chars(v: &Value, multi_line_ok: bool) -> bool {
    match v {
        Value::String(s) => s.chars().any(|c| c.is_control() && !(multi_line_ok && (c == '\n' || c == '\t'))),
        Value::Array(a) => a.iter().any(|x| has_control_chars(x, multi_line_ok)),
        Value::Object(o) => o.iter().any(|(k, x)| {
            let free_text = matches!(k.as_str(), "description" | "publicDescription" | "note");
            has_control_chars(x, multi_line_ok || free_text)
        }),
        _ => false,
    }
}

async fn answer(t: &Target, what: &str, s: &str, query: &str, vars: &Value) -> Outcome {
    let resp = t
        .app
        .client
        .post(t.app.url("/graphql"))
        .bearer_auth(&t.token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_str(&resp.text().await.expect("body")).unwrap_or(Value::Null);
    let ctx = format!("{what} with {s:?} on {:?}", t.app.backend);
    assert!(status < 500, "{ctx}: HTTP {status}: {body:#}");
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) => {
            let coded: Vec<(String, Option<String>)> = errors
                .iter()
                .map(|e| {
                    let code = e["extensions"]["code"].as_str().unwrap_or("<none>").to_owned();
                    let field = e["extensions"]["field"].as_str().map(str::to_owned);
                    assert_ne!(code, "INTERNAL", "{ctx}: {body:#}");
                    if code == "BAD_USER_INPUT" && !e["message"].as_str().unwrap_or("").starts_with("Invalid value") {
                        assert!(field.is_some(), "{ctx}: BAD_USER_INPUT names the field: {body:#}");
                    }
                    (code, field)
                })
                .collect();
            Outcome::Errors(coded)
        }
        None => {
            let data = body["data"].clone();
            assert!(!data.is_null(), "{ctx}: neither data nor errors: {body:#}");
            assert!(!has_control_chars(&data, false), "{ctx}: a control character was accepted: {data:#}");
            Outcome::Data(data)
        }
    }
}

async fn run(t: &Target, inputs: &[String]) -> Vec<(String, String, Outcome)> {
    let mut out = Vec::new();
    for (i, s) in inputs.iter().enumerate() {
        for (what, query, vars) in operations(t, i, s) {
            let o = answer(t, what, s, &query, &vars).await;
            out.push((what.to_owned(), s.clone(), o));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_refused_alike_on_every_backend() {
    let inputs = inputs();
    let sqlite = Target::new(TestApp::spawn(Backend::Sqlite).await.expect("sqlite app")).await;
    let pg = match TestApp::spawn(Backend::Postgres).await {
        Some(app) => Some(Target::new(app).await),
        None => {
            eprintln!("PostgreSQL half skipped: COHORT_TEST_DATABASE_URL is not set");
            None
        }
    };
    let (on_sqlite, on_pg) = tokio::join!(run(&sqlite, &inputs), async {
        match &pg {
            Some(t) => Some(run(t, &inputs).await),
            None => None,
        }
    });
    // The generator reaches what it is meant to: refusals and acceptances both.
    let refused = on_sqlite.iter().filter(|(_, _, o)| matches!(o, Outcome::Errors(_))).count();
    assert!(refused > 0 && refused < on_sqlite.len(), "{refused} of {} refused", on_sqlite.len());
    if let Some(on_pg) = on_pg {
        assert_eq!(on_sqlite.len(), on_pg.len());
        for ((what, s, a), (_, _, b)) in on_sqlite.iter().zip(&on_pg) {
            assert_eq!(a, b, "{what} with {s:?}: SQLite and PostgreSQL answer differently");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed cases: what cannot be generated as a Rust string.

/// A lone UTF-16 surrogate is no character: in a JSON body it is malformed JSON (400), in a
/// GraphQL string literal a parse failure — never a panic or a 5xx.
async fn lone_surrogates_are_refused(app: TestApp) {
    let token = app.token("acme", "admin", &["admin"]);
    let post_raw = |body: String| {
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(body)
            .send()
    };
    let q = "query($s: String) { contacts(filter: {search: $s}) { totalCount } }";
    for s in [r#""\ud800""#, r#""a\udc00b""#, r#""\ud800\u0041""#] {
        let body = format!(r#"{{"query": {}, "variables": {{"s": {s}}}}}"#, serde_json::to_string(q).unwrap());
        let resp = post_raw(body).await.expect("request");
        assert_eq!(resp.status().as_u16(), 400, "{s}");
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{s}: {v}");
    }
    // A surrogate pair is one character, and fine.
    let body = format!(r#"{{"query": {}, "variables": {{"s": "\ud83d\ude00"}}}}"#, serde_json::to_string(q).unwrap());
    let resp = post_raw(body).await.expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    // In the document itself (the escape reaches the GraphQL parser), over POST and GET.
    for doc in [
        r#"{ contacts(filter: {search: "\uD800"}) { totalCount } }"#,
        r#"{ __typename a: __typename @skip(if: false) b: __typename # "\uD800"
        c: __typename(x: "\uDFFF") }"#,
    ] {
        let resp = post_raw(json!({ "query": doc }).to_string()).await.expect("request");
        assert_eq!(resp.status().as_u16(), 400, "{doc}");
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED", "{doc}: {v}");
        let resp = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", doc)])
            .bearer_auth(&token)
            .send()
            .await
            .expect("request");
        assert!(resp.status().as_u16() < 500, "GET {doc}: {}", resp.status());
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED", "GET {doc}: {v}");
    }
}

/// Forged cursors of time-ordered lists: a time no database agrees on is `BAD_USER_INPUT`.
async fn forged_time_cursors_are_refused(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let q = "query($id: ID!, $a: String) { node(id: $id) { ... on Contact { statusHistory(first: 3, after: $a) { edges { node { note } } } } } }";
    for time in ["-5000-01-01T00:00:00Z", "+200000-01-01T00:00:00Z", "2024-01-01T00:00:00\u{0}Z"] {
        let forged =
            format!("c1.{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!([time, uuid::Uuid::nil()])).unwrap()));
        let body = admin.gql(q, json!({"id": w.id("anna"), "a": forged})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{time}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "after", "{time}: {body}");
    }
    // A time in range is a cursor like any other.
    let ok = format!(
        "c1.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!(["2999-01-01T00:00:00Z", uuid::Uuid::nil()])).unwrap())
    );
    admin.ok(q, json!({"id": w.id("anna"), "a": ok})).await;
}

/// `Decimal` inputs take plain notation only — as strings and as JSON integers; anything else
/// (exponents, digit separators, a leading dot or plus, spaces, JSON floats) is `BAD_USER_INPUT`
/// and writes nothing.
async fn decimal_inputs_are_plain_notation(app: TestApp) {
    let admin = app.actor("acme", "admin", &["admin"]);
    let create = "mutation($p: Decimal!, $sku: String!) { createProduct(input: {sku: $sku, name: \"Decimal\", listPrice: $p, currency: \"EUR\"}) { product { listPrice } } }";
    let count = || async {
        let d = admin.ok("{ products(first: 100) { edges { node { sku } } } }", json!({})).await;
        d["products"]["edges"].as_array().unwrap().len()
    };
    let bad: Vec<Value> = vec![
        json!("1_000"),
        json!("1e5"),
        json!("1E5"),
        json!(".5"),
        json!("5."),
        json!("+1"),
        json!(" 1"),
        json!("1 "),
        json!("1 000"),
        json!("1,5"),
        json!("0x10"),
        json!("NaN"),
        json!(""),
        json!("99999999999999999999999999999"),
        json!(1e5),
        json!(1.5),
        json!(true),
    ];
    for (i, p) in bad.iter().enumerate() {
        let body = admin.gql(create, json!({"p": p, "sku": format!("BAD-{i}")})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{p}: {body}");
    }
    assert_eq!(count().await, 0, "a refused Decimal writes nothing");
    // In the document itself, too.
    let body = admin
        .gql("mutation { createProduct(input: {sku: \"LIT\", name: \"L\", listPrice: 1e5, currency: \"EUR\"}) { product { listPrice } } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    for (i, (p, shown)) in [
        (json!("1000"), "1000"),
        (json!("0.5"), "0.5"),
        (json!("-0"), "0"),
        (json!(10), "10"),
        (json!("007.25"), "7.25"),
    ]
    .into_iter()
    .enumerate()
    {
        let d = admin.ok(create, json!({"p": p, "sku": format!("OK-{i}")})).await;
        assert_eq!(d["createProduct"]["product"]["listPrice"], shown, "{p}");
    }
    // Quantities follow the same grammar.
    let w = admin.ok(crate::support::CREATE_BOOK, json!({"n": "Decimals"})).await;
    let book = w["createAddressBook"]["addressBook"]["id"].clone();
    let c = admin
        .ok(crate::support::CREATE_CONTACT, json!({"i": {"addressBookId": book, "kind": "PERSON", "lastName": "Q"}}))
        .await;
    let contact = c["createContact"]["contact"]["id"].clone();
    let price = "query($q: Decimal!, $c: ID!) { resolvePrice(input: {contactId: $c, sku: \"OK-0\", quantity: $q, currency: \"EUR\"}) { lineTotal } }";
    for q in [json!("1e2"), json!("2_0"), json!(".5")] {
        let body = admin.gql(price, json!({"q": q, "c": contact})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{q}: {body}");
    }
    let d = admin.ok(price, json!({"q": "2.5", "c": contact})).await;
    assert_eq!(d["resolvePrice"]["lineTotal"], "2500.00");
}

on_both_backends!(lone_surrogates_are_refused, forged_time_cursors_are_refused, decimal_inputs_are_plain_notation);
