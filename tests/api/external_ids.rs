//! External ids (issue 19 item 1): set, read, look up and remove them on contacts, groups,
//! products and price lists; lookups answer hidden objects exactly like unknown ids; a taken id
//! is `CONFLICT` without naming its holder; repeats record nothing; erasure and deletion free
//! them; racing setters on PostgreSQL get one winner and clean conflicts.

use crate::groups::group;
use crate::on_both_backends;
use crate::support::{Actor, CREATE_CONTACT, TestApp, World, statements};
use serde_json::{Value, json};

const SET: &str =
    "mutation($n: ID!, $s: String!, $i: String!) { setExternalId(input: {nodeId: $n, system: $s, id: $i}) {
    node { id ... on Contact { externalIds { system value } } ... on Group { externalIds { system value } }
    ... on Product { externalIds { system value } } ... on PriceList { externalIds { system value } } } } }";
const REMOVE: &str = "mutation($n: ID!, $s: String!) { removeExternalId(input: {nodeId: $n, system: $s}) {
    node { id ... on Contact { externalIds { system value } } ... on Group { externalIds { system value } } } } }";
const CONTACT: &str = "query($s: String!, $i: String!) { contactByExternalId(system: $s, id: $i) { id displayName externalIds { system value } } }";
const GROUP: &str = "query($s: String!, $i: String!) { groupByExternalId(system: $s, id: $i) { id name externalIds { system value } } }";
const PRODUCT: &str = "query($s: String!, $i: String!) { productByExternalId(system: $s, id: $i) { id sku externalIds { system value } } }";
const PRICE_LIST: &str = "query($s: String!, $i: String!) { priceListByExternalId(system: $s, id: $i) { id name externalIds { system value } } }";
const EVENTS: &str = "query($t: [String!]) { events(first: 100, types: $t) { edges { node { type payload } } } }";
const AUDIT: &str =
    "query($f: AuditLogFilter) { auditLog(filter: $f, first: 100) { totalCount edges { node { action details } } } }";

async fn product(admin: &Actor<'_>, sku: &str, ext: Value) -> String {
    let d = admin
        .ok(
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { id } } }",
            json!({"i": {"sku": sku, "name": format!("Product {sku}"), "listPrice": "10", "currency": "EUR", "externalIds": ext}}),
        )
        .await;
    d["createProduct"]["product"]["id"].as_str().unwrap().to_owned()
}

async fn price_list(admin: &Actor<'_>, name: &str, ext: Value) -> String {
    let d = admin
        .ok(
            "mutation($i: CreatePriceListInput!) { createPriceList(input: $i) { priceList { id } } }",
            json!({"i": {"name": name, "currency": "EUR", "externalIds": ext}}),
        )
        .await;
    d["createPriceList"]["priceList"]["id"].as_str().unwrap().to_owned()
}

/// External ids as inputs take them (`{system, id}`).
fn ext(pairs: &[(&str, &str)]) -> Value {
    Value::Array(pairs.iter().map(|(s, i)| json!({"system": s, "id": i})).collect())
}

/// External ids as the API answers them (`{system, value}`).
fn answered(pairs: &[(&str, &str)]) -> Value {
    Value::Array(pairs.iter().map(|(s, i)| json!({"system": s, "value": i})).collect())
}

async fn set(a: &Actor<'_>, node: &str, system: &str, id: &str) -> Value {
    a.ok(SET, json!({"n": node, "s": system, "i": id})).await["setExternalId"]["node"]["externalIds"].clone()
}

async fn events_of(admin: &Actor<'_>, t: &str) -> Vec<Value> {
    let d = admin.ok(EVENTS, json!({"t": [t]})).await;
    d["events"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

async fn audit_count(admin: &Actor<'_>, action: &str) -> i64 {
    admin.ok(AUDIT, json!({"f": {"action": action}})).await["auditLog"]["totalCount"].as_i64().unwrap()
}

async fn every_kind_can_be_set_read_looked_up_and_removed(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let anna = w.id("anna");
    // Contacts: two systems, listed by system; the id is trimmed.
    assert_eq!(set(&admin, anna, "shop.de", "  C-1 ").await, answered(&[("shop.de", "C-1")]));
    assert_eq!(set(&admin, anna, "erp", "4711").await, answered(&[("erp", "4711"), ("shop.de", "C-1")]));
    let d = admin.ok(CONTACT, json!({"s": "erp", "i": "4711"})).await;
    assert_eq!(d["contactByExternalId"]["id"], anna);
    assert_eq!(d["contactByExternalId"]["displayName"], "Anna Abbott");
    // Ids are trimmed on lookup as on writing, and otherwise compared exactly.
    assert_eq!(admin.ok(CONTACT, json!({"s": "erp", "i": " 4711 "})).await["contactByExternalId"]["id"], anna);
    assert_eq!(admin.ok(CONTACT, json!({"s": "erp", "i": "04711"})).await["contactByExternalId"], json!(null));
    assert_eq!(admin.ok(CONTACT, json!({"s": "shop.de", "i": "c-1"})).await["contactByExternalId"], json!(null));
    // Replacing a system's id frees the old one.
    assert_eq!(set(&admin, anna, "erp", "4712").await, answered(&[("erp", "4712"), ("shop.de", "C-1")]));
    assert_eq!(admin.ok(CONTACT, json!({"s": "erp", "i": "4711"})).await["contactByExternalId"], json!(null));
    assert_eq!(admin.ok(CONTACT, json!({"s": "erp", "i": "4712"})).await["contactByExternalId"]["id"], anna);
    // The agent (WRITE on the book) sees and may change them too.
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    assert_eq!(agent.ok(CONTACT, json!({"s": "erp", "i": "4712"})).await["contactByExternalId"]["id"], anna);
    assert_eq!(set(&agent, w.id("bruno"), "erp", "4711").await, answered(&[("erp", "4711")]));
    // Removing.
    let d = admin.ok(REMOVE, json!({"n": anna, "s": "shop.de"})).await;
    assert_eq!(d["removeExternalId"]["node"]["externalIds"], answered(&[("erp", "4712")]));
    assert_eq!(admin.ok(CONTACT, json!({"s": "shop.de", "i": "C-1"})).await["contactByExternalId"], json!(null));
    // Created with ids, in the same request.
    let mut input = json!({"kind": "PERSON", "firstName": "New", "lastName": "Comer", "addressBookId": w.own});
    input["externalIds"] = ext(&[("erp", "N-1"), ("shop", "N-1")]);
    let c = admin.ok(CREATE_CONTACT, json!({"i": input})).await["createContact"]["contact"]["id"].clone();
    let d = admin.ok(CONTACT, json!({"s": "shop", "i": "N-1"})).await;
    assert_eq!(d["contactByExternalId"]["id"], c);
    assert_eq!(d["contactByExternalId"]["externalIds"], answered(&[("erp", "N-1"), ("shop", "N-1")]));

    // Groups.
    let g = group(&admin, &w.own, "Key accounts", None).await;
    assert_eq!(set(&admin, &g, "erp", "4711").await, answered(&[("erp", "4711")]), "kinds have separate id spaces");
    let d = admin.ok(GROUP, json!({"s": "erp", "i": "4711"})).await;
    assert_eq!(
        (d["groupByExternalId"]["id"].as_str(), d["groupByExternalId"]["name"].as_str()),
        (Some(g.as_str()), Some("Key accounts"))
    );
    let g2 = admin
        .ok(
            "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id externalIds { system value } } } }",
            json!({"i": {"addressBookId": w.own, "name": "Resellers", "externalIds": ext(&[("erp", "G-2")])}}),
        )
        .await;
    assert_eq!(g2["createGroup"]["group"]["externalIds"], answered(&[("erp", "G-2")]));
    assert_eq!(
        admin.ok(GROUP, json!({"s": "erp", "i": "G-2"})).await["groupByExternalId"]["id"],
        g2["createGroup"]["group"]["id"]
    );
    let d = admin.ok(REMOVE, json!({"n": g, "s": "erp"})).await;
    assert_eq!(d["removeExternalId"]["node"]["externalIds"], json!([]));
    assert_eq!(admin.ok(GROUP, json!({"s": "erp", "i": "4711"})).await["groupByExternalId"], json!(null));

    // Products: set by admins, looked up by every member.
    let p = product(&admin, "P-1", ext(&[("erp", "4711")])).await;
    assert_eq!(agent.ok(PRODUCT, json!({"s": "erp", "i": "4711"})).await["productByExternalId"]["id"], p);
    assert_eq!(set(&admin, &p, "shop", "sku-1").await, answered(&[("erp", "4711"), ("shop", "sku-1")]));
    assert_eq!(agent.ok(PRODUCT, json!({"s": "shop", "i": "sku-1"})).await["productByExternalId"]["sku"], "P-1");

    // Price lists: admins only.
    let l = price_list(&admin, "Gold", json!(null)).await;
    assert_eq!(set(&admin, &l, "erp", "PL-1").await, answered(&[("erp", "PL-1")]));
    let d = admin.ok(PRICE_LIST, json!({"s": "erp", "i": "PL-1"})).await;
    assert_eq!(
        (d["priceListByExternalId"]["id"].as_str(), d["priceListByExternalId"]["name"].as_str()),
        (Some(l.as_str()), Some("Gold"))
    );
    let l2 = price_list(&admin, "Silver", ext(&[("erp", "PL-2")])).await;
    assert_eq!(admin.ok(PRICE_LIST, json!({"s": "erp", "i": "PL-2"})).await["priceListByExternalId"]["id"], l2);
    assert_eq!(agent.ok(PRICE_LIST, json!({"s": "erp", "i": "PL-1"})).await["priceListByExternalId"], json!(null));

    // Each change is the object's update event with the changed field (never the value).
    let updates = events_of(&admin, "contact.updated").await;
    let last = &updates.last().unwrap()["payload"];
    assert_eq!((last["fields"].clone(), last["system"].clone()), (json!(["externalIds"]), json!("shop.de")));
    assert!(!last.to_string().contains("C-1"), "{last}");
    let g_ev = events_of(&admin, "group.updated").await;
    assert_eq!(g_ev.len(), 2, "set and remove: {g_ev:?}");
    assert_eq!(events_of(&admin, "product.updated").await.len(), 1);
    assert_eq!(events_of(&admin, "price_list.updated").await.len(), 1);
    // And an audit entry; for groups with before/after, for contacts the field only.
    let d = admin.ok(AUDIT, json!({"f": {"action": "group.setExternalId"}})).await;
    assert_eq!(d["auditLog"]["totalCount"], 2, "setExternalId and the one given at creation");
    let d = admin.ok(AUDIT, json!({"f": {"action": "group.removeExternalId"}})).await;
    let details = &d["auditLog"]["edges"][0]["node"]["details"];
    let details: Value = details.as_str().map(|s| serde_json::from_str(s).unwrap()).unwrap_or(details.clone());
    assert_eq!(details["changed"]["externalId"], json!({"before": "4711", "after": null}));
    assert!(audit_count(&admin, "contact.setExternalId").await >= 4);
}

async fn hidden_objects_are_answered_like_unknown_ids(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    set(&admin, w.id("anna_hidden"), "erp", "H-1").await;
    let hidden_group = group(&admin, &w.hidden, "Secret group", None).await;
    set(&admin, &hidden_group, "erp", "HG-1").await;
    // The whole responses are the same for a hidden object and for an id nobody has.
    for (q, known, unknown) in [(CONTACT, "H-1", "H-404"), (GROUP, "HG-1", "HG-404")] {
        let hidden = agent.gql(q, json!({"s": "erp", "i": known})).await;
        let missing = agent.gql(q, json!({"s": "erp", "i": unknown})).await;
        assert_eq!(hidden, missing);
        assert!(hidden.get("errors").is_none(), "{hidden}");
        // The admin does see it.
        assert!(
            admin.ok(q, json!({"s": "erp", "i": known})).await.as_object().unwrap().values().all(|v| v.is_object())
        );
    }
    // And in the same number of statements.
    let mut costs = vec![];
    for i in ["H-1", "H-404", "H-1", "H-404"] {
        let before = statements(&app).await;
        agent.ok(CONTACT, json!({"s": "erp", "i": i})).await;
        costs.push(statements(&app).await - before);
    }
    assert!(costs.windows(2).all(|c| c[0] == c[1]), "{costs:?}");
    // A visible contact's ids are there; a contact in a READ book too.
    set(&admin, w.id("clara"), "erp", "T-1").await;
    assert_eq!(agent.ok(CONTACT, json!({"s": "erp", "i": "T-1"})).await["contactByExternalId"]["id"], w.id("clara"));
    // The outsider sees none of them.
    let outsider = app.actor(&w.tenant, "outsider", &["agent"]);
    assert_eq!(outsider.ok(CONTACT, json!({"s": "erp", "i": "T-1"})).await["contactByExternalId"], json!(null));
    // Another tenant's ids do not exist here.
    let other = app.actor("globex", "admin", &["admin"]);
    assert_eq!(other.ok(CONTACT, json!({"s": "erp", "i": "T-1"})).await["contactByExternalId"], json!(null));
}

async fn only_writers_may_change_them(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let update = "mutation($c: ID!) { updateContact(input: {id: $c, firstName: \"X\"}) { contact { id } } }";
    // READ on the book: as updateContact answers.
    let expected = agent.err(update, json!({"c": w.id("clara")})).await;
    assert_eq!(expected, "FORBIDDEN");
    assert_eq!(agent.err(SET, json!({"n": w.id("clara"), "s": "erp", "i": "1"})).await, expected);
    assert_eq!(agent.err(REMOVE, json!({"n": w.id("clara"), "s": "erp"})).await, expected);
    // Hidden: NOT_FOUND, as for an id that never existed.
    assert_eq!(agent.err(update, json!({"c": w.id("anna_hidden")})).await, "NOT_FOUND");
    assert_eq!(agent.err(SET, json!({"n": w.id("anna_hidden"), "s": "erp", "i": "1"})).await, "NOT_FOUND");
    // Groups need MANAGE (the agent holds WRITE on the own book); products and price lists admin.
    let g = group(&admin, &w.own, "Managed", None).await;
    assert_eq!(agent.err(SET, json!({"n": g, "s": "erp", "i": "1"})).await, "FORBIDDEN");
    let p = product(&admin, "P-9", json!(null)).await;
    assert_eq!(agent.err(SET, json!({"n": p, "s": "erp", "i": "1"})).await, "FORBIDDEN");
    let l = price_list(&admin, "Gold", json!(null)).await;
    assert_eq!(agent.err(SET, json!({"n": l, "s": "erp", "i": "1"})).await, "FORBIDDEN");
    // Nothing was written.
    for (q, f) in [(CONTACT, "contactByExternalId"), (GROUP, "groupByExternalId"), (PRODUCT, "productByExternalId")] {
        assert_eq!(admin.ok(q, json!({"s": "erp", "i": "1"})).await[f], json!(null));
    }
    assert_eq!(events_of(&admin, "group.updated").await.len(), 0);
}

async fn a_taken_id_is_a_conflict_that_names_no_holder(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    set(&admin, w.id("anna_hidden"), "erp", "HIDDEN-HOLDER").await;
    set(&admin, w.id("bruno"), "erp", "VISIBLE-HOLDER").await;
    let hidden = agent.gql(SET, json!({"n": w.id("anna"), "s": "erp", "i": "HIDDEN-HOLDER"})).await;
    let visible = agent.gql(SET, json!({"n": w.id("anna"), "s": "erp", "i": "VISIBLE-HOLDER"})).await;
    assert_eq!(hidden["errors"][0]["extensions"]["code"], "CONFLICT", "{hidden}");
    // The same message and extensions whether the holder is visible to the caller or not.
    assert_eq!(hidden["errors"][0]["message"], visible["errors"][0]["message"]);
    assert_eq!(hidden["errors"][0]["extensions"], visible["errors"][0]["extensions"]);
    assert_eq!(hidden["data"], visible["data"]);
    let text = hidden.to_string();
    for leak in [w.id("anna_hidden"), w.id("bruno"), "Hidden", "Bruno", "Baker"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    // Nothing changed; another kind may use the same value; the holder may set it again.
    assert_eq!(
        agent.ok(CONTACT, json!({"s": "erp", "i": "VISIBLE-HOLDER"})).await["contactByExternalId"]["id"],
        w.id("bruno")
    );
    let g = group(&admin, &w.own, "Same value", None).await;
    set(&admin, &g, "erp", "HIDDEN-HOLDER").await;
    // A create with a taken id creates nothing.
    let mut input = json!({"kind": "COMPANY", "companyName": "Dup Corp", "addressBookId": w.own});
    input["externalIds"] = ext(&[("erp", "VISIBLE-HOLDER")]);
    assert_eq!(agent.err(CREATE_CONTACT, json!({"i": input})).await, "CONFLICT");
    let n = agent.ok("{ contacts(filter: {search: \"Dup\"}) { totalCount } }", json!({})).await;
    assert_eq!(n["contacts"]["totalCount"], 0);
    // Products too.
    let p1 = product(&admin, "P-1", ext(&[("erp", "X")])).await;
    let p2 = product(&admin, "P-2", json!(null)).await;
    assert_eq!(admin.err(SET, json!({"n": p2, "s": "erp", "i": "X"})).await, "CONFLICT");
    assert_eq!(admin.ok(PRODUCT, json!({"s": "erp", "i": "X"})).await["productByExternalId"]["id"], p1);
}

async fn setting_the_same_id_again_records_nothing(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    set(&admin, w.id("anna"), "erp", "R-1").await;
    let g = group(&admin, &w.own, "Repeat", None).await;
    set(&admin, &g, "erp", "R-1").await;
    let before = (
        events_of(&admin, "contact.updated").await.len(),
        events_of(&admin, "group.updated").await.len(),
        audit_count(&admin, "contact.setExternalId").await,
        audit_count(&admin, "group.setExternalId").await,
    );
    assert_eq!(before, (1, 1, 1, 1));
    // The same value (after trimming), and removing one that is not set.
    assert_eq!(set(&admin, w.id("anna"), "erp", " R-1 ").await, answered(&[("erp", "R-1")]));
    set(&admin, &g, "erp", "R-1").await;
    admin.ok(REMOVE, json!({"n": w.id("anna"), "s": "shop"})).await;
    let after = (
        events_of(&admin, "contact.updated").await.len(),
        events_of(&admin, "group.updated").await.len(),
        audit_count(&admin, "contact.setExternalId").await,
        audit_count(&admin, "group.setExternalId").await,
    );
    assert_eq!(after, before);
    assert_eq!(audit_count(&admin, "contact.removeExternalId").await, 0);
}

async fn erasure_and_deletion_free_the_ids(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    set(&admin, w.id("anna"), "erp", "E-1").await;
    set(&admin, w.id("anna"), "shop", "anna-shop-key").await;
    admin
        .ok(
            "mutation($c: ID!) { eraseContact(input: {contactId: $c, reason: \"ticket 1\"}) { contact { id } } }",
            json!({"c": w.id("anna")}),
        )
        .await;
    assert_eq!(admin.ok(CONTACT, json!({"s": "erp", "i": "E-1"})).await["contactByExternalId"], json!(null));
    let d = admin
        .ok(
            "query($id: ID!) { node(id: $id) { ... on Contact { externalIds { system value } } } }",
            json!({"id": w.id("anna")}),
        )
        .await;
    assert_eq!(d["node"]["externalIds"], json!([]));
    // The erased contact cannot get one back; the id is free for another.
    assert_eq!(admin.err(SET, json!({"n": w.id("anna"), "s": "erp", "i": "E-2"})).await, "CONFLICT");
    set(&admin, w.id("bruno"), "erp", "E-1").await;
    // Copies of the id in stored events are scrubbed like names (none are written, but the
    // erasure must not leave any behind).
    let all = admin.ok("{ events(first: 100) { edges { node { payload } } } }", json!({})).await;
    assert!(!all.to_string().contains("anna-shop-key"));

    // Deleting a contact or a group frees their ids.
    admin.ok("mutation($c: ID!) { deleteContact(input: {id: $c}) { deletedId } }", json!({"c": w.id("bruno")})).await;
    set(&admin, w.id("acme"), "erp", "E-1").await;
    let g = group(&admin, &w.own, "Doomed", None).await;
    set(&admin, &g, "erp", "G-1").await;
    admin.ok("mutation($g: ID!) { deleteGroup(input: {id: $g}) { deletedId } }", json!({"g": g})).await;
    assert_eq!(admin.ok(GROUP, json!({"s": "erp", "i": "G-1"})).await["groupByExternalId"], json!(null));
    let g2 = group(&admin, &w.own, "Successor", None).await;
    set(&admin, &g2, "erp", "G-1").await;
}

async fn bad_values_are_bad_user_input_with_the_field(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let anna = w.id("anna");
    let long_system = "a".repeat(65);
    let long_id = "x".repeat(201);
    let cases: Vec<(&str, &str, &str)> = vec![
        ("ERP", "1", "system"),
        ("", "1", "system"),
        ("e rp", "1", "system"),
        (".erp", "1", "system"),
        (&long_system, "1", "system"),
        ("erp", "", "id"),
        ("erp", "   ", "id"),
        ("erp", "a\u{0}b", "id"),
        ("erp", "a\nb", "id"),
        ("erp", &long_id, "id"),
    ];
    for (s, i, field) in &cases {
        let body = admin.gql(SET, json!({"n": anna, "s": s, "i": i})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{s:?} {i:?}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], *field, "{s:?} {i:?}: {body}");
        let body = admin.gql(CONTACT, json!({"s": s, "i": i})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "lookup {s:?} {i:?}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], *field);
    }
    assert!(admin.ok(SET, json!({"n": anna, "s": "a".repeat(64), "i": "x".repeat(200)})).await.is_object());
    let body = admin.gql(REMOVE, json!({"n": anna, "s": "Erp"})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "system");
    // Objects of other types cannot carry one; an id that does not decode is NOT_FOUND.
    let body = admin.gql(SET, json!({"n": w.own, "s": "erp", "i": "1"})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "nodeId", "{body}");
    assert_eq!(admin.err(SET, json!({"n": "garbage", "s": "erp", "i": "1"})).await, "NOT_FOUND");
    // Two ids for one system in a create.
    let mut input = json!({"kind": "COMPANY", "companyName": "Twice", "addressBookId": w.own});
    input["externalIds"] = ext(&[("erp", "1"), ("erp", "2")]);
    let body = admin.gql(CREATE_CONTACT, json!({"i": input})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "externalIds", "{body}");
    input["externalIds"] = ext(&[("ERP", "1")]);
    let body = admin.gql(CREATE_CONTACT, json!({"i": input})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "system", "{body}");
}

async fn a_page_of_external_ids_costs_the_same_statements_whatever_its_size(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    for (i, k) in ["anna", "bruno", "acme", "clara", "anna_hidden", "secret"].iter().enumerate() {
        set(&admin, w.id(k), "erp", &format!("S-{i}")).await;
        set(&admin, w.id(k), "shop", &format!("S-{i}")).await;
    }
    let q = "query($f: Int) { contacts(first: $f) { edges { node { id externalIds { system value } } } } }";
    let mut costs = vec![];
    for first in [1, 3, 6] {
        let before = statements(&app).await;
        let d = admin.ok(q, json!({"f": first})).await;
        costs.push(statements(&app).await - before);
        let edges = d["contacts"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), first as usize);
        assert!(edges.iter().all(|e| e["node"]["externalIds"].as_array().map(Vec::len) == Some(2)), "{d}");
    }
    assert!(costs.windows(2).all(|c| c[0] == c[1]), "statements must not grow with the page: {costs:?}");
    // A page of groups too.
    for i in 0..4 {
        let g = group(&admin, &w.own, &format!("G{i}"), None).await;
        set(&admin, &g, "erp", &format!("G-{i}")).await;
    }
    let q = "query($f: Int) { groups(first: $f) { edges { node { id externalIds { system value } } } } }";
    let mut costs = vec![];
    for first in [1, 4] {
        let before = statements(&app).await;
        admin.ok(q, json!({"f": first})).await;
        costs.push(statements(&app).await - before);
    }
    assert_eq!(costs[0], costs[1], "{costs:?}");
}

/// 16 clients set the same (system, id) on 16 different contacts at once: exactly one wins, the
/// others get CONFLICT — never INTERNAL — and one row holds the id.
async fn racing_setters_get_one_winner(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let mut ids = vec![];
    for i in 0..16 {
        let d = admin
            .ok(
                CREATE_CONTACT,
                json!({"i": {"kind": "COMPANY", "companyName": format!("Racer {i}"), "addressBookId": w.own}}),
            )
            .await;
        ids.push(d["createContact"]["contact"]["id"].as_str().unwrap().to_owned());
    }
    let token = admin.token.clone().unwrap();
    let bodies =
        ids.iter().map(|c| json!({"query": SET, "variables": {"n": c, "s": "erp", "i": "RACE-1"}})).collect::<Vec<_>>();
    let answers = app.post_parallel(&token, bodies).await;
    let codes: Vec<String> =
        answers.iter().map(|a| a["errors"][0]["extensions"]["code"].as_str().unwrap_or("OK").to_owned()).collect();
    assert_eq!(codes.iter().filter(|c| *c == "OK").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "CONFLICT").count(), 15, "{codes:?}");
    let winner = answers.iter().position(|a| a.get("errors").is_none()).unwrap();
    let d = admin.ok(CONTACT, json!({"s": "erp", "i": "RACE-1"})).await;
    assert_eq!(d["contactByExternalId"]["id"], ids[winner].as_str());
    // One row: no other racer holds it.
    let q = "query($f: Int) { contacts(first: $f, filter: {search: \"Racer\"}) { edges { node { externalIds { value } } } } }";
    let d = admin.ok(q, json!({"f": 50})).await;
    let holders =
        d["contacts"]["edges"].as_array().unwrap().iter().filter(|e| e["node"]["externalIds"] != json!([])).count();
    assert_eq!(holders, 1);
}

/// 12 clients set different erp ids on one product at once: each is a replacement of the one
/// before (the writers take turns on the product's row), none is a CONFLICT or INTERNAL, and the
/// product ends with exactly one erp id — one of theirs.
async fn parallel_writers_of_one_product_take_turns(app: TestApp) {
    let admin = app.actor("acme", "admin", &["admin"]);
    let p = product(&admin, "P-RACE", ext(&[])).await;
    let token = admin.token.clone().unwrap();
    let values: Vec<String> = (0..12).map(|i| format!("V-{i}")).collect();
    let bodies =
        values.iter().map(|v| json!({"query": SET, "variables": {"n": p, "s": "erp", "i": v}})).collect::<Vec<_>>();
    let answers = app.post_parallel(&token, bodies).await;
    for a in &answers {
        assert!(a.get("errors").is_none(), "{a}");
    }
    let d = admin
        .ok("query($id: ID!) { node(id: $id) { ... on Product { externalIds { system value } } } }", json!({"id": p}))
        .await;
    let ids = d["node"]["externalIds"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{d}");
    assert!(values.iter().any(|v| ids[0]["value"] == v.as_str()), "{d}");
}

on_both_backends!(
    every_kind_can_be_set_read_looked_up_and_removed,
    hidden_objects_are_answered_like_unknown_ids,
    only_writers_may_change_them,
    a_taken_id_is_a_conflict_that_names_no_holder,
    setting_the_same_id_again_records_nothing,
    erasure_and_deletion_free_the_ids,
    bad_values_are_bad_user_input_with_the_field,
    a_page_of_external_ids_costs_the_same_statements_whatever_its_size,
    racing_setters_get_one_winner,
    parallel_writers_of_one_product_take_turns,
);
