//! The JSON Schemas of the job file and the report, generated from their types.

use serde_json::Value;

use crate::cli::SchemaKind;

/// The schema as pretty-printed JSON, exactly as committed under `schemas/`.
pub fn render(which: SchemaKind) -> String {
    let schema = match which {
        SchemaKind::Job => {
            let mut schema = schemars::schema_for!(crate::job::file::JobFile).to_value();
            // TOML has no null: an optional key is one that may be left out, not set to null.
            strip_null(&mut schema);
            schema
        }
        SchemaKind::Report => schemars::schema_for!(crate::report::Report).to_value(),
    };
    serde_json::to_string_pretty(&schema).expect("schemas serialize")
}

fn strip_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".to_owned(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(options)) = map.get_mut(key) {
                    options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
                    if options.len() == 1 {
                        let only = options.remove(0);
                        map.remove(key);
                        if let Value::Object(inner) = only {
                            map.extend(inner);
                        }
                    }
                }
            }
            map.values_mut().for_each(strip_null);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn null_is_removed_from_optional_types() {
        let mut v = json!({"a": {"type": ["string", "null"]}, "b": {"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}});
        super::strip_null(&mut v);
        assert_eq!(v, json!({"a": {"type": "string"}, "b": {"$ref": "#/x"}}));
    }
}
