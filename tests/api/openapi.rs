//! The committed spec is the contract with generated clients: it must be
//! exactly what the code produces, and every operation must be usable.

const REGENERATE: &str = "cargo run --quiet -- openapi > openapi/openapi.json";

#[test]
fn committed_spec_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = dlgrade::api::openapi_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date with the code; regenerate it with:\n\n    {REGENERATE}\n"
    );
}

#[test]
fn every_operation_has_an_id_a_summary_and_documented_errors() {
    let spec: serde_json::Value = serde_json::from_str(&dlgrade::api::openapi_json()).unwrap();
    let paths = spec["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    let mut ids = std::collections::HashSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no operationId"));
            assert!(
                ids.insert(id.to_string()),
                "{name}: duplicate operationId {id}"
            );
            assert!(op["summary"].is_string(), "{name}: no summary");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{name}: no success response"
            );
            if path != "/healthz" {
                let errors: Vec<_> = responses
                    .keys()
                    .filter(|k| k.starts_with(['4', '5']))
                    .collect();
                assert!(!errors.is_empty(), "{name}: no documented error response");
                for code in errors {
                    assert!(
                        responses[code]["content"]["application/problem+json"].is_object(),
                        "{name}: error {code} is not problem+json"
                    );
                }
            }
            for (code, response) in responses {
                let types = response["content"].as_object().map_or(0, |c| c.len());
                assert!(
                    types <= 1,
                    "{name}: response {code} offers {types} media types (generators keep one)"
                );
            }
            if op.get("requestBody").is_some() {
                assert!(
                    op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                    "{name}: untyped request body"
                );
            }
        }
    }
}

/// Generators cannot resolve inline `allOf` members of a `oneOf`: every
/// variant of a tagged enum must be a named component.
#[test]
fn tagged_enum_variants_are_named_components() {
    let spec: serde_json::Value = serde_json::from_str(&dlgrade::api::openapi_json()).unwrap();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for (name, schema) in schemas {
        for member in schema["oneOf"].as_array().into_iter().flatten() {
            assert!(
                member.get("allOf").is_none(),
                "{name}: inline allOf in oneOf"
            );
        }
    }
    assert!(schemas.contains_key("AnswerSpecNumber"));
    assert!(schemas.contains_key("LayerSpecConv2d"));
}
