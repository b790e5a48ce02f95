//! The demo tenant (`serve --demo`) holds what the README's examples use: groups from every
//! book, routing of key accounts, SLA contracts and a ticket, products and price lists, an ERP
//! integration with a grant — and seeding it twice is harmless. (`tests/readme.rs` runs the
//! README's examples themselves against the real binary.)

use crate::on_both_backends;
use crate::support::TestApp;
use serde_json::{Value, json};

async fn demo_tenant_has_what_the_readme_uses(app: TestApp) {
    let d = app.store.system().seed_demo().await.expect("seed");
    assert!(d.created);
    let again = app.store.system().seed_demo().await.expect("seed again");
    assert!(!again.created, "seeding is idempotent");
    let admin = app.actor(&d.tenant_key, &d.admin_subject, &["admin"]);
    let agent = app.actor(&d.tenant_key, &d.agent_subject, &["agent"]);
    let q = "{ processAreas { key } processingAreas { name } slaContracts { name rank } tenantDefaultSla { name }
        messages(first: 5) { totalCount edges { node { subject processingArea { name } worker { subject } decidingGroup { name } contact { id } } } }
        tickets(first: 5) { totalCount edges { node { subject sla { contractName source dueResolutionAt } processingArea { name } } } } }";
    let a = admin.ok(q, json!({})).await;
    assert_eq!(a["processAreas"], json!([{"key": "helpdesk"}, {"key": "sales"}]));
    assert_eq!(a["slaContracts"][0]["name"], "Key account");
    assert_eq!(a["tenantDefaultSla"]["name"], "Standard");
    let m = &a["messages"]["edges"][0]["node"];
    assert_eq!(m["processingArea"]["name"], "Helpdesk — key accounts");
    assert_eq!(m["worker"]["subject"], d.agent_subject);
    assert_eq!(m["decidingGroup"]["name"], "Key accounts");
    let t = &a["tickets"]["edges"][0]["node"];
    assert_eq!(t["sla"]["contractName"], "Key account");
    assert_eq!(t["sla"]["source"], "GROUP");
    // The demo agent is the key accounts' worker and in the user group the queue is for.
    let g = agent.ok(q, json!({})).await;
    assert_eq!(g["messages"]["totalCount"], 1);
    assert_eq!(g["tickets"]["totalCount"], 1);
    let contact = m["contact"]["id"].clone();
    let r = agent.ok("query($c: ID!) { route(contactId: $c) { worker { subject } restricted processingArea { name } fromGroup { name } } }", json!({"c": contact})).await;
    assert_eq!(r["route"]["fromGroup"]["name"], "Key accounts");
    assert_eq!(r["route"]["restricted"], true);
    // The README's public-groups example: the travel agency's form, rendered for the public.
    let f = admin.ok("{ webForms { key name doubleOptIn groups { name publicName } } publicProfile }", json!({})).await;
    assert_eq!(f["publicProfile"], "Cohort Demo Travel");
    let form = &f["webForms"][0];
    assert_eq!((form["name"].as_str(), form["doubleOptIn"].as_bool()), (Some("Travel enquiries"), Some(true)));
    let key = form["key"].as_str().unwrap();
    let def: serde_json::Value =
        app.client.get(app.url(&format!("/public/v1/forms/{key}"))).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = def["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Greece", "Italy", "Spain", "Turkey"]);
    assert_eq!(def["organisation"], "Cohort Demo Travel");

    // 50 contacts, as the README says; the README names persons, so their names are unique.
    let c = admin.ok("{ contacts(first: 100) { totalCount edges { node { displayName kind addressBook { name } } } } groups(first: 100) { edges { node { name } } } }", json!({})).await;
    assert_eq!(c["contacts"]["totalCount"], 50);
    let mut persons: Vec<&str> = c["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["kind"] == "PERSON")
        .map(|e| e["node"]["displayName"].as_str().unwrap())
        .collect();
    let anna = c["contacts"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["displayName"] == "Anna Abbott");
    assert_eq!(anna.map(|e| e["node"]["addressBook"]["name"].clone()), Some(json!("Customers DACH")));
    persons.sort_unstable();
    let count = persons.len();
    persons.dedup();
    assert_eq!(persons.len(), count, "person names repeat");
    assert!(c["groups"]["edges"].as_array().unwrap().iter().any(|e| e["node"]["name"] == "Warm leads"));

    // The ERP integration: WRITE on "Customers DACH" only; the webshop's price for Anna comes from
    // the key accounts' "Gold" list before Germany's inherited "Silver".
    assert_eq!(d.integration_subject, "demo-erp");
    let erp = app.actor(&d.tenant_key, &d.integration_subject, &["integration"]);
    let books = erp.ok("{ addressBooks { edges { node { name myAccess } } } }", json!({})).await;
    assert_eq!(books["addressBooks"]["edges"], json!([{"node": {"name": "Customers DACH", "myAccess": "WRITE"}}]));
    let anna = erp
        .ok("{ contacts(filter: {search: \"anna abbott\"}) { edges { node { id } } } }", json!({}))
        .await["contacts"]["edges"][0]["node"]["id"]
        .clone();
    let q = "query($c: ID!, $n: Decimal!) { resolvePrice(input: {contactId: $c, sku: \"P-1\", quantity: $n, currency: \"EUR\"}) {
        unitPrice priceList { name } group { name } explanation { priceList { name } group { name } definedOn { name } outcome } } }";
    let p = erp.ok(q, json!({"c": anna, "n": "9"})).await;
    assert_eq!(p["resolvePrice"]["unitPrice"], "80");
    assert_eq!(p["resolvePrice"]["group"]["name"], "Key accounts");
    assert_eq!(
        p["resolvePrice"]["explanation"][1],
        json!({"priceList": {"name": "Silver"}, "group": {"name": "Germany"}, "definedOn": {"name": "DACH"}, "outcome": "NOT_REACHED"})
    );
    assert_eq!(erp.ok(q, json!({"c": anna, "n": "10"})).await["resolvePrice"]["unitPrice"], "75");
    // Anna's helpdesk mail: the key accounts decide before Germany, which inherits DACH's.
    let r = admin
        .ok("query($c: ID!) { route(contactId: $c) { fromGroup { name } explanation { candidates { group { name } inherited definedOn { name } outcome } } } }", json!({"c": anna}))
        .await;
    assert_eq!(r["route"]["fromGroup"]["name"], "Key accounts");
    assert_eq!(
        r["route"]["explanation"]["candidates"][1],
        json!({"group": {"name": "Germany"}, "inherited": true, "definedOn": {"name": "DACH"}, "outcome": "PASSED_OVER"})
    );
    let catalogue = admin
        .ok("{ products { edges { node { sku listPrice } } } priceLists { edges { node { name } } } }", json!({}))
        .await;
    let products: Vec<&Value> = catalogue["products"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]).collect();
    assert!(products.contains(&&json!({"sku": "P-1", "listPrice": "99"})), "{products:?}");
    let lists: Vec<&str> = catalogue["priceLists"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(lists, ["Gold", "Silver"]);
}

on_both_backends!(demo_tenant_has_what_the_readme_uses);
