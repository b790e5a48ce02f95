//! Ids for client caches (issue 18 item 4): objects with an identity carry a stable `id`, so a
//! normalising cache (Apollo's `__typename:id`) keeps one entry per object whatever sub-fields
//! two queries select — on SQLite and PostgreSQL.

use crate::on_both_backends;
use crate::support::{CREATE_CONTACT, TestApp, World};
use serde_json::{Value, json};

const CHANNELS: &str = "query($id: ID!) { contact(id: $id) { id emails { id address } phones { id number label } businessStatus { id key } } }";

async fn channels(app: &TestApp, w: &World, id: &str) -> Value {
    app.actor(&w.tenant, "admin", &["admin"]).ok(CHANNELS, json!({"id": id})).await["contact"].clone()
}

async fn ids_are_stable_distinct_and_follow_the_value(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let input = json!({"kind": "PERSON", "firstName": "Cache", "lastName": "Test", "addressBookId": w.own,
        "businessStatus": "lead_hot",
        "emails": [{"address": "one@example.com"}, {"address": "two@example.com"}],
        "phones": [{"number": "+1 555 0100"}]});
    let a = admin.ok(CREATE_CONTACT, json!({"i": input})).await["createContact"]["contact"]["id"].clone();
    let a = a.as_str().expect("id").to_owned();
    let first = channels(&app, &w, &a).await;
    let again = channels(&app, &w, &a).await;
    assert_eq!(first, again, "the same ids in every answer");
    let e = first["emails"].as_array().expect("emails");
    assert_ne!(e[0]["id"], e[1]["id"], "two addresses, two ids");
    assert!(first["phones"][0]["id"].is_string());
    assert_ne!(first["phones"][0]["id"], e[0]["id"]);

    // Reordering keeps each address's id; a changed address gets a new one; case does not matter.
    admin
        .ok(
            "mutation($c: ID!) { updateContact(input: {id: $c, emails: [{address: \"TWO@example.com\"}, {address: \"three@example.com\"}]}) { contact { id } } }",
            json!({"c": a}),
        )
        .await;
    let after = channels(&app, &w, &a).await;
    assert_eq!(after["emails"][0]["id"], e[1]["id"], "same address (case aside), same id");
    assert_ne!(after["emails"][1]["id"], e[0]["id"]);

    // The same address on another contact is another object.
    let mut other = input.clone();
    other["firstName"] = json!("Other");
    let b = admin.ok(CREATE_CONTACT, json!({"i": other})).await["createContact"]["contact"]["id"].clone();
    let b = channels(&app, &w, b.as_str().expect("id")).await;
    assert_ne!(b["emails"][0]["id"], e[0]["id"], "ids are per contact");
    // A business status is one object, whoever has it.
    assert_eq!(b["businessStatus"], first["businessStatus"]);
    assert_eq!(first["businessStatus"]["key"], "lead_hot");
    let statuses = admin.ok("{ businessStatuses { id key } }", json!({})).await;
    let hot = statuses["businessStatuses"].as_array().expect("list").iter().find(|s| s["key"] == "lead_hot").cloned();
    assert_eq!(hot.map(|h| h["id"].clone()), Some(first["businessStatus"]["id"].clone()));

    // Status-history entries are objects of their own.
    admin
        .ok(
            "mutation($c: ID!) { setContactBusinessStatus(input: {contactId: $c, status: \"customer\"}) { contact { id } } }",
            json!({"c": a}),
        )
        .await;
    let history =
        "query($id: ID!) { contact(id: $id) { statusHistory(first: 10) { edges { node { id to { key } } } } } }";
    let h1 = admin.ok(history, json!({"id": a})).await;
    let h2 = admin.ok(history, json!({"id": a})).await;
    assert_eq!(h1, h2);
    let ids: Vec<&Value> =
        h1["contact"]["statusHistory"]["edges"].as_array().expect("edges").iter().map(|e| &e["node"]["id"]).collect();
    assert!(!ids.is_empty() && ids.iter().all(|i| i.is_string()), "{h1:#}");
    let distinct: std::collections::HashSet<String> = ids.iter().map(|i| i.to_string()).collect();
    assert_eq!(distinct.len(), ids.len());
}

on_both_backends!(ids_are_stable_distinct_and_follow_the_value);
