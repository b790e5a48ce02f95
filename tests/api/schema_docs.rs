//! The schema documents itself: every object type, interface, union, input, enum and custom
//! scalar, every field, input field and enum value — deprecated ones included — has a
//! description. The schema is read through introspection of the schema the server builds (the
//! one `schema.graphql` is generated from; `tests/cli.rs` keeps the two equal), i.e. what
//! GraphiQL's docs explorer, graphql-codegen and Apollo's tooling show a front-end developer.

use serde_json::Value;

const INTROSPECTION: &str = "{ __schema { types { kind name description
    fields(includeDeprecated: true) { name description }
    inputFields(includeDeprecated: true) { name description }
    enumValues(includeDeprecated: true) { name description } } } }";

/// The scalars the GraphQL specification defines (their meaning is the spec's).
const BUILT_IN: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];

fn described(v: &Value) -> bool {
    v["description"].as_str().is_some_and(|d| !d.trim().is_empty())
}

/// `Type`, `Type.field`, `Input.field`, `Enum.VALUE` for everything without a description.
fn undocumented(schema: &Value) -> Vec<String> {
    let mut out = vec![];
    for t in schema["types"].as_array().expect("types") {
        let name = t["name"].as_str().expect("type name");
        if name.starts_with("__") || (t["kind"] == "SCALAR" && BUILT_IN.contains(&name)) {
            continue;
        }
        if !described(t) {
            out.push(format!("{} {name}", t["kind"].as_str().unwrap_or("?").to_lowercase()));
        }
        for part in ["fields", "inputFields", "enumValues"] {
            for f in t[part].as_array().into_iter().flatten() {
                if !described(f) {
                    out.push(format!("{name}.{}", f["name"].as_str().unwrap_or("?")));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn every_type_field_input_field_and_enum_value_has_a_description() {
    let schema = cohort_api::graphql::build_schema(&cohort_api::config::Limits::default(), true);
    let body = serde_json::to_value(schema.execute(INTROSPECTION).await).expect("response as JSON");
    assert!(body.get("errors").is_none_or(Value::is_null), "{body}");
    let s = &body["data"]["__schema"];
    assert!(s["types"].as_array().is_some_and(|t| t.len() > 100), "introspection answered: {body}");
    let missing = undocumented(s);
    assert!(
        missing.is_empty(),
        "{} parts of the schema have no description (write one that tells a client what it means):\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}

/// The check itself: it finds what lacks a description, at every level it covers.
#[test]
fn the_check_names_what_is_undocumented() {
    let schema = serde_json::json!({"types": [
        {"kind": "OBJECT", "name": "Documented", "description": "Yes.",
         "fields": [{"name": "a", "description": "A."}, {"name": "b", "description": " "}]},
        {"kind": "INPUT_OBJECT", "name": "Bare", "description": null,
         "inputFields": [{"name": "c", "description": null}]},
        {"kind": "ENUM", "name": "E", "description": "An enum.", "enumValues": [{"name": "X", "description": null}]},
        {"kind": "SCALAR", "name": "Decimal", "description": null},
        {"kind": "SCALAR", "name": "String", "description": null},
        {"kind": "OBJECT", "name": "__Type", "description": null},
    ]});
    assert_eq!(undocumented(&schema), ["Documented.b", "input_object Bare", "Bare.c", "E.X", "scalar Decimal"]);
}
