//! The OpenAPI 3.1 document, built from the registry.

use serde_json::{json, Map, Value};
use weir_model::Registry;

fn error_responses(codes: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    for c in codes {
        m.insert(
            c.to_string(),
            json!({"$ref": format!("#/components/responses/E{c}")}),
        );
    }
    m
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {
        "application/json": {"schema": schema}
    }})
}

fn body(schema: Value) -> Value {
    json!({"required": true, "content": {
        "application/json": {"schema": schema.clone()},
        "application/yaml": {"schema": schema},
    }})
}

fn responses(success: &[(&str, Value)], errors: &[&str]) -> Value {
    let mut m = error_responses(errors);
    for (code, v) in success {
        m.insert(code.to_string(), v.clone());
    }
    Value::Object(m)
}

/// The OpenAPI 3.1 document of the API, with every kind's JSON Schema
/// under `components.schemas`.
pub fn openapi(reg: &Registry) -> Value {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    let dry = json!({"name": "dryRun", "in": "query", "required": false,
        "description": "Validate fully, store nothing.", "schema": {"type": "boolean"}});
    let name_param = json!({"name": "name", "in": "path", "required": true,
        "schema": {"type": "string", "pattern": weir_model::meta::NAME_PATTERN, "maxLength": 63}});
    let err = ["400", "401", "413", "415", "422", "503"];
    for k in reg.kinds() {
        let Some(kind) = reg.get(k) else { continue };
        let mut schema = reg.schema(k).cloned().unwrap_or(json!({}));
        if let Value::Object(m) = &mut schema {
            m.remove("$schema");
        }
        schemas.insert(k.to_string(), schema);
        let r = json!({"$ref": format!("#/components/schemas/{k}")});
        let list = json!({"type": "object", "required": ["items", "revision"], "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "revision": {"type": "integer", "minimum": 0},
            "items": {"type": "array", "items": r.clone()},
        }});
        schemas.insert(format!("{k}List"), list);
        let lr = json!({"$ref": format!("#/components/schemas/{k}List")});
        let p = kind.plural();
        paths.insert(format!("/v1/{p}"), json!({
            "get": {
                "operationId": format!("list{k}"),
                "summary": format!("List {k} objects"),
                "tags": [k],
                "parameters": [{"name": "labelSelector", "in": "query", "required": false,
                    "description": "a=b,c!=d,e,!f", "schema": {"type": "string"}}],
                "responses": responses(&[("200", ok("The objects", lr))], &["400", "401", "404", "503"]),
            },
            "post": {
                "operationId": format!("create{k}"),
                "summary": format!("Create a {k}"),
                "tags": [k],
                "parameters": [dry.clone()],
                "requestBody": body(r.clone()),
                "responses": responses(&[("201", ok("Created", r.clone()))], &[&err[..], &["404", "409"]].concat()),
            },
        }));
        paths.insert(format!("/v1/{p}/{{name}}"), json!({
            "parameters": [name_param.clone()],
            "get": {
                "operationId": format!("get{k}"),
                "tags": [k],
                "responses": responses(&[("200", ok("The object", r.clone()))], &["400", "401", "404", "503"]),
            },
            "put": {
                "operationId": format!("replace{k}"),
                "summary": format!("Create or replace a {k}; a set metadata.revision must be current"),
                "tags": [k],
                "parameters": [dry.clone()],
                "requestBody": body(r.clone()),
                "responses": responses(&[("200", ok("Replaced or unchanged", r.clone())), ("201", ok("Created", r.clone()))], &[&err[..], &["404", "409"]].concat()),
            },
            "delete": {
                "operationId": format!("delete{k}"),
                "tags": [k],
                "parameters": [dry.clone(), {"name": "revision", "in": "query", "required": false,
                    "schema": {"type": "integer", "minimum": 0}}],
                "responses": responses(&[("200", ok("Deleted", json!({"$ref": "#/components/schemas/Outcome"})))], &["400", "401", "404", "409", "503"]),
            },
        }));
        paths.insert(format!("/v1/{p}/{{name}}/status"), json!({
            "parameters": [name_param.clone()],
            "put": {
                "operationId": format!("replace{k}Status"),
                "summary": "Write the object's status (the agent does)",
                "tags": [k],
                "parameters": [dry.clone()],
                "requestBody": body(json!({"$ref": "#/components/schemas/Status"})),
                "responses": responses(&[("200", ok("The object", r.clone()))], &[&err[..], &["404", "409"]].concat()),
            },
        }));
    }
    let mut status = weir_model::registry::schema_of::<weir_model::Status>();
    if let Value::Object(m) = &mut status {
        m.remove("$schema");
    }
    schemas.insert("Status".into(), status);
    schemas.insert("Error".into(), json!({
        "type": "object", "required": ["error", "details"],
        "properties": {
            "error": {"type": "string"},
            "code": {"type": "string", "enum": ["compacted", "outcome_unknown"]},
            "givenRevision": {"type": "integer"},
            "currentRevision": {"type": "integer"},
            "details": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "kind": {"type": "string"}, "name": {"type": "string"},
                "field": {"type": "string"}, "reason": {"type": "string"},
                "related": {"type": "object", "properties": {"kind": {"type": "string"}, "name": {"type": "string"}}},
            }}},
        }
    }));
    schemas.insert(
        "Outcome".into(),
        json!({
            "type": "object", "required": ["kind", "name", "action", "revision"],
            "properties": {
                "kind": {"type": "string"}, "name": {"type": "string"},
                "action": {"enum": ["created", "updated", "unchanged", "deleted"]},
                "revision": {"type": "integer"},
                "object": {"type": "object"},
            }
        }),
    );
    let any_kind: Vec<Value> = reg
        .kinds()
        .map(|k| json!({"$ref": format!("#/components/schemas/{k}")}))
        .collect();
    paths.insert(
        "/v1/apply".into(),
        json!({"post": {
            "operationId": "apply",
            "summary": "Create or update many objects in one transaction, all or nothing",
            "parameters": [dry],
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": {"type": "array", "items": {"oneOf": any_kind}}},
                "application/yaml": {"schema": {"description": "Documents separated by ---"}},
            }},
            "responses": responses(&[("200", ok("What happened to each object", json!({
                "type": "object", "properties": {
                    "revision": {"type": "integer"}, "dryRun": {"type": "boolean"},
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Outcome"}},
                }})))], &[&err[..], &["409"]].concat()),
        }}),
    );
    paths.insert("/v1/watch".into(), json!({"get": {
        "operationId": "watch",
        "summary": "Stream changes as NDJSON: {type: ADDED|MODIFIED|DELETED|BOOKMARK|RELIST|ERROR, revision, object}",
        "parameters": [
            {"name": "kinds", "in": "query", "required": false, "schema": {"type": "string"}, "description": "Comma-separated kinds; all when absent"},
            {"name": "fromRevision", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}},
        ],
        "responses": responses(&[("200", json!({"description": "Events, one JSON object a line",
            "content": {"application/x-ndjson": {"schema": {"type": "object", "properties": {
                "type": {"type": "string"}, "revision": {"type": "integer"}, "object": {"type": "object"}}}}}}))],
            &["400", "401", "404", "503"]),
    }}));
    paths.insert("/v1/kinds".into(), json!({"get": {
        "operationId": "kinds",
        "summary": "Registered kinds with their JSON Schemas",
        "responses": responses(&[("200", ok("The kinds", json!({"type": "object"})))], &["401"]),
    }}));
    paths.insert("/openapi.json".into(), json!({"get": {
        "operationId": "openapi",
        "responses": responses(&[("200", ok("This document", json!({"type": "object"})))], &["401"]),
    }}));
    paths.insert(
        "/livez".into(),
        json!({"get": {
            "operationId": "livez", "security": [],
            "responses": {"200": ok("Alive", json!({"type": "object"}))},
        }}),
    );
    paths.insert("/readyz".into(), json!({"get": {
        "operationId": "readyz",
        "responses": responses(&[("200", ok("Ready: the store answers", json!({"type": "object"})))], &["401", "503"]),
    }}));
    let mut resp = Map::new();
    for (c, d) in [
        ("400", "Malformed request"),
        ("401", "Missing or wrong bearer token"),
        ("404", "Unknown kind or object"),
        ("409", "Stale revision or already exists"),
        ("413", "Body or object count over the limit"),
        ("415", "Unsupported Content-Type"),
        ("422", "Validation failed"),
        ("503", "Store unavailable"),
        ("504", "The store did not answer a write in time: its outcome is unknown (code outcome_unknown)"),
    ] {
        resp.insert(
            format!("E{c}"),
            ok(d, json!({"$ref": "#/components/schemas/Error"})),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "weir management API", "version": env!("CARGO_PKG_VERSION"),
            "description": "Desired state of weir gateways: weir/v1 objects."},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "http://127.0.0.1:7900"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": resp,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}
