//! Authentication (RFC 8725): every way a bearer token can be wrong yields 401 with
//! `UNAUTHENTICATED` and a `WWW-Authenticate` challenge, before any resolver runs. Valid HS256,
//! RS256 and ES256 tokens (PEM or JWKS) are accepted; the token's tenant bounds everything the
//! caller sees; unknown roles grant nothing; users are created just in time.

use crate::on_both_backends;
use crate::support::{Backend, CREATE_BOOK, CREATE_CONTACT, SECRET, TestApp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;

const VIEWER: &str = "{ viewer { user { subject } } }";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims every check accepts: tenant `t1`, subject `alice`, role agent, valid for an hour.
fn claims() -> Value {
    json!({
        "sub": "alice",
        "tid": "t1",
        "roles": ["agent"],
        "iss": "cohort",
        "aud": "cohort-api",
        "iat": now(),
        "exp": now() + 3600,
    })
}

fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).expect("encode token")
}

/// HS256 with the server's test secret.
fn hs256(claims: &Value) -> String {
    sign(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET.as_bytes()))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// POSTs the viewer query with a raw `Authorization` header value and asserts the 401.
async fn assert_rejected(app: &TestApp, authorization: &str, what: &str) {
    let resp = app
        .client
        .post(app.url("/graphql"))
        .header(AUTHORIZATION, authorization)
        .json(&json!({ "query": VIEWER }))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401, "{what}: status");
    let challenge = resp
        .headers()
        .get(WWW_AUTHENTICATE)
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate header"))
        .to_str()
        .expect("ascii header")
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{what}: challenge {challenge:?}");
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{what}: {body:#}");
    assert!(body.get("data").is_none(), "{what}: a refused request has no data: {body:#}");
}

async fn assert_token_rejected(app: &TestApp, token: &str, what: &str) {
    assert_rejected(app, &format!("Bearer {token}"), what).await;
}

/// Asserts the token is accepted and proves `subject`.
async fn assert_accepted(app: &TestApp, token: &str, subject: &str) {
    let (status, body) = app.post_json(Some(token), &json!({ "query": VIEWER })).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
    assert_eq!(body["data"]["viewer"]["user"]["subject"], subject);
}

/// The baseline claims are accepted, then the claims changed by `change` are refused: the
/// rejection is caused by that change alone.
async fn rejects_changed_claims(app: &TestApp, what: &str, change: impl FnOnce(&mut Value)) {
    assert_accepted(app, &hs256(&claims()), "alice").await;
    let mut c = claims();
    change(&mut c);
    assert_token_rejected(app, &hs256(&c), what).await;
}

// ---------------------------------------------------------------------------------------------
// Key material (generated once per test binary: RSA key generation is slow) and servers
// configured with public keys.

struct RsaFixture {
    private_pem: String,
    public_pem: String,
    /// Base64url big-endian modulus and exponent, for a JWKS.
    n: String,
    e: String,
}

fn rsa_key() -> &'static RsaFixture {
    static KEY: OnceLock<RsaFixture> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        use rsa::traits::PublicKeyParts;
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
        let public = private.to_public_key();
        RsaFixture {
            private_pem: private.to_pkcs8_pem(LineEnding::LF).expect("private PEM").to_string(),
            public_pem: public.to_public_key_pem(LineEnding::LF).expect("public PEM"),
            n: b64(&public.n().to_bytes_be()),
            e: b64(&public.e().to_bytes_be()),
        }
    })
}

struct EcFixture {
    private_pem: String,
    public_pem: String,
    /// Base64url affine coordinates of the public point, for a JWKS.
    x: String,
    y: String,
}

fn ec_key() -> EcFixture {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand::thread_rng());
    let public = secret.public_key();
    let point = public.to_encoded_point(false);
    EcFixture {
        private_pem: secret.to_pkcs8_pem(LineEnding::LF).expect("private PEM").to_string(),
        public_pem: public.to_public_key_pem(LineEnding::LF).expect("public PEM"),
        x: b64(point.x().expect("x coordinate")),
        y: b64(point.y().expect("y coordinate")),
    }
}

fn rsa_signed(kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(str::to_owned);
    sign(&h, claims, &EncodingKey::from_rsa_pem(rsa_key().private_pem.as_bytes()).expect("RSA encoding key"))
}

fn ec_signed(ec: &EcFixture, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = kid.map(str::to_owned);
    sign(&h, claims, &EncodingKey::from_ec_pem(ec.private_pem.as_bytes()).expect("EC encoding key"))
}

/// Spawns a server whose only keys are `contents` (a PEM public key or a JWKS), read from a
/// temporary `COHORT_JWT_PUBLIC_KEYS` file. `None` (after saying so) when PostgreSQL is not set up.
async fn spawn_with_public_keys(backend: Backend, contents: &str) -> Option<TestApp> {
    let path: PathBuf = std::env::temp_dir().join(format!("cohort-test-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, contents).expect("write key file");
    let app = TestApp::spawn_with(backend, |s| {
        s.jwt.secret = None;
        s.jwt.public_keys = Some(path.clone());
    })
    .await;
    // The keys are read when the app is built.
    let _ = std::fs::remove_file(&path);
    if app.is_none() {
        eprintln!("skipped on PostgreSQL: COHORT_TEST_DATABASE_URL is not set");
    }
    app
}

// ---------------------------------------------------------------------------------------------
// Rejections with the default (HS256) server.

async fn no_token_is_anonymous(app: TestApp) {
    let (status, body) = app.post_json(None, &json!({ "query": "{ __typename }" })).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["__typename"], "Query");

    let (status, body) = app.post_json(None, &json!({ "query": "{ viewer { isAdmin } }" })).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body:#}");
    assert_eq!(body["data"], Value::Null, "{body:#}");
}

async fn alg_none_rejected(app: TestApp) {
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(serde_json::to_string(&claims()).unwrap().as_bytes());
    assert_token_rejected(&app, &format!("{header}.{payload}."), "alg none").await;
    // Also with the algorithm name in other cases.
    let header = b64(br#"{"alg":"None","typ":"JWT"}"#);
    assert_token_rejected(&app, &format!("{header}.{payload}."), "alg None").await;
}

async fn wrong_hs256_secret_rejected(app: TestApp) {
    let other = EncodingKey::from_secret(b"another-secret-that-is-also-long-enough-for-hs256");
    assert_token_rejected(&app, &sign(&Header::new(Algorithm::HS256), &claims(), &other), "wrong secret").await;
}

async fn expired_rejected(app: TestApp) {
    rejects_changed_claims(&app, "expired", |c| c["exp"] = json!(now() - 600)).await;
}

async fn not_yet_valid_rejected(app: TestApp) {
    rejects_changed_claims(&app, "nbf in the future", |c| c["nbf"] = json!(now() + 600)).await;
}

async fn wrong_issuer_rejected(app: TestApp) {
    rejects_changed_claims(&app, "wrong iss", |c| c["iss"] = json!("someone-else")).await;
}

async fn missing_issuer_rejected(app: TestApp) {
    rejects_changed_claims(&app, "missing iss", |c| {
        c.as_object_mut().unwrap().remove("iss");
    })
    .await;
}

async fn wrong_audience_rejected(app: TestApp) {
    rejects_changed_claims(&app, "wrong aud", |c| c["aud"] = json!("another-api")).await;
}

async fn missing_audience_rejected(app: TestApp) {
    rejects_changed_claims(&app, "missing aud", |c| {
        c.as_object_mut().unwrap().remove("aud");
    })
    .await;
}

async fn missing_exp_rejected(app: TestApp) {
    rejects_changed_claims(&app, "missing exp", |c| {
        c.as_object_mut().unwrap().remove("exp");
    })
    .await;
}

async fn exp_of_wrong_type_rejected(app: TestApp) {
    rejects_changed_claims(&app, "string exp", |c| c["exp"] = json!("9999999999")).await;
}

async fn missing_tenant_rejected(app: TestApp) {
    rejects_changed_claims(&app, "missing tid", |c| {
        c.as_object_mut().unwrap().remove("tid");
    })
    .await;
}

async fn empty_subject_rejected(app: TestApp) {
    rejects_changed_claims(&app, "empty sub", |c| c["sub"] = json!("")).await;
}

/// A correctly signed token whose claims carry NUL or other control characters is refused as a
/// whole (401), never stored and never an `INTERNAL` (PostgreSQL cannot hold NUL in text).
async fn control_characters_in_claims_rejected(app: TestApp) {
    rejects_changed_claims(&app, "NUL in name", |c| c["name"] = json!("Alice\u{0}Admin")).await;
    rejects_changed_claims(&app, "NUL in sub", |c| c["sub"] = json!("alice\u{0}")).await;
    rejects_changed_claims(&app, "NUL in tid", |c| c["tid"] = json!("\u{0}t1")).await;
    rejects_changed_claims(&app, "escape in email", |c| c["email"] = json!("a\u{1b}@b.io")).await;
    rejects_changed_claims(&app, "NUL in a role", |c| c["roles"] = json!(["agent\u{0}"])).await;
    // The same token without the NUL is fine: the refusal is about the character.
    let mut ok = claims();
    ok["name"] = json!("Alice Admin");
    assert_accepted(&app, &hs256(&ok), "alice").await;
}

async fn garbage_token_rejected(app: TestApp) {
    assert_token_rejected(&app, "not-a-jwt", "garbage token").await;
}

async fn non_bearer_scheme_rejected(app: TestApp) {
    assert_rejected(&app, "Basic abc", "Basic scheme").await;
    // A valid token under another scheme is still not a bearer token.
    assert_rejected(&app, &format!("Token {}", hs256(&claims())), "Token scheme").await;
}

// ---------------------------------------------------------------------------------------------
// Accepted tokens and what they grant.

async fn hs256_token_accepted(app: TestApp) {
    assert_accepted(&app, &hs256(&claims()), "alice").await;
}

async fn tenants_are_isolated_at_the_token_level(app: TestApp) {
    let admin_a = app.actor("a", "admin", &["admin"]);
    let d = admin_a.ok(CREATE_BOOK, json!({"n": "Tenant A book"})).await;
    let book = d["createAddressBook"]["addressBook"]["id"].as_str().unwrap().to_owned();
    let d = admin_a
        .ok(CREATE_CONTACT, json!({"i": {"addressBookId": book, "kind": "PERSON", "lastName": "Only-In-A"}}))
        .await;
    let contact = d["createContact"]["contact"]["id"].as_str().unwrap().to_owned();
    let user_a = admin_a.ok("{ viewer { user { id } } }", json!({})).await["viewer"]["user"]["id"].clone();
    // Tenant a sees its own data (the control).
    let d = admin_a.ok("{ addressBooks { edges { node { name } } } contacts { totalCount } }", json!({})).await;
    assert_eq!(d["addressBooks"]["edges"], json!([{"node": {"name": "Tenant A book"}}]));
    assert_eq!(d["contacts"]["totalCount"], 1);

    // The same subject and role in tenant b is another user that sees none of it.
    let admin_b = app.actor("b", "admin", &["admin"]);
    let d = admin_b
        .ok(
            "{ viewer { tenant user { id } } addressBooks { edges { node { id } } } contacts { totalCount edges { node { id } } } users { edges { node { subject } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["viewer"]["tenant"], "b");
    assert_ne!(d["viewer"]["user"]["id"], user_a);
    assert_eq!(d["addressBooks"]["edges"], json!([]));
    assert_eq!(d["contacts"]["totalCount"], 0);
    assert_eq!(d["contacts"]["edges"], json!([]));
    assert_eq!(d["users"]["edges"], json!([{"node": {"subject": "admin"}}]));
    for id in [&book, &contact] {
        let d = admin_b.ok("query($id: ID!) { node(id: $id) { id } }", json!({"id": id})).await;
        assert_eq!(d["node"], Value::Null, "node({id}) from another tenant");
    }
    let n = admin_b.ok("query($id: ID!) { node(id: $id) { id } }", json!({"id": user_a})).await;
    assert_eq!(n["node"], Value::Null, "a user of another tenant");
    assert_eq!(admin_b.err("query($id: ID!) { contact(id: $id) { id } }", json!({"id": contact})).await, "NOT_FOUND");
    assert_eq!(admin_b.err("query($id: ID!) { addressBook(id: $id) { id } }", json!({"id": book})).await, "NOT_FOUND");
    // Nor can it write there.
    let code = admin_b
        .err(CREATE_CONTACT, json!({"i": {"addressBookId": book, "kind": "PERSON", "lastName": "Intruder"}}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    let d = admin_a.ok("{ contacts { totalCount } }", json!({})).await;
    assert_eq!(d["contacts"]["totalCount"], 1);
}

async fn unknown_roles_grant_nothing(app: TestApp) {
    let su = app.actor("t1", "mallory", &["superuser", "root", "ADMIN "]);
    let d = su.ok("{ viewer { roles isAdmin } }", json!({})).await;
    assert_eq!(d["viewer"], json!({"roles": [], "isAdmin": false}));
    assert_eq!(su.err(CREATE_BOOK, json!({"n": "Nope"})).await, "FORBIDDEN");
    assert_eq!(su.err("{ users { edges { node { subject } } } }", json!({})).await, "FORBIDDEN");
    // The control: a real admin of the same tenant may.
    app.actor("t1", "root", &["admin"]).ok(CREATE_BOOK, json!({"n": "Yes"})).await;
}

async fn users_are_created_just_in_time(app: TestApp) {
    let admin = app.actor("jit", "boss", &["admin"]);
    const USERS: &str = "{ users { edges { node { subject name email lastSeenAt } } } }";
    let d = admin.ok(USERS, json!({})).await;
    let subjects: Vec<&Value> = d["users"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]["subject"]).collect();
    assert_eq!(subjects, [&json!("boss")]);

    let mut c = claims();
    c["tid"] = json!("jit");
    c["sub"] = json!("newbie");
    c["name"] = json!("New Bie");
    c["email"] = json!("newbie@example.com");
    assert_accepted(&app, &hs256(&c), "newbie").await;

    let d = admin.ok(USERS, json!({})).await;
    let edges = d["users"]["edges"].as_array().unwrap();
    let newbie = edges
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["subject"] == "newbie")
        .unwrap_or_else(|| panic!("the new user is listed: {d:#}"));
    assert_eq!(newbie["name"], "New Bie");
    assert_eq!(newbie["email"], "newbie@example.com");
    let seen = newbie["lastSeenAt"].as_str().unwrap_or_else(|| panic!("lastSeenAt is set: {newbie:#}"));
    chrono::DateTime::parse_from_rfc3339(seen).expect("lastSeenAt is RFC 3339");
    assert_eq!(edges.len(), 2, "{d:#}");
    // A second request reuses the user.
    assert_accepted(&app, &hs256(&c), "newbie").await;
    let d = admin.ok(USERS, json!({})).await;
    assert_eq!(d["users"]["edges"].as_array().unwrap().len(), 2);
}

on_both_backends!(
    no_token_is_anonymous,
    alg_none_rejected,
    wrong_hs256_secret_rejected,
    expired_rejected,
    not_yet_valid_rejected,
    wrong_issuer_rejected,
    missing_issuer_rejected,
    wrong_audience_rejected,
    missing_audience_rejected,
    missing_exp_rejected,
    exp_of_wrong_type_rejected,
    missing_tenant_rejected,
    empty_subject_rejected,
    control_characters_in_claims_rejected,
    garbage_token_rejected,
    non_bearer_scheme_rejected,
    hs256_token_accepted,
    tenants_are_isolated_at_the_token_level,
    unknown_roles_grant_nothing,
    users_are_created_just_in_time,
);

// ---------------------------------------------------------------------------------------------
// Servers configured with public keys.

async fn rs256_pem_accepted(backend: Backend) {
    let Some(app) = spawn_with_public_keys(backend, &rsa_key().public_pem).await else {
        return;
    };
    assert_accepted(&app, &rsa_signed(None, &claims()), "alice").await;
    // The kid is irrelevant with a single PEM key.
    assert_accepted(&app, &rsa_signed(Some("whatever"), &claims()), "alice").await;
    // The server has no shared secret: HS256 tokens signed with the test secret fail.
    assert_token_rejected(&app, &hs256(&claims()), "HS256 on an RS256 server").await;
    // Claims are still checked.
    let mut c = claims();
    c["exp"] = json!(now() - 600);
    assert_token_rejected(&app, &rsa_signed(None, &c), "expired RS256").await;
}

async fn hs_rs_confusion_rejected(backend: Backend) {
    let key = rsa_key();
    let Some(app) = spawn_with_public_keys(backend, &key.public_pem).await else {
        return;
    };
    // The public key, known to everyone, used as an HMAC secret.
    let forged = sign(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(key.public_pem.as_bytes()));
    assert_token_rejected(&app, &forged, "HS256 signed with the RSA public key").await;
    let forged = sign(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(key.public_pem.trim_end().as_bytes()),
    );
    assert_token_rejected(&app, &forged, "HS256 signed with the trimmed RSA public key").await;
    // The control: the genuine RS256 token passes.
    assert_accepted(&app, &rsa_signed(None, &claims()), "alice").await;
}

async fn es256_pem_accepted(backend: Backend) {
    let ec = ec_key();
    let Some(app) = spawn_with_public_keys(backend, &ec.public_pem).await else {
        return;
    };
    assert_accepted(&app, &ec_signed(&ec, None, &claims()), "alice").await;
    // Another P-256 key does not verify.
    let other = ec_key();
    assert_token_rejected(&app, &ec_signed(&other, None, &claims()), "ES256 with another key").await;
    // RS256 is not accepted on an ES256 server.
    assert_token_rejected(&app, &rsa_signed(None, &claims()), "RS256 on an ES256 server").await;
}

async fn jwks_kid_selects_the_key(backend: Backend) {
    let key = rsa_key();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": key.n, "e": key.e}]});
    let Some(app) = spawn_with_public_keys(backend, &jwks.to_string()).await else {
        return;
    };
    assert_accepted(&app, &rsa_signed(Some("k1"), &claims()), "alice").await;
    assert_token_rejected(&app, &rsa_signed(Some("k2"), &claims()), "unknown kid").await;
    // HS256 with the JWK's modulus as secret, claiming the known kid.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let forged = sign(&h, &claims(), &EncodingKey::from_secret(key.n.as_bytes()));
    assert_token_rejected(&app, &forged, "HS256 with kid k1").await;
}

async fn es256_jwks_accepted(backend: Backend) {
    let ec = ec_key();
    let rsa = rsa_key();
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec1", "alg": "ES256", "use": "sig", "x": ec.x, "y": ec.y},
        {"kty": "RSA", "kid": "rsa1", "alg": "RS256", "use": "sig", "n": rsa.n, "e": rsa.e},
    ]});
    let Some(app) = spawn_with_public_keys(backend, &jwks.to_string()).await else {
        return;
    };
    assert_accepted(&app, &ec_signed(&ec, Some("ec1"), &claims()), "alice").await;
    assert_accepted(&app, &rsa_signed(Some("rsa1"), &claims()), "alice").await;
    // Each kid is bound to its key and algorithm.
    assert_token_rejected(&app, &ec_signed(&ec, Some("rsa1"), &claims()), "ES256 token under the RSA kid").await;
    assert_token_rejected(&app, &rsa_signed(Some("ec1"), &claims()), "RS256 token under the EC kid").await;
    // With several keys, a token without kid cannot pick one.
    assert_token_rejected(&app, &ec_signed(&ec, None, &claims()), "no kid with two keys").await;
}

crate::on_both_backends_custom!(
    rs256_pem_accepted,
    hs_rs_confusion_rejected,
    es256_pem_accepted,
    jwks_kid_selects_the_key,
    es256_jwks_accepted,
);
