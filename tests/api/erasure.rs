//! Erasure (GDPR Art. 17): after `eraseContact`, no text column of any table still holds the
//! person's name or address — also when the person was seeded across the product (orders, a
//! ticket, messages, web-form consent, a webhook delivery, idempotent answers); the tombstone
//! remains, memberships end with counters in step, the event is emitted once, repeating changes
//! nothing, and only admins or MANAGE may erase. The consent log stays as proof. The suppression
//! list keeps the address from being re-subscribed without new consent (web forms, bulk
//! additions, sequence steps), and parallel clients cannot break any of it.

use crate::groups::{ADD, CREATE_GROUP};
use crate::on_both_backends;
use crate::support::{Backend, CREATE_CONTACT, TestApp, World};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

const ADD_S: &str = "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) {
    addedCount alreadyMemberCount notFound suppressed group { memberCount } } }";
const CREATE_PUBLIC_GROUP: &str = "mutation($b: ID!, $n: String!, $p: String) {
    createGroup(input: {addressBookId: $b, name: $n, publicName: $p}) { group { id } } }";
const RECORD: &str = "mutation($c: ID!, $g: ID!, $t: ID) {
    recordConsent(input: {contactId: $c, groupId: $g, action: GIVEN, consentTextId: $t}) { entry { action channel } } }";
const CONSENTS: &str = "query($c: ID!) { node(id: $c) { ... on Contact { displayName consents {
    id action channel at textSha256 webFormId webFormVersion confirmationId consentText { version sha256 }
    group { id } agent { subject } note evidence { ip userAgent } } } } }";
const STATUS: &str = "query($c: ID!, $g: ID!) { node(id: $c) { ... on Contact { consentStatus(groupId: $g) } } }";
const MEMBERSHIPS: &str = "query($c: ID!) { contact(id: $c) { memberships { group { id } source } } }";

/// A public group, a consent text and a web form offering the group, intake into `book`.
struct Newsletter {
    group: String,
    text: String,
    form_key: String,
}

async fn newsletter(app: &TestApp, tenant: &str, book: &str, double_opt_in: bool) -> Newsletter {
    let admin = app.actor(tenant, "admin", &["admin"]);
    let d = admin.ok(CREATE_PUBLIC_GROUP, json!({"b": book, "n": "NL-internal", "p": "Newsletter"})).await;
    let group = d["createGroup"]["group"]["id"].as_str().unwrap().to_owned();
    let d = admin
        .ok(
            "mutation { createConsentText(input: {purpose: \"newsletter\", language: \"en\",
                body: \"Send me the newsletter. I can withdraw at any time.\"}) { consentText { id } } }",
            json!({}),
        )
        .await;
    let text = d["createConsentText"]["consentText"]["id"].as_str().unwrap().to_owned();
    let d = admin
        .ok(
            "mutation($i: CreateWebFormInput!) { createWebForm(input: $i) { webForm { key } } }",
            json!({"i": {"name": "Newsletter sign-up", "intakeAddressBookId": book, "groupIds": [group],
                "consentTextId": text, "doubleOptIn": double_opt_in,
                "fields": [{"field": "FIRST_NAME", "required": false}, {"field": "LAST_NAME", "required": false}]}}),
        )
        .await;
    let form_key = d["createWebForm"]["webForm"]["key"].as_str().unwrap().to_owned();
    Newsletter { group, text, form_key }
}

/// Submits the form: (HTTP status, body).
async fn submit(app: &TestApp, form_key: &str, body: Value) -> (u16, Value) {
    let r = app.client.post(app.url(&format!("/public/v1/forms/{form_key}/submissions"))).json(&body).send().await;
    let r = r.expect("submission");
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().await.expect("body")).unwrap_or(Value::Null))
}

async fn create_contact(a: &crate::support::Actor<'_>, input: Value) -> String {
    let d = a.ok(CREATE_CONTACT, json!({"i": input})).await;
    d["createContact"]["contact"]["id"].as_str().unwrap().to_owned()
}

async fn consent_status(a: &crate::support::Actor<'_>, c: &str, g: &str) -> String {
    a.ok(STATUS, json!({"c": c, "g": g})).await["node"]["consentStatus"].as_str().unwrap().to_owned()
}

/// The newest contact whose name or e-mail starts with `search` (visible to `a`).
async fn find_contact(a: &crate::support::Actor<'_>, search: &str) -> Option<String> {
    let d = a
        .ok("query($s: String!) { contacts(filter: {search: $s}) { edges { node { id } } } }", json!({"s": search}))
        .await;
    d["contacts"]["edges"].as_array().unwrap().first().map(|e| e["node"]["id"].as_str().unwrap().to_owned())
}

// ---------------------------------------------------------------------------------------------
// Seeded across the product, then erased: nothing of the person anywhere.

async fn app_with_worker(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| {
        s.webhooks.worker = true;
        s.webhooks.allow_hosts = vec!["127.0.0.1".into()];
        s.webhooks.retry_schedule = vec![chrono::Duration::milliseconds(200), chrono::Duration::milliseconds(200)];
        s.webhooks.poll_interval = Duration::from_millis(30);
        s.webhooks.timeout = Duration::from_secs(2);
    })
    .await
}

/// A webhook receiver on 127.0.0.1 that answers the first request about `target` (a contact id
/// in the event's subjects) with a 500 whose body repeats the person's data — as a careless
/// receiver might — and everything else with 200.
#[derive(Clone, Default)]
struct EchoingReceiver {
    target: Arc<Mutex<Option<String>>>,
    echoed: Arc<Mutex<bool>>,
    got: Arc<Mutex<Vec<String>>>,
}

const ECHO: &str = "unknown customer Zebulon Quuxworth <zebulon.quuxworth@erase.example>, phone +49 30 9876543";

impl EchoingReceiver {
    async fn start() -> (EchoingReceiver, String) {
        let r = EchoingReceiver::default();
        let state = r.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |axum::extract::State(s): axum::extract::State<EchoingReceiver>, body: String| async move {
                        s.got.lock().unwrap().push(body.clone());
                        let about_target = s.target.lock().unwrap().as_ref().is_some_and(|t| body.contains(t.as_str()));
                        let mut echoed = s.echoed.lock().unwrap();
                        if about_target && !*echoed {
                            *echoed = true;
                            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, ECHO.to_owned())
                        } else {
                            (axum::http::StatusCode::OK, "ok".to_owned())
                        }
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (r, format!("http://{addr}/hook"))
    }
}

const DELIVERIES: &str = "query { webhookEndpoints { deliveries(first: 100) { edges { node { status eventType
    attempts { statusCode responseExcerpt } } } } } }";

/// Waits until every delivery succeeded and one attempt was answered with the echo.
async fn wait_for_echoed_delivery(admin: &crate::support::Actor<'_>) {
    let start = Instant::now();
    loop {
        let d = admin.ok(DELIVERIES, json!({})).await;
        let edges = d["webhookEndpoints"][0]["deliveries"]["edges"].as_array().cloned().unwrap_or_default();
        let echoed = edges.iter().any(|e| {
            e["node"]["attempts"].as_array().is_some_and(|a| {
                a.iter().any(|x| x["responseExcerpt"].as_str().is_some_and(|t| t.contains("Quuxworth")))
            })
        });
        if echoed && !edges.is_empty() && edges.iter().all(|e| e["node"]["status"] == "SUCCEEDED") {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the echoed delivery never succeeded: {d:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const CREATE_TICKET: &str =
    "mutation($i: CreateTicketInput!) { createTicket(input: $i) { ticketId replayed ticket { subject description } } }";
const RECEIVE: &str = "mutation($i: ReceiveMessageInput!) { receiveMessage(input: $i) { messageId } }";
const MESSAGE: &str = "query($id: ID!) { message(id: $id) { subject body senderEmail contact { id } } }";

async fn erasure_reaches_data_seeded_across_the_product(app: TestApp) {
    let r = crate::routing::Routing::build(&app).await;
    let w = &r.w;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let email = "Zebulon.Quuxworth@erase.example";
    // A message from the address before anyone knew it: stored unmatched (no contact).
    let d = admin
        .ok(
            RECEIVE,
            json!({"i": {"senderEmail": "ZEBULON.QUUXWORTH@erase.example", "channel": "EMAIL",
                "subject": "Hello from Zebulon", "body": "Zebulon Quuxworth here, call +49 30 9876543"}}),
        )
        .await;
    let unmatched = d["receiveMessage"]["messageId"].as_str().unwrap().to_owned();
    let d = admin.ok(MESSAGE, json!({"id": unmatched})).await;
    assert_eq!(d["message"]["contact"], Value::Null, "not matched to a contact");

    let z = create_contact(
        &admin,
        json!({"addressBookId": w.own, "kind": "PERSON", "firstName": "Zebulon", "lastName": "Quuxworth",
            "emails": [{"address": email}], "phones": [{"number": "+49 30 9876543"}]}),
    )
    .await;
    // A webhook endpoint, and an event about the contact whose first delivery attempt the
    // receiver answers with the person's data (kept as the attempt's response excerpt).
    let (rx, url) = EchoingReceiver::start().await;
    *rx.target.lock().unwrap() = Some(z.clone());
    admin
        .ok(
            "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, eventTypes: [\"contact.*\"]}) { secret } }",
            json!({"u": url}),
        )
        .await;
    admin
        .ok(
            "mutation($c: ID!) { setContactBusinessStatus(input: {contactId: $c, status: \"lead_hot\",
                note: \"Zebulon Quuxworth called from +49 30 9876543\"}) { contact { id } } }",
            json!({"c": z}),
        )
        .await;

    // Orders (amounts stay, personal data goes).
    admin
        .ok(
            "mutation { createProduct(input: {sku: \"ER-1\", name: \"Widget\", listPrice: \"10\", currency: \"EUR\"}) { product { id } } }",
            json!({}),
        )
        .await;
    let order = "mutation($c: ID!) { placeOrder(input: {contactId: $c, currency: \"EUR\", lines: [{sku: \"ER-1\", quantity: \"3\"}]}) { order { id total } } }";
    let d = admin.ok(order, json!({"c": z})).await;
    let order_id = d["placeOrder"]["order"]["id"].as_str().unwrap().to_owned();
    let total = d["placeOrder"]["order"]["total"].clone();
    admin.ok(order, json!({"c": z})).await;

    // A ticket, created idempotently: the answer (and its replay) show the subject.
    let d = admin
        .ok("mutation { createBusinessCalendar(input: {name: \"24x7\", timeZone: \"UTC\", alwaysOpen: true}) { businessCalendar { id } } }", json!({}))
        .await;
    let cal = d["createBusinessCalendar"]["businessCalendar"]["id"].clone();
    let d = admin
        .ok(
            "mutation($c: ID!) { createSlaContract(input: {name: \"Basic\", rank: 1, calendarId: $c, defaultTargets: {resolutionMinutes: 600}}) { slaContract { id } } }",
            json!({"c": cal}),
        )
        .await;
    let sla = d["createSlaContract"]["slaContract"]["id"].clone();
    admin
        .ok(
            "mutation($c: ID) { setTenantDefaultSla(input: {slaContractId: $c}) { slaContract { name } } }",
            json!({"c": sla}),
        )
        .await;
    let ticket_input = json!({"i": {"contactId": z, "subject": "Zebulon Quuxworth cannot log in", "channel": "EMAIL",
        "description": "Reach me at zebulon.quuxworth@erase.example or +49 30 9876543", "idempotencyKey": "ticket-zq-1"}});
    let first = admin.ok(CREATE_TICKET, ticket_input.clone()).await;
    assert_eq!(first["createTicket"]["ticket"]["subject"], "Zebulon Quuxworth cannot log in");
    let replay = admin.ok(CREATE_TICKET, ticket_input.clone()).await;
    assert_eq!(replay["createTicket"]["replayed"], true);

    // Messages: one named by contact, one matched by its address.
    admin
        .ok(
            RECEIVE,
            json!({"i": {"contactId": z, "channel": "EMAIL", "subject": "Invoice for Quuxworth", "body": "Dear Zebulon, …"}}),
        )
        .await;
    let d = admin
        .ok(
            RECEIVE,
            json!({"i": {"senderEmail": email, "channel": "EMAIL", "subject": "Re: Zebulon", "body": "Regards, Z. Quuxworth"}}),
        )
        .await;
    let matched = d["receiveMessage"]["messageId"].as_str().unwrap().to_owned();
    assert_eq!(admin.ok(MESSAGE, json!({"id": matched})).await["message"]["contact"]["id"], z.as_str());

    // Web-form consent (single opt-in: the form's intake book is the contact's, so the
    // submission finds it by its address and it joins at once).
    let nl = newsletter(&app, &w.tenant, &w.own, false).await;
    let (s, b) = submit(
        &app,
        &nl.form_key,
        json!({"email": email, "firstName": "Zebulon", "lastName": "Quuxworth", "groups": [nl.group]}),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(consent_status(&admin, &z, &nl.group).await, "CONFIRMED");

    // Memberships added idempotently, and one ended with a reason that names the person.
    let g = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Key accounts"}})).await;
    let g = g["createGroup"]["group"]["id"].as_str().unwrap().to_owned();
    let d = admin.ok(ADD_S, json!({"i": {"groupId": g, "contactIds": [z], "idempotencyKey": "add-zq-1"}})).await;
    assert_eq!(d["addGroupMembers"]["addedCount"], 1);
    let g2 = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Former"}})).await;
    let g2 = g2["createGroup"]["group"]["id"].as_str().unwrap().to_owned();
    admin.ok(ADD_S, json!({"i": {"groupId": g2, "contactIds": [z]}})).await;
    admin
        .ok(
            "mutation($g: ID!, $c: ID!) { removeGroupMembers(input: {groupId: $g, contactIds: [$c], reason: \"Zebulon asked\"}) { removedCount } }",
            json!({"g": g2, "c": z}),
        )
        .await;

    wait_for_echoed_delivery(&admin).await;
    let needles = ["zebulon", "quuxworth", "zebulon.quuxworth@erase.example", "9876543"];
    let before = scan(&app, &needles).await;
    for place in [
        "webhook_attempts.response_excerpt",
        "messages.subject",
        "messages.sender_email",
        "tickets.subject",
        "tickets.description",
        "contact_status_history.note",
        "membership_history.reason",
    ] {
        assert!(
            before.iter().any(|h| h.contains(place)),
            "the seed should have put the person into {place}: {before:#?}"
        );
    }

    admin.ok(ERASE, json!({"c": z, "r": "Art. 17 request 2026-12-03"})).await;
    let hits = scan(&app, &needles).await;
    assert!(hits.is_empty(), "personal data left after erasure: {hits:#?}");

    // What stays: the orders with their amounts, the ticket (without its texts), the messages.
    let d =
        admin.ok("query($o: ID!) { order(id: $o) { total contact { displayName } } }", json!({"o": order_id})).await;
    assert_eq!(d["order"]["total"], total);
    assert_eq!(d["order"]["contact"]["displayName"], "Erased contact");
    let again = admin.ok(CREATE_TICKET, ticket_input).await;
    assert_eq!(again["createTicket"]["replayed"], true);
    assert_eq!(again["createTicket"]["ticketId"], first["createTicket"]["ticketId"]);
    assert!(!again.to_string().to_lowercase().contains("zebulon"), "{again:#}");
    let d = admin.ok(MESSAGE, json!({"id": unmatched})).await;
    assert_eq!(d["message"]["senderEmail"], Value::Null);
    assert!(!d.to_string().to_lowercase().contains("zebulon"), "{d:#}");
    // The worker goes on delivering (the erasure's own event included) without the person's data.
    let start = Instant::now();
    while !rx.got.lock().unwrap().iter().any(|b| b.contains("contact.erased")) {
        assert!(start.elapsed() < Duration::from_secs(20), "contact.erased was never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hits = scan(&app, &needles).await;
    assert!(hits.is_empty(), "personal data written after erasure: {hits:#?}");
}

// ---------------------------------------------------------------------------------------------
// Consent proof remains.

async fn consent_proof_remains_after_erasure(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let nl = newsletter(&app, &w.tenant, &w.own, true).await;
    let email = "yolanda.xylo@erase.example";
    let (s, b) =
        submit(&app, &nl.form_key, json!({"email": email, "firstName": "Yolanda", "lastName": "Xylophant"})).await;
    assert_eq!((s, b["confirmationRequired"].as_bool()), (202, Some(true)), "{b}");
    let y = find_contact(&admin, email).await.expect("the submission created the contact");
    // The person confirms through the link the mailer would send.
    let d = admin
        .ok(
            "{ events(first: 100, types: [\"consent.confirmation_requested\"]) { edges { node { payload } } } }",
            json!({}),
        )
        .await;
    let url = d["events"]["edges"][0]["node"]["payload"]["confirmationUrl"].as_str().unwrap().to_owned();
    let path = &url[url.find("/public/v1/").unwrap()..];
    let r = app.client.get(app.url(path)).header("accept", "application/json").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(consent_status(&admin, &y, &nl.group).await, "CONFIRMED");
    // Later an agent records the withdrawal the person phoned in.
    agent
        .ok(
            "mutation($c: ID!, $g: ID!) { recordConsent(input: {contactId: $c, groupId: $g, action: WITHDRAWN, note: \"by phone\"}) { entry { action } } }",
            json!({"c": y, "g": nl.group}),
        )
        .await;
    let before = admin.ok(CONSENTS, json!({"c": y})).await["node"]["consents"].clone();
    let actions: Vec<&str> = before.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions.len(), 3, "{before:#}");
    for a in ["GIVEN", "CONFIRMED", "WITHDRAWN"] {
        assert!(actions.contains(&a), "{before:#}");
    }

    admin.ok(ERASE, json!({"c": y, "r": "Art. 17 request 88"})).await;
    let after = admin.ok(CONSENTS, json!({"c": y})).await;
    assert_eq!(after["node"]["displayName"], "Erased contact");
    // Every entry, with its action, time, channel, form version, wording and hash, unchanged.
    assert_eq!(after["node"]["consents"], before, "the consent log is proof and stays as it was");
    let given = before.as_array().unwrap().iter().find(|e| e["action"] == "GIVEN").unwrap();
    assert_eq!(given["channel"], "WEB_FORM");
    assert!(given["textSha256"].as_str().is_some_and(|h| h.len() == 64), "{given}");
    assert_eq!(given["consentText"]["sha256"], given["textSha256"]);
    assert!(given["webFormVersion"].is_number() && given["at"].is_string() && given["confirmationId"].is_string());
    let text = after.to_string().to_lowercase();
    for gone in ["yolanda", "xylophant", email] {
        assert!(!text.contains(gone), "{gone} is in the consent proof: {after:#}");
    }
    // Nothing of the person anywhere, the consent log's table included.
    let hits = scan(&app, &["yolanda", "xylophant", email]).await;
    assert!(hits.is_empty(), "personal data left after erasure: {hits:#?}");
    // The current standing follows the log: withdrawn.
    assert_eq!(consent_status(&admin, &y, &nl.group).await, "WITHDRAWN");
}

// ---------------------------------------------------------------------------------------------
// Suppression: no re-subscription without new consent.

async fn suppressed_addresses_join_public_groups_only_with_new_consent(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let agent = app.actor(&w.tenant, "agent", &["agent"]);
    let nl = newsletter(&app, &w.tenant, &w.own, false).await;
    let internal = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Internal list"}})).await;
    let internal = internal["createGroup"]["group"]["id"].as_str().unwrap().to_owned();
    let email = "xaver.vintner@erase.example";
    let x = create_contact(
        &admin,
        json!({"addressBookId": w.own, "kind": "PERSON", "firstName": "Xaver", "lastName": "Vintner", "emails": [{"address": email}]}),
    )
    .await;
    admin.ok(ADD_S, json!({"i": {"groupId": nl.group, "contactIds": [x]}})).await;
    admin.ok(ERASE, json!({"c": x, "r": "Art. 17 request 12"})).await;

    // 1. The single opt-in form asks for confirmation now: no membership before it, a
    //    confirmation request instead. The public answer is the form's usual one — exactly what a
    //    fresh address gets — so the endpoint cannot be used to test whether an address belonged
    //    to an erased person; the person learns it from the confirmation mail.
    let (s, fresh) = submit(&app, &nl.form_key, json!({"email": "fresh@erase.example", "groups": [nl.group]})).await;
    assert_eq!(s, 202, "{fresh}");
    let fresh_contact = find_contact(&admin, "fresh@erase.example").await.expect("a new contact");
    assert_eq!(consent_status(&admin, &fresh_contact, &nl.group).await, "CONFIRMED", "single opt-in");
    let (s, b) =
        submit(&app, &nl.form_key, json!({"email": "Xaver.Vintner@Erase.example", "groups": [nl.group]})).await;
    assert_eq!((s, &b), (202, &fresh), "a suppressed address is answered like any other");
    let by_form = find_contact(&admin, email).await.expect("the submission made a new contact");
    assert_ne!(by_form, x);
    assert_eq!(consent_status(&admin, &by_form, &nl.group).await, "PENDING");
    assert_eq!(admin.ok(MEMBERSHIPS, json!({"c": by_form})).await["contact"]["memberships"], json!([]));
    let d = admin
        .ok(
            "{ events(first: 100, types: [\"consent.confirmation_requested\"]) { edges { node { subjects } } } }",
            json!({}),
        )
        .await;
    let asked = d["events"]["edges"].as_array().unwrap();
    assert_eq!(asked.len(), 1, "one confirmation request, for the suppressed address: {d:#}");
    assert!(asked[0]["node"]["subjects"].to_string().contains(&by_form), "{d:#}");

    // 2. A new contact with the address (another spelling), added to the public group by any
    //    non-consent path: not added, reported as suppressed. A hidden contact with the address
    //    stays `notFound`, exactly like an unknown id.
    let y = create_contact(
        &agent,
        json!({"addressBookId": w.own, "kind": "PERSON", "lastName": "Newcomer", "emails": [{"address": "XAVER.VINTNER@Erase.Example"}]}),
    )
    .await;
    let hidden = create_contact(
        &admin,
        json!({"addressBookId": w.hidden, "kind": "PERSON", "lastName": "Hidden twin", "emails": [{"address": email}]}),
    )
    .await;
    let unknown = cohort_api::graphql::ids::encode("Contact", uuid::Uuid::now_v7()).to_string();
    let d =
        agent.ok(ADD_S, json!({"i": {"groupId": nl.group, "contactIds": [y, w.id("anna"), hidden, unknown, y]}})).await;
    let a = &d["addGroupMembers"];
    assert_eq!(a["addedCount"], 1, "{d:#}");
    assert_eq!(a["alreadyMemberCount"], 0);
    assert_eq!(a["suppressed"], json!([y]));
    assert_eq!(a["notFound"], json!([hidden, unknown]));
    assert_eq!(a["group"]["memberCount"], 2, "anna and the fresh subscriber");
    for source in ["ASSIGNED", "IMPORT", "API", "AUTOMATION"] {
        let d =
            agent.ok(ADD_S, json!({"i": {"groupId": nl.group, "contactIds": [y, by_form], "source": source}})).await;
        assert_eq!(d["addGroupMembers"]["addedCount"], 0, "{source}: {d:#}");
        assert_eq!(d["addGroupMembers"]["suppressed"], json!([y, by_form]), "{source}");
    }
    // Idempotent: the replay answers the same, suppressed list included.
    let keyed = json!({"i": {"groupId": nl.group, "contactIds": [y, w.id("bruno")], "idempotencyKey": "sup-1"}});
    let first = agent.ok(ADD_S, keyed.clone()).await;
    assert_eq!(first["addGroupMembers"]["suppressed"], json!([y]));
    assert_eq!(first["addGroupMembers"]["addedCount"], 1);
    assert_eq!(agent.ok(ADD_S, keyed).await, first);
    // The outsider, who cannot see the group's book, learns nothing either.
    let outsider = app.actor(&w.tenant, "outsider", &["agent"]);
    assert_eq!(outsider.err(ADD_S, json!({"i": {"groupId": nl.group, "contactIds": [y]}})).await, "NOT_FOUND");
    let d = admin.ok(MEMBERSHIPS, json!({"c": y})).await;
    assert_eq!(d["contact"]["memberships"], json!([]), "nothing was written for the suppressed contact");

    // 3. A group without a public name is no subscription: the contact is added.
    let d = agent.ok(ADD_S, json!({"i": {"groupId": internal, "contactIds": [y]}})).await;
    assert_eq!(d["addGroupMembers"]["addedCount"], 1);
    assert_eq!(d["addGroupMembers"]["suppressed"], json!([]));

    // 4. New consent recorded by an agent (WRITE) is the way in.
    let d = agent.ok(RECORD, json!({"c": y, "g": nl.group, "t": nl.text})).await;
    assert_eq!(d["recordConsent"]["entry"]["channel"], "AGENT_ON_BEHALF");
    let d = admin.ok(MEMBERSHIPS, json!({"c": y})).await;
    let groups: Vec<&str> =
        d["contact"]["memberships"].as_array().unwrap().iter().map(|m| m["group"]["id"].as_str().unwrap()).collect();
    assert!(groups.contains(&nl.group.as_str()) && groups.contains(&internal.as_str()), "{d:#}");
    assert_eq!(consent_status(&admin, &y, &nl.group).await, "CONFIRMED");

    // 5. The tombstone itself joins nothing, not even a group without a public name, and takes
    //    neither new consent nor new data.
    let d = admin.ok(ADD_S, json!({"i": {"groupId": internal, "contactIds": [x]}})).await;
    assert_eq!(
        (d["addGroupMembers"]["addedCount"].as_i64(), &d["addGroupMembers"]["suppressed"]),
        (Some(0), &json!([x]))
    );
    assert_eq!(admin.err(RECORD, json!({"c": x, "g": nl.group, "t": nl.text})).await, "CONFLICT");
    let update = "mutation($c: ID!) { updateContact(input: {id: $c, firstName: \"Xaver\"}) { contact { id } } }";
    assert_eq!(admin.err(update, json!({"c": x})).await, "CONFLICT");
    let d = admin.ok("query($c: ID!) { contact(id: $c) { displayName emails { address } } }", json!({"c": x})).await;
    assert_eq!(d["contact"], json!({"displayName": "Erased contact", "emails": []}));
}

/// The check is set-based: adding two contacts or forty to a public group costs the same number
/// of statements.
async fn the_suppression_check_is_one_statement_set_per_call(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let nl = newsletter(&app, &w.tenant, &w.own, false).await;
    let gone = create_contact(
        &admin,
        json!({"addressBookId": w.own, "kind": "PERSON", "lastName": "Gone", "emails": [{"address": "gone@erase.example"}]}),
    )
    .await;
    admin.ok(ERASE, json!({"c": gone, "r": "request 1"})).await;
    let mut ids = vec![];
    for i in 0..41 {
        let email = if i % 10 == 0 { "gone@erase.example".to_owned() } else { format!("member{i}@erase.example") };
        ids.push(
            create_contact(
                &admin,
                json!({"addressBookId": w.own, "kind": "PERSON", "lastName": format!("Member {i}"),
                    "emails": [{"address": email}, {"address": format!("second{i}@erase.example")}]}),
            )
            .await,
        );
    }
    let mut costs = vec![];
    // Each batch has suppressed and other contacts: the same kinds of writes, 2 or 39 contacts.
    for batch in [&ids[0..2], &ids[2..41]] {
        let before = crate::support::statements(&app).await;
        let d = admin.ok(ADD_S, json!({"i": {"groupId": nl.group, "contactIds": batch}})).await;
        costs.push(crate::support::statements(&app).await - before);
        let suppressed = d["addGroupMembers"]["suppressed"].as_array().unwrap().len();
        assert_eq!(suppressed + d["addGroupMembers"]["addedCount"].as_u64().unwrap() as usize, batch.len());
    }
    assert_eq!(costs[0], costs[1], "statements must not grow with the number of contacts: {costs:?}");
    let d = admin.ok("query($g: ID!) { group(id: $g) { memberCount } }", json!({"g": nl.group})).await;
    assert_eq!(d["group"]["memberCount"], 41 - 5);
}

/// A sequence step that adds to a public group is automation, not consent.
async fn sequence_steps_do_not_subscribe_suppressed_addresses(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let nl = newsletter(&app, &w.tenant, &w.own, false).await;
    let leads = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Leads"}})).await;
    let leads = leads["createGroup"]["group"]["id"].as_str().unwrap().to_owned();
    let gone = create_contact(
        &admin,
        json!({"addressBookId": w.own, "kind": "PERSON", "lastName": "Gone", "emails": [{"address": "gone@erase.example"}]}),
    )
    .await;
    admin.ok(ERASE, json!({"c": gone, "r": "request 2"})).await;
    let y = create_contact(
        &admin,
        json!({"addressBookId": w.own, "kind": "PERSON", "lastName": "Again", "emails": [{"address": "gone@erase.example"}]}),
    )
    .await;
    let d = admin
        .ok(
            "mutation($i: CreateSequenceInput!) { createSequence(input: $i) { sequence { id } } }",
            json!({"i": {"name": "Subscribe leads", "startGroupId": leads,
                "steps": [{"delay": "P0D", "action": "ADD_TO_GROUP", "groupId": nl.group}]}}),
        )
        .await;
    let seq = d["createSequence"]["sequence"]["id"].as_str().unwrap().to_owned();
    let d = admin.ok(ADD_S, json!({"i": {"groupId": leads, "contactIds": [y, w.id("anna")]}})).await;
    assert_eq!(d["addGroupMembers"]["addedCount"], 2, "the start group has no public name");
    let q = "query($s: ID!) { node(id: $s) { ... on Sequence { enrolments(first: 20) { edges { node {
        status contact { id } stepRuns { outcome detail } } } } } } }";
    let start = Instant::now();
    let runs = loop {
        let d = admin.ok(q, json!({"s": seq})).await;
        let e: Vec<Value> =
            d["node"]["enrolments"]["edges"].as_array().unwrap().iter().map(|x| x["node"].clone()).collect();
        if e.len() == 2 && e.iter().all(|x| x["status"] == "COMPLETED") {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the steps never ran: {e:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for e in &runs {
        let run = &e["stepRuns"][0];
        if e["contact"]["id"] == y.as_str() {
            assert_eq!(run["outcome"], "FAILED", "{e:#}");
            assert!(run["detail"].as_str().unwrap().contains("suppression list"), "{e:#}");
        } else {
            assert_eq!(run["outcome"], "DONE", "{e:#}");
        }
    }
    let d = admin
        .ok(
            "query($g: ID!) { group(id: $g) { memberCount members { edges { node { id } } } } }",
            json!({"g": nl.group}),
        )
        .await;
    assert_eq!(d["group"]["memberCount"], 1);
    assert_eq!(d["group"]["members"]["edges"][0]["node"]["id"], w.id("anna"));
}

// ---------------------------------------------------------------------------------------------
// Parallel clients.

/// Eight erasures of one contact race additions of it to a public and a private group, removals
/// and updates of it. Whatever the interleaving: one `contact.erased` event, one audit entry, no
/// membership of the contact left, counters equal to the membership rows, the history balanced,
/// nothing of the person's data, and no client answered with `INTERNAL`.
async fn parallel_erasures_and_changes_keep_the_invariants(app: TestApp) {
    let w = World::build(&app).await;
    let admin = app.actor(&w.tenant, "admin", &["admin"]);
    let nl = newsletter(&app, &w.tenant, &w.own, false).await;
    let private = admin.ok(CREATE_GROUP, json!({"i": {"addressBookId": w.own, "name": "Private"}})).await;
    let private = private["createGroup"]["group"]["id"].as_str().unwrap().to_owned();
    let z = create_contact(
        &admin,
        json!({"addressBookId": w.own, "kind": "PERSON", "firstName": "Wilhelmina", "lastName": "Parallax",
            "emails": [{"address": "wilhelmina.parallax@erase.example"}], "phones": [{"number": "+43 1 5554433"}]}),
    )
    .await;
    admin.ok(ADD_S, json!({"i": {"groupId": nl.group, "contactIds": [z]}})).await;
    admin.ok(ADD_S, json!({"i": {"groupId": private, "contactIds": [z]}})).await;

    let mut calls: Vec<(&'static str, Value)> = vec![];
    for i in 0..8 {
        calls.push((
            "eraseContact",
            json!({"query": ERASE, "variables": {"c": z, "r": format!("Art. 17 request, try {i}")}}),
        ));
    }
    for i in 0..6 {
        let g = if i % 2 == 0 { &nl.group } else { &private };
        let other = if i % 3 == 0 { w.id("anna") } else { w.id("bruno") };
        let ids = if i % 4 >= 2 { json!([other, z]) } else { json!([z, other]) };
        calls.push(("addGroupMembers", json!({"query": ADD_S, "variables": {"i": {"groupId": g, "contactIds": ids}}})));
    }
    for i in 0..2 {
        let g = if i == 0 { &nl.group } else { &private };
        calls.push((
            "removeGroupMembers",
            json!({"query": "mutation($g: ID!, $c: ID!) { removeGroupMembers(input: {groupId: $g, contactIds: [$c]}) { removedCount } }",
                "variables": {"g": g, "c": z}}),
        ));
    }
    for i in 0..4 {
        calls.push((
            "updateContact",
            json!({"query": "mutation($c: ID!, $n: String!) { updateContact(input: {id: $c, firstName: $n, emails: [{address: \"wilhelmina.parallax@erase.example\"}]}) { contact { id } } }",
                "variables": {"c": z, "n": format!("Wilhelmina{i}")}}),
        ));
    }
    let token = app.token(&w.tenant, "admin", &["admin"]);
    let url = app.url("/graphql");
    let mut tasks = vec![];
    // Interleaved, so every kind of call is in flight at once.
    let n = calls.len();
    for k in 0..n {
        let (op, body) = calls[(k * 7) % n].clone();
        let (url, token) = (url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.expect("request");
            (op, r.json::<Value>().await.expect("json"))
        }));
    }
    let mut erased_at = vec![];
    for t in tasks {
        let (op, body) = t.await.expect("task");
        if let Some(errors) = body.get("errors") {
            let codes: Vec<&str> =
                errors.as_array().unwrap().iter().filter_map(|e| e["extensions"]["code"].as_str()).collect();
            assert!(!codes.contains(&"INTERNAL"), "{op} answered INTERNAL: {body:#}");
            // Only an update that came after the erasure may be refused (the tombstone is final).
            assert_eq!((op, codes.as_slice()), ("updateContact", &["CONFLICT"][..]), "{body:#}");
            continue;
        }
        match op {
            "eraseContact" => erased_at.push(body["data"]["eraseContact"]["erasedAt"].clone()),
            "addGroupMembers" => {
                let a = &body["data"]["addGroupMembers"];
                assert!(a["notFound"].as_array().unwrap().is_empty(), "{body:#}");
            }
            _ => {}
        }
    }
    assert_eq!(erased_at.len(), 8, "every erasure answered");
    assert!(erased_at.windows(2).all(|p| p[0] == p[1]), "every erasure answers the one erasure: {erased_at:?}");

    let ev = admin.ok(ERASED_EVENTS, json!({})).await;
    assert_eq!(ev["events"]["edges"].as_array().map(Vec::len), Some(1), "{ev:#}");
    let audit = admin
        .ok(
            "query($s: ID!) { auditLog(filter: {action: \"contact.erase\", subjectId: $s}, first: 20) { totalCount } }",
            json!({"s": z}),
        )
        .await;
    assert_eq!(audit["auditLog"]["totalCount"], 1, "{audit:#}");
    assert_eq!(admin.ok(MEMBERSHIPS, json!({"c": z})).await["contact"]["memberships"], json!([]));
    // Counters against rows, for every group and book; the history against the rows, per pair.
    let mismatched_counters = cohort_store::testing::count_unchecked(
        &app.store,
        "SELECT COUNT(*) AS n FROM (SELECT tenant_id, group_id, address_book_id, COUNT(*) AS c FROM group_memberships
            GROUP BY tenant_id, group_id, address_book_id) m
         FULL OUTER JOIN group_member_counts gc ON gc.tenant_id = m.tenant_id AND gc.group_id = m.group_id
            AND gc.address_book_id = m.address_book_id
         WHERE COALESCE(m.c, 0) <> COALESCE(gc.member_count, 0)",
    )
    .await
    .expect("counters");
    assert_eq!(mismatched_counters, 0, "member counters differ from the membership rows");
    let unbalanced = cohort_store::testing::count_unchecked(
        &app.store,
        "SELECT COUNT(*) AS n FROM (SELECT tenant_id, group_id, contact_id,
            SUM(CASE WHEN action = 'JOIN' THEN 1 ELSE -1 END) AS balance FROM membership_history
            GROUP BY tenant_id, group_id, contact_id) h
         LEFT JOIN group_memberships m ON m.tenant_id = h.tenant_id AND m.group_id = h.group_id AND m.contact_id = h.contact_id
         WHERE h.balance <> CASE WHEN m.contact_id IS NULL THEN 0 ELSE 1 END",
    )
    .await
    .expect("history");
    assert_eq!(unbalanced, 0, "every JOIN is followed by one LEAVE exactly when the membership ended");
    let d = admin
        .ok(
            "query($g: ID!) { group(id: $g) { memberCount members(first: 100) { totalCount } } }",
            json!({"g": nl.group}),
        )
        .await;
    assert_eq!(d["group"]["memberCount"], d["group"]["members"]["totalCount"]);
    let hits = scan(&app, &["wilhelmina", "parallax", "5554433"]).await;
    assert!(hits.is_empty(), "personal data left after erasure: {hits:#?}");
    // And the address stays suppressed.
    let again = create_contact(
        &admin,
        json!({"addressBookId": w.own, "kind": "PERSON", "lastName": "Again", "emails": [{"address": "wilhelmina.parallax@erase.example"}]}),
    )
    .await;
    let d = admin.ok(ADD_S, json!({"i": {"groupId": nl.group, "contactIds": [again]}})).await;
    assert_eq!(d["addGroupMembers"]["suppressed"], json!([again]));
}

on_both_backends!(
    erase_scrubs_every_text_column,
    erased_contacts_leave_lists_and_counts,
    consent_proof_remains_after_erasure,
    suppressed_addresses_join_public_groups_only_with_new_consent,
    the_suppression_check_is_one_statement_set_per_call,
    parallel_erasures_and_changes_keep_the_invariants,
);

crate::on_both_backends_with!(app_with_worker;
    erasure_reaches_data_seeded_across_the_product,
    sequence_steps_do_not_subscribe_suppressed_addresses,
);
