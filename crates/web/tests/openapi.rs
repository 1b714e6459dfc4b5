//! The OpenAPI document the server serves: OpenAPI 3.1, every catalog
//! kind and every route of the API described (each described operation is
//! routed: a request to it never meets the router's "no route" answer),
//! the error object and the Bearer scheme; and its page at `/api/docs`,
//! which loads nothing from elsewhere and runs no script.
//! `scripts/openapi-check` validates it and fuzzes the live API against it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;

const CONFIG: &str = r#"
api_tokens:
  - {name: root, token: root-token-0123456789abcdef, role: admin}
escalation_policies:
  - {id: p, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
users:
  - {id: alice}
"#;

#[tokio::test]
async fn the_document_describes_every_route_and_each_described_operation_is_routed() {
    let (base, _dir) = common::serve(CONFIG, vec![]).await;
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert!(error["properties"]["error"].is_object(), "{error}");
    let paths = doc["paths"].as_object().unwrap();
    for kind in [
        "teams",
        "users",
        "support_hours",
        "schedules",
        "escalation_policies",
        "services",
        "sources",
        "heartbeats",
    ] {
        let one = &paths[&format!("/api/v1/{kind}/{{id}}")];
        for m in ["get", "put", "delete"] {
            assert!(one[m].is_object(), "{m} /api/v1/{kind}/{{id}}");
        }
        assert!(
            paths[&format!("/api/v1/{kind}")]["post"].is_object(),
            "{kind}"
        );
        // The request body is the schema tocsin.yaml is read with.
        let body = &paths[&format!("/api/v1/{kind}")]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"];
        let name = body.as_str().unwrap().rsplit('/').next().unwrap();
        assert!(
            doc["components"]["schemas"][name]["properties"]["id"].is_object(),
            "{kind}: {name}"
        );
    }
    for p in [
        "/api/v1/alerts",
        "/api/v1/alerts/{id}/accept",
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/maintenance",
        "/api/v1/sources/{id}/test-alert",
        "/api/v1/events/prometheus/{key}",
        "/webhooks/{key}",
        "/v2/enqueue",
        "/v2/alerts",
        "/api/events",
        "/api/v1/events",
    ] {
        assert!(paths.contains_key(p), "{p} is not described");
    }
    // Every described operation is routed: with its parameters filled in,
    // no request meets the fallback ("no route for …", or 405 from it).
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = method.to_uppercase().parse::<reqwest::Method>() else {
                continue;
            };
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(
                op["responses"]["default"].is_object() || path.starts_with("/act"),
                "{method} {path} has no default answer"
            );
            operations += 1;
            let url = path
                .replace("{id}", "1")
                .replace("{key}", "k")
                .replace("{oid}", "o")
                .replace("{action}", "accept")
                .replace("{token}", "t");
            let res = http
                .request(m.clone(), format!("{base}{url}"))
                .bearer_auth("root-token-0123456789abcdef")
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = res.status();
            let text = res.text().await.unwrap();
            assert_ne!(
                status,
                reqwest::StatusCode::METHOD_NOT_ALLOWED,
                "{m} {path}: {text}"
            );
            assert!(
                !text.contains("no route for"),
                "{m} {path} is described but not routed: {text}"
            );
        }
    }
    assert!(operations > 80, "{operations} operations");
}

#[tokio::test]
async fn the_docs_page_renders_the_document_without_scripts_or_other_sites() {
    let (base, _dir) = common::serve(CONFIG, vec![]).await;
    let res = reqwest::get(format!("{base}/api/docs")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
    assert!(!page.to_lowercase().contains("<script"), "no script");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing from elsewhere"
    );
    for needle in [
        "GET /api/v1/alerts",
        "POST /api/v1/tokens",
        "DELETE /api/v1/tokens/{id}",
        "POST /v2/enqueue",
        "id=\"schema-ErrorBody\"",
        "Bearer token.",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
}
