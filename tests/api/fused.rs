//! The statements that read several things at once (issue 16) answer exactly what the separate
//! reads answered: `group(id) { members }` in one statement (with the shortcut stepping aside
//! for aliases, directives and bad arguments), a contact's e-mails and status read along with
//! it, a contact's memberships with their groups — and never a hidden row.

use crate::groups::group;
use crate::on_both_backends;
use crate::support::{CREATE_CONTACT, TestApp, World};
use serde_json::{Value, json};

on_both_backends!(
    a_group_and_its_page_in_one_statement_answer_as_two_did,
    the_shortcut_steps_aside_for_what_it_does_not_cover,
    parts_read_along_are_the_parts,
    memberships_carry_their_groups_with_the_viewers_level,
);

const ADD: &str = "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount } }";
const PAGE: &str = "query($g: ID!, $a: String) { group(id: $g) { id name myAccess members(first: 2, after: $a) { totalCount edges { cursor node { id displayName emails { address label } businessStatus { key label } } } pageInfo { hasNextPage endCursor } } } }";

/// A group in the agent's own book with every World contact as a member (two of them hidden).
async fn setup(app: &TestApp) -> (World, String) {
    let w = World::build(app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let g = group(&admin, &w.own, "Customers", None).await;
    let all: Vec<&String> = w.contacts.values().collect();
    admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": all}})).await;
    (w, g)
}

/// The same members page read through `node(id:)` (which loads the group alone, then the page).
fn via_node(d: &Value) -> Value {
    d["node"].clone()
}

async fn a_group_and_its_page_in_one_statement_answer_as_two_did(app: TestApp) {
    let (w, g) = setup(&app).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let node = format!("{} }}", PAGE.replace("group(id: $g) {", "node(id: $g) { ... on Group {"));
    let mut after = Value::Null;
    let mut seen = vec![];
    loop {
        let fused = agent.ok(PAGE, json!({"g": g, "a": after})).await;
        let apart = agent.ok(&node, json!({"g": g, "a": after})).await;
        assert_eq!(fused["group"], via_node(&apart), "one statement and two answer alike");
        let m = &fused["group"]["members"];
        assert_eq!(m["totalCount"], 4, "the agent sees four of the six members: {m}");
        for e in m["edges"].as_array().unwrap() {
            seen.push(e["node"]["displayName"].as_str().unwrap().to_owned());
        }
        if m["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = m["pageInfo"]["endCursor"].clone();
    }
    seen.sort();
    assert_eq!(seen, ["Acme GmbH", "Anna Abbott", "Bruno Baker", "Clara Carter"]);
    // A page past the end still knows the total (the count rides on the group's row).
    let d = agent.ok(PAGE, json!({"g": g, "a": after})).await;
    assert_eq!(d["group"]["myAccess"], "WRITE");
    // Hidden and unknown groups are the same NOT_FOUND through the shortcut.
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let hidden = group(&admin, &w.hidden, "Secret list", None).await;
    let hidden_answer = agent.gql(PAGE, json!({"g": hidden})).await;
    let mut unknown_id = hidden.clone();
    unknown_id.pop();
    unknown_id.push(if hidden.ends_with('A') { 'B' } else { 'A' });
    let unknown_answer = agent.gql(PAGE, json!({"g": unknown_id})).await;
    assert_eq!(hidden_answer["errors"][0]["extensions"]["code"], "NOT_FOUND", "{hidden_answer}");
    assert_eq!(hidden_answer["data"], Value::Null, "{hidden_answer}");
    if unknown_answer["errors"][0]["extensions"]["code"] == "NOT_FOUND" {
        assert_eq!(hidden_answer["errors"][0]["message"], unknown_answer["errors"][0]["message"]);
    }
    // An empty visible group: a row with no member, total 0.
    let empty = group(&admin, &w.own, "Empty", None).await;
    let d = agent.ok(PAGE, json!({"g": empty})).await;
    assert_eq!(d["group"]["members"]["totalCount"], 0);
    assert_eq!(d["group"]["members"]["edges"], json!([]));
    assert_eq!(d["group"]["name"], "Empty");
}

async fn the_shortcut_steps_aside_for_what_it_does_not_cover(app: TestApp) {
    let (w, g) = setup(&app).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    // Two aliased member lists with different arguments: each gets its own page.
    let d = agent
        .ok(
            "query($g: ID!) { group(id: $g) { a: members(first: 1) { edges { node { displayName } } } b: members(first: 3, orderBy: NAME) { totalCount edges { node { displayName } } } } }",
            json!({"g": g}),
        )
        .await;
    assert_eq!(d["group"]["a"]["edges"].as_array().map(Vec::len), Some(1), "{d}");
    assert_eq!(d["group"]["b"]["edges"].as_array().map(Vec::len), Some(3), "{d}");
    assert_eq!(d["group"]["b"]["totalCount"], 4);
    // A directive: the field is skipped or included as the document says.
    let q =
        "query($g: ID!, $on: Boolean!) { group(id: $g) { name members(first: 5) @include(if: $on) { totalCount } } }";
    let off = agent.ok(q, json!({"g": g, "on": false})).await;
    assert_eq!(off["group"], json!({"name": "Customers"}));
    let on = agent.ok(q, json!({"g": g, "on": true})).await;
    assert_eq!(on["group"]["members"]["totalCount"], 4);
    // Bad arguments are reported by the field, with its path, as before.
    for (args, field) in [("after: \"garbage\"", "after"), ("first: 1000", "first")] {
        let q = format!("query($g: ID!) {{ group(id: $g) {{ name members({args}) {{ totalCount }} }} }}");
        let body = agent.gql(&q, json!({"g": g})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        assert_eq!(body["errors"][0]["path"], json!(["group", "members"]), "{body}");
    }
    // A cursor of the other ordering, too.
    let d = agent
        .ok("query($g: ID!) { group(id: $g) { members(first: 1) { pageInfo { endCursor } } } }", json!({"g": g}))
        .await;
    let cursor = d["group"]["members"]["pageInfo"]["endCursor"].clone();
    let body = agent
        .gql(
            "query($g: ID!, $a: String) { group(id: $g) { members(first: 1, after: $a, orderBy: JOINED_AT) { totalCount } } }",
            json!({"g": g, "a": cursor}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
}

async fn parts_read_along_are_the_parts(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    // Text that JSON must carry exactly: quotes, a backslash, non-ASCII, a NULL label.
    let emails = json!([
        {"address": "zoë.\"q\"@example.com", "label": "Büro \\ \"main\""},
        {"address": "second@example.com"},
        {"address": "third@example.com", "label": "三"}
    ]);
    let d = admin
        .ok(
            CREATE_CONTACT,
            json!({"i": {"addressBookId": w.own, "kind": "PERSON", "firstName": "Zoë", "lastName": "Quote", "emails": emails, "businessStatus": "customer"}}),
        )
        .await;
    let id = d["createContact"]["contact"]["id"].as_str().unwrap().to_owned();
    let q = "query($c: ID!) { contact(id: $c) { displayName emails { address label } businessStatus { key label } } }";
    let fused = agent.ok(q, json!({"c": id})).await;
    let apart = agent
        .ok(
            "query($c: ID!) { node(id: $c) { ... on Contact { displayName emails { address label } businessStatus { key label } } } }",
            json!({"c": id}),
        )
        .await;
    assert_eq!(fused["contact"], apart["node"]);
    assert_eq!(
        fused["contact"]["emails"],
        json!([
            {"address": "zoë.\"q\"@example.com", "label": "Büro \\ \"main\""},
            {"address": "second@example.com", "label": null},
            {"address": "third@example.com", "label": "三"}
        ])
    );
    assert_eq!(fused["contact"]["businessStatus"]["key"], "customer");
    // No e-mails and no status: empty list and null.
    let d = agent.ok(q, json!({"c": w.contacts["acme"]})).await;
    assert_eq!(d["contact"]["emails"], json!([]));
    assert_eq!(d["contact"]["businessStatus"], Value::Null);
    // A hidden contact is NOT_FOUND, parts or not.
    assert_eq!(agent.err(q, json!({"c": w.contacts["anna_hidden"]})).await, "NOT_FOUND");
    assert_eq!(
        agent.err("query($c: ID!) { contact(id: $c) { id } }", json!({"c": w.contacts["anna_hidden"]})).await,
        "NOT_FOUND"
    );
}

async fn memberships_carry_their_groups_with_the_viewers_level(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    // Groups homed in each book; Anna (own book) joins all three.
    let mut groups = vec![];
    for (book, name) in [(&w.own, "Own list"), (&w.team, "Team list"), (&w.hidden, "Hidden list")] {
        let g = group(&admin, book, name, None).await;
        admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [w.contacts["anna"]]}})).await;
        groups.push(g);
    }
    let d = agent
        .ok(
            "query($c: ID!) { contact(id: $c) { memberships { source group { id name myAccess } } } }",
            json!({"c": w.contacts["anna"]}),
        )
        .await;
    let got: Vec<(String, String)> = d["contact"]["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["group"]["name"].as_str().unwrap().to_owned(), m["group"]["myAccess"].as_str().unwrap().to_owned()))
        .collect();
    // The hidden book's group is not there; the levels are the agent's on each home book.
    assert_eq!(got, [("Own list".to_owned(), "WRITE".to_owned()), ("Team list".to_owned(), "READ".to_owned())]);
    for (g, level) in [(&groups[0], "WRITE"), (&groups[1], "READ")] {
        let alone = agent.ok("query($g: ID!) { group(id: $g) { myAccess } }", json!({"g": g})).await;
        assert_eq!(alone["group"]["myAccess"], level);
    }
}
