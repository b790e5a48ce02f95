//! The demo tenant (`serve --demo`) holds what the README's examples use: groups from every
//! book, routing of key accounts, SLA contracts and a ticket — and seeding it twice is harmless.

use crate::on_both_backends;
use crate::support::TestApp;
use serde_json::json;

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
}

on_both_backends!(demo_tenant_has_what_the_readme_uses);
