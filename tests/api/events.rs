//! The outbox over HTTP: every mutation leaves exactly its events (type, subjects as the global
//! ids the mutation returned, actor, the request's `x-request-id`), a refused one leaves none, and
//! `events(first, after, types)` is an admin read with strict type filters and exact paging.

use crate::groups::{ADD, CREATE_GROUP, REMOVE};
use crate::on_both_backends;
use crate::support::{Actor, CREATE_BOOK, CREATE_CONTACT, TestApp, World};
use serde_json::{Value, json};

const EVENTS: &str = "query($f: Int, $a: String, $t: [String!]) { events(first: $f, after: $a, types: $t) {
    edges { cursor node { id type requestId subjects schemaVersion payload occurredAt actor { subject } } }
    pageInfo { hasNextPage endCursor } } }";

/// Every event the admin can read (optionally filtered), oldest first, paged `per_page` at a time.
async fn events_paged(admin: &Actor<'_>, types: Option<&[&str]>, per_page: i32) -> Vec<Value> {
    let mut out = vec![];
    let mut after = Value::Null;
    loop {
        let d = admin.ok(EVENTS, json!({"f": per_page, "a": after, "t": types})).await;
        let e = &d["events"];
        let edges = e["edges"].as_array().expect("edges");
        assert!(edges.len() <= per_page as usize);
        out.extend(edges.iter().map(|edge| edge["node"].clone()));
        if e["pageInfo"]["hasNextPage"] != json!(true) {
            return out;
        }
        after = e["pageInfo"]["endCursor"].clone();
    }
}

async fn all_events(admin: &Actor<'_>) -> Vec<Value> {
    events_paged(admin, None, 100).await
}

/// (type, subjects) of events.
fn shape(events: &[Value]) -> Vec<(String, Value)> {
    events.iter().map(|e| (e["type"].as_str().expect("type").to_owned(), e["subjects"].clone())).collect()
}

/// Runs one mutation as `actor` and returns its data and the events it added.
async fn with_events(admin: &Actor<'_>, actor: &Actor<'_>, query: &str, vars: Value) -> (Value, Vec<Value>) {
    let before = all_events(admin).await.len();
    let data = actor.ok(query, vars).await;
    let mut after = all_events(admin).await;
    (data, after.split_off(before))
}

/// POSTs a GraphQL request with an `x-request-id` header; returns (response header, body).
async fn post_with_request_id(
    app: &TestApp,
    token: &str,
    rid: Option<&str>,
    query: &str,
    vars: Value,
) -> (String, Value) {
    let mut req =
        app.client.post(app.url("/graphql")).bearer_auth(token).json(&json!({"query": query, "variables": vars}));
    if let Some(r) = rid {
        req = req.header("x-request-id", r);
    }
    let resp = req.send().await.expect("request");
    let header = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (header, resp.json().await.expect("json"))
}

async fn user_id(actor: &Actor<'_>) -> String {
    actor.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].as_str().expect("id").to_owned()
}

async fn each_mutation_leaves_exactly_its_events(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let check = |events: &[Value], expected: Vec<(&str, Value)>, actor: &str| {
        let expected: Vec<(String, Value)> = expected.into_iter().map(|(t, s)| (t.to_owned(), s)).collect();
        assert_eq!(shape(events), expected);
        for e in events {
            assert_eq!(e["actor"]["subject"], json!(actor), "{e}");
            assert_eq!(e["schemaVersion"], json!(1));
            assert!(e["requestId"].is_string(), "every request has an id: {e}");
            assert!(e["occurredAt"].is_string());
        }
    };

    let (d, ev) =
        with_events(&admin, &admin, CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Top"}})).await;
    let top = d["createGroup"]["group"]["id"].clone();
    check(&ev, vec![("group.created", json!([top]))], "admin");
    let (d, ev) = with_events(
        &admin,
        &admin,
        CREATE_GROUP,
        json!({"i": {"addressBookId": w.own, "name": "Sub", "parentId": top}}),
    )
    .await;
    let sub = d["createGroup"]["group"]["id"].clone();
    check(&ev, vec![("group.created", json!([sub]))], "admin");

    // Members: counts only — the agent's call names a hidden contact, which counts nothing.
    let ids = json!([w.id("anna"), w.id("bruno"), w.id("anna_hidden")]);
    let (d, ev) = with_events(&admin, &agent, ADD, json!({"i": {"groupId": top, "contactIds": ids}})).await;
    assert_eq!(d["addGroupMembers"]["addedCount"], 2);
    check(&ev, vec![("group.members_added", json!([top]))], "agent");
    assert_eq!(ev[0]["payload"], json!({"count": 2, "source": "ASSIGNED"}));
    let (_, ev) =
        with_events(&admin, &agent, REMOVE, json!({"i": {"groupId": top, "contactIds": [w.id("bruno")]}})).await;
    check(&ev, vec![("group.members_removed", json!([top]))], "agent");
    assert_eq!(ev[0]["payload"], json!({"count": 1}));

    let (d, ev) = with_events(
        &admin,
        &admin,
        "mutation($id: ID!) { moveGroup(input: {id: $id, parentId: null}) { group { id parent { id } } } }",
        json!({"id": sub}),
    )
    .await;
    assert_eq!(d["moveGroup"]["group"]["id"], sub);
    check(&ev, vec![("group.moved", json!([sub]))], "admin");
    let (d, ev) = with_events(
        &admin,
        &admin,
        "mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId deletedIds } }",
        json!({"id": sub}),
    )
    .await;
    assert_eq!(d["deleteGroup"]["deletedId"], sub);
    check(&ev, vec![("group.deleted", json!([sub]))], "admin");

    // Contacts, by the agent in their own book.
    let (d, ev) = with_events(
        &admin,
        &agent,
        CREATE_CONTACT,
        json!({"i": {"addressBookId": w.own, "kind": "PERSON", "firstName": "Nora", "lastName": "New", "emails": [{"address": "nora@new.example"}]}}),
    )
    .await;
    let nora = d["createContact"]["contact"]["id"].clone();
    check(&ev, vec![("contact.created", json!([nora]))], "agent");
    let (d, ev) = with_events(
        &admin,
        &agent,
        "mutation($id: ID!) { updateContact(input: {id: $id, lastName: \"Newer\"}) { contact { id displayName } } }",
        json!({"id": nora}),
    )
    .await;
    assert_eq!(d["updateContact"]["contact"]["id"], nora);
    check(&ev, vec![("contact.updated", json!([nora]))], "agent");
    let (d, ev) = with_events(
        &admin,
        &agent,
        "mutation($id: ID!) { setContactBusinessStatus(input: {contactId: $id, status: \"customer\"}) { contact { id } } }",
        json!({"id": nora}),
    )
    .await;
    assert_eq!(d["setContactBusinessStatus"]["contact"]["id"], nora);
    check(&ev, vec![("contact.status_changed", json!([nora]))], "agent");

    // An order names the order and its contact.
    let (d, ev) = with_events(
        &admin,
        &admin,
        "mutation { createProduct(input: {sku: \"EV-1\", name: \"Widget\", listPrice: \"10\", currency: \"EUR\"}) { product { id } } }",
        json!({}),
    )
    .await;
    let product = d["createProduct"]["product"]["id"].clone();
    check(&ev, vec![("product.created", json!([product]))], "admin");
    let (d, ev) = with_events(
        &admin,
        &admin,
        "mutation($c: ID!) { placeOrder(input: {contactId: $c, currency: \"EUR\", lines: [{sku: \"EV-1\", quantity: \"2\"}]}) { order { id } } }",
        json!({"c": w.id("anna")}),
    )
    .await;
    let order = d["placeOrder"]["order"]["id"].clone();
    check(&ev, vec![("order.placed", json!([order, w.id("anna")]))], "admin");

    // Grants name the book.
    let outsider = user_id(&app.actor(&w.tenant, "outsider", &["agent"])).await;
    let (_, ev) = with_events(
        &admin,
        &admin,
        "mutation($b: ID!, $u: ID) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: READ}) { grant { level } } }",
        json!({"b": w.team, "u": outsider}),
    )
    .await;
    check(&ev, vec![("address_book.access_granted", json!([w.team]))], "admin");

    // No payload carries a contact's fields.
    for e in all_events(&admin).await {
        let p = e["payload"].to_string();
        for needle in ["Anna", "Abbott", "Nora", "Newer", "example", "Hidden"] {
            assert!(!p.contains(needle), "{} payload {p} carries contact data", e["type"]);
        }
    }
}

async fn refused_mutations_add_no_event(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let top = crate::groups::group(&admin, &w.own, "Top", None).await;
    crate::groups::group(&admin, &w.own, "Sub", Some(&top)).await;
    admin.ok(ADD, json!({"i": {"groupId": top, "contactIds": [w.id("anna")], "idempotencyKey": "k"}})).await;
    let before = all_events(&admin).await;

    // FORBIDDEN: the agent holds WRITE on their book, not MANAGE.
    assert_eq!(agent.err(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Mine"}})).await, "FORBIDDEN");
    assert_eq!(agent.err(CREATE_BOOK, json!({"n": "Mine"})).await, "FORBIDDEN");
    // BAD_USER_INPUT.
    assert_eq!(admin.err(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "  "}})).await, "BAD_USER_INPUT");
    assert_eq!(
        agent
            .err(
                "mutation($id: ID!) { setContactBusinessStatus(input: {contactId: $id, status: \"no_such\"}) { contact { id } } }",
                json!({"id": w.id("anna")}),
            )
            .await,
        "BAD_USER_INPUT"
    );
    // CONFLICT.
    assert_eq!(admin.err(CREATE_BOOK, json!({"n": "Own"})).await, "CONFLICT");
    assert_eq!(
        admin.err("mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId } }", json!({"id": top})).await,
        "CONFLICT"
    );
    assert_eq!(
        admin.err(ADD, json!({"i": {"groupId": top, "contactIds": [w.id("bruno")], "idempotencyKey": "k"}})).await,
        "CONFLICT"
    );
    // NOT_FOUND.
    assert_eq!(
        agent
            .err(
                "mutation($id: ID!) { updateContact(input: {id: $id, lastName: \"X\"}) { contact { id } } }",
                json!({"id": w.id("anna_hidden")}),
            )
            .await,
        "NOT_FOUND"
    );

    assert_eq!(all_events(&admin).await, before, "a refused mutation left an event");
}

async fn request_id_header_becomes_the_events_request_id(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let token = app.token(&w.tenant, "admin", &["admin"]);
    let before = all_events(&admin).await.len();
    let (header, body) = post_with_request_id(
        &app,
        &token,
        Some("caller-request-77"),
        CREATE_GROUP,
        json!({"i": {"addressBookId": w.own, "name": "Traced"}}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(header, "caller-request-77");
    let g = body["data"]["createGroup"]["group"]["id"].clone();
    let (_, body) = post_with_request_id(
        &app,
        &token,
        Some("caller-request-78"),
        ADD,
        json!({"i": {"groupId": g, "contactIds": [w.id("anna"), w.id("bruno")]}}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    // Without a header, the id the server made up (and sent back) is the one recorded.
    let (generated, body) = post_with_request_id(
        &app,
        &token,
        None,
        "mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId } }",
        json!({"id": g}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(!generated.is_empty());

    let ev = all_events(&admin).await.split_off(before);
    let got: Vec<(String, Value)> =
        ev.iter().map(|e| (e["type"].as_str().expect("type").to_owned(), e["requestId"].clone())).collect();
    assert_eq!(
        got,
        vec![
            ("group.created".to_owned(), json!("caller-request-77")),
            ("group.members_added".to_owned(), json!("caller-request-78")),
            ("group.deleted".to_owned(), json!(generated)),
        ]
    );
}

async fn events_are_for_admins_only(app: TestApp) {
    let w = World::build(&app).await;
    for (subject, roles) in [("agent", &["agent"][..]), ("outsider", &["agent"][..]), ("erp", &["integration"][..])] {
        let a = app.actor(&w.tenant, subject, roles);
        assert_eq!(a.err(EVENTS, json!({"f": 5})).await, "FORBIDDEN", "{subject}");
        // Forbidden comes first: a non-admin learns nothing from the filter either.
        assert_eq!(a.err(EVENTS, json!({"f": 5, "t": ["nope"]})).await, "FORBIDDEN", "{subject}");
    }
    assert_eq!(app.anonymous().err(EVENTS, json!({"f": 5})).await, "UNAUTHENTICATED");
    // Another tenant's admin sees none of this tenant's events.
    let stranger = app.actor("other-tenant", "admin", &["admin"]);
    assert_eq!(all_events(&stranger).await, Vec::<Value>::new());
}

async fn type_filters_are_exact_or_prefix_and_strict(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let top = crate::groups::group(&admin, &w.own, "Top", None).await;
    admin.ok(ADD, json!({"i": {"groupId": top, "contactIds": [w.id("anna")]}})).await;
    let all = all_events(&admin).await;

    let types =
        |events: &[Value]| events.iter().map(|e| e["type"].as_str().expect("type").to_owned()).collect::<Vec<_>>();
    let groups = events_paged(&admin, Some(&["group.*"]), 100).await;
    assert_eq!(types(&groups), ["group.created", "group.members_added"]);
    let expected: Vec<Value> =
        all.iter().filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("group."))).cloned().collect();
    assert_eq!(groups, expected);
    let created = events_paged(&admin, Some(&["group.created", "contact.*"]), 100).await;
    let expected: Vec<Value> = all
        .iter()
        .filter(|e| e["type"] == "group.created" || e["type"].as_str().is_some_and(|t| t.starts_with("contact.")))
        .cloned()
        .collect();
    assert_eq!(created, expected);
    assert_eq!(types(&created).iter().filter(|t| t.as_str() == "contact.created").count(), 6);
    // An empty list is no filter.
    assert_eq!(events_paged(&admin, Some(&[]), 100).await, all);

    for bad in [&["nope"][..], &["group.exploded"][..], &["group.created", "nope"][..], &["grou.*"][..], &["*"][..]] {
        assert_eq!(admin.err(EVENTS, json!({"f": 5, "t": bad})).await, "BAD_USER_INPUT", "{bad:?}");
    }
    assert_eq!(admin.err(EVENTS, json!({"f": 5, "a": "not-a-cursor"})).await, "BAD_USER_INPUT");
    assert_eq!(admin.err(EVENTS, json!({"f": 101})).await, "BAD_USER_INPUT");
}

async fn paging_returns_every_event_once_in_order(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let all = all_events(&admin).await;
    // World::build: 3 books, 1 user group, its members, 2 grants, 6 contacts.
    assert_eq!(all.len(), 13, "{:#?}", shape(&all));
    let ids: Vec<&Value> = all.iter().map(|e| &e["id"]).collect();
    let mut unique = ids.clone();
    unique.sort_by_key(|v| v.to_string());
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    for per_page in [1, 2, 5, 13] {
        assert_eq!(events_paged(&admin, None, per_page).await, all, "pages of {per_page}");
    }
    // Filtered paging too.
    let contacts = events_paged(&admin, Some(&["contact.*"]), 100).await;
    assert_eq!(contacts.len(), 6);
    assert_eq!(events_paged(&admin, Some(&["contact.*"]), 4).await, contacts);
    // The last page says there is no more, and a cursor past the end is an empty page.
    let d = admin.ok(EVENTS, json!({"f": 100})).await;
    assert_eq!(d["events"]["pageInfo"]["hasNextPage"], json!(false));
    let end = d["events"]["pageInfo"]["endCursor"].clone();
    let d = admin.ok(EVENTS, json!({"f": 100, "a": end})).await;
    assert_eq!(d["events"]["edges"], json!([]));
    // New events appear after the cursor, once.
    crate::groups::group(&admin, &w.own, "Later", None).await;
    let d = admin.ok(EVENTS, json!({"f": 100, "a": end})).await;
    assert_eq!(shape(&[d["events"]["edges"][0]["node"].clone()])[0].0, "group.created");
    assert_eq!(d["events"]["edges"].as_array().map(Vec::len), Some(1));
}

async fn an_idempotency_key_belongs_to_its_user(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let outsider = app.actor(&w.tenant, "outsider", &["agent"]);
    let outsider_id = user_id(&outsider).await;
    admin
        .ok(
            "mutation($b: ID!, $u: ID) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: WRITE}) { grant { level } } }",
            json!({"b": w.own, "u": outsider_id}),
        )
        .await;
    let g = crate::groups::group(&admin, &w.own, "Shared", None).await;
    let request = json!({"i": {"groupId": g, "contactIds": [w.id("anna")], "idempotencyKey": "same-key"}});

    // The agent's call adds Anna.
    let (first, ev) = with_events(&admin, &agent, ADD, request.clone()).await;
    assert_eq!(first["addGroupMembers"]["addedCount"], 1);
    assert_eq!(first["addGroupMembers"]["alreadyMemberCount"], 0);
    assert_eq!(shape(&ev), vec![("group.members_added".to_owned(), json!([g]))]);
    // The outsider's identical call with the identical key is their own request: computed now
    // (Anna is already a member), not the agent's answer replayed, and not a conflict.
    let (second, ev) = with_events(&admin, &outsider, ADD, request.clone()).await;
    assert_eq!(second["addGroupMembers"]["addedCount"], 0);
    assert_eq!(second["addGroupMembers"]["alreadyMemberCount"], 1);
    assert_ne!(second, first);
    assert!(ev.is_empty(), "nothing was added: {ev:?}");
    // Each key replays its own user's first answer, and writes nothing.
    let before = all_events(&admin).await;
    assert_eq!(agent.ok(ADD, request.clone()).await, first);
    assert_eq!(outsider.ok(ADD, request.clone()).await, second);
    assert_eq!(all_events(&admin).await, before);

    // Both users add under one key, each getting the count of their own call.
    let k2 = |ids: Value| json!({"i": {"groupId": g, "contactIds": ids, "idempotencyKey": "second-key"}});
    let a = agent.ok(ADD, k2(json!([w.id("bruno")]))).await;
    assert_eq!(a["addGroupMembers"]["addedCount"], 1);
    let o = outsider.ok(ADD, k2(json!([w.id("acme")]))).await;
    assert_eq!(o["addGroupMembers"]["addedCount"], 1);
    let d = admin.ok("query($g: ID!) { group(id: $g) { memberCount } }", json!({"g": g})).await;
    assert_eq!(d["group"]["memberCount"], 3);
    // …while one user reusing their key for something else is still a conflict.
    assert_eq!(agent.err(ADD, k2(json!([w.id("acme")]))).await, "CONFLICT");
}

/// User-group events name exactly the users a call added or removed; a call that changes nothing
/// leaves no event.
async fn user_group_events_name_only_real_changes(app: TestApp) {
    let admin = app.actor("ug", "admin", &["admin"]);
    let mut users = vec![];
    for s in ["u1", "u2"] {
        let d = admin
            .ok("mutation($s: String!) { createUser(input: {subject: $s}) { user { id } } }", json!({"s": s}))
            .await;
        users.push(d["createUser"]["user"]["id"].as_str().expect("id").to_owned());
    }
    let g = admin.ok("mutation { createUserGroup(input: {name: \"Team\"}) { userGroup { id } } }", json!({})).await;
    let g = g["createUserGroup"]["userGroup"]["id"].as_str().expect("id").to_owned();
    let add =
        "mutation($g: ID!, $u: [ID!]!) { addUserGroupMembers(input: {userGroupId: $g, userIds: $u}) { addedCount } }";
    let rm = "mutation($g: ID!, $u: [ID!]!) { removeUserGroupMembers(input: {userGroupId: $g, userIds: $u}) { removedCount } }";
    let raw = |id: &str| -> String {
        // The payload carries raw uuids; the global id is base64url of `User:<simple uuid>`.
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id).expect("global id");
        let s = String::from_utf8(bytes).expect("utf8");
        let simple = s.split_once(':').expect("tag").1.to_owned();
        uuid::Uuid::parse_str(&simple).expect("uuid").hyphenated().to_string()
    };
    let (d, ev) = with_events(&admin, &admin, add, json!({"g": g, "u": [users[0]]})).await;
    assert_eq!(d["addUserGroupMembers"]["addedCount"], 1);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["payload"]["userIds"], json!([raw(&users[0])]));
    let (d, ev) = with_events(&admin, &admin, add, json!({"g": g, "u": [users[0], users[1]]})).await;
    assert_eq!(d["addUserGroupMembers"]["addedCount"], 1);
    assert_eq!(ev[0]["payload"]["userIds"], json!([raw(&users[1])]), "only the user actually added");
    let (d, ev) = with_events(&admin, &admin, add, json!({"g": g, "u": [users[1]]})).await;
    assert_eq!(d["addUserGroupMembers"]["addedCount"], 0);
    assert!(ev.is_empty(), "nothing changed, nothing reported: {ev:?}");
    let (d, ev) = with_events(&admin, &admin, rm, json!({"g": g, "u": [users[1]]})).await;
    assert_eq!(d["removeUserGroupMembers"]["removedCount"], 1);
    assert_eq!(ev[0]["type"], "user_group.members_removed");
    assert_eq!(ev[0]["payload"]["userIds"], json!([raw(&users[1])]));
    let (_, ev) = with_events(&admin, &admin, rm, json!({"g": g, "u": [users[1]]})).await;
    assert!(ev.is_empty());
}

on_both_backends!(
    each_mutation_leaves_exactly_its_events,
    refused_mutations_add_no_event,
    request_id_header_becomes_the_events_request_id,
    events_are_for_admins_only,
    type_filters_are_exact_or_prefix_and_strict,
    paging_returns_every_event_once_in_order,
    an_idempotency_key_belongs_to_its_user,
    user_group_events_name_only_real_changes,
);
