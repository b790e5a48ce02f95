//! Data-usage monitoring (issue 15, DESIGN §1 "Protecting the data"): distinct contacts per user
//! and day, thresholds (warning once, blocking only new contacts, lifting), the daily export
//! budget of membership pairs, transparency, and the refusals — on SQLite and PostgreSQL.

use crate::on_both_backends;
use crate::support::{Actor, TestApp, World};
use serde_json::{Value, json};

const MY_USAGE: &str = "{ viewer { dataUsage { monitored timeZone today { distinctContacts membershipPairs requests warnedAt blockedAt liftedAt } operations { operation requests contacts } limits { warnContacts blockContacts membershipPairBudget } } } }";
const SET_POLICY: &str = "mutation($i: SetDataUsagePolicyInput!) { setDataUsagePolicy(input: $i) { policy { scope role warnContacts blockContacts membershipPairBudget timeZone } } }";
const LIFT: &str =
    "mutation($u: ID!) { liftDataUsageBlock(input: {userId: $u}) { usage { liftedAt distinctContacts } } }";
const CONTACTS: &str = "query($n: Int) { contacts(first: $n) { edges { node { id displayName } } } }";
const CONTACT: &str = "query($id: ID!) { contact(id: $id) { id displayName } }";
const MEMBERS: &str = "query($g: ID!, $a: String) { group(id: $g) { members(first: 2, after: $a) { edges { node { id } } pageInfo { hasNextPage endCursor } } } }";

async fn usage(a: &Actor<'_>) -> Value {
    a.ok(MY_USAGE, json!({})).await["viewer"]["dataUsage"].clone()
}

async fn distinct(a: &Actor<'_>) -> i64 {
    usage(a).await["today"]["distinctContacts"].as_i64().expect("distinctContacts")
}

async fn user_id(a: &Actor<'_>) -> String {
    a.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].as_str().expect("id").to_owned()
}

async fn events(admin: &Actor<'_>, ty: &str) -> Vec<Value> {
    let d = admin
        .ok(
            "query($t: [String!]) { events(first: 100, types: $t) { edges { node { type payload } } } }",
            json!({"t": [ty]}),
        )
        .await;
    d["events"]["edges"].as_array().expect("edges").iter().map(|e| e["node"].clone()).collect()
}

/// The same contact seen on several pages and in several operations counts once; hidden
/// contacts never count (they are never in an answer); requests are counted per root field.
async fn the_same_contact_counts_once_and_hidden_ones_never(app: TestApp) {
    let w = World::build(&app).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    assert_eq!(distinct(&agent).await, 0, "nothing read yet");
    let me = usage(&agent).await;
    assert_eq!(me["monitored"], true);
    assert_eq!(me["timeZone"], "UTC");
    assert_eq!(me["limits"]["membershipPairBudget"], 5000, "the default budget applies");

    // Four visible contacts (Acme, Anna Abbott, Bruno, Clara); page 1 and 2 overlap nothing.
    agent.ok(CONTACTS, json!({"n": 2})).await;
    agent.ok(CONTACTS, json!({"n": 4})).await;
    agent.ok(CONTACT, json!({"id": w.id("anna")})).await;
    agent.ok("query($id: ID!) { node(id: $id) { id } }", json!({"id": w.id("clara")})).await;
    // Hidden: unknown to the agent, and not counted.
    assert_eq!(agent.err(CONTACT, json!({"id": w.id("anna_hidden")})).await, "NOT_FOUND");
    agent.ok("{ contacts(first: 10, filter: {search: \"Hidden\"}) { edges { node { id } } } }", json!({})).await;
    let me = usage(&agent).await;
    assert_eq!(me["today"]["distinctContacts"], 4, "{me:#}");
    let ops: Vec<(String, i64)> = me["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|o| (o["operation"].as_str().unwrap_or_default().to_owned(), o["requests"].as_i64().unwrap_or(0)))
        .collect();
    assert!(ops.contains(&("contacts".into(), 3)), "{ops:?}");
    assert!(ops.contains(&("contact".into(), 2)), "{ops:?}");
    assert!(ops.contains(&("node".into(), 1)), "{ops:?}");
    // Counting is per user: the admin has seen none of this.
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    assert_eq!(distinct(&admin).await, 0);

    // A group holding visible and hidden members: the page shows (and counts) visible ones only.
    let g = admin
        .ok(
            "mutation($b: ID!) { createGroup(input: {addressBookId: $b, name: \"VIP\"}) { group { id } } }",
            json!({"b": w.own}),
        )
        .await["createGroup"]["group"]["id"]
        .as_str()
        .expect("group")
        .to_owned();
    admin
        .ok(
            "mutation($g: ID!, $c: [ID!]!) { addGroupMembers(input: {groupId: $g, contactIds: $c}) { addedCount } }",
            json!({"g": g, "c": [w.id("anna"), w.id("anna_hidden"), w.id("secret")]}),
        )
        .await;
    let page = agent.ok(MEMBERS, json!({"g": g})).await;
    assert_eq!(page["group"]["members"]["edges"].as_array().map(Vec::len), Some(1));
    let me = usage(&agent).await;
    assert_eq!(me["today"]["distinctContacts"], 4, "Anna was seen already; the hidden members never count");
    assert_eq!(me["today"]["membershipPairs"], 1);
    // Other users' figures and the report are for admins.
    let agent_id = user_id(&agent).await;
    let admin_id = user_id(&admin).await;
    assert_eq!(
        agent.err("query($u: ID!) { dataUsage(userId: $u) { distinctContacts } }", json!({"u": admin_id})).await,
        "FORBIDDEN"
    );
    assert_eq!(agent.err("{ dataUsageReport { userCount } }", json!({})).await, "FORBIDDEN");
    assert_eq!(agent.err("{ dataUsagePolicies { scope } }", json!({})).await, "FORBIDDEN");
    let own = agent.ok("query($u: ID!) { dataUsage(userId: $u) { distinctContacts } }", json!({"u": agent_id})).await;
    assert_eq!(own["dataUsage"][0]["distinctContacts"], 4, "users read their own days");
    let report = admin
        .ok(
            "{ dataUsageReport { userCount users { user { subject } distinctContacts membershipPairs requests } } }",
            json!({}),
        )
        .await;
    let users = report["dataUsageReport"]["users"].as_array().expect("users");
    assert_eq!(users[0]["user"]["subject"], "agent", "largest first: {report:#}");
    assert_eq!(users[0]["distinctContacts"], 4);
}

/// Warning once a day; the block refuses answers with new contacts (whole), serves the contacts
/// already seen, and an admin can lift it for the rest of the day.
async fn thresholds_warn_once_block_new_contacts_and_lift(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let set = admin.ok(SET_POLICY, json!({"i": {"scope": "TENANT", "warnContacts": 2, "blockContacts": 3}})).await;
    assert_eq!(set["setDataUsagePolicy"]["policy"]["blockContacts"], 3);
    assert_eq!(usage(&agent).await["limits"]["blockContacts"], 3, "users see their limits");

    // Acme, Anna: two new contacts — the warning threshold.
    agent.ok(CONTACTS, json!({"n": 2})).await;
    agent.ok(CONTACTS, json!({"n": 2})).await;
    // Four would add two more (Bruno, Clara): 4 > 3, refused as a whole.
    let body = agent.gql(CONTACTS, json!({"n": 4})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "DATA_USAGE_LIMIT", "{body:#}");
    assert!(body.get("data").is_none_or(Value::is_null), "no partial answer: {body:#}");
    // Three adds one: allowed (exactly at the limit).
    agent.ok(CONTACTS, json!({"n": 3})).await;
    // Clara would be the fourth.
    assert_eq!(agent.err(CONTACT, json!({"id": w.id("clara")})).await, "DATA_USAGE_LIMIT");
    // Contacts already seen stay readable, alone and in lists.
    agent.ok(CONTACT, json!({"id": w.id("anna")})).await;
    agent.ok(CONTACTS, json!({"n": 3})).await;
    let me = usage(&agent).await;
    assert_eq!(me["today"]["distinctContacts"], 3);
    assert!(me["today"]["warnedAt"].is_string() && me["today"]["blockedAt"].is_string(), "{me:#}");
    // Mutations are counted but never refused afterwards (they have committed).
    let warned = events(&admin, "data_usage.threshold_exceeded").await;
    assert_eq!(warned.len(), 1, "the warning is raised once: {warned:?}");
    assert_eq!(warned[0]["payload"]["threshold"], 2);
    assert_eq!(events(&admin, "data_usage.blocked").await.len(), 1, "the block is reported once");

    // An admin lifts it for today: the agent reads on.
    let agent_id = user_id(&agent).await;
    assert_eq!(agent.err(LIFT, json!({"u": agent_id})).await, "FORBIDDEN", "agents cannot lift their own block");
    let lifted = admin.ok(LIFT, json!({"u": agent_id})).await;
    assert!(lifted["liftDataUsageBlock"]["usage"]["liftedAt"].is_string());
    agent.ok(CONTACT, json!({"id": w.id("clara")})).await;
    assert_eq!(distinct(&agent).await, 4);
    assert_eq!(events(&admin, "data_usage.block_lifted").await.len(), 1);
    assert_eq!(events(&admin, "data_usage.threshold_exceeded").await.len(), 1, "still once");

    // Per-role and per-user overrides: the admin role is exempt from the block, the outsider
    // gets a personal warning threshold of 1.
    admin.ok(SET_POLICY, json!({"i": {"scope": "ROLE", "role": "admin", "blockContacts": 0}})).await;
    let outsider = app.actor(&w.tenant, "outsider", &["agent"]);
    let outsider_id = user_id(&outsider).await;
    admin.ok(SET_POLICY, json!({"i": {"scope": "USER", "userId": outsider_id, "warnContacts": 1}})).await;
    let limits = usage(&admin).await["limits"].clone();
    assert_eq!(limits["blockContacts"], Value::Null, "{limits:#}");
    assert_eq!(limits["warnContacts"], 2, "the admin role inherits the tenant's warning");
    assert_eq!(usage(&outsider).await["limits"]["warnContacts"], 1);
    // The admin (buffered path, no block) crosses the warning: raised by the flush, once.
    admin.ok(CONTACTS, json!({"n": 6})).await;
    admin.ok(CONTACTS, json!({"n": 6})).await;
    assert_eq!(distinct(&admin).await, 6);
    let warned = events(&admin, "data_usage.threshold_exceeded").await;
    assert_eq!(warned.len(), 2, "agent once, admin once: {warned:?}");
    let policies = admin.ok("{ dataUsagePolicies { scope role userId warnContacts blockContacts } }", json!({})).await;
    assert_eq!(policies["dataUsagePolicies"].as_array().map(Vec::len), Some(3), "{policies:#}");
}

/// A scripted walk over every member of every group stops with EXPORT_LIMIT long before it has
/// the membership matrix; nothing beyond the budget is ever answered.
async fn a_full_walk_of_all_groups_stops_at_the_export_budget(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    admin.ok(SET_POLICY, json!({"i": {"scope": "TENANT", "membershipPairBudget": 5}})).await;
    let visible = [w.id("anna"), w.id("bruno"), w.id("acme"), w.id("clara")];
    let mut groups = vec![];
    for n in ["A", "B", "C"] {
        let g = admin
            .ok(
                "mutation($b: ID!, $n: String!) { createGroup(input: {addressBookId: $b, name: $n}) { group { id } } }",
                json!({"b": w.own, "n": n}),
            )
            .await["createGroup"]["group"]["id"]
            .as_str()
            .expect("group")
            .to_owned();
        admin
            .ok(
                "mutation($g: ID!, $c: [ID!]!) { addGroupMembers(input: {groupId: $g, contactIds: $c}) { addedCount } }",
                json!({"g": g, "c": visible}),
            )
            .await;
        groups.push(g);
    }
    // The walk: every group, page by page (2 members per page), until done or refused.
    let mut received = 0;
    let mut refused = None;
    'walk: for g in &groups {
        let mut after: Option<String> = None;
        loop {
            let body = agent.gql(MEMBERS, json!({"g": g, "a": after})).await;
            if let Some(code) = body["errors"][0]["extensions"]["code"].as_str() {
                assert!(body.get("data").is_none_or(Value::is_null), "no partial page: {body:#}");
                refused = Some(code.to_owned());
                break 'walk;
            }
            let m = &body["data"]["group"]["members"];
            received += m["edges"].as_array().map(Vec::len).unwrap_or(0);
            if m["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = m["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        }
    }
    assert_eq!(refused.as_deref(), Some("EXPORT_LIMIT"));
    assert_eq!(received, 4, "two pages of two, then the third page would pass 5 pairs");
    let me = usage(&agent).await;
    assert_eq!(me["today"]["membershipPairs"], 4, "{me:#}");
    // Contacts' memberships count as pairs too.
    let body = agent
        .gql("query($id: ID!) { contact(id: $id) { memberships { group { id } } } }", json!({"id": w.id("anna")}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "EXPORT_LIMIT", "{body:#}");
    // Lifted: the walk may go on today.
    let agent_id = user_id(&agent).await;
    admin.ok(LIFT, json!({"u": agent_id})).await;
    agent.ok(MEMBERS, json!({"g": groups[1]})).await;
}

/// Bad policies are refused with a coded error and leave the policy as it was.
async fn bad_policies_are_refused_and_change_nothing(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    admin.ok(SET_POLICY, json!({"i": {"scope": "TENANT", "warnContacts": 50, "timeZone": "Europe/Prague"}})).await;
    for input in [
        json!({"scope": "TENANT", "warnContacts": -1}),
        json!({"scope": "TENANT", "warnContacts": 10, "blockContacts": 5}),
        json!({"scope": "TENANT", "timeZone": "Mars/Olympus"}),
        json!({"scope": "ROLE", "role": "wizard", "warnContacts": 1}),
        json!({"scope": "ROLE", "warnContacts": 1}),
        json!({"scope": "TENANT", "role": "agent"}),
        json!({"scope": "ROLE", "role": "agent", "timeZone": "UTC"}),
        json!({"scope": "TENANT", "membershipPairBudget": 2_000_000_000}),
    ] {
        assert_eq!(admin.err(SET_POLICY, json!({"i": input})).await, "BAD_USER_INPUT", "{input}");
    }
    // An unknown user is NOT_FOUND, like every id that does not resolve.
    assert_eq!(admin.err(SET_POLICY, json!({"i": {"scope": "USER", "userId": "not-an-id"}})).await, "NOT_FOUND");
    assert_eq!(
        agent.err(SET_POLICY, json!({"i": {"scope": "TENANT", "blockContacts": 0}})).await,
        "FORBIDDEN",
        "agents cannot loosen their own limits"
    );
    let p = admin.ok("{ dataUsagePolicies { scope warnContacts timeZone } }", json!({})).await;
    assert_eq!(p["dataUsagePolicies"], json!([{"scope": "TENANT", "warnContacts": 50, "timeZone": "Europe/Prague"}]));
    assert_eq!(usage(&agent).await["timeZone"], "Europe/Prague", "usage days follow the tenant's zone");
    // Clearing a scope makes it inherit again.
    admin.ok(SET_POLICY, json!({"i": {"scope": "TENANT", "clear": true}})).await;
    assert_eq!(admin.ok("{ dataUsagePolicies { scope } }", json!({})).await["dataUsagePolicies"], json!([]));
}

/// Parallel clients of one user under a blocking threshold: exactly `limit` distinct contacts
/// are ever answered, every other answer is refused whole, and the count is exact.
async fn parallel_reads_never_pass_the_block(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let mut ids = vec![];
    for i in 0..12 {
        let d = admin
            .ok(
                crate::support::CREATE_CONTACT,
                json!({"i": {"kind": "PERSON", "firstName": format!("P{i:02}"), "lastName": "Parallel", "addressBookId": w.own}}),
            )
            .await;
        ids.push(d["createContact"]["contact"]["id"].as_str().expect("id").to_owned());
    }
    admin.ok(SET_POLICY, json!({"i": {"scope": "TENANT", "blockContacts": 5}})).await;
    let token = app.token(&w.tenant, "agent", &["agent"]);
    let bodies = ids.iter().map(|id| json!({"query": CONTACT, "variables": {"id": id}})).collect();
    let answers = app.post_parallel(&token, bodies).await;
    let mut answered = 0;
    let mut refused = 0;
    for body in answers {
        match body["errors"][0]["extensions"]["code"].as_str() {
            Some("DATA_USAGE_LIMIT") => {
                assert!(body.get("data").is_none_or(Value::is_null));
                refused += 1;
            }
            None if body["data"]["contact"]["id"].is_string() => answered += 1,
            other => panic!("unexpected answer {other:?}: {body:#}"),
        }
    }
    assert_eq!((answered, refused), (5, 7));
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    assert_eq!(distinct(&agent).await, 5, "exactly the answered contacts");
}

/// Admins setting the same scope in parallel: every call succeeds (last writer wins), one row
/// stays, and each call leaves exactly one audit entry whose `before` is what the previous
/// writer left (the writers take turns; none answers INTERNAL on a duplicate key).
async fn parallel_policy_writers_take_turns(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let token = app.token(&w.tenant, "admin", &["admin"]);
    let n = 12;
    let bodies = (0..n)
        .map(|i| {
            let input = if i % 4 == 3 {
                json!({"scope": "ROLE", "role": "agent", "clear": true})
            } else {
                json!({"scope": "ROLE", "role": "agent", "warnContacts": 100 + i})
            };
            json!({"query": SET_POLICY, "variables": {"i": input}})
        })
        .collect();
    for body in app.post_parallel(&token, bodies).await {
        assert!(body.get("errors").is_none(), "every writer succeeds: {body:#}");
    }
    let rows = admin.ok("{ dataUsagePolicies { scope role warnContacts } }", json!({})).await;
    let rows = rows["dataUsagePolicies"].as_array().expect("rows").clone();
    assert!(rows.len() <= 1, "at most one row for the scope: {rows:?}");
    let log = admin
        .ok(
            "{ auditLog(first: 100, filter: {action: \"dataUsagePolicy.set\"}) { totalCount edges { node { action details } } } }",
            json!({}),
        )
        .await;
    let log2 = admin
        .ok(
            "{ auditLog(first: 100, filter: {action: \"dataUsagePolicy.clear\"}) { totalCount edges { node { action details } } } }",
            json!({}),
        )
        .await;
    let sets = log["auditLog"]["totalCount"].as_i64().expect("count");
    let clears = log2["auditLog"]["totalCount"].as_i64().expect("count");
    assert_eq!((sets, clears), (9, 3), "one audit entry per call");
    // The writers took turns, so the entries form one chain: every `before` is the empty start
    // or another entry's `after`, each used once, and the one `after` nobody saw is the final
    // state. (Compared as multisets: the chain's order is not visible across the two queries.)
    let entries: Vec<Value> = log["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .chain(log2["auditLog"]["edges"].as_array().expect("edges"))
        .map(|e| e["node"]["details"].clone())
        .collect();
    assert_eq!(entries.len(), n);
    let final_state = match rows.first() {
        Some(r) => json!({"warnContacts": r["warnContacts"]}),
        None => Value::Null,
    };
    let key = |v: &Value| v.get("warnContacts").cloned().unwrap_or(Value::Null).to_string();
    let mut befores: Vec<String> = entries.iter().map(|d| key(&d["before"])).collect();
    let mut expected: Vec<String> =
        std::iter::once(Value::Null.to_string()).chain(entries.iter().map(|d| key(&d["after"]))).collect();
    let last = expected.iter().rposition(|k| *k == key(&final_state)).expect("the final state is some writer's");
    expected.remove(last);
    befores.sort();
    expected.sort();
    assert_eq!(befores, expected, "each writer saw the state the previous one left: {entries:#?}");
}

on_both_backends!(
    the_same_contact_counts_once_and_hidden_ones_never,
    thresholds_warn_once_block_new_contacts_and_lift,
    a_full_walk_of_all_groups_stops_at_the_export_budget,
    bad_policies_are_refused_and_change_nothing,
    parallel_reads_never_pass_the_block,
    parallel_policy_writers_take_turns,
);

/// Two replicas on one PostgreSQL database count one user exactly: the same contacts read on
/// both, in parallel, are one distinct set; every request is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_count_one_user_exactly() {
    let Some(a) = TestApp::spawn(crate::support::Backend::Postgres).await else {
        eprintln!("skipped: COHORT_TEST_DATABASE_URL is not set");
        return;
    };
    let b = a.replica().await.expect("replica");
    let w = World::build(&a).await;
    let token = a.token(&w.tenant, "agent", &["agent"]);
    let mut tasks = vec![];
    for i in 0..16 {
        let app_url = if i % 2 == 0 { a.url("/graphql") } else { b.url("/graphql") };
        let client = a.client.clone();
        let token = token.clone();
        let n = 1 + i % 4;
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(app_url)
                .bearer_auth(token)
                .json(&json!({"query": CONTACTS, "variables": {"n": n}}))
                .send()
                .await
                .expect("send");
            assert_eq!(r.status(), 200);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    // Reading one's figures flushes that replica's buffer; read through both.
    let on_b = Actor { app: &b, token: Some(token.clone()) };
    on_b.ok(MY_USAGE, json!({})).await;
    let on_a = app_actor(&a, &token);
    let me = usage(&on_a).await;
    assert_eq!(me["today"]["distinctContacts"], 4, "{me:#}");
    // The agent's first login (World::build), the 16 reads, and perhaps b's usage read (settled
    // after b's flush, so still in b's buffer unless b's timer wrote it since).
    let requests = me["today"]["requests"].as_i64().expect("requests");
    assert!((17..=18).contains(&requests), "{requests}");
    b.store.flush_usage().await.expect("flush b");
    a.store.flush_usage().await.expect("flush a");
    let me = usage(&on_a).await;
    assert_eq!(me["today"]["requests"], 19, "the login, 16 reads and two usage reads, each counted once: {me:#}");
    b.stop().await;
}

fn app_actor<'a>(app: &'a TestApp, token: &str) -> Actor<'a> {
    Actor { app, token: Some(token.to_owned()) }
}

/// With metering switched off (`COHORT_DATA_USAGE=off`, for benchmarks) nothing is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metering_can_be_switched_off_for_measurements() {
    let app = TestApp::spawn_with(crate::support::Backend::Sqlite, |s| s.data_usage = false).await.expect("app");
    let w = World::build(&app).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    agent.ok(CONTACTS, json!({"n": 4})).await;
    assert_eq!(distinct(&agent).await, 0);
}
