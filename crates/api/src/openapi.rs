//! The OpenAPI 3.1 document, built from the registry, the limits and the
//! endpoints the daemon adds. Every schema here says what the server
//! accepts: the kinds' schemas come from the model (next to its
//! validation), query parameters from the parsers in this crate, errors
//! from [`ErrorBody`].

use serde_json::{json, Map, Value};
use weir_model::meta::{MAX_NAME_LEN, NAME_PATTERN};
use weir_model::registry::schema_of;
use weir_model::Registry;

use crate::{ApiState, ErrorBody, Limits};

/// `$ref` to a component schema.
pub fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `responses` of an operation: its successes and its errors (codes of
/// `components.responses`, all with the one error schema).
pub fn responses(success: &[(&str, Value)], errors: &[&str]) -> Value {
    let mut m = Map::new();
    for c in errors {
        m.insert(
            c.to_string(),
            json!({"$ref": format!("#/components/responses/E{c}")}),
        );
    }
    for (code, v) in success {
        m.insert(code.to_string(), v.clone());
    }
    Value::Object(m)
}

/// A JSON success response with this schema.
pub fn ok(description: &str, schema: Value) -> Value {
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

fn param(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

/// Schema of an unsigned integer query parameter as the server reads it
/// (plain decimal digits that fit 64 bits).
pub fn unsigned_query(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "description": description})
}

/// `[Rr][Oo][Uu][Tt][Ee]`: a word in any case, for patterns (JSON Schema
/// patterns have no flags).
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The pattern of `?kinds=`: kind names or plurals in any case, separated
/// by commas, spaces around them and empty items allowed.
fn kinds_pattern(reg: &Registry) -> String {
    let mut words: Vec<String> = Vec::new();
    for k in reg.kinds() {
        if let Some(kind) = reg.get(k) {
            words.push(any_case(kind.plural()));
            words.push(any_case(k));
        }
    }
    let item = format!(" *({})? *", words.join("|"));
    format!("^{item}(,{item})*$")
}

fn strip_schema_key(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("$schema");
    }
    v
}

/// The OpenAPI 3.1 document of the API served from `state`, with every
/// kind's JSON Schema under `components.schemas` and the paths of
/// `state.extra`.
pub fn openapi(state: &ApiState) -> Value {
    let (extra_paths, extra_schemas) = match &state.extra {
        Some(e) => (e.paths.clone(), e.schemas.clone()),
        None => (Map::new(), Map::new()),
    };
    document(&state.registry, &state.limits, extra_paths, extra_schemas)
}

/// The document from its parts (see [`openapi`]).
pub fn document(
    reg: &Registry,
    limits: &Limits,
    extra_paths: Map<String, Value>,
    extra_schemas: Map<String, Value>,
) -> Value {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    let write_errors = [
        "400", "401", "404", "409", "413", "415", "422", "503", "504",
    ];
    let read_errors = ["400", "401", "404", "503"];
    for k in reg.kinds() {
        let Some(kind) = reg.get(k) else { continue };
        let schema = strip_schema_key(reg.schema(k).cloned().unwrap_or(json!({})));
        schemas.insert(k.to_string(), schema);
        let r = schema_ref(k);
        schemas.insert(
            format!("{k}List"),
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["apiVersion", "kind", "items", "revision"],
                "properties": {
                    "apiVersion": {"const": weir_model::API_VERSION},
                    "kind": {"const": format!("{k}List")},
                    "revision": {"type": "integer", "minimum": 0},
                    "items": {"type": "array", "items": r.clone()},
                }
            }),
        );
        // The status endpoint takes the status alone or a whole object
        // carrying one (what `weir get -o json` prints).
        schemas.insert(
            format!("{k}StatusWrite"),
            json!({"anyOf": [schema_ref("Status"), {"allOf": [r.clone(), {"required": ["status"]}]}]}),
        );
        let p = kind.plural();
        paths.insert(format!("/v1/{p}"), json!({
            "get": {
                "operationId": format!("list{k}"),
                "summary": format!("List {k} objects"),
                "tags": [k],
                "parameters": [param("labelSelector")],
                "responses": responses(&[("200", ok("The objects", schema_ref(&format!("{k}List"))))], &read_errors),
            },
            "post": {
                "operationId": format!("create{k}"),
                "summary": format!("Create a {k} (409 if it exists)"),
                "tags": [k],
                "parameters": [param("dryRun")],
                "requestBody": body(r.clone()),
                "responses": responses(&[("201", ok("Created", r.clone()))], &write_errors),
            },
        }));
        paths.insert(format!("/v1/{p}/{{name}}"), json!({
            "parameters": [param("name")],
            "get": {
                "operationId": format!("get{k}"),
                "summary": format!("One {k}, metadata.revision filled in"),
                "tags": [k],
                "responses": responses(&[("200", ok("The object", r.clone()))], &read_errors),
            },
            "put": {
                "operationId": format!("replace{k}"),
                "summary": format!("Create or replace a {k}; a set metadata.revision must be current"),
                "tags": [k],
                "parameters": [param("dryRun")],
                "requestBody": body(r.clone()),
                "responses": responses(&[("200", ok("Replaced or unchanged", r.clone())), ("201", ok("Created", r.clone()))], &write_errors),
            },
            "delete": {
                "operationId": format!("delete{k}"),
                "tags": [k],
                "parameters": [param("dryRun"), param("revision")],
                "responses": responses(&[("200", ok("Deleted", schema_ref("Deleted")))], &write_errors),
            },
        }));
        paths.insert(
            format!("/v1/{p}/{{name}}/status"),
            json!({
                "parameters": [param("name")],
                "put": {
                    "operationId": format!("replace{k}Status"),
                    "summary": "Write the object's status (the agent does)",
                    "tags": [k],
                    "parameters": [param("dryRun"), param("revision")],
                    "requestBody": body(schema_ref(&format!("{k}StatusWrite"))),
                    "responses": responses(&[("200", ok("The object", r.clone()))], &write_errors),
                },
            }),
        );
    }
    schemas.insert(
        "Status".into(),
        strip_schema_key(schema_of::<weir_model::Status>()),
    );
    schemas.insert("Error".into(), strip_schema_key(schema_of::<ErrorBody>()));
    let action = json!({"enum": ["created", "updated", "unchanged", "deleted"]});
    schemas.insert(
        "Outcome".into(),
        json!({
            "type": "object", "required": ["kind", "name", "action", "revision"],
            "properties": {
                "index": {"type": "integer", "minimum": 0},
                "kind": {"type": "string"}, "name": {"type": "string"},
                "action": action.clone(),
                "revision": {"type": "integer", "minimum": 0},
                "object": {"type": ["object", "null"]},
            }
        }),
    );
    schemas.insert(
        "Deleted".into(),
        json!({
            "type": "object", "required": ["kind", "name", "action", "revision", "dryRun"],
            "properties": {
                "kind": {"type": "string"}, "name": {"type": "string"},
                "action": action.clone(),
                "revision": {"type": "integer", "minimum": 0},
                "dryRun": {"type": "boolean"},
            }
        }),
    );
    let any_kind: Vec<Value> = reg.kinds().map(schema_ref).collect();
    let objects = json!({"type": "array", "minItems": 1, "maxItems": limits.max_objects,
        "items": {"oneOf": any_kind}});
    schemas.insert(
        "ApplyBody".into(),
        json!({
            "description": "Objects: an array, one object, or {\"items\": [...]}",
            "anyOf": [
                objects.clone(),
                {"oneOf": any_kind},
                {"type": "object", "additionalProperties": false, "required": ["items"],
                 "properties": {"items": objects}},
            ]
        }),
    );
    paths.insert(
        "/v1/apply".into(),
        json!({"post": {
            "operationId": "apply",
            "summary": "Create or update many objects in one transaction, all or nothing",
            "parameters": [param("dryRun")],
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": schema_ref("ApplyBody")},
                "application/yaml": {"schema": {"description": "Objects as YAML documents separated by ---; a document may be a sequence of objects"}},
            }},
            "responses": responses(&[("200", ok("What happened to each object", json!({
                "type": "object", "required": ["revision", "dryRun", "results"], "properties": {
                    "revision": {"type": "integer", "minimum": 0}, "dryRun": {"type": "boolean"},
                    "results": {"type": "array", "items": schema_ref("Outcome")},
                }})))], &write_errors),
        }}),
    );
    paths.insert("/v1/watch".into(), json!({"get": {
        "operationId": "watch",
        "summary": "Stream changes as NDJSON, one event a line; a BOOKMARK every 15 s while idle",
        "parameters": [param("kinds"), param("fromRevision")],
        "responses": responses(&[("200", json!({"description": "Events, one JSON object a line",
            "content": {"application/x-ndjson": {"schema": {"type": "object", "required": ["type", "revision"], "properties": {
                "type": {"enum": ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "RELIST", "ERROR"]},
                "revision": {"type": "integer", "minimum": 0},
                "object": {"type": "object"},
                "code": {"type": "string"},
                "error": {"type": "string"}}}}}}))],
            &["400", "401", "404", "410", "503"]),
    }}));
    schemas.insert(
        "Kinds".into(),
        json!({
            "type": "object", "required": ["apiVersion", "kinds"], "properties": {
                "apiVersion": {"const": weir_model::API_VERSION},
                "kinds": {"type": "array", "items": {"type": "object",
                    "required": ["kind", "plural", "builtin", "columns", "schema", "specSchema"],
                    "properties": {
                        "kind": {"type": "string"}, "plural": {"type": "string"},
                        "builtin": {"type": "boolean"},
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "schema": {"type": "object"}, "specSchema": {"type": "object"},
                    }}},
            }
        }),
    );
    paths.insert(
        "/v1/kinds".into(),
        json!({"get": {
            "operationId": "kinds",
            "summary": "Registered kinds with their JSON Schemas",
            "responses": responses(&[("200", ok("The kinds", schema_ref("Kinds")))], &["401"]),
        }}),
    );
    paths.insert("/openapi.json".into(), json!({"get": {
        "operationId": "openapi",
        "summary": "This document",
        "responses": responses(&[("200", ok("This document", json!({
            "type": "object", "required": ["openapi", "info", "paths", "components"]})))], &["401"]),
    }}));
    paths.insert("/livez".into(), json!({"get": {
        "operationId": "livez", "summary": "The process answers (no token needed)", "security": [],
        "responses": {"200": ok("Alive", json!({"type": "object", "required": ["status"],
            "properties": {"status": {"const": "ok"}}}))},
    }}));
    paths.insert(
        "/readyz".into(),
        json!({"get": {
            "operationId": "readyz",
            "summary": "The store answers within 2 s",
            "responses": responses(&[("200", ok("Ready", json!({"type": "object",
                "required": ["status", "node", "revision"], "properties": {
                    "status": {"const": "ready"}, "node": {"type": "string"},
                    "revision": {"type": "integer", "minimum": 0}}})))], &["401", "503"]),
        }}),
    );
    for (path, item) in extra_paths {
        paths.entry(path).or_insert(item);
    }
    for (name, s) in extra_schemas {
        schemas.entry(name).or_insert(s);
    }

    let mut parameters = Map::new();
    parameters.insert(
        "dryRun".into(),
        json!({"name": "dryRun", "in": "query", "required": false,
        "description": "Validate fully, store nothing. true, 1 or empty: yes; false or 0: no.",
        "schema": {"type": "string", "enum": ["true", "false", "1", "0", ""]}}),
    );
    parameters.insert(
        "revision".into(),
        json!({"name": "revision", "in": "query", "required": false,
        "schema": unsigned_query("Only if the object's revision is this one (409 otherwise)")}),
    );
    parameters.insert(
        "fromRevision".into(),
        json!({"name": "fromRevision", "in": "query", "required": false,
        "schema": unsigned_query("Events after this revision (0: from now)")}),
    );
    parameters.insert("labelSelector".into(), json!({"name": "labelSelector", "in": "query", "required": false,
        "description": "Comma-separated requirements, all must hold: key=value, key==value, key!=value, key, !key",
        "schema": {"type": "string", "pattern": crate::selector::pattern()}}));
    parameters.insert("kinds".into(), json!({"name": "kinds", "in": "query", "required": false,
        "description": "Comma-separated kinds (names or plurals, any case); every kind when absent. An unknown kind is a 404.",
        "schema": {"type": "string", "pattern": kinds_pattern(reg)}}));
    parameters.insert("name".into(), json!({"name": "name", "in": "path", "required": true,
        "schema": {"type": "string", "pattern": NAME_PATTERN, "minLength": 1, "maxLength": MAX_NAME_LEN}}));

    let mut resp = Map::new();
    for (c, d) in [
        ("400", "Malformed request: body syntax, query parameter, path"),
        ("401", "Missing or wrong bearer token"),
        ("404", "Unknown kind, object or path"),
        ("409", "Stale revision, or the object already exists"),
        ("410", "The revision asked for is compacted away (code compacted): list again"),
        ("413", "Body or object count over the limit"),
        ("415", "Unsupported Content-Type"),
        ("422", "Validation failed; details name each field"),
        ("503", "Store unavailable"),
        ("504", "The store did not answer a write in time: its outcome is unknown (code outcome_unknown)"),
    ] {
        resp.insert(format!("E{c}"), ok(d, schema_ref("Error")));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "weir management API", "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Desired state of weir gateways: weir/v1 objects. Bodies are at most {} bytes and {} objects.", limits.max_body_bytes, limits.max_objects)},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "http://127.0.0.1:7900"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": parameters,
            "responses": resp,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}
