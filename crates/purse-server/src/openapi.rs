//! `/openapi.json`: an OpenAPI 3.1 document of the native API, generated from the handlers' own
//! types: each route's fields are read off the clap definition its handler parses
//! ([`crate::native::Definitions`]), with their help texts, value kinds and whether they are
//! required. The committed copy, `docs/openapi.json`, is checked against it by a test, so the
//! document can never describe an API the server does not have.

use serde_json::{json, Map, Value};

use crate::native::{Definitions, QUERIES, WRITES};

/// The whole document.
pub fn document() -> Value {
    let definitions = Definitions::new();
    let mut paths = Map::new();
    for (name, summary) in WRITES {
        let definition = definitions.get(name);
        let (properties, required) = fields(definition.command());
        let answer = match name {
            "transfer" => "#/components/schemas/Transfer",
            "expire" => "#/components/schemas/Sweep",
            _ => "#/components/schemas/FlowDetail",
        };
        let mut operation = json!({
            "operationId": name,
            "summary": summary,
            "security": [{"apiKey": []}],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": properties,
                    "required": required,
                }}},
            },
            "responses": responses(answer),
        });
        if name != "expire" {
            operation["parameters"] = json!([{
                "name": "Idempotency-Key",
                "in": "header",
                "required": false,
                "description": "The request_id when the body has none; both given and different: 400.",
                "schema": {"type": "string"},
            }]);
        }
        paths.insert(format!("/v1/{name}"), json!({ "post": operation }));
    }
    for (name, summary) in QUERIES {
        let definition = definitions.get(name);
        let (properties, required) = fields(definition.command());
        let parameters: Vec<Value> = properties
            .iter()
            .map(|(id, schema)| {
                json!({
                    "name": id,
                    "in": "query",
                    "required": required.iter().any(|name| name == id),
                    "description": schema.get("description").cloned().unwrap_or(Value::Null),
                    "schema": schema,
                    "explode": true,
                })
            })
            .collect();
        let content = if name == "export" {
            json!({
                "200": {"description": "Every flow the filter keeps, in log order",
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                    "text/csv": {"schema": {"type": "string"}}}},
                "400": error_response("Bad input"),
                "401": error_response("No or unknown API key"),
            })
        } else {
            responses("#/components/schemas/Document")
        };
        let mut item = json!({ "get": {
            "operationId": format!("get_{name}"),
            "summary": summary,
            "security": [{"apiKey": []}],
            "parameters": parameters,
            "responses": content,
        }});
        if name == "rules" {
            item["put"] = json!({
                "operationId": "set_rules",
                "summary": "Replace the rules of a brand (or the ledger default); scope admin.",
                "security": [{"apiKey": []}],
                "parameters": [{"name": "brand_id", "in": "query", "required": false, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rules"}}}},
                "responses": responses("#/components/schemas/Rules"),
            });
        }
        paths.insert(format!("/v1/{name}"), item);
    }
    for (path, summary) in [
        ("/v1/verify", "Replay the whole log and check every projection; scope admin."),
        ("/v1/snapshot", "Write a snapshot of the projections now; scope admin."),
    ] {
        paths.insert(
            path.to_owned(),
            json!({"post": {
                "operationId": path.trim_start_matches("/v1/"),
                "summary": summary,
                "security": [{"apiKey": []}],
                "responses": responses("#/components/schemas/Document"),
            }}),
        );
    }
    for (path, summary) in
        [("/healthz", "The process is up."), ("/readyz", "The ledger is open and not shutting down.")]
    {
        paths.insert(
            path.to_owned(),
            json!({"get": {
                "operationId": path.trim_start_matches('/'),
                "summary": summary,
                "responses": {"200": {"description": "Yes"}, "503": {"description": "No"}},
            }}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "purse",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The purse ledger's native API. Field names and documents are those of spec.md; amounts are decimal strings at the ledger's scale (numbers are accepted in requests and read exactly).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "An API key made with `purse keys add`"}},
            "schemas": schemas(),
        },
    })
}

/// The JSON properties and required ids of one clap definition.
fn fields(command: &clap::Command) -> (Map<String, Value>, Vec<String>) {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut arguments: Vec<&clap::Arg> =
        command.get_arguments().filter(|argument| argument.get_long().is_some()).collect();
    arguments.sort_by_key(|argument| argument.get_id().to_string());
    for argument in arguments {
        let id = argument.get_id().to_string();
        let value_name = argument.get_value_names().and_then(|names| names.first()).map(ToString::to_string);
        let many = matches!(argument.get_action(), clap::ArgAction::Append);
        let possible: Vec<String> =
            argument.get_possible_values().iter().map(|value| value.get_name().to_owned()).collect();
        let mut schema = match value_name.as_deref() {
            Some("AMOUNT") => {
                json!({"type": ["string", "number"], "description": "A decimal amount at the ledger's scale, e.g. \"100.00\""})
            }
            Some("BOOL") => json!({"type": "boolean"}),
            Some("N" | "ID") if id.ends_with("flow_id") || id.starts_with("page") => {
                json!({"type": "integer", "minimum": 1})
            }
            Some("TIME") => json!({"type": "string", "description": "YYYY-MM-DD HH:MM:SS in the ledger's time zone"}),
            Some("JSON") => {
                json!({"type": ["string", "object"], "description": "A JSON text, stored exactly as given"})
            }
            _ if !possible.is_empty() => json!({"type": "string", "enum": possible}),
            _ => json!({"type": "string"}),
        };
        if let Some(help) = argument.get_help() {
            let help = help.to_string();
            let description = match schema.get("description").and_then(Value::as_str) {
                Some(kind) => format!("{help} ({kind})"),
                None => help,
            };
            schema["description"] = Value::String(description);
        }
        if many {
            schema = json!({"type": "array", "items": schema});
        }
        if argument.is_required_set() {
            required.push(id.clone());
        }
        properties.insert(id, schema);
    }
    (properties, required)
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn responses(answer: &str) -> Value {
    json!({
        "200": {"description": "The answer (a replay answers the first answer again)", "content": {"application/json": {"schema": {"$ref": answer}}}},
        "400": error_response("INVALID_ARGUMENT, INVALID_AMOUNT: bad input, nothing written"),
        "401": error_response("No or unknown API key"),
        "403": error_response("The key's scope does not allow this route"),
        "404": error_response("ACCOUNT_NOT_FOUND, ORDER_NOT_FOUND"),
        "409": error_response("DUPLICATE_ORDER, IDEMPOTENCY_CONFLICT, ALREADY_REVERSED"),
        "413": error_response("The body is too large"),
        "415": error_response("The body is not application/json"),
        "422": error_response("INSUFFICIENT_BALANCE, REFUND_EXCEEDS_ORIGINAL, HOLD_EXPIRED, ACCOUNT_FROZEN, ACCOUNT_CLOSED"),
        "500": error_response("CORRUPTION"),
        "503": error_response("STORAGE: the disk failed or the server is shutting down"),
    })
}

fn schemas() -> Value {
    let property_list = json!({"type": "array", "minItems": 4, "maxItems": 4, "items": {
        "type": "object", "required": ["type", "value"],
        "properties": {"type": {"enum": ["REAL", "GIFT", "PRE", "TOTAL"]}, "value": {"type": "string"}},
    }});
    let nullable = json!({"type": ["string", "null"]});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"enum": purse_core::ErrorCode::ALL.iter().map(|code| code.as_str()).collect::<Vec<_>>()},
                           "message": {"type": "string"}},
        }}},
        "FlowDetail": {"type": "object", "description": "spec §5", "properties": {
            "flow_id": {"type": "string"}, "flow_type": {"type": "string"}, "account_id": {"type": "string"},
            "card_id": nullable, "brand_id": nullable, "shop_id": nullable, "operator": nullable,
            "request_id": {"type": "string"}, "outer_order_id": {"type": "string"}, "order_time": {"type": "string"},
            "order_value": {"type": "string"}, "current_value": {"type": "string"},
            "affected_property_list": property_list, "before_property_list": property_list,
            "after_property_list": property_list, "remark": nullable, "ext_info": nullable,
            "held_property_list": property_list, "src_outer_order_id": nullable,
        }},
        "Transfer": {"type": "object", "properties": {"out": {"$ref": "#/components/schemas/FlowDetail"}, "in": {"$ref": "#/components/schemas/FlowDetail"}}},
        "Sweep": {"type": "object", "properties": {"flows": {"type": "array", "items": {"$ref": "#/components/schemas/FlowDetail"}}}},
        "Rules": {"type": "object", "description": "spec §4", "properties": {
            "deduction_order": {"enum": ["PERCENT_DEDUCT", "REAL_BEFORE_GIFT_DEDUCT", "GIFT_BEFORE_REAL_DEDUCT"]},
            "gift_type": {"enum": ["CUSTOMIZED", "PROPORTIONAL"]}, "full_gift_switch": {"type": "boolean"},
            "gift_valid_days": {"type": ["integer", "null"]},
            "tiers": {"type": "array", "items": {"type": "object", "properties": {"real_value": {"type": "string"}, "gift_value": {"type": "string"}}}},
        }},
        "Document": {"type": "object", "description": "The document `purse <command>` prints for the same query (spec §7, §12)"},
    })
}
