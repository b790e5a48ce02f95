//! Bad input: every invalid value gets a clear, coded error and leaves nothing written.

use crate::on_both_backends;
use crate::support::{CREATE_CONTACT, TestApp, World};
use serde_json::{Value, json};

/// A fingerprint of everything the admin can see: it must not change after a refused mutation.
async fn snapshot(app: &TestApp, w: &World) -> Value {
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    admin
        .ok(
            "{ contacts(first: 50) { totalCount edges { node { id displayName firstName lastName companyName kind emails { address } phones { number } company { id } businessStatus { key } addressBook { id } statusHistory(first: 3) { edges { node { note to { key } } } } } } }
               addressBooks { edges { node { id name grants { level } } } } userGroups { edges { node { name members { subject } } } } }",
            json!({}),
        )
        .await
}

async fn assert_refused(app: &TestApp, w: &World, q: &str, vars: Value, code: &str) -> Value {
    let before = snapshot(app, w).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let body = admin.gql(q, vars.clone()).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], code, "expected {code} for {q} with {vars}, got {body:#}");
    let msg = body["errors"][0]["message"].as_str().unwrap_or_default().to_lowercase();
    for leak in ["sql", "sqlite", "postgres", "constraint", "dberr", "panick"] {
        assert!(!msg.contains(leak), "error message leaks internals: {msg}");
    }
    assert_eq!(snapshot(app, w).await, before, "a refused mutation changed data: {q} {vars}");
    body
}

async fn contact_input_is_validated(app: TestApp) {
    let w = World::build(&app).await;
    let book = w.own.clone();
    let cases = [
        (json!({"addressBookId": book, "kind": "PERSON", "firstName": "  ", "lastName": ""}), "BAD_USER_INPUT"),
        (json!({"addressBookId": book, "kind": "COMPANY", "companyName": " "}), "BAD_USER_INPUT"),
        (json!({"addressBookId": book, "kind": "COMPANY", "companyName": "X", "firstName": "Y"}), "BAD_USER_INPUT"),
        (
            json!({"addressBookId": book, "kind": "PERSON", "lastName": "X", "emails": [{"address": "not-an-email"}]}),
            "BAD_USER_INPUT",
        ),
        (
            json!({"addressBookId": book, "kind": "PERSON", "lastName": "X", "emails": [{"address": "a@b.io"}, {"address": "A@B.io"}]}),
            "BAD_USER_INPUT",
        ),
        (
            json!({"addressBookId": book, "kind": "PERSON", "lastName": "X", "phones": [{"number": "call me"}]}),
            "BAD_USER_INPUT",
        ),
        (json!({"addressBookId": book, "kind": "PERSON", "lastName": "x".repeat(201)}), "BAD_USER_INPUT"),
        (json!({"addressBookId": book, "kind": "PERSON", "lastName": "X", "businessStatus": "vip"}), "BAD_USER_INPUT"),
        (json!({"addressBookId": book, "kind": "ROBOT", "lastName": "X"}), "BAD_USER_INPUT"),
        (
            json!({"addressBookId": book, "kind": "PERSON", "lastName": "X", "companyId": w.id("anna")}),
            "BAD_USER_INPUT",
        ),
        // Unknown ids and ids of the wrong type.
        (json!({"addressBookId": w.id("anna"), "kind": "PERSON", "lastName": "X"}), "NOT_FOUND"),
        (json!({"addressBookId": "bm9wZQ", "kind": "PERSON", "lastName": "X"}), "NOT_FOUND"),
        (json!({"addressBookId": book, "kind": "PERSON", "lastName": "X", "companyId": book}), "NOT_FOUND"),
    ];
    for (input, code) in cases {
        let body = assert_refused(&app, &w, CREATE_CONTACT, json!({"i": input}), code).await;
        if code == "BAD_USER_INPUT" && input["kind"] != "ROBOT" {
            assert!(body["errors"][0]["extensions"]["field"].is_string(), "BAD_USER_INPUT names the field: {body}");
        }
    }
}

async fn updates_and_deletes_are_validated(app: TestApp) {
    let w = World::build(&app).await;
    let anna = w.id("anna").to_owned();
    let upd = "mutation($i: UpdateContactInput!) { updateContact(input: $i) { contact { id } } }";
    assert_refused(&app, &w, upd, json!({"i": {"id": anna, "firstName": null, "lastName": null}}), "BAD_USER_INPUT")
        .await;
    assert_refused(&app, &w, upd, json!({"i": {"id": anna, "emails": [{"address": "x@y"}]}}), "BAD_USER_INPUT").await;
    assert_refused(&app, &w, upd, json!({"i": {"id": anna, "companyId": anna}}), "BAD_USER_INPUT").await;
    assert_refused(&app, &w, upd, json!({"i": {"id": w.own, "lastName": "X"}}), "NOT_FOUND").await;
    assert_refused(&app, &w, upd, json!({"i": {"id": anna, "addressBookId": anna}}), "NOT_FOUND").await;
    let del = "mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId } }";
    assert_refused(&app, &w, del, json!({"id": w.own}), "NOT_FOUND").await;
    assert_refused(&app, &w, del, json!({"id": "%%%"}), "NOT_FOUND").await;
    let st = "mutation($id: ID!, $s: String) { setContactBusinessStatus(input: {contactId: $id, status: $s}) { contact { id } } }";
    assert_refused(&app, &w, st, json!({"id": anna, "s": "platinum"}), "BAD_USER_INPUT").await;
    // A valid change is recorded, with who, from and to.
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let d = admin
        .ok(
            "mutation($id: ID!) { setContactBusinessStatus(input: {contactId: $id, status: \"customer\", note: \"signed\"}) { contact { businessStatus { key } statusHistory { edges { node { from { key } to { key } note changedBy { subject } } } } } } }",
            json!({"id": anna}),
        )
        .await;
    let c = &d["setContactBusinessStatus"]["contact"];
    assert_eq!(c["businessStatus"]["key"], "customer");
    assert_eq!(
        c["statusHistory"]["edges"][0]["node"],
        json!({"from": {"key": "lead_hot"}, "to": {"key": "customer"}, "note": "signed", "changedBy": {"subject": "admin"}})
    );
    assert_eq!(c["statusHistory"]["edges"][1]["node"]["to"]["key"], "lead_hot");
}

async fn configuration_input_is_validated(app: TestApp) {
    let w = World::build(&app).await;
    assert_refused(
        &app,
        &w,
        "mutation { createAddressBook(input: {name: \"  \"}) { addressBook { id } } }",
        json!({}),
        "BAD_USER_INPUT",
    )
    .await;
    assert_refused(
        &app,
        &w,
        "mutation { createAddressBook(input: {name: \"Own\"}) { addressBook { id } } }",
        json!({}),
        "CONFLICT",
    )
    .await;
    assert_refused(
        &app,
        &w,
        "mutation { createUserGroup(input: {name: \"Support\"}) { userGroup { id } } }",
        json!({}),
        "CONFLICT",
    )
    .await;
    let grant = "mutation($b: ID!, $u: ID, $g: ID, $l: AccessLevel!) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, userGroupId: $g, level: $l}) { grant { level } } }";
    assert_refused(&app, &w, grant, json!({"b": w.own, "l": "READ"}), "BAD_USER_INPUT").await;
    assert_refused(&app, &w, grant, json!({"b": w.own, "u": w.own, "l": "READ"}), "NOT_FOUND").await;
    assert_refused(&app, &w, grant, json!({"b": w.own, "u": w.own, "l": "OWNER"}), "BAD_USER_INPUT").await;
    let users =
        "mutation($g: ID!, $u: [ID!]!) { addUserGroupMembers(input: {userGroupId: $g, userIds: $u}) { addedCount } }";
    let g = app.actor(&w.tenant, "admin", &["admin"]).ok("{ userGroups { edges { node { id } } } }", json!({})).await;
    let gid = g["userGroups"]["edges"][0]["node"]["id"].clone();
    // One unknown user id fails the whole call: nothing is added.
    let me = app.actor(&w.tenant, "admin", &["admin"]).ok("{ viewer { user { id } } }", json!({})).await;
    assert_refused(&app, &w, users, json!({"g": gid, "u": [me["viewer"]["user"]["id"], w.own]}), "NOT_FOUND").await;
    // Agents may not configure.
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    assert_eq!(
        agent.err("mutation { createAddressBook(input: {name: \"Mine\"}) { addressBook { id } } }", json!({})).await,
        "FORBIDDEN"
    );
    assert_eq!(
        agent.err("mutation { createUserGroup(input: {name: \"Mine\"}) { userGroup { id } } }", json!({})).await,
        "FORBIDDEN"
    );
}

async fn pages_are_bounded(app: TestApp) {
    let w = World::build(&app).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    for first in [101, 1000, -1] {
        let body = agent.gql("query($f: Int) { contacts(first: $f) { totalCount } }", json!({"f": first})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "first: {first}: {body}");
    }
    let body = agent.gql("{ contacts(first: 5, after: \"garbage\") { totalCount } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let body = agent.gql("{ contacts(first: \"five\") { totalCount } }", json!({})).await;
    assert!(body["errors"][0]["extensions"]["code"].is_string());
    let body = agent
        .gql("query($f: ContactFilterInput) { contacts(filter: $f) { totalCount } }", json!({"f": {"kind": "ROBOT"}}))
        .await;
    assert!(body["errors"][0]["extensions"]["code"].is_string(), "{body}");
    let body = agent
        .gql(
            "query($f: ContactFilterInput) { contacts(filter: $f) { totalCount } }",
            json!({"f": {"businessStatus": ["vip"]}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let body = agent
        .gql(
            "query($f: ContactFilterInput) { contacts(filter: $f) { totalCount } }",
            json!({"f": {"addressBooks": [w.id("anna")]}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

on_both_backends!(
    contact_input_is_validated,
    updates_and_deletes_are_validated,
    configuration_input_is_validated,
    pages_are_bounded
);
