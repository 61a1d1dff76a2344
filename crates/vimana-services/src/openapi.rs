//! One OpenAPI document per Domain, merged from its contracts.

use std::sync::Arc;

use serde_json::{Map, Value};
use vimana_grpc::Contract;

/// The OpenAPI document of `services` across `contracts`, as JSON bytes.
pub fn merged(title: &str, contracts: &[Arc<Contract>], services: &[&str]) -> Vec<u8> {
    let mut doc: Option<Value> = None;
    for c in contracts {
        let own: Vec<&str> = services
            .iter()
            .copied()
            .filter(|s| c.services().iter().any(|x| x == *s))
            .collect();
        let part = c.openapi(title, &own);
        match &mut doc {
            None => doc = Some(part),
            Some(d) => {
                merge_object(d, &part, "paths");
                if let Some(schemas) = part.pointer("/components/schemas") {
                    let target = d.as_object_mut().map(|o| {
                        o.entry("components")
                            .or_insert_with(|| Value::Object(Map::new()))
                    });
                    if let Some(Value::Object(comp)) = target {
                        let entry = comp
                            .entry("schemas")
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let (Value::Object(dst), Value::Object(src)) = (entry, schemas) {
                            for (k, v) in src {
                                dst.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    let doc = doc.unwrap_or_else(|| {
        serde_json::json!({"openapi": "3.1.0", "info": {"title": title, "version": "1"}, "paths": {}})
    });
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

fn merge_object(dst: &mut Value, src: &Value, key: &str) {
    if let (Some(Value::Object(s)), Some(d)) = (src.get(key), dst.as_object_mut()) {
        let entry = d.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(e) = entry {
            for (k, v) in s {
                e.insert(k.clone(), v.clone());
            }
        }
    }
}
