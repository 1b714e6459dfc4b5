//! The OpenAPI 3.1 document, built from the code: every handler with a
//! `#[utoipa::path]` is registered through `utoipa_axum`'s router (so what
//! is routed is what is described), and the catalog kinds, routed in a loop
//! over `edit::EDITABLE`, are described by the same loop with the schemas
//! of the types tocsin.yaml is read with.
//!
//! - `GET /api/v1/openapi.json`: the document.
//! - `GET /api/docs`: the same as a page, rendered here (no script, no CDN).

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required, SecurityRequirement,
};
use utoipa::{PartialSchema, ToSchema};

use crate::schema;

/// The document's frame: info, the Bearer scheme (every operation needs
/// it unless it says otherwise) and the shared schemas.
pub(crate) fn base() -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Tocsin API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Alerts, schedules, the catalog, tokens and the audit log of a Tocsin server, \
                     and the sender endpoints (Alertmanager, PagerDuty, Opsgenie, ilert). \
                     Send `Authorization: Bearer <token>` (a token from `api_tokens` in tocsin.yaml, \
                     or one made with `POST /api/v1/tokens`). Errors are \
                     `{\"error\": {\"code\", \"message\"}}`; a 403 names the permission that is missing.",
                ))
                .build(),
        )
        .security(Some([SecurityRequirement::new("bearer", Vec::<String>::new())]))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API token"))
                .build(),
        ),
    );
    let mut shared = vec![
        (
            schema::ErrorBody::name().into_owned(),
            schema::ErrorBody::schema(),
        ),
        (
            schema::CatalogObject::name().into_owned(),
            schema::CatalogObject::schema(),
        ),
        (
            schema::CreatedObject::name().into_owned(),
            schema::CreatedObject::schema(),
        ),
    ];
    schema::ErrorBody::schemas(&mut shared);
    schema::CatalogObject::schemas(&mut shared);
    for (name, s) in shared {
        components.schemas.insert(name, s);
    }
    doc
}

fn json_content(schema: impl Into<RefOr<Schema>>) -> Content {
    Content::new(Some(schema))
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn response(description: &str, schema: Option<RefOr<Schema>>) -> utoipa::openapi::Response {
    let mut r = ResponseBuilder::new().description(description);
    if let Some(s) = schema {
        r = r.content("application/json", json_content(s));
    }
    r.build()
}

fn error(description: &str) -> utoipa::openapi::Response {
    response(description, Some(reference("ErrorBody")))
}

fn id_param(what: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(what))
        .schema(Some(String::schema()))
        .build()
}

fn if_match() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("If-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The ETag read before (or `*`): a stale edit is refused with 412",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some(r#"^(\*|"[0-9]+")$"#)),
        ))
        .build()
}

/// Describe the catalog kinds' operations (list, create, read, replace,
/// delete) and add the schemas of their bodies. A kind whose list another
/// handler serves (with computed fields) is described by that handler;
/// `views` names them.
pub(crate) fn catalog_kinds(doc: &mut OpenApi, kinds: &[&str], views: &[&str]) {
    for &kind in kinds {
        let Some((name, schemas)) = tocsin_app::edit::kind_schemas(kind) else {
            continue;
        };
        let components = doc.components.get_or_insert_with(Default::default);
        for (n, s) in schemas {
            components.schemas.entry(n).or_insert(s);
        }
        let one = tocsin_app::edit::singular(kind);
        let tag = kind.to_owned();
        let body = || {
            RequestBodyBuilder::new()
                .description(Some(format!(
                    "A {one} in the shape of tocsin.yaml's `{kind}` entries"
                )))
                .content("application/json", json_content(reference(&name)))
                .required(Some(Required::True))
                .build()
        };
        let common = |b: OperationBuilder| {
            b.tag(tag.clone())
                .response("400", error("The body is not JSON"))
                .response(
                    "401",
                    error("No token, or an unknown, revoked or expired one"),
                )
                .response("default", error("A refusal or failure"))
        };
        let listed = ObjectBuilder::new()
            .property(kind, ArrayBuilder::new().items(reference("CatalogObject")))
            .required(kind)
            .build();
        let list_path = format!("/api/v1/{kind}");
        if !views.contains(&kind) {
            doc.paths.add_path_operation(
                &list_path,
                vec![HttpMethod::Get],
                common(OperationBuilder::new())
                    .operation_id(Some(format!("list_{kind}")))
                    .summary(Some(format!("Every {one}, with its origin and revision")))
                    .response("200", response("The objects", Some(listed.into())))
                    .build(),
            );
        }
        doc.paths.add_path_operation(
            &list_path,
            vec![HttpMethod::Post],
            common(OperationBuilder::new())
                .operation_id(Some(format!("create_{kind}")))
                .summary(Some(format!(
                    "Create a managed {one}, checked as check-config checks a file"
                )))
                .request_body(Some(body()))
                .response("201", response("Created", Some(reference("CreatedObject"))))
                .response("403", error("Only admins change the catalog"))
                .response("409", error("It exists already"))
                .response("415", error("The body is not JSON"))
                .response(
                    "422",
                    error("The body breaks a rule; `problems` names each key path"),
                )
                .build(),
        );
        let one_path = format!("/api/v1/{kind}/{{id}}");
        let read_summary = if kind == "heartbeats" {
            format!("One {one} (with a heartbeat's key instead of its id: a ping)")
        } else {
            format!("One {one}, with a strong ETag")
        };
        let mut read = common(OperationBuilder::new())
            .operation_id(Some(format!("get_{kind}")))
            .summary(Some(read_summary))
            .parameter(id_param(&format!("The {one}'s id")))
            .response(
                "200",
                response("The object", Some(reference("CatalogObject"))),
            )
            .response("404", error("No such object"));
        if kind == "heartbeats" {
            // A ping needs no token; reading the object does.
            read = read
                .security(SecurityRequirement::default())
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .response(
                    "202",
                    response("A ping, recorded", Some(schema::PingAnswer::schema())),
                );
        }
        doc.paths
            .add_path_operation(&one_path, vec![HttpMethod::Get], read.build());
        doc.paths.add_path_operation(
            &one_path,
            vec![HttpMethod::Put],
            common(OperationBuilder::new())
                .operation_id(Some(format!("replace_{kind}")))
                .summary(Some(format!(
                    "Replace a managed {one}; secrets left out keep their value"
                )))
                .parameter(id_param(&format!("The {one}'s id")))
                .parameter(if_match())
                .request_body(Some(body()))
                .response(
                    "200",
                    response("Replaced", Some(reference("CatalogObject"))),
                )
                .response("403", error("The token lacks a permission"))
                .response("404", error("No such object"))
                .response("409", error("Provisioned from a file: change it there"))
                .response("412", error("Changed since it was read"))
                .response("415", error("The body is not JSON"))
                .response(
                    "422",
                    error("The body breaks a rule; `problems` names each key path"),
                )
                .build(),
        );
        doc.paths.add_path_operation(
            &one_path,
            vec![HttpMethod::Delete],
            common(OperationBuilder::new())
                .operation_id(Some(format!("delete_{kind}")))
                .summary(Some(format!("Delete a managed {one}")))
                .parameter(id_param(&format!("The {one}'s id")))
                .parameter(if_match())
                .response("204", ResponseBuilder::new().description("Deleted").build())
                .response("403", error("Only admins change the catalog"))
                .response("404", error("No such object"))
                .response("409", error("Provisioned, or others refer to it (named)"))
                .response("412", error("Changed since it was read"))
                .build(),
        );
        if kind == "heartbeats" {
            doc.paths.add_path_operation(
                &one_path,
                vec![HttpMethod::Post],
                OperationBuilder::new()
                    .tag(tag.clone())
                    .operation_id(Some("ping_heartbeat_v1".to_owned()))
                    .summary(Some("Ping a heartbeat by its key".to_owned()))
                    .parameter(id_param("The heartbeat's key"))
                    .security(SecurityRequirement::default())
                    .response(
                        "202",
                        response("Recorded", Some(schema::PingAnswer::schema())),
                    )
                    .response("404", error("No heartbeat has this key"))
                    .response("default", error("A refusal or failure"))
                    .build(),
            );
        }
    }
}

/// Describe the routes that are another name of a described operation
/// (`from` is described; `to` takes the same requests).
pub(crate) fn aliases(doc: &mut OpenApi, aliases: &[(&str, &str, HttpMethod, &str)]) {
    for (from, to, method, id) in aliases {
        let op = doc.paths.paths.get(*from).and_then(|item| match method {
            HttpMethod::Get => item.get.clone(),
            HttpMethod::Post => item.post.clone(),
            _ => None,
        });
        let op = match (op, method) {
            (Some(op), _) => Some(op),
            // A GET alias of a POST on the same path (a ping either way).
            (None, HttpMethod::Get) => doc.paths.paths.get(*from).and_then(|i| i.post.clone()),
            _ => None,
        };
        if let Some(mut op) = op {
            op.operation_id = Some((*id).to_owned());
            if matches!(method, HttpMethod::Get) {
                op.request_body = None;
            }
            op.description = Some(format!("The same as `{from}`."));
            doc.paths.add_path_operation(*to, vec![method.clone()], op);
        }
    }
}

/// Answer `GET /api/v1/openapi.json`.
pub(crate) fn json_response(doc: &str) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.to_owned()).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A schema in a few words: its `$ref` name, type, or fields.
fn schema_text(v: &Value) -> String {
    if let Some(r) = v.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(items) = v.get("items") {
        return format!("array of {}", schema_text(items));
    }
    if let Some(all) = v.get("allOf").and_then(Value::as_array) {
        return all.iter().map(schema_text).collect::<Vec<_>>().join(" + ");
    }
    if let Some(one) = v.get("oneOf").and_then(Value::as_array) {
        return one.iter().map(schema_text).collect::<Vec<_>>().join(" | ");
    }
    if let Some(e) = v.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|x| esc(&x.to_string()))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    match v.get("type") {
        Some(Value::String(t)) => esc(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if v.get("properties").is_some() => "object".to_owned(),
        _ => "any".to_owned(),
    }
}

fn fields_html(v: &Value) -> String {
    let Some(props) = v.get("properties").and_then(Value::as_object) else {
        return String::new();
    };
    let required: Vec<&str> = v
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::from("<table><tr><th>field</th><th>type</th><th>about</th></tr>");
    for (k, p) in props {
        out.push_str(&format!(
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
            esc(k),
            if required.contains(&k.as_str()) {
                " *"
            } else {
                ""
            },
            schema_text(p),
            esc(p.get("description").and_then(Value::as_str).unwrap_or(""))
        ));
    }
    out.push_str("</table>");
    out
}

/// `GET /api/docs`: the document as a page: every operation with its
/// parameters, body and answers, then every schema. No script.
pub(crate) fn docs_page(doc: &Value) -> Html<String> {
    let mut nav = String::new();
    let mut body = String::new();
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                let anchor = format!("{method}-{path}")
                    .replace(['/', '{', '}'], "-")
                    .replace("--", "-");
                let summary = op["summary"].as_str().unwrap_or("");
                nav.push_str(&format!(
                    "<li><a href=\"#{anchor}\"><code>{} {}</code></a> {}</li>",
                    method.to_uppercase(),
                    esc(path),
                    esc(summary)
                ));
                body.push_str(&format!(
                    "<section id=\"{anchor}\"><h3><code>{} {}</code></h3><p>{}</p>",
                    method.to_uppercase(),
                    esc(path),
                    esc(summary)
                ));
                if let Some(d) = op["description"].as_str() {
                    body.push_str(&format!("<p>{}</p>", esc(d)));
                }
                let open = op
                    .get("security")
                    .and_then(Value::as_array)
                    .is_some_and(|s| {
                        s.iter()
                            .all(|r| r.as_object().is_some_and(|m| m.is_empty()))
                    });
                body.push_str(if open {
                    "<p class=\"auth\">No token (the key or signature is the credential).</p>"
                } else {
                    "<p class=\"auth\">Bearer token.</p>"
                });
                if let Some(params) = op["parameters"].as_array() {
                    body.push_str(
                        "<table><tr><th>parameter</th><th>in</th><th>type</th><th>about</th></tr>",
                    );
                    for p in params {
                        body.push_str(&format!(
                            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            esc(p["name"].as_str().unwrap_or("")),
                            if p["required"] == true { " *" } else { "" },
                            esc(p["in"].as_str().unwrap_or("")),
                            schema_text(&p["schema"]),
                            esc(p["description"].as_str().unwrap_or(""))
                        ));
                    }
                    body.push_str("</table>");
                }
                if let Some(content) = op["requestBody"]["content"].as_object() {
                    for (ct, c) in content {
                        body.push_str(&format!(
                            "<p>Body (<code>{}</code>): {}</p>",
                            esc(ct),
                            schema_text(&c["schema"])
                        ));
                    }
                }
                if let Some(responses) = op["responses"].as_object() {
                    body.push_str("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>");
                    for (status, r) in responses {
                        let shape = r["content"]
                            .as_object()
                            .map(|c| {
                                c.iter()
                                    .map(|(ct, c)| {
                                        format!(
                                            "<code>{}</code> {}",
                                            esc(ct),
                                            schema_text(&c["schema"])
                                        )
                                    })
                                    .collect::<Vec<_>>()
                                    .join("<br>")
                            })
                            .unwrap_or_default();
                        body.push_str(&format!(
                            "<tr><td>{}</td><td>{}</td><td>{shape}</td></tr>",
                            esc(status),
                            esc(r["description"].as_str().unwrap_or(""))
                        ));
                    }
                    body.push_str("</table>");
                }
                body.push_str("</section>");
            }
        }
    }
    let mut schemas = String::new();
    if let Some(all) = doc["components"]["schemas"].as_object() {
        for (name, s) in all {
            schemas.push_str(&format!(
                "<section id=\"schema-{0}\"><h3>{0}</h3><p>{1}</p>{2}</section>",
                esc(name),
                esc(s.get("description").and_then(Value::as_str).unwrap_or("")),
                if s.get("properties").is_some() {
                    fields_html(s)
                } else {
                    format!("<p>{}</p>", schema_text(s))
                }
            ));
        }
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:72rem;margin:0 auto;padding:1rem;line-height:1.4}}\
         table{{border-collapse:collapse;margin:.5rem 0;width:100%}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}}\
         section{{border-top:1px solid #ddd;padding:.5rem 0}}code{{background:#f4f4f4;padding:0 .2rem}}.auth{{color:#555}}\
         </style></head><body><h1>{t} {v}</h1><p>{d}</p>\
         <p>The document itself: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI {o}).</p>\
         <h2>Operations</h2><ul>{nav}</ul>{body}<h2>Schemas</h2>{schemas}</body></html>",
        t = esc(title),
        v = esc(doc["info"]["version"].as_str().unwrap_or("")),
        d = esc(doc["info"]["description"].as_str().unwrap_or("")),
        o = esc(doc["openapi"].as_str().unwrap_or("")),
    ))
}

/// The document as JSON text and as a value (for the page).
pub(crate) fn render(doc: &OpenApi) -> (String, Value) {
    let value = serde_json::to_value(doc).unwrap_or_else(|_| json!({}));
    (value.to_string(), value)
}
