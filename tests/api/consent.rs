//! Public groups and consent (issue 13): the travel-agency form end to end, what public views
//! show (and never show), signed links, the append-only consent log, rate and body limits,
//! agents recording consent, and parallel clients on every public write path.

use crate::on_both_backends;
use crate::support::{Backend, LINK_KEYS, TestApp};
use cohort_api::graphql::ids::decode_any;
use serde_json::{Value, json};
use uuid::Uuid;

const TENANT: &str = "travel";

/// The travel agency of the seed (Worldsoft "Group allocation for form entries"): a main group
/// "Travel offers" with the subgroups Greece, Italy, Spain, Turkey, all public, a consent text,
/// and a double opt-in form offering the four countries.
struct Agency {
    book: String,
    main: String,
    greece: String,
    italy: String,
    spain: String,
    turkey: String,
    text_id: String,
    text_sha: String,
    form_id: String,
    key: String,
}

const CONSENT_TEXT: &str = "I would like to receive travel offers by e-mail.\nI can withdraw this at any time.";

/// A server with adjusted settings; `None` (reported) when PostgreSQL is not configured.
async fn spawn_or_skip(backend: Backend, f: impl FnOnce(&mut cohort_api::config::Settings)) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, f).await;
    if app.is_none() {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
    }
    app
}

async fn gql(app: &TestApp, q: &str, v: Value) -> Value {
    app.actor(TENANT, "admin", &["admin"]).ok(q, v).await
}

async fn group(app: &TestApp, book: &str, name: &str, public: Option<&str>, parent: Option<&str>) -> String {
    let d = gql(
        app,
        "mutation($i: CreateGroupInput!) { createGroup(input: $i) { group { id } } }",
        json!({"i": {"addressBookId": book, "name": name, "publicName": public, "parentId": parent,
                     "publicDescription": public.map(|p| format!("Offers for {p}"))}}),
    )
    .await;
    d["createGroup"]["group"]["id"].as_str().unwrap().to_owned()
}

async fn agency(app: &TestApp, double_opt_in: bool, keep_evidence: bool) -> Agency {
    gql(app, "mutation { setPublicProfile(input: {publicName: \"Sunny Travel\"}) { publicName } }", json!({})).await;
    let d = gql(app, "mutation { createAddressBook(input: {name: \"Web leads\"}) { addressBook { id } } }", json!({}))
        .await;
    let book = d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    let main = group(app, &book, "TRV-main (internal)", Some("Travel offers"), None).await;
    let greece = group(app, &book, "TRV-GR internal", Some("Greece"), Some(&main)).await;
    let italy = group(app, &book, "TRV-IT internal", Some("Italy"), Some(&main)).await;
    let spain = group(app, &book, "TRV-ES internal", Some("Spain"), Some(&main)).await;
    let turkey = group(app, &book, "TRV-TR internal", Some("Turkey"), Some(&main)).await;
    let t = gql(
        app,
        "mutation($b: String!) { createConsentText(input: {purpose: \"travel-offers\", language: \"en\", body: $b}) { consentText { id sha256 version } } }",
        json!({"b": CONSENT_TEXT}),
    )
    .await;
    let text_id = t["createConsentText"]["consentText"]["id"].as_str().unwrap().to_owned();
    let text_sha = t["createConsentText"]["consentText"]["sha256"].as_str().unwrap().to_owned();
    let f = gql(
        app,
        "mutation($i: CreateWebFormInput!) { createWebForm(input: $i) { webForm { id key version } } }",
        json!({"i": {
            "name": "Travel enquiries",
            "intakeAddressBookId": book,
            "groupIds": [greece, italy, spain, turkey],
            "consentTextId": text_id,
            "doubleOptIn": double_opt_in,
            "keepEvidence": keep_evidence,
            "fields": [{"field": "FIRST_NAME", "required": false}, {"field": "LAST_NAME", "required": false}],
            "allowedOrigins": ["https://travel.example"],
            "title": "Travel offers by e-mail",
        }}),
    )
    .await;
    let form_id = f["createWebForm"]["webForm"]["id"].as_str().unwrap().to_owned();
    let key = f["createWebForm"]["webForm"]["key"].as_str().unwrap().to_owned();
    Agency { book, main, greece, italy, spain, turkey, text_id, text_sha, form_id, key }
}

/// POSTs JSON to a public endpoint: (status, headers, body text).
async fn post_json(app: &TestApp, path: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
    let r = app.client.post(app.url(path)).json(body).send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.text().await.unwrap())
}

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.client.get(app.url(path)).header("accept", "application/json").send().await.unwrap();
    let s = r.status().as_u16();
    (s, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
}

fn path_of(url: &str) -> String {
    let i = url.find("/public/v1/").expect("a public link");
    url[i..].to_owned()
}

/// The confirmation links the outbox carries (`consent.confirmation_requested`), oldest first.
async fn confirmation_links(app: &TestApp) -> Vec<String> {
    let d = gql(
        app,
        "{ events(first: 100, types: [\"consent.confirmation_requested\"]) { edges { node { payload } } } }",
        json!({}),
    )
    .await;
    // Events are listed in the order they were written.
    d["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["payload"]["confirmationUrl"].as_str().unwrap().to_owned())
        .collect()
}

async fn contact_by_email(app: &TestApp, email: &str) -> Option<String> {
    let d = gql(
        app,
        "query($s: String!) { contacts(filter: {search: $s}) { edges { node { id } } } }",
        json!({"s": email}),
    )
    .await;
    d["contacts"]["edges"].as_array().unwrap().first().map(|e| e["node"]["id"].as_str().unwrap().to_owned())
}

async fn status(app: &TestApp, contact: &str, group: &str) -> String {
    let d = gql(
        app,
        "query($c: ID!, $g: ID!) { node(id: $c) { ... on Contact { consentStatus(groupId: $g) } } }",
        json!({"c": contact, "g": group}),
    )
    .await;
    d["node"]["consentStatus"].as_str().unwrap().to_owned()
}

async fn members(app: &TestApp, group: &str) -> Vec<Value> {
    let d = gql(
        app,
        "query($g: ID!) { group(id: $g) { members { edges { node { id } source assignedBy { id } consent { action channel textSha256 webFormVersion confirmationId evidence { ip userAgent } consentText { version } } } } } }",
        json!({"g": group}),
    )
    .await;
    d["group"]["members"]["edges"].as_array().unwrap().clone()
}

async fn consents(app: &TestApp, contact: &str) -> Vec<Value> {
    let d = gql(
        app,
        "query($c: ID!) { node(id: $c) { ... on Contact { consents { action channel at textSha256 webFormId webFormVersion confirmationId group { id } evidence { ip userAgent } } } } }",
        json!({"c": contact}),
    )
    .await;
    d["node"]["consents"].as_array().unwrap().clone()
}

async fn preference_link(app: &TestApp, contact: &str, group: Option<&str>) -> String {
    let d = gql(
        app,
        "query($c: ID!, $g: ID) { preferenceLink(contactId: $c, groupId: $g) { url listUnsubscribe expiresAt } }",
        json!({"c": contact, "g": group}),
    )
    .await;
    let l = &d["preferenceLink"];
    assert_eq!(l["listUnsubscribe"].as_str().unwrap(), format!("<{}>", l["url"].as_str().unwrap()));
    path_of(l["url"].as_str().unwrap())
}

async fn travel_agency_form_end_to_end(app: TestApp) {
    let a = agency(&app, true, true).await;

    // 1. What a website renders: public names and descriptions only, the wording and its hash.
    let (s, def) = get_json(&app, &format!("/public/v1/forms/{}", a.key)).await;
    assert_eq!(s, 200, "{def}");
    assert_eq!(def["organisation"], "Sunny Travel");
    let names: Vec<&str> = def["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Greece", "Italy", "Spain", "Turkey"]);
    assert_eq!(def["consent"]["text"], CONSENT_TEXT);
    assert_eq!(def["consent"]["sha256"], a.text_sha.as_str());
    assert_eq!(def["doubleOptIn"], true);
    assert!(!def.to_string().contains("internal"), "an internal group name leaked: {def}");
    let field_names: Vec<&str> =
        def["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(field_names, ["email", "firstName", "lastName"]);

    // 2. A plain HTML form posts two checkboxes (and is answered with a page).
    let body =
        format!("email=Eva%40Example.com&firstName=Eva&lastName=Novak&groups={}&groups={}&website=", a.greece, a.italy);
    let r = app
        .client
        .post(app.url(&format!("/public/v1/forms/{}/submissions", a.key)))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .header("user-agent", "TravelBrowser/1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let page = r.text().await.unwrap();
    assert!(page.contains("Sunny Travel") && page.contains("confirm"), "{page}");

    // Nothing starts before the confirmation: consent PENDING, no membership.
    let eva = contact_by_email(&app, "eva@example.com").await.expect("the contact was created");
    assert_eq!(status(&app, &eva, &a.greece).await, "PENDING");
    assert_eq!(status(&app, &eva, &a.spain).await, "NONE");
    assert!(members(&app, &a.greece).await.is_empty());
    let given = consents(&app, &eva).await;
    assert_eq!(given.len(), 2);
    for e in &given {
        assert_eq!(e["action"], "GIVEN");
        assert_eq!(e["channel"], "WEB_FORM");
        assert_eq!(e["textSha256"], a.text_sha.as_str());
        assert_eq!(e["webFormId"], a.form_id.as_str());
        assert_eq!(e["webFormVersion"], 1);
        assert_eq!(e["evidence"]["userAgent"], "TravelBrowser/1.0");
        assert_eq!(e["evidence"]["ip"], "127.0.0.1");
    }

    // 3. The confirmation link, from the event the tenant's mailer receives.
    let links = confirmation_links(&app).await;
    assert_eq!(links.len(), 1);
    let confirm = path_of(&links[0]);
    let (s, c) = get_json(&app, &confirm).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["status"], "CONFIRMED");
    assert_eq!(c["alreadyConfirmed"], false);
    let confirmed: Vec<&str> = c["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(confirmed, ["Greece", "Italy"]);

    // Memberships with WEB_FORM, resting on the CONFIRMED entry with the text hash.
    for g in [&a.greece, &a.italy] {
        let m = members(&app, g).await;
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["node"]["id"], eva.as_str());
        assert_eq!(m[0]["source"], "WEB_FORM");
        assert_eq!(m[0]["assignedBy"], Value::Null);
        assert_eq!(m[0]["consent"]["action"], "CONFIRMED");
        assert_eq!(m[0]["consent"]["channel"], "WEB_FORM");
        assert_eq!(m[0]["consent"]["textSha256"], a.text_sha.as_str());
        assert_eq!(m[0]["consent"]["consentText"]["version"], 1);
        assert!(m[0]["consent"]["confirmationId"].is_string());
        assert_eq!(status(&app, &eva, g).await, "CONFIRMED");
    }
    let log = consents(&app, &eva).await;
    assert_eq!(log.len(), 4);
    // The GIVEN and its CONFIRMED share the confirmation id.
    let ids: std::collections::HashSet<&str> = log.iter().map(|e| e["confirmationId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1);

    // Idempotent: the same link again changes nothing.
    let (s, again) = get_json(&app, &confirm).await;
    assert_eq!(s, 200);
    assert_eq!(again["alreadyConfirmed"], true);
    assert_eq!(consents(&app, &eva).await.len(), 4);

    // 4. The preference centre lists exactly the public groups: subscribed and available.
    let prefs = preference_link(&app, &eva, None).await;
    let (s, p) = get_json(&app, &prefs).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["organisation"], "Sunny Travel");
    let listed: Vec<(String, bool)> = p["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["name"].as_str().unwrap().to_owned(), g["subscribed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [("Greece".into(), true), ("Italy".into(), true), ("Spain".into(), false), ("Turkey".into(), false)]
    );
    assert!(!p.to_string().contains("internal") && !p.to_string().contains("eva@"), "{p}");

    // 5. RFC 8058 one-click unsubscribe with the Greece mailing's link.
    let greece_link = preference_link(&app, &eva, Some(&a.greece)).await;
    let r = app
        .client
        .post(app.url(&greece_link))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(members(&app, &a.greece).await.is_empty());
    assert_eq!(members(&app, &a.italy).await.len(), 1, "only the link's group is left");
    assert_eq!(status(&app, &eva, &a.greece).await, "WITHDRAWN");
    let log = consents(&app, &eva).await;
    assert_eq!(log[0]["action"], "WITHDRAWN");
    assert_eq!(log[0]["channel"], "ONE_CLICK_UNSUBSCRIBE");
    assert_eq!(log[0]["group"]["id"], a.greece.as_str());
    let h = gql(
        &app,
        "query($g: ID!) { group(id: $g) { membershipHistory { edges { node { action source reason contact { id } } } } } }",
        json!({"g": a.greece}),
    )
    .await;
    let hist = h["group"]["membershipHistory"]["edges"].as_array().unwrap();
    assert_eq!(hist[0]["node"]["action"], "LEAVE");
    assert_eq!(hist[0]["node"]["source"], "SELF_SERVICE");
    assert_eq!(hist[1]["node"]["action"], "JOIN");
    assert_eq!(hist[1]["node"]["source"], "WEB_FORM");

    // 6. Resubscribe in the preference centre (JSON), then withdraw everything.
    let (s, _, b) = post_json(&app, &prefs, &json!({"subscribe": [a.spain]})).await;
    assert_eq!(s, 200, "{b}");
    let m = members(&app, &a.spain).await;
    assert_eq!(m[0]["source"], "SELF_SERVICE");
    assert_eq!(m[0]["consent"]["channel"], "PREFERENCE_LINK");
    assert_eq!(m[0]["consent"]["textSha256"], a.text_sha.as_str(), "the wording of the form offering it");
    let (s, _, b) = post_json(&app, &prefs, &json!({"withdrawAll": true})).await;
    assert_eq!(s, 200, "{b}");
    let after: Value = serde_json::from_str(&b).unwrap();
    assert!(after["groups"].as_array().unwrap().iter().all(|g| g["subscribed"] == false));
    for g in [&a.greece, &a.italy, &a.spain] {
        assert!(members(&app, g).await.is_empty());
        assert_eq!(status(&app, &eva, g).await, "WITHDRAWN");
    }

    // 7. The old confirmation link cannot subscribe her again.
    let (s, e) = get_json(&app, &confirm).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("LINK_USED")), "{e}");
    assert!(members(&app, &a.italy).await.is_empty());

    // Group summary over visible contacts.
    let d = gql(
        &app,
        "query($g: ID!) { group(id: $g) { consentSummary { confirmed pending withdrawn membersWithoutConsent } } }",
        json!({"g": a.italy}),
    )
    .await;
    assert_eq!(
        d["group"]["consentSummary"],
        json!({"confirmed": 0, "pending": 0, "withdrawn": 1, "membersWithoutConsent": 0})
    );
    let _ = (&a.main, &a.turkey, &a.book, &a.text_id);
}

/// Single opt-in: memberships start at once; a known e-mail is answered byte for byte like a
/// new one; the honeypot drops the submission with the same answer.
async fn public_answers_reveal_nothing(app: TestApp) {
    let a = agency(&app, false, false).await;
    let submit = |email: &str, extra: Value| {
        let mut b = json!({"email": email, "groups": [a.greece]});
        if let (Some(o), Some(e)) = (b.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        b
    };
    let path = format!("/public/v1/forms/{}/submissions", a.key);
    let comparable = |(s, h, b): (u16, reqwest::header::HeaderMap, String)| {
        let mut hs: Vec<(String, String)> = h
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        hs.sort();
        (s, hs, b)
    };
    let new = comparable(post_json(&app, &path, &submit("new@example.com", json!({}))).await);
    assert_eq!(new.0, 202, "{}", new.2);
    let known = comparable(post_json(&app, &path, &submit("new@example.com", json!({}))).await);
    assert_eq!(new, known, "a known address must be answered exactly like a new one");
    let bot = comparable(post_json(&app, &path, &submit("bot@example.com", json!({"website": "http://spam"}))).await);
    assert_eq!(new, bot);
    assert!(contact_by_email(&app, "bot@example.com").await.is_none(), "the honeypot submission was stored");

    // The same address twice: one contact, one membership, and no second GIVEN (nothing to ask).
    let c = contact_by_email(&app, "new@example.com").await.unwrap();
    let m = members(&app, &a.greece).await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["source"], "WEB_FORM");
    assert_eq!(m[0]["consent"]["action"], "GIVEN");
    assert_eq!(m[0]["consent"]["evidence"], Value::Null, "evidence is off by default");
    assert_eq!(consents(&app, &c).await.len(), 1);
    assert_eq!(status(&app, &c, &a.greece).await, "CONFIRMED");
    assert!(confirmation_links(&app).await.is_empty(), "single opt-in asks for no confirmation");

    // An existing contact's details are not changed by an anonymous submission.
    let (s, _, _) =
        post_json(&app, &path, &json!({"email": "new@example.com", "firstName": "Mallory", "groups": [a.italy]})).await;
    assert_eq!(s, 202);
    let d = gql(&app, "query($c: ID!) { node(id: $c) { ... on Contact { displayName } } }", json!({"c": c})).await;
    assert_eq!(d["node"]["displayName"], "new@example.com");

    // A group that stops being public disappears from the public views.
    gql(
        &app,
        "mutation($g: ID!) { updateGroup(input: {id: $g, publicName: null, publicDescription: null}) { group { id } } }",
        json!({"g": a.turkey}),
    )
    .await;
    let (_, def) = get_json(&app, &format!("/public/v1/forms/{}", a.key)).await;
    assert!(!def.to_string().contains("Turkey"));
    let (s, _, b) = post_json(&app, &path, &json!({"email": "x@example.com", "groups": [a.turkey]})).await;
    assert_eq!(s, 400, "{b}");
    // A group the form does not offer, an unknown form, a disabled form.
    let (s, _, _) = post_json(&app, &path, &json!({"email": "x@example.com", "groups": [a.main]})).await;
    assert_eq!(s, 400);
    let (s, _) = get_json(&app, "/public/v1/forms/wf_doesnotexist").await;
    assert_eq!(s, 404);
    gql(
        &app,
        "mutation($f: ID!) { updateWebForm(input: {id: $f, enabled: false}) { webForm { enabled version } } }",
        json!({"f": a.form_id}),
    )
    .await;
    let (s, _) = get_json(&app, &format!("/public/v1/forms/{}", a.key)).await;
    assert_eq!(s, 404);
    let (s, _, _) = post_json(&app, &path, &submit("late@example.com", json!({}))).await;
    assert_eq!(s, 404);
}

/// Links: expired, tampered, other tenant, other contact, rotated and removed keys.
async fn links_are_checked(app: TestApp) {
    let a = agency(&app, true, false).await;
    let (s, _, b) = post_json(
        &app,
        &format!("/public/v1/forms/{}/submissions", a.key),
        &json!({"email": "eva@example.com", "groups": [a.greece]}),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let eva = contact_by_email(&app, "eva@example.com").await.unwrap();
    let eva_uuid = decode_any(&eva).unwrap().1;
    let tenant = cohort_store::testing::tenant_id(&app.store, TENANT).await.unwrap();
    let good = path_of(&confirmation_links(&app).await[0]);
    let token = good.rsplit('/').next().unwrap().to_owned();
    let request = {
        // The request id is the consent entries' confirmation id.
        let c = consents(&app, &eva).await;
        Uuid::parse_str(c[0]["confirmationId"].as_str().unwrap()).unwrap()
    };
    let code = |(s, v): (u16, Value)| (s, v["code"].as_str().unwrap_or("").to_owned());
    let soon = chrono::Utc::now() + chrono::Duration::hours(1);

    // Tampered: any changed character.
    let mut chars: Vec<char> = token.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    assert_eq!(code(get_json(&app, &format!("/public/v1/confirm/{tampered}")).await), (400, "LINK_INVALID".into()));
    assert_eq!(code(get_json(&app, "/public/v1/confirm/not-a-token").await), (400, "LINK_INVALID".into()));
    // A confirmation link is no preference link.
    assert_eq!(code(get_json(&app, &format!("/public/v1/preferences/{token}")).await), (400, "LINK_INVALID".into()));
    // Expired (signed with the server's own key, genuinely).
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let expired = cohort_store::testing::sign_link(LINK_KEYS, true, tenant, eva_uuid, request, past);
    assert_eq!(code(get_json(&app, &format!("/public/v1/confirm/{expired}")).await), (410, "LINK_EXPIRED".into()));
    // Other tenant / other contact: validly signed, but bound to something else.
    let other_tenant = cohort_store::testing::sign_link(LINK_KEYS, true, Uuid::now_v7(), eva_uuid, request, soon);
    assert_eq!(code(get_json(&app, &format!("/public/v1/confirm/{other_tenant}")).await), (400, "LINK_INVALID".into()));
    let other_contact = cohort_store::testing::sign_link(LINK_KEYS, true, tenant, Uuid::now_v7(), request, soon);
    assert_eq!(
        code(get_json(&app, &format!("/public/v1/confirm/{other_contact}")).await),
        (400, "LINK_INVALID".into())
    );
    let prefs_other = cohort_store::testing::sign_link(LINK_KEYS, false, tenant, Uuid::now_v7(), Uuid::nil(), soon);
    assert_eq!(
        code(get_json(&app, &format!("/public/v1/preferences/{prefs_other}")).await),
        (400, "LINK_INVALID".into())
    );
    // The HTML variant says the same, for people.
    let r = app
        .client
        .get(app.url(&format!("/public/v1/confirm/{expired}")))
        .header("accept", "text/html")
        .header("accept-language", "de")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 410);
    assert!(r.text().await.unwrap().contains("abgelaufen"));
    // Nothing was confirmed by any of them.
    assert_eq!(status(&app, &eva, &a.greece).await, "PENDING");

    // Rotation: a link signed with the older key (t1) still works while t1 is listed.
    let old_key = LINK_KEYS.split(',').nth(1).unwrap();
    let by_old = cohort_store::testing::sign_link(old_key, true, tenant, eva_uuid, request, soon);
    assert_eq!(get_json(&app, &format!("/public/v1/confirm/{by_old}")).await.0, 200);
    assert_eq!(status(&app, &eva, &a.greece).await, "CONFIRMED");
    assert!(token.starts_with("t2."), "the newest key signs");
}

async fn removed_keys_stop_verifying(backend: Backend) {
    let Some(app) = spawn_or_skip(backend, |s| {
        s.public.link_keys = Some(LINK_KEYS.split(',').next().unwrap().to_owned().into());
    })
    .await
    else {
        return;
    };
    let a = agency(&app, true, false).await;
    let (s, _, _) = post_json(
        &app,
        &format!("/public/v1/forms/{}/submissions", a.key),
        &json!({"email": "eva@example.com", "groups": [a.greece]}),
    )
    .await;
    assert_eq!(s, 202);
    let eva = decode_any(&contact_by_email(&app, "eva@example.com").await.unwrap()).unwrap().1;
    let tenant = cohort_store::testing::tenant_id(&app.store, TENANT).await.unwrap();
    let old_key = LINK_KEYS.split(',').nth(1).unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::hours(1);
    let by_removed = cohort_store::testing::sign_link(old_key, false, tenant, eva, Uuid::nil(), soon);
    let (s, v) = get_json(&app, &format!("/public/v1/preferences/{by_removed}")).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("LINK_INVALID")));
    let by_current =
        cohort_store::testing::sign_link(LINK_KEYS.split(',').next().unwrap(), false, tenant, eva, Uuid::nil(), soon);
    assert_eq!(get_json(&app, &format!("/public/v1/preferences/{by_current}")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_keys_stop_verifying_sqlite() {
    removed_keys_stop_verifying(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_keys_stop_verifying_postgres() {
    removed_keys_stop_verifying(Backend::Postgres).await
}

/// The consent log refuses UPDATE and DELETE in the database itself.
async fn consent_log_is_append_only(app: TestApp) {
    let a = agency(&app, false, false).await;
    let (s, _, _) = post_json(
        &app,
        &format!("/public/v1/forms/{}/submissions", a.key),
        &json!({"email": "eva@example.com", "groups": [a.greece]}),
    )
    .await;
    assert_eq!(s, 202);
    let upd = cohort_store::testing::execute_unchecked(&app.store, "UPDATE consent_log SET note = 'rewritten'").await;
    assert!(upd.is_err(), "UPDATE of the consent log must be refused: {upd:?}");
    let del = cohort_store::testing::execute_unchecked(&app.store, "DELETE FROM consent_log").await;
    assert!(del.is_err(), "DELETE from the consent log must be refused: {del:?}");
    if app.backend == Backend::Postgres {
        let t = cohort_store::testing::execute_unchecked(&app.store, "TRUNCATE consent_log").await;
        assert!(t.is_err(), "TRUNCATE must be refused");
    }
    let eva = contact_by_email(&app, "eva@example.com").await.unwrap();
    let log = consents(&app, &eva).await;
    assert_eq!(log.len(), 1);
    // Deleting the contact keeps the proof (the log has no foreign key to it).
    gql(&app, "mutation($c: ID!) { deleteContact(input: {id: $c}) { deletedId } }", json!({"c": eva})).await;
    let inserted = cohort_store::testing::execute_unchecked(&app.store, "SELECT 1 FROM consent_log").await;
    assert!(inserted.is_ok());
}

/// Rate limits answer 429 with Retry-After; oversized, malformed and mistyped bodies 413/400/415,
/// and none of them writes anything.
async fn limits_and_bad_bodies(backend: Backend) {
    let Some(app) = spawn_or_skip(backend, |s| {
        s.public.endpoints.per_ip = cohort_api::public::Rate { count: 5, per: std::time::Duration::from_secs(3600) };
    })
    .await
    else {
        return;
    };
    let a = agency(&app, false, false).await;
    let path = format!("/public/v1/forms/{}/submissions", a.key);
    let big = "x".repeat(20 * 1024);
    let (s, _, b) =
        post_json(&app, &path, &json!({"email": "a@example.com", "groups": [a.greece], "firstName": big})).await;
    assert_eq!(s, 413, "{b}");
    let r = app
        .client
        .post(app.url(&path))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!((p["status"].as_u64(), p["code"].as_str()), (Some(400), Some("BAD_USER_INPUT")));
    let r = app.client.post(app.url(&path)).header("content-type", "text/plain").body("email=a").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let (s, _, b) =
        post_json(&app, &path, &json!({"email": "a@example.com", "groups": [a.greece], "admin": true})).await;
    assert_eq!(s, 400, "unknown fields are refused: {b}");
    let (s, _, b) = post_json(&app, &path, &json!({"email": "not-an-address", "groups": [a.greece]})).await;
    assert_eq!(s, 400);
    assert!(b.contains("\"field\":\"email\""), "{b}");
    assert!(contact_by_email(&app, "a@example.com").await.is_none());
    // Five requests were allowed in this window (the refused ones count too); the sixth is limited.
    let r = app.client.get(app.url(&format!("/public/v1/forms/{}", a.key))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    let p: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(p["code"], "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_bad_bodies_sqlite() {
    limits_and_bad_bodies(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_bad_bodies_postgres() {
    limits_and_bad_bodies(Backend::Postgres).await
}

async fn per_form_limit(backend: Backend) {
    let Some(app) = spawn_or_skip(backend, |s| {
        s.public.endpoints.per_form = cohort_api::public::Rate { count: 2, per: std::time::Duration::from_secs(3600) };
    })
    .await
    else {
        return;
    };
    let a = agency(&app, false, false).await;
    let path = format!("/public/v1/forms/{}/submissions", a.key);
    for i in 0..2 {
        let (s, _, _) =
            post_json(&app, &path, &json!({"email": format!("p{i}@example.com"), "groups": [a.greece]})).await;
        assert_eq!(s, 202);
    }
    let (s, h, _) = post_json(&app, &path, &json!({"email": "p3@example.com", "groups": [a.greece]})).await;
    assert_eq!(s, 429);
    assert!(h.contains_key("retry-after"));
    assert!(contact_by_email(&app, "p3@example.com").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_form_limit_sqlite() {
    per_form_limit(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_form_limit_postgres() {
    per_form_limit(Backend::Postgres).await
}

/// CORS on a form's endpoints: only the origins the form lists; other sites' browsers refused.
async fn form_cors(app: TestApp) {
    let a = agency(&app, false, false).await;
    let path = format!("/public/v1/forms/{}/submissions", a.key);
    let pre = app
        .client
        .request(reqwest::Method::OPTIONS, app.url(&path))
        .header("origin", "https://travel.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "https://travel.example");
    assert!(pre.headers()["access-control-allow-headers"].to_str().unwrap().contains("content-type"));
    let pre = app
        .client
        .request(reqwest::Method::OPTIONS, app.url(&path))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(pre.headers().get("access-control-allow-origin").is_none());
    let r = app
        .client
        .post(app.url(&path))
        .header("origin", "https://evil.example")
        .json(&json!({"email": "e@example.com", "groups": [a.greece]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(contact_by_email(&app, "e@example.com").await.is_none());
    let r = app
        .client
        .post(app.url(&path))
        .header("origin", "https://travel.example")
        .json(&json!({"email": "t@example.com", "groups": [a.greece]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://travel.example");
}

/// Configuring forms and texts: rights, versions and every bad input (nothing written).
async fn forms_and_texts_are_validated(app: TestApp) {
    let a = agency(&app, true, false).await;
    let admin = app.actor(TENANT, "admin", &["admin"]);
    let agent = app.actor(TENANT, "agent", &["agent"]);
    // Texts: a new version for the same purpose and language, its own hash; agents cannot write.
    let t = admin
        .ok(
            "mutation { createConsentText(input: {purpose: \"travel-offers\", language: \"EN\", body: \"New wording.  \\r\\n\"}) { consentText { id version body language sha256 } } }",
            json!({}),
        )
        .await;
    let t2 = &t["createConsentText"]["consentText"];
    assert_eq!(
        (t2["version"].as_i64(), t2["body"].as_str(), t2["language"].as_str()),
        (Some(2), Some("New wording."), Some("en"))
    );
    let sha = t2["sha256"].as_str().unwrap();
    assert!(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()) && sha != a.text_sha);
    assert_eq!(agent.err("mutation { createConsentText(input: {purpose: \"x\", language: \"en\", body: \"b\"}) { consentText { id } } }", json!({})).await, "FORBIDDEN");
    for (purpose, lang, body) in
        [("Bad Purpose", "en", "b"), ("p", "english", "b"), ("p", "en", "  \n "), ("p", "en", "a\u{0007}b")]
    {
        assert_eq!(
            admin.err("mutation($p: String!, $l: String!, $b: String!) { createConsentText(input: {purpose: $p, language: $l, body: $b}) { consentText { id } } }", json!({"p": purpose, "l": lang, "b": body})).await,
            "BAD_USER_INPUT"
        );
    }
    let texts = admin.ok("{ consentTexts(purpose: \"travel-offers\") { version } }", json!({})).await;
    assert_eq!(texts["consentTexts"], json!([{"version": 2}, {"version": 1}]));

    // Forms: bad inputs, each BAD_USER_INPUT (or NOT_FOUND), nothing created.
    let private = group(&app, &a.book, "No public name", None, None).await;
    let base = json!({"name": "F2", "intakeAddressBookId": a.book, "groupIds": [a.greece], "consentTextId": a.text_id});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let create = "mutation($i: CreateWebFormInput!) { createWebForm(input: $i) { webForm { id } } }";
    for (input, code) in [
        (with("groupIds", json!([private])), "BAD_USER_INPUT"),
        (with("groupIds", json!([])), "BAD_USER_INPUT"),
        (with("allowedOrigins", json!(["http://travel.example"])), "BAD_USER_INPUT"),
        (with("allowedOrigins", json!(["https://travel.example/path"])), "BAD_USER_INPUT"),
        (with("successUrl", json!("javascript:alert(1)")), "BAD_USER_INPUT"),
        (with("confirmationUrl", json!("/relative")), "BAD_USER_INPUT"),
        (with("fields", json!([{"field": "EMAIL", "required": false}])), "BAD_USER_INPUT"),
        (with("name", json!("  ")), "BAD_USER_INPUT"),
        (with("consentTextId", json!(a.greece)), "BAD_USER_INPUT"),
        (with("name", json!("Travel enquiries")), "CONFLICT"),
    ] {
        assert_eq!(admin.err(create, json!({"i": input})).await, code, "{input}");
    }
    assert_eq!(agent.err(create, json!({"i": base})).await, "NOT_FOUND", "no access to the intake book");
    let forms = admin.ok("{ webForms { name version } }", json!({})).await;
    assert_eq!(forms["webForms"], json!([{"name": "Travel enquiries", "version": 1}]));
    assert_eq!(agent.ok("{ webForms { name } }", json!({})).await["webForms"], json!([]));

    // Editing the definition adds a version; submissions record theirs.
    let u = admin
        .ok(
            "mutation($f: ID!, $t: ID!, $g: ID!) { updateWebForm(input: {id: $f, consentTextId: $t, doubleOptIn: false, groupIds: [$g]}) { webForm { version doubleOptIn consentText { version } } } }",
            json!({"f": a.form_id, "t": t2["id"], "g": a.greece}),
        )
        .await;
    assert_eq!(
        u["updateWebForm"]["webForm"],
        json!({"version": 2, "doubleOptIn": false, "consentText": {"version": 2}})
    );
    let renamed = admin
        .ok("mutation($f: ID!) { updateWebForm(input: {id: $f, name: \"Enquiries\"}) { webForm { version name key } } }", json!({"f": a.form_id}))
        .await;
    assert_eq!(renamed["updateWebForm"]["webForm"]["version"], 2, "a new name is no new definition");
    assert_eq!(renamed["updateWebForm"]["webForm"]["key"], a.key.as_str(), "the key never changes");
    let (s, _, _) = post_json(
        &app,
        &format!("/public/v1/forms/{}/submissions", a.key),
        &json!({"email": "v2@example.com", "groups": [a.italy]}),
    )
    .await;
    assert_eq!(s, 400, "Italy is no longer offered");
    let (s, _, _) =
        post_json(&app, &format!("/public/v1/forms/{}/submissions", a.key), &json!({"email": "v2@example.com"})).await;
    assert_eq!(s, 202, "a single-group form needs no checkbox");
    let c = contact_by_email(&app, "v2@example.com").await.unwrap();
    let log = consents(&app, &c).await;
    assert_eq!(log[0]["webFormVersion"], 2);
    assert_eq!(log[0]["textSha256"], t2["sha256"]);
    assert_eq!(
        admin
            .err(
                "mutation($f: ID!) { updateWebForm(input: {id: $f, groupIds: []}) { webForm { id } } }",
                json!({"f": a.form_id})
            )
            .await,
        "BAD_USER_INPUT"
    );
    let node =
        admin.ok("query($f: ID!) { node(id: $f) { id ... on WebForm { version } } }", json!({"f": a.form_id})).await;
    assert_eq!(node["node"]["version"], 2);
}

/// Agents record consent on a contact's behalf; lists filter by consent; everything about a
/// hidden contact stays hidden.
async fn agents_and_visibility(app: TestApp) {
    let a = agency(&app, false, false).await;
    let admin = app.actor(TENANT, "admin", &["admin"]);
    let agent = app.actor(TENANT, "agent", &["agent"]);
    let agent_id =
        agent.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].as_str().unwrap().to_owned();
    // The agent may write the web-leads book; a second book stays hidden from them.
    admin
        .ok(
            "mutation($b: ID!, $u: ID!) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: WRITE}) { grant { level } } }",
            json!({"b": a.book, "u": agent_id}),
        )
        .await;
    let d = admin.ok("mutation { createAddressBook(input: {name: \"VIP\"}) { addressBook { id } } }", json!({})).await;
    let vip = d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    let mk = |book: &str, last: &str| json!({"i": {"addressBookId": book, "kind": "PERSON", "lastName": last}});
    let create = "mutation($i: CreateContactInput!) { createContact(input: $i) { contact { id } } }";
    let phone =
        admin.ok(create, mk(&a.book, "Phone")).await["createContact"]["contact"]["id"].as_str().unwrap().to_owned();
    let assigned =
        admin.ok(create, mk(&a.book, "Assigned")).await["createContact"]["contact"]["id"].as_str().unwrap().to_owned();
    let hidden =
        admin.ok(create, mk(&vip, "Hidden")).await["createContact"]["contact"]["id"].as_str().unwrap().to_owned();

    let record = "mutation($i: RecordConsentInput!) { recordConsent(input: $i) { entry { action channel agent { id } note consentText { version } } } }";
    let r = agent
        .ok(record, json!({"i": {"contactId": phone, "groupId": a.greece, "action": "GIVEN", "consentTextId": a.text_id, "note": "by phone"}}))
        .await;
    assert_eq!(r["recordConsent"]["entry"]["channel"], "AGENT_ON_BEHALF");
    assert_eq!(r["recordConsent"]["entry"]["agent"]["id"], agent_id.as_str());
    // Hidden contact: NOT_FOUND, exactly like an unknown one; GIVEN without a text; a non-public group.
    let unknown = cohort_api::graphql::ids::encode("Contact", Uuid::now_v7()).to_string();
    for c in [&hidden, &unknown] {
        assert_eq!(
            agent
                .err(
                    record,
                    json!({"i": {"contactId": c, "groupId": a.greece, "action": "GIVEN", "consentTextId": a.text_id}})
                )
                .await,
            "NOT_FOUND"
        );
    }
    assert_eq!(
        agent.err(record, json!({"i": {"contactId": phone, "groupId": a.italy, "action": "GIVEN"}})).await,
        "BAD_USER_INPUT"
    );
    let private = group(&app, &a.book, "Internal only", None, None).await;
    assert_eq!(
        agent
            .err(
                record,
                json!({"i": {"contactId": phone, "groupId": private, "action": "GIVEN", "consentTextId": a.text_id}})
            )
            .await,
        "BAD_USER_INPUT"
    );
    admin
        .ok(
            "mutation($g: ID!, $c: [ID!]!) { addGroupMembers(input: {groupId: $g, contactIds: $c}) { addedCount } }",
            json!({"g": a.greece, "c": [assigned, hidden]}),
        )
        .await;
    admin
        .ok(
            record,
            json!({"i": {"contactId": hidden, "groupId": a.greece, "action": "GIVEN", "consentTextId": a.text_id}}),
        )
        .await;

    // Filtering by consent, over what the agent can see.
    let page = "query($g: ID!, $c: ConsentStatus) { group(id: $g) { members(consent: $c) { totalCount edges { node { id } source consent { channel } } } consentSummary { confirmed membersWithoutConsent } } }";
    let d = agent.ok(page, json!({"g": a.greece, "c": "CONFIRMED"})).await;
    let m = &d["group"]["members"];
    assert_eq!(m["totalCount"], 1, "the hidden contact's confirmed consent is not counted");
    assert_eq!(m["edges"][0]["node"]["id"], phone.as_str());
    assert_eq!(m["edges"][0]["source"], "ASSIGNED");
    assert_eq!(m["edges"][0]["consent"]["channel"], "AGENT_ON_BEHALF");
    let d = agent.ok(page, json!({"g": a.greece, "c": "NONE"})).await;
    assert_eq!(d["group"]["members"]["totalCount"], 1);
    assert_eq!(d["group"]["members"]["edges"][0]["node"]["id"], assigned.as_str());
    assert_eq!(d["group"]["consentSummary"], json!({"confirmed": 1, "membersWithoutConsent": 1}));
    let d = admin.ok(page, json!({"g": a.greece, "c": "CONFIRMED"})).await;
    assert_eq!(d["group"]["members"]["totalCount"], 2);

    // The hidden contact's consents and status are unreachable for the agent.
    let q = "query($c: ID!, $g: ID!) { node(id: $c) { ... on Contact { consentStatus(groupId: $g) consents { action } } } }";
    assert_eq!(agent.ok(q, json!({"c": hidden, "g": a.greece})).await["node"], Value::Null);
    assert_eq!(
        agent.err("query($c: ID!) { preferenceLink(contactId: $c) { url } }", json!({"c": hidden})).await,
        "NOT_FOUND"
    );
    // READ is not enough to hand out a contact's preference link.
    let reader = app.actor(TENANT, "reader", &["agent"]);
    let reader_id =
        reader.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].as_str().unwrap().to_owned();
    admin
        .ok(
            "mutation($b: ID!, $u: ID!) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: READ}) { grant { level } } }",
            json!({"b": a.book, "u": reader_id}),
        )
        .await;
    assert_eq!(
        reader.err("query($c: ID!) { preferenceLink(contactId: $c) { url } }", json!({"c": phone})).await,
        "FORBIDDEN"
    );

    // Withdrawal recorded by the agent ends the membership.
    agent
        .ok(
            record,
            json!({"i": {"contactId": phone, "groupId": a.greece, "action": "WITHDRAWN", "note": "asked by phone"}}),
        )
        .await;
    assert_eq!(status(&app, &phone, &a.greece).await, "WITHDRAWN");
    let d = agent.ok(page, json!({"g": a.greece, "c": "CONFIRMED"})).await;
    assert_eq!(d["group"]["members"]["totalCount"], 0);
}

/// Parallel clients on every public write path (PostgreSQL shows the races SQLite hides): one
/// address submitted at once gives one contact; one link confirmed at once gives one CONFIRMED
/// per group and one membership; parallel preference changes leave state = last log entry.
async fn parallel_public_writes(app: TestApp) {
    let a = agency(&app, true, false).await;
    let path = format!("/public/v1/forms/{}/submissions", a.key);
    let runs = (0..8).map(|_| {
        let (client, url) = (app.client.clone(), app.url(&path));
        let body = json!({"email": "race@example.com", "groups": [a.greece, a.italy]});
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status().as_u16() })
    });
    for r in futures_join(runs).await {
        assert_eq!(r, 202);
    }
    let d = gql(&app, "{ contacts(filter: {search: \"race@\"}) { totalCount } }", json!({})).await;
    assert_eq!(d["contacts"]["totalCount"], 1, "one address, one contact");
    let c = contact_by_email(&app, "race@example.com").await.unwrap();
    let links = confirmation_links(&app).await;
    assert!(!links.is_empty());
    let confirm = path_of(links.last().unwrap());
    let runs = (0..8).map(|_| {
        let (client, url) = (app.client.clone(), app.url(&confirm));
        tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
    });
    for r in futures_join(runs).await {
        assert_eq!(r, 200);
    }
    let log = consents(&app, &c).await;
    let confirmed = log.iter().filter(|e| e["action"] == "CONFIRMED").count();
    assert_eq!(confirmed, 2, "one confirmation per group: {log:#?}");
    for g in [&a.greece, &a.italy] {
        assert_eq!(members(&app, g).await.len(), 1);
    }
    // Parallel preference changes: subscribe and unsubscribe Spain and Greece in a storm.
    let prefs = preference_link(&app, &c, None).await;
    let runs = (0..12).map(|i| {
        let (client, url) = (app.client.clone(), app.url(&prefs));
        let body = match i % 3 {
            0 => json!({"subscribe": [a.spain.clone()]}),
            1 => json!({"unsubscribe": [a.spain.clone(), a.greece.clone()]}),
            _ => json!({"subscribed": [a.greece.clone(), a.italy.clone()]}),
        };
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status().as_u16() })
    });
    for r in futures_join(runs).await {
        assert_eq!(r, 200);
    }
    // Invariant: for each group, membership ⇔ the latest entry is in force, and the state equals
    // the latest entry.
    let log = consents(&app, &c).await;
    for g in [&a.greece, &a.italy, &a.spain] {
        let latest = log.iter().find(|e| e["group"]["id"] == g.as_str()).map(|e| e["action"].as_str().unwrap());
        let member = members(&app, g).await.len() == 1;
        let st = status(&app, &c, g).await;
        match latest {
            Some("WITHDRAWN") => assert!(!member && st == "WITHDRAWN", "{g}: {st} member={member}"),
            Some(_) => assert!(member && st == "CONFIRMED", "{g}: {st} member={member}"),
            None => assert!(!member && st == "NONE"),
        }
    }
    // And the history alternates JOIN/LEAVE per group (no double join, no double leave).
    for g in [&a.greece, &a.spain] {
        let h = gql(
            &app,
            "query($g: ID!) { group(id: $g) { membershipHistory(first: 100) { edges { node { action } } } } }",
            json!({"g": g}),
        )
        .await;
        let acts: Vec<&str> = h["group"]["membershipHistory"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["action"].as_str().unwrap())
            .collect();
        for w in acts.windows(2) {
            assert_ne!(w[0], w[1], "{g}: {acts:?}");
        }
    }
}

/// Public requests, agents recording consent and bulk member changes on the same group and
/// contact at once: every request ends (no deadlock, no INTERNAL), and the invariants hold.
async fn mixed_writers_on_one_group(app: TestApp) {
    let a = agency(&app, false, false).await;
    let path = format!("/public/v1/forms/{}/submissions", a.key);
    let (s, _, _) = post_json(&app, &path, &json!({"email": "mix@example.com", "groups": [a.greece]})).await;
    assert_eq!(s, 202);
    let c = contact_by_email(&app, "mix@example.com").await.unwrap();
    let prefs = preference_link(&app, &c, None).await;
    let token = app.token(TENANT, "admin", &["admin"]);
    let mut tasks = vec![];
    for i in 0..24 {
        let (client, app_url) = (app.client.clone(), app.base.clone());
        let (g, c, text, prefs, token) = (a.greece.clone(), c.clone(), a.text_id.clone(), prefs.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let gql = |q: &'static str, v: Value| {
                let (client, url, token) = (client.clone(), format!("{app_url}/graphql"), token.clone());
                async move {
                    let b: Value = client.post(url).bearer_auth(token).json(&json!({"query": q, "variables": v})).send().await.unwrap().json().await.unwrap();
                    b
                }
            };
            match i % 4 {
                0 => {
                    let b = gql("mutation($c: ID!, $g: ID!, $t: ID!) { recordConsent(input: {contactId: $c, groupId: $g, action: GIVEN, consentTextId: $t}) { entry { action } } }", json!({"c": c, "g": g, "t": text})).await;
                    b.get("errors").map(|e| e.to_string())
                }
                1 => {
                    let b = gql("mutation($c: ID!, $g: ID!) { recordConsent(input: {contactId: $c, groupId: $g, action: WITHDRAWN}) { entry { action } } }", json!({"c": c, "g": g})).await;
                    b.get("errors").map(|e| e.to_string())
                }
                2 => {
                    let b = gql("mutation($c: ID!, $g: ID!) { addGroupMembers(input: {groupId: $g, contactIds: [$c]}) { addedCount } }", json!({"c": c, "g": g})).await;
                    b.get("errors").map(|e| e.to_string())
                }
                _ => {
                    let body = if i % 8 == 3 { json!({"subscribe": [g]}) } else { json!({"unsubscribe": [g]}) };
                    let r = client.post(format!("{app_url}{prefs}")).json(&body).send().await.unwrap();
                    (r.status().as_u16() != 200).then(|| format!("preferences: {}", r.status()))
                }
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), None);
    }
    // The state equals the latest entry; a member has no WITHDRAWN standing unless an admin
    // re-added them afterwards (ASSIGNED), which is allowed and shows as WITHDRAWN.
    let log = consents(&app, &c).await;
    let latest = log[0]["action"].as_str().unwrap();
    let st = status(&app, &c, &a.greece).await;
    assert_eq!(st, if latest == "WITHDRAWN" { "WITHDRAWN" } else { "CONFIRMED" });
    let h = gql(
        &app,
        "query($g: ID!) { group(id: $g) { membershipHistory(first: 100) { edges { node { action } } } } }",
        json!({"g": a.greece}),
    )
    .await;
    let acts: Vec<&str> = h["group"]["membershipHistory"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    for w in acts.windows(2) {
        assert_ne!(w[0], w[1], "{acts:?}");
    }
    let member = !members(&app, &a.greece).await.is_empty();
    assert_eq!(member, acts[0] == "JOIN");
}

/// A sequence that requires consent enrols the memberships that rest on it (a web form, an agent
/// recording consent) and not a plain assignment to the public group.
async fn sequences_require_consent(app: TestApp) {
    let a = agency(&app, false, false).await;
    gql(
        &app,
        "mutation($g: ID!) { createSequence(input: {name: \"Greece welcome\", startGroupId: $g, requireConsent: true, steps: [{delay: \"P1D\", action: EMIT, templateKey: \"welcome\"}]}) { sequence { id } } }",
        json!({"g": a.greece}),
    )
    .await;
    let (s, _, _) = post_json(
        &app,
        &format!("/public/v1/forms/{}/submissions", a.key),
        &json!({"email": "web@example.com", "groups": [a.greece]}),
    )
    .await;
    assert_eq!(s, 202);
    let web = contact_by_email(&app, "web@example.com").await.unwrap();
    let d = gql(&app, "mutation($b: ID!) { createContact(input: {addressBookId: $b, kind: PERSON, lastName: \"Assigned\"}) { contact { id } } }", json!({"b": a.book})).await;
    let assigned = d["createContact"]["contact"]["id"].as_str().unwrap().to_owned();
    gql(
        &app,
        "mutation($g: ID!, $c: [ID!]!) { addGroupMembers(input: {groupId: $g, contactIds: $c}) { addedCount } }",
        json!({"g": a.greece, "c": [assigned]}),
    )
    .await;
    let enrolled = |c: String| {
        let app = &app;
        async move {
            let d = gql(
                app,
                "query($c: ID!) { node(id: $c) { ... on Contact { sequenceEnrolments { status } } } }",
                json!({"c": c}),
            )
            .await;
            d["node"]["sequenceEnrolments"].as_array().unwrap().len()
        }
    };
    assert_eq!(enrolled(web).await, 1, "a web-form join rests on consent");
    assert_eq!(enrolled(assigned).await, 0, "an assignment without consent does not enrol");
}

async fn submit_ok(app: &TestApp, a: &Agency, email: &str, groups: &[&str]) {
    let (s, _, b) =
        post_json(app, &format!("/public/v1/forms/{}/submissions", a.key), &json!({"email": email, "groups": groups}))
            .await;
    assert_eq!(s, 202, "{b}");
}

/// Withdrawing is complete and only the person's unticking withdraws: a pending double opt-in
/// shown ticked survives a save; one-click works multipart (RFC 8058 §3.1) and for a group that
/// lost its public name; "everything" ends consent an agent's removal left in force.
async fn withdrawal_is_complete(app: TestApp) {
    let a = agency(&app, true, false).await;
    submit_ok(&app, &a, "eva@example.com", &[&a.greece]).await;
    get_json(&app, &path_of(&confirmation_links(&app).await[0])).await;
    submit_ok(&app, &a, "eva@example.com", &[&a.italy]).await;
    let eva = contact_by_email(&app, "eva@example.com").await.unwrap();
    assert_eq!(status(&app, &eva, &a.italy).await, "PENDING");
    let prefs = preference_link(&app, &eva, None).await;
    // The page shows the pending group ticked, and the wording of the groups one may join.
    let page =
        app.client.get(app.url(&prefs)).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    let italy_box = page.split("<label").find(|l| l.contains("Italy")).unwrap();
    assert!(italy_box.contains("checked"), "{italy_box}");
    assert!(page.contains("I would like to receive travel offers"), "the wording is shown for available groups");
    // Saving the page as shown (Greece and Italy ticked) changes nothing.
    let form = format!("action=save&subscribed={}&subscribed={}", a.greece, a.italy);
    let r = app
        .client
        .post(app.url(&prefs))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .body(form)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().as_u16() == 303, "{}", r.status());
    assert_eq!(status(&app, &eva, &a.italy).await, "PENDING");
    assert_eq!(status(&app, &eva, &a.greece).await, "CONFIRMED");
    // The JSON view carries the wording for available groups, and a subscription records it.
    let (_, p) = get_json(&app, &prefs).await;
    let spain = p["groups"].as_array().unwrap().iter().find(|g| g["name"] == "Spain").unwrap().clone();
    assert_eq!(spain["consent"]["sha256"], a.text_sha.as_str());
    assert_eq!(spain["consent"]["text"], CONSENT_TEXT);

    // One-click, multipart, on a link bound to Greece after Greece lost its public name.
    let greece_link = preference_link(&app, &eva, Some(&a.greece)).await;
    gql(&app, "mutation($g: ID!) { updateGroup(input: {id: $g, publicName: null, publicDescription: null}) { group { id } } }", json!({"g": a.greece})).await;
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let r = app
        .client
        .post(app.url(&greece_link))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(status(&app, &eva, &a.greece).await, "WITHDRAWN");
    assert!(members(&app, &a.greece).await.is_empty());
    assert_eq!(status(&app, &eva, &a.italy).await, "PENDING", "only the link's group");

    // Consent in force without membership (an agent removed her): "everything" withdraws it too.
    submit_ok(&app, &a, "eva@example.com", &[&a.spain]).await;
    let links = confirmation_links(&app).await;
    get_json(&app, &path_of(links.last().unwrap())).await;
    assert_eq!(status(&app, &eva, &a.spain).await, "CONFIRMED");
    gql(
        &app,
        "mutation($g: ID!, $c: [ID!]!) { removeGroupMembers(input: {groupId: $g, contactIds: $c}) { removedCount } }",
        json!({"g": a.spain, "c": [eva]}),
    )
    .await;
    let (s, _, _) = post_json(&app, &prefs, &json!({"withdrawAll": true})).await;
    assert_eq!(s, 200);
    for g in [&a.spain, &a.italy] {
        assert_eq!(status(&app, &eva, g).await, "WITHDRAWN", "{g}");
    }
}

/// Confirmation links: a withdrawal voids the request even when a newer one is pending; a long
/// address is answered like any other.
async fn confirmations_are_bound_to_their_request(app: TestApp) {
    let a = agency(&app, true, false).await;
    submit_ok(&app, &a, "eva@example.com", &[&a.greece]).await;
    let first = path_of(&confirmation_links(&app).await[0]);
    let eva = contact_by_email(&app, "eva@example.com").await.unwrap();
    let prefs = preference_link(&app, &eva, None).await;
    let (s, _, _) = post_json(&app, &prefs, &json!({"unsubscribe": [a.greece]})).await;
    assert_eq!(s, 200);
    submit_ok(&app, &a, "eva@example.com", &[&a.greece]).await;
    assert_eq!(status(&app, &eva, &a.greece).await, "PENDING");
    let (s, e) = get_json(&app, &first).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("LINK_USED")), "the withdrawn request's link");
    assert_eq!(status(&app, &eva, &a.greece).await, "PENDING");
    let second = path_of(confirmation_links(&app).await.last().unwrap());
    assert_eq!(get_json(&app, &second).await.0, 200);
    assert_eq!(status(&app, &eva, &a.greece).await, "CONFIRMED");

    // A 230-character address: new and known get the same answer.
    let long = format!("{}.{}@{}.example.com", "l".repeat(60), "m".repeat(3), "d".repeat(160));
    assert!(long.len() > 200 && long.len() <= 254);
    let path = format!("/public/v1/forms/{}/submissions", a.key);
    let first = post_json(&app, &path, &json!({"email": long, "groups": [a.italy]})).await;
    let again = post_json(&app, &path, &json!({"email": long, "groups": [a.italy]})).await;
    assert_eq!((first.0, &first.2), (again.0, &again.2));
    assert_eq!(first.0, 202, "{}", first.2);
}

/// An agent sees a contact's consent entries only for groups they can see, and needs WRITE on a
/// group to record consent for it.
async fn consent_entries_follow_group_visibility(app: TestApp) {
    let a = agency(&app, false, false).await;
    let admin = app.actor(TENANT, "admin", &["admin"]);
    let agent = app.actor(TENANT, "agent", &["agent"]);
    let agent_id =
        agent.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].as_str().unwrap().to_owned();
    let grant = "mutation($b: ID!, $u: ID!, $l: AccessLevel!) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: $l}) { grant { level } } }";
    admin.ok(grant, json!({"b": a.book, "u": agent_id, "l": "READ"})).await;
    let d = admin
        .ok("mutation { createAddressBook(input: {name: \"Secret campaigns\"}) { addressBook { id } } }", json!({}))
        .await;
    let secret_book = d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    let secret = group(&app, &secret_book, "Secret campaign", Some("Special offers"), None).await;
    submit_ok(&app, &a, "eva@example.com", &[&a.greece]).await;
    let eva = contact_by_email(&app, "eva@example.com").await.unwrap();
    let text = a.text_id.clone();
    admin
        .ok("mutation($c: ID!, $g: ID!, $t: ID!) { recordConsent(input: {contactId: $c, groupId: $g, action: GIVEN, consentTextId: $t}) { entry { action } } }", json!({"c": eva, "g": secret, "t": text}))
        .await;
    let q = "query($c: ID!) { node(id: $c) { ... on Contact { consents { action group { id } } } } }";
    let seen = agent.ok(q, json!({"c": eva})).await;
    let entries = seen["node"]["consents"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "only the visible group's entry: {entries:?}");
    assert_eq!(entries[0]["group"]["id"], a.greece.as_str());
    assert_eq!(admin.ok(q, json!({"c": eva})).await["node"]["consents"].as_array().unwrap().len(), 2);
    // READ on the group's home book is not enough to record consent for it.
    let record = "mutation($c: ID!, $g: ID!) { recordConsent(input: {contactId: $c, groupId: $g, action: WITHDRAWN}) { entry { action } } }";
    assert_eq!(agent.err(record, json!({"c": eva, "g": a.greece})).await, "FORBIDDEN");
    assert_eq!(status(&app, &eva, &a.greece).await, "CONFIRMED");
}

/// A local SMTP server that accepts every message (no TLS, no auth) and keeps them.
struct SmtpSink {
    port: u16,
    messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let kept = messages.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(d) = data.as_mut() {
                            if line == "." {
                                kept.lock().unwrap().push(std::mem::take(d));
                                data = None;
                                let _ = w.write_all(b"250 queued\r\n").await;
                            } else {
                                d.push_str(line.strip_prefix('.').unwrap_or(&line));
                                d.push('\n');
                            }
                            continue;
                        }
                        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                        let answer: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        let _ = w.write_all(answer).await;
                    }
                });
            }
        });
        SmtpSink { port, messages }
    }

    async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let m = self.messages.lock().unwrap().clone();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} mails, got {:?}", self.messages.lock().unwrap());
    }
}

/// With `COHORT_SMTP_URL`, Cohort mails the confirmation link itself: once per request, to the
/// contact's address, in the consent text's language; the link in the mail confirms.
async fn confirmation_mails_over_smtp(backend: Backend) {
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let Some(app) = spawn_or_skip(backend, move |s| {
        s.smtp = Some(cohort_api::mail::SmtpSettings {
            url: format!("smtp://127.0.0.1:{port}").into(),
            from: "Cohort <no-reply@cohort.example>".into(),
        });
        s.webhooks.worker = true;
        s.webhooks.poll_interval = std::time::Duration::from_millis(30);
    })
    .await
    else {
        return;
    };
    let a = agency(&app, true, false).await;
    let path = format!("/public/v1/forms/{}/submissions", a.key);
    let (s, _, _) = post_json(&app, &path, &json!({"email": "eva@example.com", "groups": [a.greece, a.italy]})).await;
    assert_eq!(s, 202);
    let mails = sink.wait_for(1).await;
    let m = &mails[0];
    assert!(m.contains("To: eva@example.com"), "{m}");
    assert!(m.contains("Sunny Travel"), "{m}");
    // The body may be quoted-printable: undo soft line breaks and `=3D`.
    let body = m.replace("=\n", "").replace("=3D", "=");
    let start = body.find("/public/v1/confirm/").expect("a confirmation link in the mail");
    let link: String = body[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    let (s, c) = get_json(&app, &link).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("CONFIRMED")), "{c}");
    let eva = contact_by_email(&app, "eva@example.com").await.unwrap();
    assert_eq!(status(&app, &eva, &a.italy).await, "CONFIRMED");
    // A German wording makes a German mail; no mail is sent twice.
    let t = gql(
        &app,
        "mutation { createConsentText(input: {purpose: \"reisen\", language: \"de\", body: \"Ich möchte Reiseangebote erhalten.\"}) { consentText { id } } }",
        json!({}),
    )
    .await;
    gql(
        &app,
        "mutation($f: ID!, $t: ID!) { updateWebForm(input: {id: $f, consentTextId: $t}) { webForm { version } } }",
        json!({"f": a.form_id, "t": t["createConsentText"]["consentText"]["id"]}),
    )
    .await;
    let (s, _, _) = post_json(&app, &path, &json!({"email": "jan@example.com", "groups": [a.spain]})).await;
    assert_eq!(s, 202);
    let mails = sink.wait_for(2).await;
    assert!(
        mails[1].contains("To: jan@example.com") && mails[1].contains("Bitte") && !mails[1].contains("Please confirm"),
        "{}",
        mails[1]
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.messages.lock().unwrap().len(), 2, "each request is mailed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_mails_over_smtp_sqlite() {
    confirmation_mails_over_smtp(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_mails_over_smtp_postgres() {
    confirmation_mails_over_smtp(Backend::Postgres).await
}

async fn futures_join<T: Send + 'static>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = vec![];
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}

on_both_backends!(
    travel_agency_form_end_to_end,
    public_answers_reveal_nothing,
    links_are_checked,
    consent_log_is_append_only,
    form_cors,
    forms_and_texts_are_validated,
    agents_and_visibility,
    parallel_public_writes,
    mixed_writers_on_one_group,
    sequences_require_consent,
    withdrawal_is_complete,
    confirmations_are_bound_to_their_request,
    consent_entries_follow_group_visibility,
);
