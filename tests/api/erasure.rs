//! Erasure (GDPR Art. 17): after `eraseContact`, no text column of any table still holds the
//! person's name or address; the tombstone remains, memberships end with counters in step, the
//! event is emitted once, repeating changes nothing, and only admins or MANAGE may erase.

use crate::groups::{ADD, CREATE_GROUP};
use crate::on_both_backends;
use crate::support::{CREATE_CONTACT, TestApp, World};
use serde_json::json;

const ERASE: &str = "mutation($c: ID!, $r: String!) { eraseContact(input: {contactId: $c, reason: $r}) {
    erasedAt contact { id displayName } } }";
const ERASED_EVENTS: &str =
    "{ events(first: 100, types: [\"contact.erased\"]) { edges { node { type subjects payload } } } }";

async fn scan(app: &TestApp, needles: &[&str]) -> Vec<String> {
    let mut hits = vec![];
    for n in needles {
        for h in cohort_store::testing::text_columns_containing(&app.store, n).await.expect("scan") {
            hits.push(format!("{n}: {h}"));
        }
    }
    hits
}

async fn erase_scrubs_every_text_column(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let d = admin
        .ok(
            CREATE_CONTACT,
            json!({"i": {"addressBookId": w.own, "kind": "PERSON", "firstName": "Zebulon", "lastName": "Quuxworth",
                "emails": [{"address": "Zebulon.Quuxworth@erase.example"}], "phones": [{"number": "+49 30 9876543"}]}}),
        )
        .await;
    let z = d["createContact"]["contact"]["id"].as_str().unwrap().to_owned();
    let d = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Newsletter"}})).await;
    let g = d["createGroup"]["group"]["id"].as_str().unwrap().to_owned();
    let d = admin.ok(ADD, json!({"i": {"groupId": g, "contactIds": [z, w.id("anna")]}})).await;
    assert_eq!(d["addGroupMembers"]["group"]["memberCount"], 2);
    let needles = ["zebulon", "quuxworth", "zebulon.quuxworth@erase.example", "9876543"];
    assert!(!scan(&app, &needles).await.is_empty(), "the scan finds the data before erasure");

    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    // WRITE is not enough; a hidden contact and an outsider's view are NOT_FOUND.
    assert_eq!(agent.err(ERASE, json!({"c": z, "r": "Art. 17 request"})).await, "FORBIDDEN");
    assert_eq!(agent.err(ERASE, json!({"c": w.id("anna_hidden"), "r": "Art. 17 request"})).await, "NOT_FOUND");
    let outsider = app.actor(&w.tenant, "outsider", &["agent"]);
    assert_eq!(outsider.err(ERASE, json!({"c": z, "r": "Art. 17 request"})).await, "NOT_FOUND");
    assert_eq!(admin.err(ERASE, json!({"c": z, "r": "   "})).await, "BAD_USER_INPUT");
    assert_eq!(admin.err(ERASE, json!({"c": z, "r": "x".repeat(501)})).await, "BAD_USER_INPUT");
    assert!(!scan(&app, &needles).await.is_empty(), "refused erasures wrote nothing");

    let first = admin.ok(ERASE, json!({"c": z, "r": "Art. 17 request, ticket 4711"})).await;
    assert_eq!(first["eraseContact"]["contact"]["displayName"], "Erased contact");
    let hits = scan(&app, &needles).await;
    assert!(hits.is_empty(), "personal data left after erasure: {hits:#?}");

    // Idempotent: the same answer, one event.
    let second = admin.ok(ERASE, json!({"c": z, "r": "Art. 17 request, ticket 4711"})).await;
    assert_eq!(first, second);
    let ev = admin.ok(ERASED_EVENTS, json!({})).await;
    assert_eq!(ev["events"]["edges"].as_array().map(Vec::len), Some(1), "{ev:#}");

    // Memberships ended, counters in step; the other member stays.
    let d = admin.ok("query($g: ID!) { group(id: $g) { memberCount } }", json!({"g": g})).await;
    assert_eq!(d["group"]["memberCount"], 1);
    // The tombstone still exists under its id.
    let d = admin.ok("query($c: ID!) { contact(id: $c) { displayName } }", json!({"c": z})).await;
    assert_eq!(d["contact"]["displayName"], "Erased contact");
}

/// An erased contact is a tombstone: an order or a history entry may still point at it, but it
/// leaves every list, selection and count; reading it by id shows the placeholder only.
async fn erased_contacts_leave_lists_and_counts(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let count = "{ contacts(first: 100) { totalCount edges { node { id } } } }";
    let before = admin.ok(count, json!({})).await;
    admin.ok(ERASE, json!({"c": w.id("bruno"), "r": "request by mail"})).await;
    let after = admin.ok(count, json!({})).await;
    assert_eq!(after["contacts"]["totalCount"].as_i64(), before["contacts"]["totalCount"].as_i64().map(|n| n - 1));
    let ids: Vec<&str> =
        after["contacts"]["edges"].as_array().expect("edges").iter().filter_map(|e| e["node"]["id"].as_str()).collect();
    assert!(!ids.contains(&w.id("bruno")), "{ids:?}");
    let found = admin.ok("{ contacts(first: 10, filter: {search: \"Baker\"}) { totalCount } }", json!({})).await;
    assert_eq!(found["contacts"]["totalCount"], 0, "the old name finds nothing");
    let one = admin
        .ok("query($c: ID!) { contact(id: $c) { displayName emails { address } } }", json!({"c": w.id("bruno")}))
        .await;
    assert_eq!(one["contact"]["displayName"], "Erased contact");
}

on_both_backends!(erase_scrubs_every_text_column, erased_contacts_leave_lists_and_counts);
