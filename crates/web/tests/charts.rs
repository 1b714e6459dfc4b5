//! Status page charts ask Prometheus at most once a minute per chart,
//! however many requests and nodes: many concurrent requests to one node,
//! and requests to two nodes on one PostgreSQL, cost one query. The
//! Prometheus here is a local server answering `/api/v1/query_range` in
//! Prometheus' documented format and counting the queries (the real
//! Prometheus is drawn from in `crates/tocsin/tests/e2e_status.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn prometheus(queries: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        "/api/v1/query_range",
        axum::routing::get(move |q: axum::extract::RawQuery| {
            let queries = queries.clone();
            async move {
                queries.fetch_add(1, Ordering::SeqCst);
                let q = q.0.unwrap_or_default();
                assert!(q.contains("query=up") && q.contains("start=") && q.contains("step="), "{q}");
                let now = chrono::Utc::now().timestamp() as f64;
                let values: Vec<serde_json::Value> = (0..30)
                    .map(|i| serde_json::json!([now - 1800.0 + 60.0 * f64::from(i), format!("{}", i % 7)]))
                    .collect();
                axum::Json(serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"job": "x"}, "values": values}]}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn config(prom: &str) -> String {
    format!(
        r#"
services: [{{id: checkout, name: Checkout, public: true}}]
status_page:
  prometheus_url: {prom}
  charts: [{{service: checkout, title: Up, query: up, unit: "", range: 1h}}]
"#
    )
}

async fn fetch_many(base: &str, n: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let gets = (0..n).map(|i| {
        let url = if i % 2 == 0 {
            format!("{base}/status/charts/0.svg")
        } else {
            format!("{base}/status/charts/0.svg?narrow")
        };
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    });
    futures_util::future::join_all(gets).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_to_one_node_cost_one_query() {
    let queries = Arc::new(AtomicUsize::new(0));
    let prom = prometheus(queries.clone()).await;
    let (base, _dir) = common::serve(&config(&prom), vec![]).await;
    let svgs = fetch_many(&base, 40).await;
    assert!(svgs.iter().all(|s| s.contains("<polyline")), "{}", svgs[0]);
    assert!(
        svgs.iter().any(|s| s.contains("viewBox=\"0 0 360 220\"")),
        "the narrow drawing"
    );
    assert!(
        svgs.iter().any(|s| s.contains("viewBox=\"0 0 720 240\"")),
        "the wide drawing"
    );
    assert_eq!(
        queries.load(Ordering::SeqCst),
        1,
        "one query for 40 requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_share_one_query() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let queries = Arc::new(AtomicUsize::new(0));
    let prom = prometheus(queries.clone()).await;
    let text = config(&prom);
    let (a, _da, _) = common::serve_on(&text, vec![], Default::default(), Some(url.clone())).await;
    let (b, _db, _) = common::serve_on(&text, vec![], Default::default(), Some(url)).await;
    let first = fetch_many(&a, 10).await;
    let second = fetch_many(&b, 10).await;
    assert!(
        first.iter().chain(&second).all(|s| s.contains("<polyline")),
        "{}",
        second[0]
    );
    assert_eq!(
        queries.load(Ordering::SeqCst),
        1,
        "node B drew node A's answer"
    );
}
