//! Correct under concurrency: parallel clients race on the hierarchy, on memberships (also set
//! by an integrator's list), on product upserts and on idempotency keys, then the invariants are
//! checked. On SQLite the single writer serialises
//! everything; on PostgreSQL these are the races that corrupted data before the row locks
//! (hierarchy per tenant, memberships per group) and the idempotency claim.
//!
//! Deterministic: every random choice comes from a seeded generator and the seed is printed in
//! every assertion message. Bounded: a fixed number of operations, no timing assertions.

use crate::on_both_backends;
use crate::support::{CREATE_BOOK, TestApp, World};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

const CREATE_GROUP: &str = "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }";
const MOVE: &str = "mutation($id: ID!, $p: ID) { moveGroup(input: {id: $id, parentId: $p}) { group { id } } }";
const ADD: &str =
    "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount alreadyMemberCount notFound } }";
const REMOVE: &str =
    "mutation($i: RemoveGroupMembersInput!) { removeGroupMembers(input: $i) { removedCount notMemberCount } }";
const DELETE: &str = "mutation($i: DeleteGroupInput!) { deleteGroup(input: $i) { deletedIds } }";

/// A tiny deterministic generator (SplitMix64): the same seed, the same run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A client that can be moved into a spawned task (owns everything it needs).
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    fn new(app: &TestApp, tenant: &str, subject: &str, roles: &[&str]) -> Client {
        Client { http: app.client.clone(), url: app.url("/graphql"), token: app.token(tenant, subject, roles) }
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let resp = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("request");
        assert!(resp.status().as_u16() < 500, "HTTP {}", resp.status());
        resp.json().await.expect("json")
    }

    /// The error code, or `OK`; never INTERNAL.
    async fn code(&self, query: &str, variables: Value) -> (String, Value) {
        let body = self.gql(query, variables).await;
        let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or("OK").to_owned();
        assert_ne!(code, "INTERNAL", "{body:#}");
        (code, body)
    }
}

async fn group(c: &Client, book: &str, name: &str, parent: Option<&str>) -> String {
    let (code, body) =
        c.code(CREATE_GROUP, json!({"i": {"addressBookId": book, "name": name, "parentId": parent}})).await;
    assert_eq!(code, "OK", "{body:#}");
    body["data"]["createGroup"]["group"]["id"].as_str().unwrap_or_default().to_owned()
}

/// Every group of the tenant (admin view) with its parent and its ancestors as the API reports them.
async fn forest(admin: &Client) -> BTreeMap<String, (Option<String>, Vec<String>)> {
    let mut out = BTreeMap::new();
    let mut after = Value::Null;
    loop {
        let body = admin
            .gql(
                "query($a: String) { groups(first: 100, after: $a) { edges { node { id parent { id } ancestors { id } } } pageInfo { hasNextPage endCursor } } }",
                json!({"a": after}),
            )
            .await;
        let g = &body["data"]["groups"];
        for e in g["edges"].as_array().cloned().unwrap_or_default() {
            let n = &e["node"];
            let id = n["id"].as_str().unwrap_or_default().to_owned();
            let parent = n["parent"]["id"].as_str().map(str::to_owned);
            let ancestors = n["ancestors"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a["id"].as_str().map(str::to_owned))
                .collect();
            out.insert(id, (parent, ancestors));
        }
        if g["pageInfo"]["hasNextPage"] != json!(true) {
            return out;
        }
        after = g["pageInfo"]["endCursor"].clone();
    }
}

/// No cycles, the closure table (ancestors) equal to the parent chain, every group reachable
/// from a root, and `rootsOnly` listing exactly the parentless groups.
async fn check_forest(admin: &Client, seed: u64) {
    let f = forest(admin).await;
    for (id, (_, ancestors)) in &f {
        let mut chain = vec![];
        let mut cur = f[id].0.clone();
        while let Some(p) = cur {
            assert!(!chain.contains(&p) && &p != id, "seed {seed}: cycle through {id}");
            assert!(f.contains_key(&p), "seed {seed}: {id} hangs from a missing group");
            chain.push(p.clone());
            cur = f[&p].0.clone();
        }
        assert_eq!(&chain, ancestors, "seed {seed}: closure table disagrees with the parent chain of {id}");
    }
    let body =
        admin.gql("{ groups(first: 100, filter: {rootsOnly: true}) { edges { node { id } } } }", json!({})).await;
    let roots: HashSet<String> = body["data"]["groups"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned))
        .collect();
    let expected: HashSet<String> = f.iter().filter(|(_, (p, _))| p.is_none()).map(|(id, _)| id.clone()).collect();
    assert_eq!(roots, expected, "seed {seed}: rootsOnly");
}

/// The whole history of a group, oldest first: (contact id, action).
async fn history(admin: &Client, g: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut after = Value::Null;
    loop {
        let body = admin
            .gql(
                "query($g: ID!, $a: String) { group(id: $g) { membershipHistory(first: 100, after: $a) { edges { node { action contact { id } } } pageInfo { hasNextPage endCursor } } } }",
                json!({"g": g, "a": after}),
            )
            .await;
        let h = &body["data"]["group"]["membershipHistory"];
        for e in h["edges"].as_array().cloned().unwrap_or_default() {
            out.push((
                e["node"]["contact"]["id"].as_str().unwrap_or_default().to_owned(),
                e["node"]["action"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        if h["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = h["pageInfo"]["endCursor"].clone();
    }
    out.reverse(); // the API pages newest first
    out
}

async fn members(admin: &Client, g: &str) -> (HashSet<String>, i64, i64) {
    let mut ids = HashSet::new();
    let mut after = Value::Null;
    loop {
        let body = admin
            .gql(
                "query($g: ID!, $a: String) { group(id: $g) { memberCount members(first: 100, after: $a) { totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } } }",
                json!({"g": g, "a": after}),
            )
            .await;
        let gr = &body["data"]["group"];
        let counts = (gr["memberCount"].as_i64().unwrap_or(-1), gr["members"]["totalCount"].as_i64().unwrap_or(-1));
        for e in gr["members"]["edges"].as_array().cloned().unwrap_or_default() {
            ids.insert(e["node"]["id"].as_str().unwrap_or_default().to_owned());
        }
        if gr["members"]["pageInfo"]["hasNextPage"] != json!(true) {
            return (ids, counts.0, counts.1);
        }
        after = gr["members"]["pageInfo"]["endCursor"].clone();
    }
}

/// History replayed from the start equals the final memberships; JOIN and LEAVE alternate per
/// contact (no JOIN, JOIN); the counts equal the rows.
async fn check_memberships(admin: &Client, g: &str, seed: u64) -> usize {
    let h = history(admin, g).await;
    let mut state: HashMap<String, bool> = HashMap::new();
    for (c, action) in &h {
        let was = state.get(c).copied().unwrap_or(false);
        match action.as_str() {
            "JOIN" => assert!(!was, "seed {seed}: {c} joined twice in a row: {h:?}"),
            "LEAVE" => assert!(was, "seed {seed}: {c} left without being a member: {h:?}"),
            other => panic!("seed {seed}: unknown action {other}"),
        }
        state.insert(c.clone(), action == "JOIN");
    }
    let replayed: HashSet<String> = state.into_iter().filter(|(_, m)| *m).map(|(c, _)| c).collect();
    let (now, count, total) = members(admin, g).await;
    assert_eq!(replayed, now, "seed {seed}: history replay differs from the memberships of {g}");
    assert_eq!(count as usize, now.len(), "seed {seed}: memberCount");
    assert_eq!(total as usize, now.len(), "seed {seed}: totalCount");
    h.iter().filter(|(_, a)| a == "JOIN").count()
}

async fn contacts(admin: &Client, book: &str, n: usize) -> Vec<String> {
    let mut out = vec![];
    for i in 0..n {
        let body = admin
            .gql(
                "mutation($i: CreateContactInput!) { createContact(input: $i) { contact { id } } }",
                json!({"i": {"addressBookId": book, "kind": "PERSON", "firstName": format!("P{i}"), "lastName": "Race"}}),
            )
            .await;
        out.push(body["data"]["createContact"]["contact"]["id"].as_str().unwrap_or_default().to_owned());
    }
    out
}

async fn crossed_moves_never_make_a_cycle(app: TestApp) {
    let seed = 0xC0FFEE;
    let admin = Client::new(&app, "race", "admin", &["admin"]);
    let b = admin.gql(CREATE_BOOK, json!({"n": "Race"})).await;
    let book = b["data"]["createAddressBook"]["addressBook"]["id"].as_str().unwrap_or_default().to_owned();
    for round in 0..12 {
        // Two roots moved under each other at once, and a three-group rotation.
        let x = group(&admin, &book, &format!("X{round}"), None).await;
        let y = group(&admin, &book, &format!("Y{round}"), None).await;
        let z = group(&admin, &book, &format!("Z{round}"), None).await;
        let mut set = tokio::task::JoinSet::new();
        for (a, p) in [(x.clone(), y.clone()), (y.clone(), x.clone())] {
            let c = admin.clone();
            set.spawn(async move { c.code(MOVE, json!({"id": a, "p": p})).await.0 });
        }
        let mut ok = 0;
        while let Some(r) = set.join_next().await {
            let code = r.expect("task");
            assert!(code == "OK" || code == "BAD_USER_INPUT", "seed {seed} round {round}: {code}");
            ok += usize::from(code == "OK");
        }
        assert_eq!(ok, 1, "seed {seed} round {round}: exactly one of two crossed moves succeeds");
        // Rotation: x→y, y→z, z→x (x and y already nest one way; the rotation must still not cycle).
        let mut set = tokio::task::JoinSet::new();
        for (a, p) in [(x.clone(), y.clone()), (y.clone(), z.clone()), (z.clone(), x.clone())] {
            let c = admin.clone();
            set.spawn(async move { c.code(MOVE, json!({"id": a, "p": p})).await.0 });
        }
        while let Some(r) = set.join_next().await {
            let code = r.expect("task");
            assert!(code == "OK" || code == "BAD_USER_INPUT", "seed {seed} round {round}: {code}");
        }
        check_forest(&admin, seed).await;
        // Back to the root: the closure rows follow.
        for g in [&x, &y, &z] {
            admin.code(MOVE, json!({"id": g, "p": null})).await;
        }
        check_forest(&admin, seed).await;
    }
}

async fn parallel_adds_report_and_record_each_member_once(app: TestApp) {
    let seed = 0xADD5;
    let admin = Client::new(&app, "race", "admin", &["admin"]);
    let b = admin.gql(CREATE_BOOK, json!({"n": "Race"})).await;
    let book = b["data"]["createAddressBook"]["addressBook"]["id"].as_str().unwrap_or_default().to_owned();
    let people = contacts(&admin, &book, 30).await;
    let g = group(&admin, &book, "Target", None).await;
    // 8 callers add the same 30 at once, without an idempotency key.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (c, g, ids) = (admin.clone(), g.clone(), people.clone());
        set.spawn(async move { c.code(ADD, json!({"i": {"groupId": g, "contactIds": ids}})).await });
    }
    let mut added = 0;
    while let Some(r) = set.join_next().await {
        let (code, body) = r.expect("task");
        assert_eq!(code, "OK", "seed {seed}: {body:#}");
        let d = &body["data"]["addGroupMembers"];
        assert_eq!(d["addedCount"].as_i64().unwrap_or(0) + d["alreadyMemberCount"].as_i64().unwrap_or(0), 30);
        added += d["addedCount"].as_i64().unwrap_or(0);
    }
    assert_eq!(added, 30, "seed {seed}: the answers add up to the real additions");
    assert_eq!(check_memberships(&admin, &g, seed).await, 30, "seed {seed}: one JOIN per member");

    // One member added and removed by racing callers: JOIN and LEAVE strictly alternate.
    let one = vec![people[0].clone()];
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (c, g, ids) = (admin.clone(), g.clone(), one.clone());
        set.spawn(async move {
            let q = if i % 2 == 0 { REMOVE } else { ADD };
            c.code(q, json!({"i": {"groupId": g, "contactIds": ids}})).await.0
        });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.expect("task"), "OK");
    }
    check_memberships(&admin, &g, seed).await;
}

async fn one_idempotency_key_one_answer(app: TestApp) {
    let seed = 0x1D3;
    let admin = Client::new(&app, "race", "admin", &["admin"]);
    let b = admin.gql(CREATE_BOOK, json!({"n": "Race"})).await;
    let book = b["data"]["createAddressBook"]["addressBook"]["id"].as_str().unwrap_or_default().to_owned();
    let people = contacts(&admin, &book, 12).await;
    let g = group(&admin, &book, "Keyed", None).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (c, g, ids) = (admin.clone(), g.clone(), people.clone());
        set.spawn(async move {
            c.code(ADD, json!({"i": {"groupId": g, "contactIds": ids, "idempotencyKey": "batch-7"}})).await
        });
    }
    let mut answers = vec![];
    while let Some(r) = set.join_next().await {
        let (code, body) = r.expect("task");
        assert_eq!(code, "OK", "seed {seed}: every caller gets the stored answer: {body:#}");
        answers.push(body["data"]["addGroupMembers"].clone());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "seed {seed}: one answer for one key: {answers:?}");
    assert_eq!(answers[0]["addedCount"], 12);
    assert_eq!(check_memberships(&admin, &g, seed).await, 12);
}

/// Many clients doing random hierarchy moves, adds, removes, deletes and idempotent retries at
/// once; afterwards every invariant holds. The operation count is fixed (printed with the seed).
async fn random_mix_keeps_every_invariant(app: TestApp) {
    let seed: u64 = std::env::var("COHORT_RACE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261201);
    const CLIENTS: usize = 6;
    const OPS_PER_CLIENT: usize = 25;
    let admin = Client::new(&app, "race", "admin", &["admin"]);
    let b = admin.gql(CREATE_BOOK, json!({"n": "Race"})).await;
    let book = b["data"]["createAddressBook"]["addressBook"]["id"].as_str().unwrap_or_default().to_owned();
    let people = contacts(&admin, &book, 20).await;
    let mut groups = vec![];
    for i in 0..8 {
        groups.push(group(&admin, &book, &format!("G{i}"), None).await);
    }
    let mut set = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (c, groups, people) = (admin.clone(), groups.clone(), people.clone());
        set.spawn(async move {
            let mut rng = Rng(seed ^ (client as u64).wrapping_mul(0x5851_F42D_4C95_7F2D));
            let mut added = 0i64;
            for op in 0..OPS_PER_CLIENT {
                let g = groups[rng.below(groups.len())].clone();
                let picked: Vec<String> =
                    (0..1 + rng.below(5)).map(|_| people[rng.below(people.len())].clone()).collect();
                let (code, body) = match rng.below(10) {
                    0..=2 => {
                        let p = if rng.below(4) == 0 { None } else { Some(groups[rng.below(groups.len())].clone()) };
                        c.code(MOVE, json!({"id": g, "p": p})).await
                    }
                    3..=5 => c.code(ADD, json!({"i": {"groupId": g, "contactIds": picked}})).await,
                    6..=7 => c.code(REMOVE, json!({"i": {"groupId": g, "contactIds": picked}})).await,
                    8 => {
                        // An idempotent add retried: the retry is a replay, never a second addition.
                        let key = format!("c{client}-op{op}");
                        let first = c
                            .code(ADD, json!({"i": {"groupId": g, "contactIds": picked, "idempotencyKey": key}}))
                            .await;
                        let again = c
                            .code(ADD, json!({"i": {"groupId": g, "contactIds": picked, "idempotencyKey": key}}))
                            .await;
                        // The retry replays the first answer; only if another client deleted
                        // the group in between is it NOT_FOUND (the payload names the group).
                        match again.0.as_str() {
                            "OK" => assert_eq!(first.1["data"], again.1["data"], "seed {seed}: replay differs"),
                            "NOT_FOUND" => {}
                            other => panic!("seed {seed}: retry answered {other}"),
                        }
                        first
                    }
                    _ => {
                        // Delete a leaf-or-not group with its subtree reparented to the root, then
                        // recreate one so the pool stays the same size (the id changes: skip it).
                        c.code(DELETE, json!({"i": {"id": g, "reparentChildrenToId": null}})).await
                    }
                };
                assert!(
                    ["OK", "BAD_USER_INPUT", "NOT_FOUND"].contains(&code.as_str()),
                    "seed {seed} client {client} op {op}: {body:#}"
                );
                added += body["data"]["addGroupMembers"]["addedCount"].as_i64().unwrap_or(0);
            }
            added
        });
    }
    let mut added = 0;
    while let Some(r) = set.join_next().await {
        added += r.expect("task");
    }
    check_forest(&admin, seed).await;
    let mut joins = 0;
    let alive = forest(&admin).await;
    for g in &groups {
        if alive.contains_key(g) {
            joins += check_memberships(&admin, g, seed).await as i64;
        }
    }
    // Deleted groups took their history along (their JOINs can no longer be read), so the sum of
    // answers bounds the JOINs of the surviving groups from above; with no deletion they match.
    assert!(joins <= added, "seed {seed}: {joins} JOINs recorded but only {added} additions reported");
    if alive.len() == groups.len() {
        assert_eq!(joins, added, "seed {seed}: every reported addition is exactly one JOIN");
    }
    eprintln!("random mix: seed {seed}, {} operations, {added} additions", CLIENTS * OPS_PER_CLIENT);
}

/// A group the viewer cannot see is indistinguishable from one that does not exist — also as a
/// parent filter and as the hidden subgroup of a group they delete.
async fn hidden_groups_are_indistinguishable_from_missing_ones(app: TestApp) {
    let w = World::build(&app).await;
    let admin = Client::new(&app, &w.tenant, "admin", &["admin"]);
    let agent = Client::new(&app, &w.tenant, "agent", &["agent"]);
    // A book the agent manages.
    let b = admin.gql(CREATE_BOOK, json!({"n": "Mine"})).await;
    let mine = b["data"]["createAddressBook"]["addressBook"]["id"].as_str().unwrap_or_default().to_owned();
    let me = agent.gql("{ viewer { user { id } } }", json!({})).await;
    let agent_id = me["data"]["viewer"]["user"]["id"].clone();
    admin
        .code(
            "mutation($b: ID!, $u: ID) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: MANAGE}) { grant { level } } }",
            json!({"b": mine, "u": agent_id}),
        )
        .await;
    // A hidden parent with a visible child: filtering by the hidden parent is like an unknown id.
    let hidden_parent = group(&admin, &w.hidden, "Hidden parent", None).await;
    let _child = group(&admin, &mine, "Visible child", Some(&hidden_parent)).await;
    let unknown = group(&admin, &mine, "Soon gone", None).await;
    admin.code(DELETE, json!({"i": {"id": unknown}})).await;
    let by_parent = |p: String| {
        let agent = agent.clone();
        async move {
            agent
                .gql("query($p: ID) { groups(filter: {parentId: $p}) { edges { node { name } } } }", json!({"p": p}))
                .await
        }
    };
    assert_eq!(by_parent(hidden_parent.clone()).await, by_parent(unknown.clone()).await);
    assert_eq!(by_parent(hidden_parent.clone()).await["data"]["groups"]["edges"], json!([]));

    // Deleting a group whose only subgroup is hidden answers as for a group without subgroups;
    // the hidden subgroup survives, moved up to the deleted group's parent.
    let top = group(&admin, &mine, "Top", None).await;
    let g = group(&admin, &mine, "Has hidden child", Some(&top)).await;
    let hidden_child = group(&admin, &w.hidden, "Hidden child", Some(&g)).await;
    let plain = group(&admin, &mine, "No children", Some(&top)).await;
    let (code, with_hidden) = agent.code(DELETE, json!({"i": {"id": g}})).await;
    assert_eq!(code, "OK", "{with_hidden:#}");
    let (_, without) = agent.code(DELETE, json!({"i": {"id": plain}})).await;
    assert_eq!(with_hidden["data"]["deleteGroup"]["deletedIds"], json!([g]));
    assert_eq!(without["data"]["deleteGroup"]["deletedIds"], json!([plain]));
    let d = admin.gql("query($g: ID!) { group(id: $g) { parent { id } } }", json!({"g": hidden_child})).await;
    assert_eq!(d["data"]["group"]["parent"]["id"], json!(top), "the hidden subgroup moved up, not deleted");

    // With deleteSubgroups the visible subtree goes; hidden parts are neither deleted nor named.
    let g2 = group(&admin, &mine, "Subtree", None).await;
    let v = group(&admin, &mine, "Visible sub", Some(&g2)).await;
    let h2 = group(&admin, &w.hidden, "Hidden sub", Some(&v)).await;
    let (code, body) = agent.code(DELETE, json!({"i": {"id": g2, "deleteSubgroups": true}})).await;
    assert_eq!(code, "OK", "{body:#}");
    let mut deleted: Vec<String> = body["data"]["deleteGroup"]["deletedIds"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    deleted.sort();
    let mut expected = vec![g2.clone(), v.clone()];
    expected.sort();
    assert_eq!(deleted, expected);
    let d = admin.gql("query($g: ID!) { group(id: $g) { id parent { id } } }", json!({"g": h2})).await;
    assert_eq!(d["data"]["group"]["id"], json!(h2));
    assert_eq!(d["data"]["group"]["parent"], Value::Null, "moved to the deleted root's parent: none");
    check_forest(&admin, 0).await;
}

/// Integrators' sync racing: 8 callers set one group's membership to 8 different lists (by
/// external id) while 4 others add and remove members directly. Afterwards the history replays
/// to the memberships, JOIN and LEAVE alternate, the counts equal the rows — and once the last
/// list is applied alone, the membership is exactly that list.
async fn racing_membership_syncs_keep_every_invariant(app: TestApp) {
    let seed = 0x5E7;
    let mut rng = Rng(seed);
    let admin = Client::new(&app, "race", "admin", &["admin"]);
    let b = admin.gql(CREATE_BOOK, json!({"n": "Race"})).await;
    let book = b["data"]["createAddressBook"]["addressBook"]["id"].as_str().unwrap_or_default().to_owned();
    let items: Vec<Value> = (0..30)
        .map(|i| json!({"externalId": format!("E{i}"), "kind": "PERSON", "lastName": format!("Sync{i}")}))
        .collect();
    let up =
        admin.gql(crate::sync::UPSERT, json!({"i": {"addressBookId": book, "system": "erp", "contacts": items}})).await;
    let ids: Vec<String> = up["data"]["upsertContacts"]["results"]
        .as_array()
        .map(|r| r.iter().map(|x| x["contact"]["id"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 30, "seed {seed}: {up:#}");
    let g = group(&admin, &book, "Synced", None).await;
    let set_members = "mutation($i: SetGroupMembersByExternalIdInput!) { setGroupMembersByExternalId(input: $i) { added removed unchanged notFound } }";
    let mut lists = vec![];
    for _ in 0..8 {
        let list: Vec<String> = (0..30).filter(|_| rng.below(2) == 0).map(|i| format!("E{i}")).collect();
        lists.push(list);
    }
    let mut set = tokio::task::JoinSet::new();
    for list in &lists {
        let (c, g, list) = (admin.clone(), g.clone(), list.clone());
        set.spawn(async move {
            c.code(set_members, json!({"i": {"groupId": g, "system": "erp", "externalIds": list}})).await
        });
    }
    for k in 0..4 {
        let (c, g) = (admin.clone(), g.clone());
        let some: Vec<String> = (0..5).map(|_| ids[rng.below(30)].clone()).collect();
        set.spawn(async move {
            let q = if k % 2 == 0 { ADD } else { REMOVE };
            c.code(q, json!({"i": {"groupId": g, "contactIds": some}})).await
        });
    }
    while let Some(r) = set.join_next().await {
        let (code, body) = r.expect("task");
        assert_eq!(code, "OK", "seed {seed}: {body:#}");
    }
    check_memberships(&admin, &g, seed).await;
    let (code, body) =
        admin.code(set_members, json!({"i": {"groupId": g, "system": "erp", "externalIds": lists[0]}})).await;
    assert_eq!(code, "OK", "seed {seed}: {body:#}");
    check_memberships(&admin, &g, seed).await;
    let (now, _, _) = members(&admin, &g).await;
    let want: HashSet<String> =
        lists[0].iter().map(|e| ids[e[1..].parse::<usize>().unwrap_or_default()].clone()).collect();
    assert_eq!(now, want, "seed {seed}: the membership is exactly the last list");
}

/// 8 callers upsert the same 20 products at once (same external ids, same SKUs): every call
/// succeeds, each product is created exactly once, and the catalogue holds 20.
async fn racing_product_upserts_make_no_twins(app: TestApp) {
    let admin = Client::new(&app, "race", "admin", &["admin"]);
    let q = "mutation($i: UpsertProductsInput!) { upsertProducts(input: $i) { created updated unchanged failed } }";
    let mut set = tokio::task::JoinSet::new();
    for k in 0..8 {
        let c = admin.clone();
        let items: Vec<Value> = (0..20)
            .map(|i| {
                json!({"externalId": format!("P{i}"), "sku": format!("S-{i}"), "name": format!("Product {i}"),
                "listPrice": format!("{}", 10 + k), "currency": "EUR"})
            })
            .collect();
        set.spawn(async move { c.code(q, json!({"i": {"system": "erp", "products": items}})).await });
    }
    let mut created = 0;
    while let Some(r) = set.join_next().await {
        let (code, body) = r.expect("task");
        assert_eq!(code, "OK", "{body:#}");
        let d = &body["data"]["upsertProducts"];
        assert_eq!(d["failed"], json!(0), "{body:#}");
        created += d["created"].as_i64().unwrap_or(0);
    }
    assert_eq!(created, 20);
    let d = admin.gql("{ products(first: 100) { totalCount } }", json!({})).await;
    assert_eq!(d["data"]["products"]["totalCount"], json!(20), "{d:#}");
}

on_both_backends!(
    racing_membership_syncs_keep_every_invariant,
    racing_product_upserts_make_no_twins,
    crossed_moves_never_make_a_cycle,
    parallel_adds_report_and_record_each_member_once,
    one_idempotency_key_one_answer,
    random_mix_keeps_every_invariant,
    hidden_groups_are_indistinguishable_from_missing_ones,
);
