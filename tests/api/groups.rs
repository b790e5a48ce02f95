//! Contact groups: hierarchy, memberships with provenance, history, bulk changes, selection, and
//! the leak-proof reads (a group never reveals a member the viewer could not see anyway).

use crate::on_both_backends;
use crate::support::{Actor, CREATE_CONTACT, TestApp, World, statements};
use serde_json::{Value, json};

pub const CREATE_GROUP: &str = "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id name } } }";
pub const ADD: &str = "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount alreadyMemberCount notFound group { memberCount } } }";
pub const REMOVE: &str =
    "mutation($i: RemoveGroupMembersInput!) { removeGroupMembers(input: $i) { removedCount notMemberCount notFound } }";
const MEMBERS: &str = "query($g: ID!, $sub: Boolean, $a: String, $o: MemberOrderBy) { group(id: $g) { memberCount(includeSubgroups: $sub)
    members(first: 3, after: $a, includeSubgroups: $sub, orderBy: $o) { totalCount edges { cursor joinedAt source assignedBy { subject } group { name } node { displayName } } pageInfo { hasNextPage endCursor } } } }";

pub async fn group(admin: &Actor<'_>, book: &str, name: &str, parent: Option<&str>) -> String {
    let d = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": book, "name": name, "parentId": parent}})).await;
    d["createGroup"]["group"]["id"].as_str().unwrap().to_owned()
}

async fn contact(admin: &Actor<'_>, book: &str, first: &str, last: &str) -> String {
    let d = admin
        .ok(
            CREATE_CONTACT,
            json!({"i": {"addressBookId": book, "kind": "PERSON", "firstName": first, "lastName": last}}),
        )
        .await;
    d["createContact"]["contact"]["id"].as_str().unwrap().to_owned()
}

/// Every member name over all pages.
async fn all_members(actor: &Actor<'_>, g: &str, sub: bool) -> Vec<String> {
    let mut out = vec![];
    let mut after = Value::Null;
    loop {
        let d = actor.ok(MEMBERS, json!({"g": g, "sub": sub, "a": after})).await;
        let m = &d["group"]["members"];
        for e in m["edges"].as_array().unwrap() {
            out.push(e["node"]["displayName"].as_str().unwrap().to_owned());
        }
        if m["pageInfo"]["hasNextPage"] != json!(true) {
            return out;
        }
        after = m["pageInfo"]["endCursor"].clone();
    }
}

async fn members_show_only_visible_contacts(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    // A group homed in the agent's own book, holding contacts of all three books.
    let g = group(&admin, &w.own, "Greece", None).await;
    let ids: Vec<&str> = ["anna", "bruno", "clara", "anna_hidden", "secret"].iter().map(|k| w.id(k)).collect();
    let d = admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": ids}})).await;
    assert_eq!(d["addGroupMembers"]["addedCount"], 5);

    assert_eq!(all_members(&agent, &g, false).await, ["Anna Abbott", "Bruno Baker", "Clara Carter"]);
    let d = agent.ok(MEMBERS, json!({"g": g})).await;
    assert_eq!(d["group"]["memberCount"], 3);
    assert_eq!(d["group"]["members"]["totalCount"], 3);
    let e = &d["group"]["members"]["edges"][0];
    assert_eq!(e["source"], "ASSIGNED");
    assert_eq!(e["assignedBy"]["subject"], "admin");
    assert_eq!(e["group"]["name"], "Greece");
    assert!(e["joinedAt"].is_string());
    assert_eq!(all_members(&admin, &g, false).await.len(), 5);

    // The contact side: memberships list only visible groups.
    let hidden_group = group(&admin, &w.hidden, "Secret segment", None).await;
    admin.ok(ADD, json!({"i": {"groupId": hidden_group, "contactIds": [w.id("anna")]}})).await;
    let d = agent
        .ok(
            "query($id: ID!) { contact(id: $id) { memberships { group { name } source } } }",
            json!({"id": w.id("anna")}),
        )
        .await;
    assert_eq!(d["contact"]["memberships"], json!([{"group": {"name": "Greece"}, "source": "ASSIGNED"}]));
    // A group the viewer cannot see is NOT_FOUND, exactly like one that never existed.
    let deleted = group(&admin, &w.own, "Short-lived", None).await;
    admin.ok("mutation($id: ID!) { deleteGroup(input: {id: $id}) { deletedId } }", json!({"id": deleted})).await;
    for q in [
        "query($g: ID!) { group(id: $g) { name } }",
        "query($g: ID!) { node(id: $g) { id } }",
        "mutation($g: ID!) { addGroupMembers(input: {groupId: $g, contactIds: []}) { addedCount } }",
        "query($g: ID!) { contacts(filter: {groups: {any: [$g]}}) { totalCount } }",
    ] {
        let a = agent.gql(q, json!({"g": hidden_group})).await;
        let b = agent.gql(q, json!({"g": deleted})).await;
        assert_eq!(a, b, "hidden and deleted groups must answer identically: {q}");
    }
    assert_eq!(agent.err("query($g: ID!) { group(id: $g) { name } }", json!({"g": hidden_group})).await, "NOT_FOUND");
}

async fn bulk_answers_treat_hidden_like_unknown(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let g = group(&admin, &w.own, "Newsletter", None).await;
    // The hidden contact is already a member (added by the admin): for the agent it must still be
    // "not found", not "already a member".
    admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [w.id("anna_hidden"), w.id("bruno")]}})).await;
    let unknown = "Q29udGFjdDowMTlhMDAwMDAwMDA3MDAwODAwMDAwMDAwMDAwMDAwMA"; // well-formed, never existed
    let input = json!({"groupId": g, "contactIds": [w.id("anna"), w.id("bruno"), w.id("anna_hidden"), w.id("secret"), unknown, w.own, "garbage", w.id("anna")]});
    let d = agent.ok(ADD, json!({"i": input})).await;
    assert_eq!(
        d["addGroupMembers"],
        json!({"addedCount": 1, "alreadyMemberCount": 1, "notFound": [w.id("anna_hidden"), w.id("secret"), unknown, w.own, "garbage"], "group": {"memberCount": 2}})
    );
    // Removing: the hidden member stays, and is reported like an unknown id.
    let d = agent
        .ok(
            REMOVE,
            json!({"i": {"groupId": g, "contactIds": [w.id("anna"), w.id("anna_hidden"), w.id("clara"), unknown]}}),
        )
        .await;
    assert_eq!(
        d["removeGroupMembers"],
        json!({"removedCount": 1, "notMemberCount": 1, "notFound": [w.id("anna_hidden"), unknown]})
    );
    assert_eq!(all_members(&admin, &g, false).await, ["Bruno Baker", "Anna Hidden"]);
    // READ on the group's home book is not enough to change members.
    let team_group = group(&admin, &w.team, "Team group", None).await;
    assert_eq!(agent.err(ADD, json!({"i": {"groupId": team_group, "contactIds": [w.id("anna")]}})).await, "FORBIDDEN");
    // Self-service sources need consent evidence: not settable through the API.
    let code =
        agent.err(ADD, json!({"i": {"groupId": g, "contactIds": [w.id("anna")], "source": "SELF_SERVICE"}})).await;
    assert_eq!(code, "BAD_USER_INPUT");
}

async fn integration_tokens_default_to_api_source_and_history_is_kept(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let g = group(&admin, &w.own, "Webshop buyers", None).await;
    let script = app.actor(&w.tenant, "erp-sync", &["integration"]);
    // The script has no grants yet: the group does not exist for it.
    assert_eq!(script.err(ADD, json!({"i": {"groupId": g, "contactIds": []}})).await, "NOT_FOUND");
    let me = script.ok("{ viewer { user { id } } }", json!({})).await;
    admin
        .ok(
            "mutation($b: ID!, $u: ID!) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: WRITE}) { grant { level } } }",
            json!({"b": w.own, "u": me["viewer"]["user"]["id"]}),
        )
        .await;
    script.ok(ADD, json!({"i": {"groupId": g, "contactIds": [w.id("anna"), w.id("bruno")]}})).await;
    script
        .ok(REMOVE, json!({"i": {"groupId": g, "contactIds": [w.id("bruno")], "reason": "unsubscribed by phone"}}))
        .await;
    admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [w.id("anna_hidden")], "source": "IMPORT"}})).await;
    let d = script.ok(MEMBERS, json!({"g": g})).await;
    assert_eq!(d["group"]["members"]["edges"][0]["source"], "API");
    let q = "query($g: ID!) { group(id: $g) { membershipHistory(first: 10) { edges { node { action source reason actor { subject } contact { displayName } group { name } } } } } }";
    let d = script.ok(q, json!({"g": g})).await;
    let events: Vec<Value> =
        d["group"]["membershipHistory"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
    assert_eq!(
        events,
        vec![
            json!({"action": "LEAVE", "source": "API", "reason": "unsubscribed by phone", "actor": {"subject": "erp-sync"}, "contact": {"displayName": "Bruno Baker"}, "group": {"name": "Webshop buyers"}}),
            json!({"action": "JOIN", "source": "API", "reason": null, "actor": {"subject": "erp-sync"}, "contact": {"displayName": "Bruno Baker"}, "group": {"name": "Webshop buyers"}}),
            json!({"action": "JOIN", "source": "API", "reason": null, "actor": {"subject": "erp-sync"}, "contact": {"displayName": "Anna Abbott"}, "group": {"name": "Webshop buyers"}}),
        ],
        "the hidden contact's JOIN is not in the script's history"
    );
    let d = admin.ok(q, json!({"g": g})).await;
    assert_eq!(d["group"]["membershipHistory"]["edges"].as_array().unwrap().len(), 4);
    let d = script
        .ok(
            "query($id: ID!) { contact(id: $id) { membershipHistory { edges { node { action } } } } }",
            json!({"id": w.id("bruno")}),
        )
        .await;
    assert_eq!(d["contact"]["membershipHistory"]["edges"].as_array().unwrap().len(), 2);
}

async fn hierarchy_refuses_cycles_and_keeps_memberships(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    // Five levels: europe > south > greece > athens > center.
    let europe = group(&admin, &w.own, "Europe", None).await;
    let south = group(&admin, &w.own, "South", Some(&europe)).await;
    let greece = group(&admin, &w.own, "Greece", Some(&south)).await;
    let athens = group(&admin, &w.own, "Athens", Some(&greece)).await;
    let center = group(&admin, &w.own, "Center", Some(&athens)).await;
    let italy = group(&admin, &w.own, "Italy", Some(&south)).await;
    admin.ok(ADD, json!({"i": {"groupId": center, "contactIds": [w.id("anna"), w.id("clara")]}})).await;
    admin.ok(ADD, json!({"i": {"groupId": greece, "contactIds": [w.id("anna")]}})).await;
    admin.ok(ADD, json!({"i": {"groupId": italy, "contactIds": [w.id("bruno"), w.id("anna_hidden")]}})).await;

    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    // Anna is in two subgroups but counted and listed once.
    assert_eq!(all_members(&agent, &europe, true).await, ["Anna Abbott", "Bruno Baker", "Clara Carter"]);
    assert_eq!(all_members(&agent, &europe, false).await, Vec::<String>::new());
    let d = agent.ok(MEMBERS, json!({"g": europe, "sub": true})).await;
    assert_eq!(d["group"]["memberCount"], 3);
    // The edge names the membership that counts: Anna joined Center first, Greece later.
    let edges = d["group"]["members"]["edges"].as_array().unwrap();
    assert_eq!(edges[0]["group"]["name"], "Center");
    let d = admin.ok(MEMBERS, json!({"g": europe, "sub": true})).await;
    assert_eq!(d["group"]["memberCount"], 4);

    let q = "query($g: ID!) { group(id: $g) { parent { name } ancestors { name } children { name } descendants(first: 10) { edges { node { name } } } } }";
    let d = agent.ok(q, json!({"g": greece})).await;
    assert_eq!(d["group"]["parent"]["name"], "South");
    assert_eq!(d["group"]["ancestors"], json!([{"name": "South"}, {"name": "Europe"}]));
    assert_eq!(d["group"]["children"], json!([{"name": "Athens"}]));
    assert_eq!(d["group"]["descendants"]["edges"], json!([{"node": {"name": "Athens"}}, {"node": {"name": "Center"}}]));

    // Cycles are refused: under itself, under its descendant.
    let mv =
        "mutation($id: ID!, $p: ID) { moveGroup(input: {id: $id, parentId: $p}) { group { name parent { name } } } }";
    assert_eq!(admin.err(mv, json!({"id": greece, "p": greece})).await, "BAD_USER_INPUT");
    assert_eq!(admin.err(mv, json!({"id": south, "p": center})).await, "BAD_USER_INPUT");
    // A parent in another tenant does not exist.
    let other = app.actor("globex", "admin", &["admin"]);
    let ob = other.ok("mutation { createAddressBook(input: {name: \"B\"}) { addressBook { id } } }", json!({})).await;
    let foreign = group(&other, ob["createAddressBook"]["addressBook"]["id"].as_str().unwrap(), "Foreign", None).await;
    assert_eq!(admin.err(mv, json!({"id": greece, "p": foreign})).await, "NOT_FOUND");

    // Reparent Greece under Italy: the subtree and its memberships move along.
    let d = admin.ok(mv, json!({"id": greece, "p": italy})).await;
    assert_eq!(d["moveGroup"]["group"]["parent"]["name"], "Italy");
    assert_eq!(all_members(&agent, &italy, true).await, ["Anna Abbott", "Bruno Baker", "Clara Carter"]);
    assert_eq!(all_members(&agent, &center, false).await, ["Anna Abbott", "Clara Carter"]);
    let d = agent.ok("query($g: ID!) { group(id: $g) { ancestors { name } } }", json!({"g": center})).await;
    assert_eq!(
        d["group"]["ancestors"],
        json!([{"name": "Athens"}, {"name": "Greece"}, {"name": "Italy"}, {"name": "South"}, {"name": "Europe"}])
    );
    // To the root level and back.
    let d = admin.ok(mv, json!({"id": greece, "p": null})).await;
    assert_eq!(d["moveGroup"]["group"]["parent"], Value::Null);
    assert_eq!(all_members(&agent, &europe, true).await, ["Bruno Baker"]);
    let d = agent.ok("{ groups(filter: {rootsOnly: true}) { edges { node { name } } } }", json!({})).await;
    assert_eq!(d["groups"]["edges"], json!([{"node": {"name": "Europe"}}, {"node": {"name": "Greece"}}]));

    // Deleting a group with subgroups needs a decision.
    let del = "mutation($i: DeleteGroupInput!) { deleteGroup(input: $i) { deletedIds } }";
    assert_eq!(admin.err(del, json!({"i": {"id": greece}})).await, "CONFLICT");
    let d = admin.ok(del, json!({"i": {"id": greece, "reparentChildrenToId": south}})).await;
    assert_eq!(d["deleteGroup"]["deletedIds"], json!([greece]));
    let d = agent.ok("query($g: ID!) { group(id: $g) { parent { name } } }", json!({"g": athens})).await;
    assert_eq!(d["group"]["parent"]["name"], "South");
    let d = admin.ok(del, json!({"i": {"id": south, "deleteSubgroups": true}})).await;
    assert_eq!(d["deleteGroup"]["deletedIds"].as_array().unwrap().len(), 4, "south, athens, center, italy");
    assert_eq!(agent.err("query($g: ID!) { group(id: $g) { name } }", json!({"g": center})).await, "NOT_FOUND");
    // Deleting ended the memberships, with history entries (visible on the contact).
    let d = agent
        .ok("query($id: ID!) { contact(id: $id) { memberships { group { name } } } }", json!({"id": w.id("anna")}))
        .await;
    assert_eq!(d["contact"]["memberships"], json!([]));
}

async fn selection_by_groups(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let greece = group(&admin, &w.own, "Greece", None).await;
    let athens = group(&admin, &w.own, "Athens", Some(&greece)).await;
    let italy = group(&admin, &w.own, "Italy", None).await;
    let customers = group(&admin, &w.own, "Customers", None).await;
    let dora = contact(&admin, &w.own, "Dora", "Dimitriou").await;
    admin.ok(ADD, json!({"i": {"groupId": athens, "contactIds": [w.id("anna"), dora, w.id("anna_hidden")]}})).await;
    admin.ok(ADD, json!({"i": {"groupId": italy, "contactIds": [w.id("bruno"), w.id("clara")]}})).await;
    admin.ok(ADD, json!({"i": {"groupId": customers, "contactIds": [w.id("clara"), dora]}})).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let q = "query($f: ContactFilterInput) { contacts(first: 50, filter: $f) { totalCount edges { node { displayName } } } }";
    let names = |d: &Value| -> Vec<String> {
        d["contacts"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["displayName"].as_str().unwrap().to_owned())
            .collect()
    };
    // Everyone in Greece (incl. subgroups) or Italy, not in Customers.
    let f = json!({"groups": {"any": [greece, italy], "none": [customers], "includeSubgroups": true}});
    let d = agent.ok(q, json!({"f": f})).await;
    assert_eq!(names(&d), ["Anna Abbott", "Bruno Baker"]);
    assert_eq!(d["contacts"]["totalCount"], 2);
    // Without subgroups nobody is directly in Greece.
    let d = agent.ok(q, json!({"f": {"groups": {"any": [greece]}}})).await;
    assert_eq!(d["contacts"]["totalCount"], 0);
    // all = intersection.
    let d = agent.ok(q, json!({"f": {"groups": {"all": [italy, customers]}}})).await;
    assert_eq!(names(&d), ["Clara Carter"]);
    // The smallest `all` group drives the selection; whichever it is, and whatever order the
    // groups are named in, the answer is the same (and a hidden member counts nowhere).
    for all in [json!([athens, customers]), json!([customers, athens])] {
        let d = agent.ok(q, json!({"f": {"groups": {"all": all}}})).await;
        assert_eq!(names(&d), ["Dora Dimitriou"]);
        assert_eq!(d["contacts"]["totalCount"], 1);
        let d = agent.ok(q, json!({"f": {"groups": {"all": all, "none": [italy]}}})).await;
        assert_eq!(names(&d), ["Dora Dimitriou"]);
        let d = agent.ok(q, json!({"f": {"groups": {"all": all, "any": [italy]}}})).await;
        assert_eq!(d["contacts"]["totalCount"], 0);
    }
    let d = agent.ok(q, json!({"f": {"groups": {"all": [customers], "any": [athens, italy]}}})).await;
    assert_eq!(names(&d), ["Clara Carter", "Dora Dimitriou"]);
    let d = agent.ok(q, json!({"f": {"groups": {"all": [athens]}}})).await;
    assert_eq!(names(&d), ["Anna Abbott", "Dora Dimitriou"]);
    assert_eq!(d["contacts"]["totalCount"], 2, "anna_hidden is a member but not counted");
    // Combined with the other filters.
    let d = agent.ok(q, json!({"f": {"search": "d", "groups": {"all": [greece], "includeSubgroups": true}}})).await;
    assert_eq!(names(&d), ["Dora Dimitriou"]);
    // A group id of the wrong type, or a group the viewer cannot see, is NOT_FOUND.
    assert_eq!(agent.err(q, json!({"f": {"groups": {"any": [w.own]}}})).await, "NOT_FOUND");
    let hidden = group(&admin, &w.hidden, "Hidden", None).await;
    assert_eq!(agent.err(q, json!({"f": {"groups": {"none": [hidden]}}})).await, "NOT_FOUND");

    // By id (creation order), one contact per page: every visible member once, in creation order,
    // and a cursor of one order is refused by the other.
    let by_id = "query($f: ContactFilterInput, $a: String, $o: ContactOrderBy) { contacts(first: 1, after: $a, filter: $f, orderBy: $o) { edges { cursor node { id displayName } } pageInfo { hasNextPage } } }";
    let f = json!({"groups": {"any": [athens, italy]}});
    let (mut seen, mut after) = (vec![], Value::Null);
    loop {
        let d = agent.ok(by_id, json!({"f": f, "a": after, "o": "ID"})).await;
        let edge = &d["contacts"]["edges"][0];
        seen.push(edge["node"]["displayName"].as_str().unwrap().to_owned());
        after = edge["cursor"].clone();
        if d["contacts"]["pageInfo"]["hasNextPage"] == false {
            break;
        }
    }
    // anna, bruno, clara come from World (in that order), Dora was created here.
    assert_eq!(seen, ["Anna Abbott", "Bruno Baker", "Clara Carter", "Dora Dimitriou"]);
    let code = agent.err(by_id, json!({"f": f, "a": after, "o": "NAME"})).await;
    assert_eq!(code, "BAD_USER_INPUT");
}

/// A selection driven by one group chooses its page among that group's membership rows (book and
/// sort key are on them); the same selection with a condition on the contact row is answered the
/// other way, from the contacts. Both must list the same contacts, page by page, in both orders —
/// after a rename (the sort key moves) and after a move to a hidden book (the member disappears).
async fn driven_selection_pages_match_the_contact_side(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let small = group(&admin, &w.own, "Small", None).await;
    let big = group(&admin, &w.own, "Big", None).await;
    let not = group(&admin, &w.own, "Not", None).await;
    let mut in_both = vec![];
    for (i, last) in ["Ng", "Abe", "Zorn", "Meyer", "Abe", "Kahn", "Ortiz"].iter().enumerate() {
        let book = if i % 2 == 0 { &w.own } else { &w.team };
        in_both.push(contact(&admin, book, &format!("P{i}"), last).await);
    }
    let hidden = contact(&admin, &w.hidden, "H", "Abe").await;
    let excluded = in_both[3].clone();
    let mut members = in_both.clone();
    members.push(hidden.clone());
    admin.ok(ADD, json!({"i": {"groupId": small, "contactIds": members}})).await;
    members.extend([w.id("anna").to_owned(), w.id("bruno").to_owned()]);
    admin.ok(ADD, json!({"i": {"groupId": big, "contactIds": members}})).await;
    admin.ok(ADD, json!({"i": {"groupId": not, "contactIds": [excluded]}})).await;

    let q = "query($f: ContactFilterInput, $a: String, $o: ContactOrderBy) { contacts(first: 2, after: $a, filter: $f, orderBy: $o) { edges { cursor node { id } } pageInfo { hasNextPage } } }";
    let pages = |f: Value, order: &'static str| {
        let agent = &agent;
        async move {
            let (mut out, mut after) = (vec![], Value::Null);
            loop {
                let d = agent.ok(q, json!({"f": f, "a": after, "o": order})).await;
                let edges = d["contacts"]["edges"].as_array().unwrap().clone();
                out.push(edges.iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>());
                if d["contacts"]["pageInfo"]["hasNextPage"] == false {
                    return out;
                }
                after = edges.last().unwrap()["cursor"].clone();
            }
        }
    };
    // `big` is about `small`'s size: read once and hashed. `huge` is more than four times its
    // size: probed by key for each of `small`'s members. Both ways must answer the same.
    let huge = group(&admin, &w.own, "Huge", None).await;
    let mut many = in_both.clone();
    for i in 0..30 {
        many.push(contact(&admin, &w.own, &format!("Q{i}"), "Many").await);
    }
    admin.ok(ADD, json!({"i": {"groupId": huge, "contactIds": many}})).await;
    let selections = [json!({"all": [big, small], "none": [not]}), json!({"all": [huge, small], "none": [not]})];
    let selection = &selections[0];
    let compare = |expected_members: usize| {
        let (pages, selections, w) = (&pages, &selections, &w);
        async move {
            for selection in selections {
                for order in ["ID", "NAME"] {
                    let driven = pages(json!({"groups": selection}), order).await;
                    let contact_side =
                        pages(json!({"groups": selection, "addressBookIds": [w.own, w.team, w.hidden]}), order).await;
                    assert_eq!(driven, contact_side, "order {order}");
                    let all: Vec<&String> = driven.iter().flatten().collect();
                    assert_eq!(all.len(), expected_members, "order {order}: {driven:?}");
                    assert!(driven.iter().all(|p| p.len() <= 2));
                }
            }
        }
    };
    // 7 in both, one of them excluded by `not`; the hidden member is in neither answer.
    compare(6).await;
    // Renamed: the sort key on its membership rows moves with it.
    let upd = "mutation($i: UpdateContactInput!) { updateContact(input: $i) { contact { id } } }";
    admin.ok(upd, json!({"i": {"id": in_both[0], "lastName": "Aaron"}})).await;
    compare(6).await;
    let by_name = pages(json!({"groups": selection}), "NAME").await;
    assert_eq!(by_name[0][0], in_both[0], "Aaron comes first now");
    // Moved to a book the agent cannot read: gone from both answers.
    admin.ok(upd, json!({"i": {"id": in_both[1], "addressBookId": w.hidden}})).await;
    compare(5).await;
}

async fn bulk_ten_thousand_ids_idempotent_and_atomic(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let g = group(&admin, &w.own, "Big", None).await;
    // 10,000 ids: 3 real (one hidden from the agent) and 9,997 well-formed unknown ones.
    let mut ids: Vec<String> = (0..9_997u32)
        .map(|i| {
            use base64::Engine;
            let u = format!("Contact:{:032x}", 0x0190_0000_0000_7000_8000_0000_0000_0000u128 + i as u128);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(u)
        })
        .collect();
    ids.extend([w.id("anna").to_owned(), w.id("bruno").to_owned(), w.id("anna_hidden").to_owned()]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let add =
        "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount alreadyMemberCount notFound } }";
    let input = json!({"groupId": g, "contactIds": ids, "idempotencyKey": "import-2026-11-23"});
    let first = agent.ok(add, json!({"i": input})).await;
    assert_eq!(first["addGroupMembers"]["addedCount"], 2);
    assert_eq!(first["addGroupMembers"]["notFound"].as_array().unwrap().len(), 9_998);
    // A replay returns the first answer, byte for byte, and writes nothing.
    let again = agent.ok(add, json!({"i": input})).await;
    assert_eq!(again, first);
    let d = admin.ok(MEMBERS, json!({"g": g})).await;
    assert_eq!(d["group"]["memberCount"], 2);
    // The same key for a different request is a conflict.
    let other = json!({"groupId": g, "contactIds": [w.id("clara")], "idempotencyKey": "import-2026-11-23"});
    assert_eq!(agent.err(add, json!({"i": other})).await, "CONFLICT");
    // Over 10,000 ids is refused, and writes nothing.
    let mut too_many = ids.clone();
    too_many.push(w.id("clara").to_owned());
    assert_eq!(agent.err(add, json!({"i": {"groupId": g, "contactIds": too_many}})).await, "BAD_USER_INPUT");
    let d = admin.ok(MEMBERS, json!({"g": g})).await;
    assert_eq!(d["group"]["memberCount"], 2);
    // Remove them all again in one call.
    let d = agent.ok(REMOVE, json!({"i": {"groupId": g, "contactIds": ids}})).await;
    assert_eq!(d["removeGroupMembers"]["removedCount"], 2);
}

async fn revoked_grant_hides_members_on_the_next_request(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let g = group(&admin, &w.own, "Mixed", None).await;
    admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [w.id("anna"), w.id("clara")]}})).await;
    assert_eq!(all_members(&agent, &g, false).await, ["Anna Abbott", "Clara Carter"]);
    // Revoke the user group's READ on "Team": Clara disappears from the group for the agent.
    let ug = admin.ok("{ userGroups { edges { node { id name } } } }", json!({})).await;
    let support = ug["userGroups"]["edges"][0]["node"]["id"].clone();
    admin
        .ok(
            "mutation($b: ID!, $g: ID!) { revokeAddressBookAccess(input: {addressBookId: $b, userGroupId: $g}) { revoked } }",
            json!({"b": w.team, "g": support}),
        )
        .await;
    assert_eq!(all_members(&agent, &g, false).await, ["Anna Abbott"]);
    let d = agent.ok(MEMBERS, json!({"g": g})).await;
    assert_eq!(d["group"]["memberCount"], 1);
    let d = agent.ok(ADD, json!({"i": {"groupId": g, "contactIds": [w.id("clara")]}})).await;
    assert_eq!(d["addGroupMembers"]["notFound"], json!([w.id("clara")]));
    assert_eq!(d["addGroupMembers"]["alreadyMemberCount"], 0);
}

async fn members_pages_are_stable_by_name_and_by_join_date(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let g = group(&admin, &w.own, "Paged", None).await;
    let mut ids = vec![];
    for i in 0..10 {
        ids.push(contact(&admin, &w.own, &format!("P{i}"), &format!("Z{}", 9 - i)).await);
    }
    for id in &ids {
        admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [id]}})).await;
    }
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let by_name = all_members(&agent, &g, false).await;
    assert_eq!(by_name.first().unwrap(), "P9 Z0");
    assert_eq!(by_name.len(), 10);
    let mut after = Value::Null;
    let mut joined = vec![];
    loop {
        let d = agent.ok(MEMBERS, json!({"g": g, "a": after, "o": "JOINED_AT"})).await;
        let m = &d["group"]["members"];
        for e in m["edges"].as_array().unwrap() {
            joined.push(e["node"]["displayName"].as_str().unwrap().to_owned());
        }
        if m["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = m["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(joined.first().unwrap(), "P0 Z9", "earliest member first");
    assert_eq!(joined.len(), 10);
    // Renaming a member re-sorts it (the membership's sort key follows the contact).
    admin
        .ok(
            "mutation($id: ID!) { updateContact(input: {id: $id, lastName: \"Aaa\"}) { contact { id } } }",
            json!({"id": ids[0]}),
        )
        .await;
    assert_eq!(all_members(&agent, &g, false).await.first().unwrap(), "P0 Aaa");
    // Moving a member to a hidden book hides it from the group.
    admin
        .ok(
            "mutation($id: ID!, $b: ID!) { updateContact(input: {id: $id, addressBookId: $b}) { contact { id } } }",
            json!({"id": ids[0], "b": w.hidden}),
        )
        .await;
    assert_eq!(all_members(&agent, &g, false).await.len(), 9);
    let d = agent.ok(MEMBERS, json!({"g": g})).await;
    assert_eq!(d["group"]["memberCount"], 9);
    // The database-kept counter moved the member to the other book; it did not lose it.
    let d = admin.ok(MEMBERS, json!({"g": g})).await;
    assert_eq!(d["group"]["memberCount"], 10);
}

async fn group_configuration_needs_manage(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    // WRITE on "own" is not MANAGE.
    assert_eq!(agent.err(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Mine"}})).await, "FORBIDDEN");
    assert_eq!(agent.err(CREATE_GROUP, json!({"i": {"addressBookId": w.hidden, "name": "Mine"}})).await, "NOT_FOUND");
    let g = group(&admin, &w.own, "Configured", None).await;
    let upd =
        "mutation($i: UpdateGroupInput!) { updateGroup(input: $i) { group { name precedence isPublic publicName } } }";
    assert_eq!(agent.err(upd, json!({"i": {"id": g, "name": "X"}})).await, "FORBIDDEN");
    assert_eq!(admin.err(upd, json!({"i": {"id": g, "name": " "}})).await, "BAD_USER_INPUT");
    let d = admin.ok(upd, json!({"i": {"id": g, "precedence": 5, "publicName": "Our newsletter"}})).await;
    assert_eq!(
        d["updateGroup"]["group"],
        json!({"name": "Configured", "precedence": 5, "isPublic": true, "publicName": "Our newsletter"})
    );
    let d = agent.ok("{ groups(filter: {isPublic: true}) { edges { node { name myAccess } } } }", json!({})).await;
    assert_eq!(d["groups"]["edges"], json!([{"node": {"name": "Configured", "myAccess": "WRITE"}}]));
    let d = admin.ok(upd, json!({"i": {"id": g, "publicName": null}})).await;
    assert_eq!(d["updateGroup"]["group"]["isPublic"], false);
    // Empty names refused at creation too.
    assert_eq!(admin.err(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": ""}})).await, "BAD_USER_INPUT");
}

async fn memberships_export_is_capped(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    for i in 0..101 {
        contact(&admin, &w.own, "Bulk", &format!("C{i:03}")).await;
    }
    // 100 contacts' memberships in one request: fine.
    let ok =
        admin.gql("{ contacts(first: 100) { edges { node { memberships { group { name } } } } } }", json!({})).await;
    assert!(ok.get("errors").is_none(), "{ok}");
    // Two aliased pages of 100 would resolve memberships for 200 contacts: refused as a whole.
    let q = "{ a: contacts(first: 100) { edges { node { memberships { joinedAt } } } } b: contacts(first: 100, filter: {kind: PERSON}) { edges { node { memberships { joinedAt } } } } }";
    let body = admin.gql(q, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "EXPORT_LIMIT", "{body}");
    assert!(body.get("data").is_none(), "no partial export");
}

async fn hidden_subgroups_do_not_count(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let top = group(&admin, &w.own, "Top", None).await;
    let hidden_sub = group(&admin, &w.hidden, "Hidden sub", Some(&top)).await;
    let visible_sub = group(&admin, &w.own, "Visible sub", Some(&hidden_sub)).await;
    admin.ok(ADD, json!({"i": {"groupId": hidden_sub, "contactIds": [w.id("anna")]}})).await;
    admin.ok(ADD, json!({"i": {"groupId": visible_sub, "contactIds": [w.id("bruno")]}})).await;
    // Anna is only in a subgroup the agent cannot see: she is not an effective member for them.
    assert_eq!(all_members(&agent, &top, true).await, ["Bruno Baker"]);
    let d = agent.ok(MEMBERS, json!({"g": top, "sub": true})).await;
    assert_eq!(d["group"]["memberCount"], 1);
    let q = "query($g: ID!) { contacts(filter: {groups: {any: [$g], includeSubgroups: true}}) { totalCount } }";
    assert_eq!(agent.ok(q, json!({"g": top})).await["contacts"]["totalCount"], 1);
    assert_eq!(admin.ok(q, json!({"g": top})).await["contacts"]["totalCount"], 2);
    // A group whose parent is hidden is a root for the viewer.
    let d =
        agent.ok("{ groups(filter: {rootsOnly: true}) { edges { node { name parent { name } } } } }", json!({})).await;
    assert_eq!(
        d["groups"]["edges"],
        json!([{"node": {"name": "Top", "parent": null}}, {"node": {"name": "Visible sub", "parent": null}}])
    );
}

async fn reparenting_needs_manage_on_every_child(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    // The agent manages "own" but only reads "team".
    let users = admin.ok("{ users(first: 10) { edges { node { id subject } } } }", json!({})).await;
    let agent_id = users["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["subject"] == "agent")
        .unwrap()["node"]["id"]
        .clone();
    admin
        .ok(
            "mutation($b: ID!, $u: ID!) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: MANAGE}) { grant { level } } }",
            json!({"b": w.own, "u": agent_id}),
        )
        .await;
    let parent = group(&admin, &w.own, "Parent", None).await;
    let child = group(&admin, &w.team, "Child", Some(&parent)).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let del = "mutation($i: DeleteGroupInput!) { deleteGroup(input: $i) { deletedIds } }";
    assert_eq!(agent.err(del, json!({"i": {"id": parent, "reparentChildrenToId": null}})).await, "FORBIDDEN");
    assert_eq!(agent.err(del, json!({"i": {"id": parent, "deleteSubgroups": true}})).await, "FORBIDDEN");
    // Nothing happened.
    let d = admin.ok("query($g: ID!) { group(id: $g) { parent { name } } }", json!({"g": child})).await;
    assert_eq!(d["group"]["parent"]["name"], "Parent");
    let d = admin.ok(del, json!({"i": {"id": parent, "reparentChildrenToId": null}})).await;
    assert_eq!(d["deleteGroup"]["deletedIds"], json!([parent]));
}

async fn member_pages_cost_the_same_statements_whatever_their_size(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let g = group(&admin, &w.own, "Big page", None).await;
    let mut ids = vec![];
    for i in 0..60 {
        ids.push(contact(&admin, &w.own, "M", &format!("Member{i:02}")).await);
    }
    admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": ids}})).await;
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let q = "query($g: ID!, $n: Int) { group(id: $g) { members(first: $n) { totalCount edges { cursor joinedAt source assignedBy { subject }
        node { displayName emails { address } addressBook { name } businessStatus { key } company { displayName } } } } } }";
    agent.ok(q, json!({"g": g, "n": 1})).await; // warm-up: the viewer's first request writes last-seen
    let mut costs = vec![];
    for n in [1, 10, 50] {
        let before = statements(&app).await;
        let d = agent.ok(q, json!({"g": g, "n": n})).await;
        assert_eq!(d["group"]["members"]["edges"].as_array().unwrap().len(), n as usize);
        costs.push(statements(&app).await - before);
    }
    assert!(costs.windows(2).all(|c| c[0] == c[1]), "statements per page must not grow with the page: {costs:?}");
    // viewer + group + book levels + page + count + e-mails/phones + books + statuses + users.
    assert!(costs[0] <= 10, "{costs:?}");
    // A page of groups with their counts: one count statement for the whole page.
    for i in 0..5 {
        group(&admin, &w.own, &format!("Counted {i}"), None).await;
    }
    let q = "query($n: Int) { groups(first: $n) { edges { node { name memberCount a: memberCount(includeSubgroups: true) } } } }";
    let mut costs = vec![];
    for n in [1, 6] {
        let before = statements(&app).await;
        agent.ok(q, json!({"n": n})).await;
        costs.push(statements(&app).await - before);
    }
    assert_eq!(costs[0], costs[1], "member counts are batched: {costs:?}");
}

on_both_backends!(
    hidden_subgroups_do_not_count,
    reparenting_needs_manage_on_every_child,
    member_pages_cost_the_same_statements_whatever_their_size,
    members_show_only_visible_contacts,
    bulk_answers_treat_hidden_like_unknown,
    integration_tokens_default_to_api_source_and_history_is_kept,
    hierarchy_refuses_cycles_and_keeps_memberships,
    selection_by_groups,
    driven_selection_pages_match_the_contact_side,
    bulk_ten_thousand_ids_idempotent_and_atomic,
    revoked_grant_hides_members_on_the_next_request,
    members_pages_are_stable_by_name_and_by_join_date,
    group_configuration_needs_manage,
    memberships_export_is_capped,
);
