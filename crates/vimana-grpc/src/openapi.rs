//! OpenAPI 3.1 description of a contract's JSON transcoding
//! (`POST /<pkg.Service>/<Method>`, proto3 JSON mapping).

use serde_json::{Map, Value, json};

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::{Code, Contract};

/// The schema name of the error body.
const STATUS_SCHEMA: &str = "vimana.grpc.Status";

fn schema_ref(full_name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{full_name}") })
}

/// Well-known types with a special proto3 JSON form.
fn well_known(full_name: &str) -> Option<Value> {
    Some(match full_name {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"})
        }
        "google.protobuf.FieldMask" => json!({"type": "string"}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object"}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        "google.protobuf.Any" => {
            json!({"type": "object", "properties": {"@type": {"type": "string"}}})
        }
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => json!({"type": "number"}),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": "string", "format": "int64"})
        }
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({"type": "integer"}),
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.StringValue" => json!({"type": "string"}),
        "google.protobuf.BytesValue" => json!({"type": "string", "contentEncoding": "base64"}),
        _ => return None,
    })
}

/// Collects component schemas while walking messages.
struct Schemas(Map<String, Value>);

impl Schemas {
    fn kind(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "uint32", "minimum": 0})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64", "format": "byte"}),
            Kind::Enum(e) => {
                let name = e.full_name().to_string();
                if !self.0.contains_key(&name) {
                    let cases: Vec<String> = e.values().map(|v| v.name().to_string()).collect();
                    self.0
                        .insert(name.clone(), json!({"type": "string", "enum": cases}));
                }
                schema_ref(&name)
            }
            Kind::Message(m) => self.message(m),
        }
    }

    fn message(&mut self, desc: &MessageDescriptor) -> Value {
        let name = desc.full_name().to_string();
        if let Some(schema) = well_known(&name) {
            return schema;
        }
        if !self.0.contains_key(&name) {
            // Placeholder first, so recursive references terminate.
            self.0.insert(name.clone(), json!({}));
            let mut props = Map::new();
            for field in desc.fields() {
                let schema = self.field(&field);
                props.insert(field.json_name().to_string(), schema);
            }
            let schema = json!({"type": "object", "properties": props});
            self.0.insert(name.clone(), schema);
        }
        schema_ref(&name)
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        let mut schema = match field.kind() {
            Kind::Message(entry) if field.is_map() => {
                let value = self.kind(&entry.map_entry_value_field().kind());
                json!({"type": "object", "additionalProperties": value})
            }
            kind if field.is_list() => json!({"type": "array", "items": self.kind(&kind)}),
            kind => self.kind(&kind),
        };
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic())
            && let Some(obj) = schema.as_object_mut()
            && !obj.contains_key("$ref")
        {
            obj.insert(
                "description".into(),
                json!(format!("Member of oneof `{}`.", oneof.name())),
            );
        }
        schema
    }
}

impl Contract {
    /// An OpenAPI 3.1 document for the JSON transcoding of the named
    /// services (full names; an empty slice means every service): each
    /// method is `POST /<pkg.Service>/<Method>` with proto3-JSON schemas
    /// (64-bit integers as strings, bytes as base64, enums as names) and a
    /// `{code, message}` error body. Server-streaming methods answer with a
    /// JSON array of responses; unsupported methods are left out.
    pub fn openapi(&self, title: &str, services: &[&str]) -> Value {
        let mut schemas = Schemas(Map::new());
        let codes: Vec<String> = Code::ALL.iter().map(|c| c.name()).collect();
        schemas.0.insert(
            STATUS_SCHEMA.into(),
            json!({
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string"}
                }
            }),
        );
        let mut paths = Map::new();
        let selected = self
            .services
            .iter()
            .filter(|s| services.is_empty() || services.contains(&s.desc.full_name()));
        for svc in selected {
            for m in svc.methods.iter().filter(|m| m.unsupported.is_none()) {
                let request = schemas.message(&m.input);
                let response = schemas.message(&m.output);
                let response = if m.server_streaming {
                    json!({"type": "array", "items": response})
                } else {
                    response
                };
                let error = json!({
                    "description": "The call failed; `code` is the gRPC status name.",
                    "content": {"application/json": {"schema": schema_ref(STATUS_SCHEMA)}}
                });
                let op = json!({
                    "post": {
                        "operationId": format!("{}_{}", svc.desc.name(), m.method),
                        "tags": [svc.desc.full_name()],
                        "requestBody": {
                            "required": true,
                            "content": {"application/json": {"schema": request}}
                        },
                        "responses": {
                            "200": {
                                "description": "The response message.",
                                "content": {"application/json": {"schema": response}}
                            },
                            "default": error
                        }
                    }
                });
                paths.insert(format!("/{}/{}", m.service, m.method), op);
            }
        }
        json!({
            "openapi": "3.1.0",
            "info": {"title": title, "version": "0.1.0"},
            "paths": paths,
            "components": {"schemas": schemas.0}
        })
    }
}
