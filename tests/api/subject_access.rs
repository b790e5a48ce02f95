//! Subject access (GDPR Art. 15, issue 15 item 7): `contactDataExport` gives everything held about
//! one person as one JSON document — for admins only, audited, metered — on SQLite and PostgreSQL.

use crate::on_both_backends;
use crate::support::{TestApp, World};
use serde_json::{Value, json};

const EXPORT: &str = "query($id: ID!) { contactDataExport(id: $id) { generatedAt document } }";

/// Seeds Anna Abbott (visible to the agent) across the product and returns the admin's export.
async fn seeded_export(app: &TestApp, w: &World) -> Value {
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let anna = w.id("anna");
    admin
        .ok(
            "mutation($c: ID!) { updateContact(input: {id: $c, phones: [{number: \"+43 1 234 5678\", label: \"work\"}]}) { contact { id } } }",
            json!({"c": anna}),
        )
        .await;
    admin
        .ok(
            "mutation($c: ID!) { setContactBusinessStatus(input: {contactId: $c, status: \"customer\", note: \"signed\"}) { contact { id } } }",
            json!({"c": anna}),
        )
        .await;
    let mut groups = vec![];
    for (name, book) in [("Newsletter", &w.own), ("Key accounts", &w.hidden)] {
        let g = admin
            .ok(
                "mutation($b: ID!, $n: String!) { createGroup(input: {addressBookId: $b, name: $n, publicName: $n}) { group { id } } }",
                json!({"b": book, "n": name}),
            )
            .await;
        let g = g["createGroup"]["group"]["id"].as_str().expect("group").to_owned();
        admin
            .ok(
                "mutation($g: ID!, $c: [ID!]!) { addGroupMembers(input: {groupId: $g, contactIds: $c}) { addedCount } }",
                json!({"g": g, "c": [anna]}),
            )
            .await;
        groups.push(g);
    }
    // Left again: stays in the history.
    admin
        .ok(
            "mutation($g: ID!, $c: [ID!]!) { removeGroupMembers(input: {groupId: $g, contactIds: $c}) { removedCount } }",
            json!({"g": groups[1], "c": [anna]}),
        )
        .await;
    let text = admin
        .ok(
            "mutation { createConsentText(input: {purpose: \"newsletter\", language: \"en\", body: \"Yes, send me the newsletter.\"}) { consentText { id } } }",
            json!({}),
        )
        .await;
    admin
        .ok(
            "mutation($c: ID!, $g: ID!, $t: ID!) { recordConsent(input: {contactId: $c, groupId: $g, action: GIVEN, consentTextId: $t, note: \"by phone\"}) { entry { id } } }",
            json!({"c": anna, "g": groups[0], "t": text["createConsentText"]["consentText"]["id"]}),
        )
        .await;
    admin
        .ok(
            "mutation { createProduct(input: {sku: \"SA-1\", name: \"Widget\", listPrice: \"12.50\", currency: \"EUR\"}) { product { id } } }",
            json!({}),
        )
        .await;
    admin
        .ok(
            "mutation($c: ID!) { placeOrder(input: {contactId: $c, currency: \"EUR\", lines: [{sku: \"SA-1\", quantity: \"3\"}]}) { order { id } } }",
            json!({"c": anna}),
        )
        .await;
    let q = admin
        .ok("mutation { createProcessingArea(input: {name: \"General\"}) { processingArea { id } } }", json!({}))
        .await;
    admin
        .ok(
            "mutation($q: ID!) { createProcessArea(input: {key: \"helpdesk\", name: \"Helpdesk\", defaultProcessingAreaId: $q}) { processArea { id } } }",
            json!({"q": q["createProcessingArea"]["processingArea"]["id"]}),
        )
        .await;
    admin
        .ok(
            "mutation($c: ID!) { createTicket(input: {contactId: $c, subject: \"Broken widget\", description: \"It squeaks\", channel: EMAIL, processArea: \"helpdesk\"}) { ticketId } }",
            json!({"c": anna}),
        )
        .await;
    // The private message is for the agent: the admin exporting is not its recipient.
    let me = app.actor(&w.tenant, "agent", &["agent"]).ok("{ viewer { user { id } } }", json!({})).await;
    let recipient = me["viewer"]["user"]["id"].clone();
    for (subject, private) in [("Invoice question", false), ("Personal matter", true)] {
        admin
            .ok(
                "mutation($c: ID!, $s: String!, $p: Boolean!, $r: ID) { receiveMessage(input: {contactId: $c, processArea: \"helpdesk\", channel: EMAIL, subject: $s, body: \"Body of the message\", private: $p, recipientId: $r}) { messageId } }",
                json!({"c": anna, "s": subject, "p": private, "r": if private { recipient.clone() } else { Value::Null }}),
            )
            .await;
    }
    // A message from her address that was never matched to a contact is hers too.
    admin
        .ok(
            "mutation { receiveMessage(input: {senderEmail: \"Anna@Own.example\", processArea: \"helpdesk\", channel: EMAIL, subject: \"Unmatched\", body: \"From her address\"}) { messageId } }",
            json!({}),
        )
        .await;
    admin.ok(EXPORT, json!({"id": anna})).await["contactDataExport"].clone()
}

async fn export_holds_everything_about_one_person(app: TestApp) {
    let w = World::build(&app).await;
    let e = seeded_export(&app, &w).await;
    assert!(e["generatedAt"].is_string());
    let d = &e["document"];
    assert_eq!(d["format"], "cohort.contact-data-export/v1");
    let instant = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().expect("an instant")).expect("RFC 3339");
    assert_eq!(instant(&d["generatedAt"]), instant(&e["generatedAt"]), "one instant in both places");
    let c = &d["contact"];
    assert_eq!(c["id"], w.id("anna"));
    assert_eq!((c["firstName"].as_str(), c["lastName"].as_str()), (Some("Anna"), Some("Abbott")));
    assert_eq!(c["emails"], json!([{"address": "anna@own.example", "label": null}]));
    assert_eq!(c["phones"], json!([{"number": "+43 1 234 5678", "label": "work"}]));
    assert_eq!(c["addressBook"]["id"], w.own);
    assert_eq!(c["businessStatus"]["key"], "customer");
    assert!(c["erasedAt"].is_null());
    let statuses = d["businessStatusHistory"].as_array().expect("status history");
    assert_eq!(statuses.last().expect("a change")["to"]["key"], "customer", "{statuses:#?}");
    assert_eq!(statuses.last().expect("a change")["note"], "signed");

    // Memberships in every group, whichever book it is homed in (an admin export), with source.
    let m = d["memberships"].as_array().expect("memberships");
    assert_eq!(m.len(), 1, "{m:#?}");
    assert_eq!(m[0]["group"]["name"], "Newsletter");
    assert_eq!(m[0]["source"], "ASSIGNED");
    let h: Vec<(String, String)> = d["membershipHistory"]
        .as_array()
        .expect("history")
        .iter()
        .map(|x| (x["group"]["name"].as_str().unwrap_or("").to_owned(), x["action"].as_str().unwrap_or("").to_owned()))
        .collect();
    for want in [("Newsletter", "JOIN"), ("Key accounts", "JOIN"), ("Key accounts", "LEAVE")] {
        assert!(h.contains(&(want.0.to_owned(), want.1.to_owned())), "{want:?} in {h:?}");
    }
    let log = d["consent"]["log"].as_array().expect("consent log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["action"], "GIVEN");
    assert_eq!(log[0]["note"], "by phone");
    assert_eq!(d["consent"]["current"][0]["status"], "CONFIRMED", "consent given by phone is in force");

    let orders = d["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["currency"], "EUR");
    assert_eq!(orders[0]["total"], "37.50");
    assert_eq!(orders[0]["lines"][0]["sku"], "SA-1");
    assert_eq!(orders[0]["lines"][0]["quantity"], "3");
    assert_eq!(orders[0]["lines"][0]["lineTotal"], "37.50");
    let tickets = d["tickets"].as_array().expect("tickets");
    assert_eq!(tickets.len(), 1);
    assert_eq!(
        (tickets[0]["subject"].as_str(), tickets[0]["description"].as_str()),
        (Some("Broken widget"), Some("It squeaks"))
    );
    assert_eq!(tickets[0]["processArea"]["key"], "helpdesk");

    let messages = d["messages"].as_array().expect("messages");
    let by_subject =
        |s: &str| messages.iter().find(|m| m["subject"] == s).unwrap_or_else(|| panic!("{s} in {messages:#?}"));
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert_eq!(by_subject("Invoice question")["body"], "Body of the message");
    let private = by_subject("Personal matter");
    assert_eq!((private["private"].as_bool(), private["bodyWithheld"].as_bool()), (Some(true), Some(true)));
    assert!(private["body"].is_null(), "a private body stays with its recipient");
    assert_eq!(by_subject("Unmatched")["body"], "From her address");

    // Nothing about other people: no other contact's name appears anywhere in the document.
    let text = d.to_string();
    for other in ["Bruno", "Clara", "Hidden", "Secret AG"] {
        assert!(!text.contains(other), "{other} is not Anna's data");
    }
}

/// Admins only; ids that do not resolve are NOT_FOUND; each export is audited with counts only
/// and counted by the metering.
async fn export_is_for_admins_audited_and_metered(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    // The agent may read Anna, but not export her.
    assert_eq!(agent.err(EXPORT, json!({"id": w.id("anna")})).await, "FORBIDDEN");
    assert_eq!(agent.err(EXPORT, json!({"id": w.id("anna_hidden")})).await, "FORBIDDEN");
    assert_eq!(admin.err(EXPORT, json!({"id": "bm90LWFuLWlk"})).await, "NOT_FOUND");
    assert_eq!(admin.err(EXPORT, json!({"id": w.own})).await, "NOT_FOUND", "a book id is not a contact id");
    let other_tenant = app.actor("other", "admin", &["admin"]);
    assert_eq!(other_tenant.err(EXPORT, json!({"id": w.id("anna")})).await, "NOT_FOUND", "tenants never cross");

    let before = admin.ok("{ viewer { dataUsage { today { distinctContacts } } } }", json!({})).await;
    let before = before["viewer"]["dataUsage"]["today"]["distinctContacts"].as_i64().expect("count");
    admin.ok(EXPORT, json!({"id": w.id("anna_hidden")})).await;
    let after = admin.ok("{ viewer { dataUsage { today { distinctContacts } } } }", json!({})).await;
    assert_eq!(after["viewer"]["dataUsage"]["today"]["distinctContacts"].as_i64(), Some(before + 1), "metered");

    let log = admin
        .ok(
            "query($s: ID!) { auditLog(first: 10, filter: {action: \"contact.dataExport\", subjectId: $s}) { totalCount edges { node { subjectType subjectId details } } } }",
            json!({"s": w.id("anna_hidden")}),
        )
        .await;
    assert_eq!(log["auditLog"]["totalCount"], 1, "one entry per export; refused calls export nothing: {log:#}");
    let entry = &log["auditLog"]["edges"][0]["node"];
    assert_eq!(entry["subjectType"], "Contact");
    assert_eq!(entry["subjectId"], w.id("anna_hidden"));
    assert_eq!(entry["details"]["memberships"], 0);
    assert!(!entry["details"].to_string().contains("Anna"), "counts only, no personal data");
}

/// An erased contact's export holds what remains: the tombstone, the order with its amounts, the
/// consent proof — and none of the erased personal data.
async fn export_of_an_erased_contact_holds_what_remains(app: TestApp) {
    let w = World::build(&app).await;
    let before = seeded_export(&app, &w).await;
    assert_eq!(before["document"]["orders"].as_array().map(Vec::len), Some(1));
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    admin
        .ok(
            "mutation($c: ID!) { eraseContact(input: {contactId: $c, reason: \"Art. 17 request 2026-12\"}) { contact { id } } }",
            json!({"c": w.id("anna")}),
        )
        .await;
    let e = admin.ok(EXPORT, json!({"id": w.id("anna")})).await;
    let d = &e["contactDataExport"]["document"];
    assert!(d["contact"]["erasedAt"].is_string());
    assert_eq!(d["contact"]["emails"], json!([]));
    assert_eq!(d["contact"]["phones"], json!([]));
    assert_eq!(d["memberships"], json!([]));
    assert_eq!(d["orders"][0]["total"], "37.50", "orders keep their amounts");
    assert_eq!(d["consent"]["log"].as_array().map(Vec::len), Some(1), "the consent proof remains");
    let text = d.to_string();
    for gone in ["Abbott", "anna@own.example", "234 5678", "It squeaks", "Body of the message", "From her address"] {
        assert!(!text.contains(gone), "{gone} was erased: {d:#}");
    }
}

/// Unmatched messages from an address another contact also has are not handed out (they may be
/// the other person's); from an address only this contact has, they are. A private message's
/// subject is withheld too where the tenant hides private subjects.
async fn export_keeps_shared_addresses_and_private_subjects_back(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let q = admin
        .ok("mutation { createProcessingArea(input: {name: \"General\"}) { processingArea { id } } }", json!({}))
        .await;
    admin
        .ok(
            "mutation($q: ID!) { createProcessArea(input: {key: \"helpdesk\", name: \"Helpdesk\", defaultProcessingAreaId: $q}) { processArea { id } } }",
            json!({"q": q["createProcessingArea"]["processingArea"]["id"]}),
        )
        .await;
    let receive = "mutation($e: String!, $s: String!) { receiveMessage(input: {senderEmail: $e, processArea: \"helpdesk\", channel: EMAIL, subject: $s, body: \"Hello\"}) { messageId } }";
    // Received before any contact had these addresses: unmatched.
    admin.ok(receive, json!({"e": "info@shared.example", "s": "From the shared mailbox"})).await;
    admin.ok(receive, json!({"e": "solo@own.example", "s": "From the solo address"})).await;
    let mut ids = vec![];
    for (first, emails) in [
        ("Xena", json!([{"address": "info@shared.example"}, {"address": "solo@own.example"}])),
        ("Yann", json!([{"address": "info@shared.example"}])),
    ] {
        let d = admin
            .ok(
                crate::support::CREATE_CONTACT,
                json!({"i": {"kind": "PERSON", "firstName": first, "lastName": "Mailbox", "addressBookId": w.own, "emails": emails}}),
            )
            .await;
        ids.push(d["createContact"]["contact"]["id"].as_str().expect("id").to_owned());
    }
    admin
        .ok("mutation { setMessageSettings(input: {hidePrivateSubjects: true}) { hidePrivateSubjects } }", json!({}))
        .await;
    // A private message to the agent: the admin exporting is not its recipient.
    let agent_id = app.actor(&w.tenant, "agent", &["agent"]).ok("{ viewer { user { id } } }", json!({})).await;
    admin
        .ok(
            "mutation($c: ID!, $r: ID!) { receiveMessage(input: {contactId: $c, processArea: \"helpdesk\", channel: EMAIL, subject: \"Secret subject\", body: \"Secret body\", private: true, recipientId: $r}) { messageId } }",
            json!({"c": ids[0], "r": agent_id["viewer"]["user"]["id"]}),
        )
        .await;
    let x = admin.ok(EXPORT, json!({"id": ids[0]})).await;
    let messages = x["contactDataExport"]["document"]["messages"].as_array().expect("messages").clone();
    let subjects: Vec<&Value> = messages.iter().map(|m| &m["subject"]).collect();
    assert!(subjects.contains(&&json!("From the solo address")), "{messages:#?}");
    assert!(!subjects.contains(&&json!("From the shared mailbox")), "maybe Yann's: {messages:#?}");
    let private = messages.iter().find(|m| m["private"] == true).expect("the private message");
    assert_eq!((private["subject"].clone(), private["body"].clone()), (Value::Null, Value::Null), "{private:#}");
    assert_eq!((private["subjectWithheld"].as_bool(), private["bodyWithheld"].as_bool()), (Some(true), Some(true)));
    assert!(!x.to_string().contains("Secret"));
    let y = admin.ok(EXPORT, json!({"id": ids[1]})).await;
    assert_eq!(y["contactDataExport"]["document"]["messages"], json!([]), "{y:#}");
}

on_both_backends!(
    export_holds_everything_about_one_person,
    export_is_for_admins_audited_and_metered,
    export_of_an_erased_contact_holds_what_remains,
    export_keeps_shared_addresses_and_private_subjects_back,
);
