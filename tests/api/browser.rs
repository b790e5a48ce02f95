//! Real headless Chromium against the public pages: a person opens the preference centre from
//! the link in a message, unticks a group and saves, and the change lands in the consent log,
//! the memberships and their history. Driven through the W3C WebDriver protocol with the shared
//! client in `webdriver.rs` (`chromedriver` as a child process).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`).
//! Without them the test says it is skipped — unless `COHORT_TEST_REQUIRE_BROWSER=1` (CI), then it
//! fails. Screenshots go to `$COHORT_ARTIFACTS_DIR` (default `target/ci-artifacts`).
//!
//! Every wait is bounded (polls up to the session's wait, 10 s); nothing asserts on timing.

use crate::on_both_backends;
use crate::support::{Actor, Backend, TestApp};
use crate::webdriver::{ChromeDriver, SessionOptions, browser_available, save_screenshot};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// The test

const TENANT: &str = "sunny";
const GR_INTERNAL: &str = "GR-2026-internal";
const IT_INTERNAL: &str = "IT-2026-internal";
const BOOK_INTERNAL: &str = "Intake book 2026 (internal)";
const FORM_INTERNAL: &str = "Homepage signup form (internal)";

const CREATE_GROUP: &str = "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }";
const MEMBERS: &str = "query($g: ID!) { group(id: $g) {
    members(first: 50) { edges { node { id } source consent { action channel } } }
    membershipHistory(first: 50) { edges { node { action source contact { id } } } } } }";
const CONTACT: &str = "query($c: ID!, $gr: ID!, $it: ID!) { contact(id: $c) {
    greece: consentStatus(groupId: $gr) italy: consentStatus(groupId: $it)
    consents { action channel group { id } } } }";

on_both_backends!(preference_centre_in_chromium);

/// A public group (internal name and public name differ on purpose).
async fn create_group(admin: &Actor<'_>, book: &str, internal: &str, public: &str, description: &str) -> String {
    let i = json!({"name": internal, "addressBookId": book, "publicName": public, "publicDescription": description});
    let d = admin.ok(CREATE_GROUP, json!({"i": i})).await;
    d["createGroup"]["group"]["id"].as_str().unwrap().to_owned()
}

async fn preference_centre_in_chromium(app: TestApp) {
    if !browser_available() {
        return;
    }
    let backend = match app.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let admin = app.actor(TENANT, "admin", &["admin"]);

    // ---- Set-up through GraphQL: a public profile, two public groups, a single opt-in form.
    let d = admin
        .ok("mutation { setPublicProfile(input: {publicName: \"Sunny Travel\"}) { publicName } }", json!({}))
        .await;
    assert_eq!(d["setPublicProfile"]["publicName"], "Sunny Travel");
    let d = admin.ok(crate::support::CREATE_BOOK, json!({"n": BOOK_INTERNAL})).await;
    let book = d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    let greece = create_group(&admin, &book, GR_INTERNAL, "Greece", "Island hopping and city breaks in Athens").await;
    let italy = create_group(&admin, &book, IT_INTERNAL, "Italy", "Rome, Florence and the lakes").await;
    let d = admin
        .ok(
            "mutation($i: CreateConsentTextInput!) { createConsentText(input: $i) { consentText { id sha256 } } }",
            json!({"i": {"purpose": "travel-offers", "language": "en",
                         "body": "Yes, send me travel offers for the destinations I chose. I can withdraw at any time."}}),
        )
        .await;
    let text = d["createConsentText"]["consentText"]["id"].as_str().unwrap().to_owned();
    let d = admin
        .ok(
            "mutation($i: CreateWebFormInput!) { createWebForm(input: $i) { webForm { id key } } }",
            json!({"i": {"name": FORM_INTERNAL, "intakeAddressBookId": book, "groupIds": [greece, italy],
                         "consentTextId": text, "doubleOptIn": false, "fields": [], "allowedOrigins": []}}),
        )
        .await;
    let key = d["createWebForm"]["webForm"]["key"].as_str().unwrap().to_owned();

    // ---- Eva signs up for both on the website.
    let resp = app
        .client
        .post(app.url(&format!("/public/v1/forms/{key}/submissions")))
        .json(&json!({"email": "eva@example.com", "groups": [greece, italy]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202, "submission: {}", resp.text().await.unwrap_or_default());
    let d = admin.ok("{ contacts(filter: {search: \"eva\"}) { totalCount edges { node { id } } } }", json!({})).await;
    assert_eq!(d["contacts"]["totalCount"], 1, "{d:#}");
    let eva = d["contacts"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    for g in [&greece, &italy] {
        let d = admin.ok(MEMBERS, json!({"g": g})).await;
        let edges = d["group"]["members"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{d:#}");
        assert_eq!(edges[0]["node"]["id"], eva.as_str());
        assert_eq!(edges[0]["source"], "WEB_FORM");
    }
    let d = admin
        .ok("query($c: ID!) { preferenceLink(contactId: $c) { url listUnsubscribe expiresAt } }", json!({"c": eva}))
        .await;
    let link = d["preferenceLink"]["url"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}/public/v1/preferences/", app.base)), "{link}");

    // ---- In Chromium: open the link, untick Italy, save.
    let driver = ChromeDriver::start().await;
    {
        let b = driver.session(SessionOptions { languages: Some("en-GB,en"), ..SessionOptions::default() }).await;
        b.goto(&link).await;
        b.wait_text("h1", "Your subscriptions").await;
        let html = b.find("html").await;
        assert_eq!(b.attribute(&html, "lang").await.as_deref(), Some("en"));
        let org = b.find("header strong").await;
        assert_eq!(b.text(&org).await.trim(), "Sunny Travel");
        let labels = b.find_all("label").await;
        let mut names = vec![];
        for l in &labels {
            names.push(b.text(l).await.trim().to_owned());
        }
        assert_eq!(names, ["Greece", "Italy"], "the checkboxes' labels");
        let source = b.source().await;
        assert!(source.contains("Sunny Travel") && source.contains("Greece") && source.contains("Italy"));
        for internal in [GR_INTERNAL, IT_INTERNAL, BOOK_INTERNAL, FORM_INTERNAL, TENANT] {
            assert!(!source.contains(internal), "the page shows the internal name {internal:?}:\n{source}");
        }
        let gr_box = format!("input[type=checkbox][name=subscribed][value=\"{greece}\"]");
        let it_box = format!("input[type=checkbox][name=subscribed][value=\"{italy}\"]");
        let (gr, it) = (b.find(&gr_box).await, b.find(&it_box).await);
        assert!(b.selected(&gr).await, "Greece starts ticked");
        assert!(b.selected(&it).await, "Italy starts ticked");
        assert!(b.try_find("#saved").await.is_none(), "no confirmation before saving");

        b.click(&it).await;
        assert!(!b.selected(&it).await, "the click unticked Italy");
        let save = b.find("button[name=action][value=save]").await;
        b.click(&save).await;

        // Post/redirect/get: the page comes back with the confirmation line.
        let saved = b.find("#saved").await;
        assert_eq!(b.text(&saved).await.trim(), "Your choices have been saved.");
        let url = b.current_url().await;
        assert!(url.starts_with(&link) && url.ends_with("?saved=1"), "after saving the browser is at {url}");
        let (gr, it) = (b.find(&gr_box).await, b.find(&it_box).await);
        assert!(b.selected(&gr).await, "Greece is still ticked after saving");
        assert!(!b.selected(&it).await, "Italy is unticked after saving");
        let source = b.source().await;
        for internal in [GR_INTERNAL, IT_INTERNAL] {
            assert!(!source.contains(internal), "the saved page shows the internal name {internal:?}");
        }
        save_screenshot(&format!("preference-centre-{backend}.png"), &b.screenshot().await);
    }

    // ---- What it did, through GraphQL.
    let d = admin.ok(MEMBERS, json!({"g": italy})).await;
    assert_eq!(d["group"]["members"]["edges"], json!([]), "Italy has no members: {d:#}");
    let history = d["group"]["membershipHistory"]["edges"].as_array().unwrap();
    assert!(
        history.iter().any(|e| e["node"]["action"] == "LEAVE"
            && e["node"]["source"] == "SELF_SERVICE"
            && e["node"]["contact"]["id"] == eva.as_str()),
        "Italy's history has Eva's LEAVE through the preference centre: {d:#}"
    );
    let d = admin.ok(MEMBERS, json!({"g": greece})).await;
    let edges = d["group"]["members"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "Greece keeps Eva: {d:#}");
    assert_eq!(edges[0]["node"]["id"], eva.as_str());
    assert_eq!(edges[0]["source"], "WEB_FORM");

    let d = admin.ok(CONTACT, json!({"c": eva, "gr": greece, "it": italy})).await;
    assert_eq!(d["contact"]["italy"], "WITHDRAWN", "{d:#}");
    assert_eq!(d["contact"]["greece"], "CONFIRMED", "{d:#}");
    let consents = d["contact"]["consents"].as_array().unwrap();
    assert!(
        consents.iter().any(|c| c["action"] == "WITHDRAWN"
            && c["channel"] == "PREFERENCE_LINK"
            && c["group"]["id"] == italy.as_str()),
        "Eva's consent log has Italy withdrawn through the preference link: {d:#}"
    );
    assert!(
        !consents.iter().any(|c| c["action"] == "WITHDRAWN" && c["group"]["id"] == greece.as_str()),
        "nothing was withdrawn for Greece: {d:#}"
    );

    // ---- A German browser gets the German page.
    {
        let b = driver.session(SessionOptions { languages: Some("de-DE,de"), ..SessionOptions::default() }).await;
        b.goto(&link).await;
        b.wait_text("h1", "Ihre Abonnements").await;
        let html = b.find("html").await;
        assert_eq!(b.attribute(&html, "lang").await.as_deref(), Some("de"));
        let save = b.find("button[name=action][value=save]").await;
        assert_eq!(b.text(&save).await.trim(), "Speichern");
        save_screenshot(&format!("preference-centre-{backend}-de.png"), &b.screenshot().await);
    }
}
