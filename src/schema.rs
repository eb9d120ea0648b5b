//! The JSON Schemas of the job file, the report and the journal, generated from their types.
//!
//! The types say what each key holds (`job::grammar` spells the strings); this module turns
//! schemars' output into schemas every draft 2020-12 validator reads alike, ajv in strict mode
//! and Taplo among them: each key's schema inline (so an editor shows the key's own text),
//! no `null` (TOML has none), integer widths as `minimum`/`maximum` instead of schemars'
//! own formats, and a choice of strings as one `enum`.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use crate::cli::SchemaKind;

/// The schema as pretty-printed JSON, exactly as committed under `schemas/`.
pub fn render(which: SchemaKind) -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut schema = match which {
        SchemaKind::Job => generator.into_root_schema_for::<crate::job::file::JobFile>(),
        SchemaKind::Report => generator.into_root_schema_for::<crate::report::Report>(),
        SchemaKind::Journal => generator.into_root_schema_for::<crate::report::journal::Record>(),
    }
    .to_value();
    if which == SchemaKind::Job {
        // TOML has no null: an optional key is one that may be left out, not set to null.
        strip_null(&mut schema);
    }
    standard_formats(&mut schema);
    enums(&mut schema);
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
                            for (k, v) in inner {
                                map.entry(k).or_insert(v);
                            }
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

/// Replaces schemars' integer formats (`uint32`, `int64`, ...), which no standard validator
/// knows, with the bounds they stand for, and drops `double` and `float`.
fn standard_formats(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(format)) = map.get("format")
                && let Some(width) = Width::of(format)
            {
                map.remove("format");
                if let Width::Integer(least, most) = width {
                    tighten(map, "minimum", least, Ordering::Greater);
                    tighten(map, "maximum", most, Ordering::Less);
                }
            }
            map.values_mut().for_each(standard_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(standard_formats),
        _ => {}
    }
}

/// What a schemars format stands for.
enum Width {
    /// A float: no bound.
    Float,
    /// An integer of these bounds.
    Integer(i128, i128),
}

impl Width {
    /// `None` for a standard format, which stays.
    fn of(format: &str) -> Option<Self> {
        let bits = |n: &str| n.parse::<u32>().ok();
        Some(match format {
            "double" | "float" => Self::Float,
            "uint" => Self::Integer(0, i128::from(u64::MAX)),
            "int" => Self::Integer(i128::from(i64::MIN), i128::from(i64::MAX)),
            _ => {
                if let Some(n) = format.strip_prefix("uint").and_then(bits) {
                    Self::Integer(0, (1i128 << n) - 1)
                } else if let Some(n) = format.strip_prefix("int").and_then(bits) {
                    Self::Integer(-(1i128 << (n - 1)), (1i128 << (n - 1)) - 1)
                } else {
                    return None;
                }
            }
        })
    }
}

/// Sets `map[key]` to `bound`, unless the schema already has a bound there that is tighter
/// (compares as `tighter` against it).
fn tighten(map: &mut Map<String, Value>, key: &str, bound: i128, tighter: Ordering) {
    let old = map.get(key).and_then(|v| {
        v.as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
    });
    if old.is_some_and(|old| old.cmp(&bound) == tighter) {
        return;
    }
    map.insert(key.to_owned(), integer(bound));
}

fn integer(n: i128) -> Value {
    match (i64::try_from(n), u64::try_from(n)) {
        (Ok(n), _) => json!(n),
        (_, Ok(n)) => json!(n),
        _ => unreachable!("64-bit bounds"),
    }
}

/// A `oneOf` whose every choice is one documented string becomes one `enum`, with the
/// choices' descriptions listed in the key's own: a validator then says which strings are
/// allowed, and an editor offers them.
fn enums(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let choices = match map.get("oneOf") {
                Some(Value::Array(options)) => options
                    .iter()
                    .map(|o| {
                        let text = o.get("const")?.as_str()?;
                        let about = o.get("description").and_then(Value::as_str);
                        Some((text.to_owned(), about.map(str::to_owned)))
                    })
                    .collect::<Option<Vec<_>>>(),
                _ => None,
            };
            if let Some(choices) = choices {
                map.remove("oneOf");
                let listed: Vec<String> = choices
                    .iter()
                    .map(|(text, about)| match about {
                        Some(about) => format!("- `\"{text}\"`: {about}"),
                        None => format!("- `\"{text}\"`"),
                    })
                    .collect();
                let description = match map.get("description").and_then(Value::as_str) {
                    Some(own) => format!("{own}\n\n{}", listed.join("\n")),
                    None => listed.join("\n"),
                };
                map.insert("description".into(), description.into());
                map.insert("type".into(), "string".into());
                let names: Vec<Value> = choices.into_iter().map(|(t, _)| t.into()).collect();
                map.insert("enum".into(), names.into());
            }
            map.values_mut().for_each(enums);
        }
        Value::Array(items) => items.iter_mut().for_each(enums),
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

    #[test]
    fn the_table_keys_of_the_hints_are_the_schemas() {
        let schema: serde_json::Value =
            serde_json::from_str(&super::render(crate::cli::SchemaKind::Job)).unwrap();
        for (table, keys) in crate::job::file::TABLE_KEYS {
            let at = if table.is_empty() {
                &schema
            } else {
                &schema["properties"][table]
            };
            let mut listed: Vec<&str> = at["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("[{table}] has properties"))
                .keys()
                .map(String::as_str)
                .collect();
            let mut known = keys.to_vec();
            listed.sort_unstable();
            known.sort_unstable();
            assert_eq!(listed, known, "[{table}]");
        }
    }

    #[test]
    fn every_job_key_has_its_own_description_and_examples() {
        fn walk(node: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
            let Some(properties) = node.get("properties").and_then(|p| p.as_object()) else {
                return;
            };
            for (key, schema) in properties {
                let at = format!("{path}{key}");
                for needed in ["description", "examples"] {
                    if schema.get(needed).is_none() {
                        missing.push(format!("{at}: {needed}"));
                    }
                }
                walk(schema, &format!("{at}."), missing);
                for branch in ["then", "else"] {
                    if let Some(inner) = schema.get(branch) {
                        walk(inner, &format!("{at}."), missing);
                    }
                }
            }
        }
        let schema: serde_json::Value =
            serde_json::from_str(&super::render(crate::cli::SchemaKind::Job)).unwrap();
        let mut missing = Vec::new();
        walk(&schema, "", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn integer_formats_become_bounds() {
        let mut v = json!({
            "a": {"type": "integer", "format": "uint32"},
            "b": {"type": "integer", "format": "int64", "minimum": 1},
            "c": {"type": "number", "format": "double"},
            "d": {"type": "string", "format": "date-time"},
        });
        super::standard_formats(&mut v);
        assert_eq!(
            v,
            json!({
                "a": {"type": "integer", "minimum": 0, "maximum": 4_294_967_295_u32},
                "b": {"type": "integer", "minimum": 1, "maximum": i64::MAX},
                "c": {"type": "number"},
                "d": {"type": "string", "format": "date-time"},
            })
        );
    }

    #[test]
    fn documented_strings_become_one_enum() {
        let mut v = json!({"description": "Mode.", "oneOf": [
            {"const": "soon", "type": "string", "description": "Later."},
            {"const": "now", "type": "string"},
        ]});
        super::enums(&mut v);
        assert_eq!(
            v,
            json!({"description": "Mode.\n\n- `\"soon\"`: Later.\n- `\"now\"`", "type": "string", "enum": ["soon", "now"]})
        );
    }
}
