//! Inputs name ids consistently (`contactId`, `groupId`, `workerId`, `addressBookIds`, …; the
//! rule is written down in `crates/api/src/graphql/ids.rs`). The input fields renamed to follow
//! it keep their old names as deprecated aliases: the old name takes the same value with the
//! same effect, and giving both names at once is `BAD_USER_INPUT` on the new one.

use crate::on_both_backends;
use crate::routing::{RECEIVE, Routing};
use crate::support::{Actor, CREATE_CONTACT, TestApp, World};
use serde_json::{Value, json};

/// (input type, current name, deprecated old name).
const RENAMED: &[(&str, &str, &str)] = &[
    ("ContactFilterInput", "addressBookIds", "addressBooks"),
    ("MessageFilterInput", "workerId", "assignee"),
    ("TicketFilterInput", "workerId", "assignee"),
    ("AuditLogFilter", "actorId", "actor"),
    ("DeleteGroupInput", "reparentChildrenToId", "reparentChildrenTo"),
];

#[tokio::test]
async fn old_names_are_deprecated_in_the_schema_and_point_to_the_new_ones() {
    let schema = cohort_api::graphql::build_schema(&cohort_api::config::Limits::default(), true);
    for (input, current, old) in RENAMED {
        let q = format!(
            "{{ __type(name: \"{input}\") {{ inputFields(includeDeprecated: true) {{ name isDeprecated deprecationReason }} }} }}"
        );
        let body = serde_json::to_value(schema.execute(q.as_str()).await).expect("response as JSON");
        let fields = body["data"]["__type"]["inputFields"].as_array().unwrap_or_else(|| panic!("{input}: {body}"));
        let field = |name: &str| fields.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{input}.{name}"));
        assert_eq!(field(current)["isDeprecated"], false, "{input}.{current}");
        assert_eq!(field(old)["isDeprecated"], true, "{input}.{old}");
        let reason = field(old)["deprecationReason"].as_str().unwrap_or_default();
        assert!(reason.contains(&format!("`{current}`")), "{input}.{old}: {reason}");
    }
}

/// Asserts that `query` answers the same data with the value under `current` and under `old`
/// (and that the answer is not trivially empty: `nonempty` points at something that must be
/// there), and that both at once are refused.
async fn same_under_both_names(a: &Actor<'_>, query: &str, vars: Value, path: (&str, &str, &str), nonempty: &str) {
    let (var, current, old) = path;
    let with = |name: &str| {
        let mut v = vars.clone();
        let value = v[var][current].take();
        v[var].as_object_mut().unwrap().remove(current);
        v[var][name] = value;
        v
    };
    let new = a.ok(query, vars.clone()).await;
    assert!(new.pointer(nonempty).is_some_and(|v| !v.is_null()), "{nonempty} in {new}");
    assert_eq!(a.ok(query, with(old)).await, new, "{old} is an alias of {current}");
    let mut both = vars.clone();
    both[var][old] = vars[var][current].clone();
    let body = a.gql(query, both).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], current, "{body}");
}

async fn contact_filter_address_book_ids(app: TestApp) {
    let w = World::build(&app).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let q = "query($f: ContactFilterInput) { contacts(first: 10, filter: $f) { totalCount edges { node { displayName } } } }";
    let vars = json!({"f": {"addressBookIds": [w.team]}});
    same_under_both_names(&agent, q, vars, ("f", "addressBookIds", "addressBooks"), "/contacts/edges/0").await;
    let d = agent.ok(q, json!({"f": {"addressBooks": [w.team]}})).await;
    assert_eq!(d["contacts"]["edges"], json!([{"node": {"displayName": "Clara Carter"}}]));
}

async fn message_filter_worker_id(app: TestApp) {
    let r = Routing::build(&app).await;
    let admin = app.actor(&r.w.tenant, "admin", &["admin"]);
    // `helpdesk` routes to `other`, `sales` to `worker`.
    for area in ["helpdesk", "sales"] {
        let i =
            json!({"contactId": r.w.id("anna"), "processArea": area, "channel": "EMAIL", "subject": area, "body": "b"});
        admin.ok(RECEIVE, json!({"i": i})).await;
    }
    let q = "query($f: MessageFilterInput) { messages(first: 10, filter: $f) { totalCount edges { node { subject worker { subject } } } } }";
    let vars = json!({"f": {"workerId": r.user("other")}});
    same_under_both_names(&admin, q, vars.clone(), ("f", "workerId", "assignee"), "/messages/edges/0").await;
    let d = admin.ok(q, vars).await;
    assert_eq!(d["messages"]["edges"], json!([{"node": {"subject": "helpdesk", "worker": {"subject": "other"}}}]));
}

async fn ticket_filter_worker_id(app: TestApp) {
    let r = Routing::build(&app).await;
    let admin = app.actor(&r.w.tenant, "admin", &["admin"]);
    let create = "mutation($i: CreateTicketInput!) { createTicket(input: $i) { ticketId } }";
    for area in ["helpdesk", "sales"] {
        let i = json!({"contactId": r.w.id("anna"), "processArea": area, "channel": "EMAIL", "subject": area});
        admin.ok(create, json!({"i": i})).await;
    }
    let q = "query($f: TicketFilterInput) { tickets(first: 10, filter: $f) { totalCount edges { node { subject worker { subject } } } } }";
    let vars = json!({"f": {"workerId": r.user("worker")}});
    same_under_both_names(&admin, q, vars.clone(), ("f", "workerId", "assignee"), "/tickets/edges/0").await;
    let d = admin.ok(q, vars).await;
    assert_eq!(d["tickets"]["edges"], json!([{"node": {"subject": "sales", "worker": {"subject": "worker"}}}]));
}

async fn audit_filter_actor_id(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let agent_id = agent.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].clone();
    agent
        .ok(
            CREATE_CONTACT,
            json!({"i": {"addressBookId": w.own, "kind": "PERSON", "firstName": "By", "lastName": "Agent"}}),
        )
        .await;
    let q = "query($f: AuditLogFilter) { auditLog(first: 10, filter: $f) { totalCount edges { node { action actor { subject } } } } }";
    let vars = json!({"f": {"actorId": agent_id, "action": "contact.create"}});
    same_under_both_names(&admin, q, vars.clone(), ("f", "actorId", "actor"), "/auditLog/edges/0").await;
    let d = admin.ok(q, vars).await;
    assert_eq!(d["auditLog"]["totalCount"], 1, "{d}");
    assert_eq!(d["auditLog"]["edges"][0]["node"]["actor"]["subject"], "agent");
}

async fn delete_group_reparent_children_to_id(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    use crate::groups::group;
    let del = "mutation($i: DeleteGroupInput!) { deleteGroup(input: $i) { deletedIds } }";
    let parent_of = "query($g: ID!) { group(id: $g) { parent { id } } }";
    // The old name moves the children like the new one (tested in `groups`), `null` included.
    for (name, target) in [("reparentChildrenTo", true), ("reparentChildrenTo", false), ("reparentChildrenToId", true)]
    {
        let doomed = group(&admin, &w.own, "Doomed", None).await;
        let child = group(&admin, &w.own, "Child", Some(&doomed)).await;
        let new_parent = if target { Some(group(&admin, &w.own, "New parent", None).await) } else { None };
        let mut i = json!({"id": doomed});
        i[name] = json!(new_parent.clone());
        let d = admin.ok(del, json!({"i": i})).await;
        assert_eq!(d["deleteGroup"]["deletedIds"], json!([doomed]), "{name}");
        let p = admin.ok(parent_of, json!({"g": child})).await;
        let want = new_parent.as_ref().map_or(Value::Null, |p| json!({"id": p}));
        assert_eq!(p["group"]["parent"], want, "{name}: the child's new parent");
        // Clean up, so the next round's names are free.
        admin.ok(del, json!({"i": {"id": child}})).await;
        if let Some(p) = new_parent {
            admin.ok(del, json!({"i": {"id": p}})).await;
        }
    }
    // Both names at once: refused, and nothing is deleted — even when they agree.
    let doomed = group(&admin, &w.own, "Kept", None).await;
    let child = group(&admin, &w.own, "Kept child", Some(&doomed)).await;
    for both in [
        json!({"reparentChildrenToId": null, "reparentChildrenTo": null}),
        json!({"reparentChildrenToId": null, "reparentChildrenTo": child}),
    ] {
        let mut i = both.clone();
        i["id"] = json!(doomed);
        let body = admin.gql(del, json!({"i": i})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "reparentChildrenToId", "{body}");
    }
    assert_eq!(admin.ok(parent_of, json!({"g": child})).await["group"]["parent"], json!({"id": doomed}));
}

on_both_backends!(
    contact_filter_address_book_ids,
    message_filter_worker_id,
    ticket_filter_worker_id,
    audit_filter_actor_id,
    delete_group_reparent_children_to_id,
);
