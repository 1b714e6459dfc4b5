//! `POST /api/v1/sources/{id}/test-alert` with `{severity?, labels?,
//! summary?}`: a test event written in the source's own format (an
//! Alertmanager webhook, a PagerDuty event, an Opsgenie create request or
//! an ilert event) and taken through that format's whole ingest path
//! (parse, map, support hours, routing, maintenance, store, first
//! escalation level), so it pages exactly as a real one would. 201 with
//! the alert it made.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tocsin_domain::{Severity, SourceType};
use tocsin_wire::{ilert, opsgenie, pagerduty};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::senders::{apply_as, generated_key};
use crate::state::{AppState, LiveSource};

/// `POST /api/v1/sources/{id}/test-alert`
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestAlert {
    severity: Option<Severity>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    summary: Option<String>,
}

/// The value of the source's own severity field that maps to `want`
/// through its `severity_map`, among `candidates` (`None`: any label value).
fn severity_value(
    source: &LiveSource,
    want: Severity,
    candidates: Option<&[&str]>,
) -> Result<String, ApiError> {
    let map = &source.prometheus.severity_map;
    let found = match candidates {
        None => map.value_for(want).map(str::to_owned),
        Some(c) => c
            .iter()
            .find(|v| map.lookup(Some(v)) == want)
            .map(|v| (*v).to_owned()),
    };
    found.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!(
                "severity: source `{}` maps no value of its events to {want}; add one to its severity_map, or ask for another severity",
                source.id
            ),
        )
    })
}

/// `POST /api/v1/sources/{id}/test-alert`
#[utoipa::path(
    post,
    path = "/api/v1/sources/{id}/test-alert",
    operation_id = "testalert_send",
    tag = "sources",
    summary = "Send a test alert through a source's own ingest path",
    params(("id" = String, Path, description = "A source id")),
    request_body = TestAlert,
    responses((status = 201, description = "The alert it made", body = crate::schema::TestAlertAnswer), (status = 400, description = "A bad query or body, naming what is wrong", body = crate::schema::ErrorBody), (status = 401, description = "No token, or an unknown, revoked or expired one", body = crate::schema::ErrorBody), (status = 403, description = "The token lacks a permission; the message names it", body = crate::schema::ErrorBody), (status = 404, description = "No such object", body = crate::schema::ErrorBody), (status = 422, description = "No value of the source's events maps to that severity", body = crate::schema::ErrorBody), (status = 503, description = "Storage is unavailable; retry", body = crate::schema::ErrorBody), (status = "default", description = "A refusal or failure", body = crate::schema::ErrorBody))
)]
pub async fn send(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req: TestAlert = if body.iter().all(u8::is_ascii_whitespace) {
        TestAlert::default()
    } else {
        tocsin_wire::WireError::parse_json(&body)
            .map_err(|e| ApiError::bad_request(format!("test alert: {e}")))?
    };
    let alert = send_test_alert(&st, &caller, &id, req).await?;
    Ok((StatusCode::CREATED, Json(json!({"alert": alert}))))
}

/// Send a test alert through source `id` for `caller`: the API's and the
/// source page's one path.
pub(crate) async fn send_test_alert(
    st: &AppState,
    caller: &tocsin_domain::Principal,
    id: &str,
    req: TestAlert,
) -> Result<tocsin_store::Alert, ApiError> {
    let st = st.clone();
    st.0.app
        .check_test_alert(caller, id)
        .map_err(|e| ApiError::from_app("test alert", e))?;
    let source = st
        .source_by_id(id)
        .ok_or_else(|| ApiError::not_found(format!("no source `{id}`")))?;
    let actor =
        tocsin_app::access::actor(caller, &format!("test alert ({})", source.kind.as_str()));
    let token = &generated_key()[..12];
    let dedup = format!("tocsin-test-{token}");
    // An empty summary is no summary: every sender format needs one.
    let summary = req
        .summary
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("Test alert from Tocsin, sent by {}", caller.actor_name()));
    let now = st.now();
    // What Opsgenie and ilert events say when no severity is asked for.
    let severity = req.severity.unwrap_or(Severity::Sev2);
    let alert_id = match source.kind {
        SourceType::Prometheus => {
            let mut labels = req.labels.clone();
            labels.insert("alertname".into(), "TocsinTestAlert".into());
            labels.insert("tocsin_test".into(), token.into());
            if let Some(s) = req.severity {
                labels.insert("severity".into(), severity_value(&source, s, None)?);
            }
            let body = json!({
                "version": "4",
                "groupKey": format!("{{}}:{{alertname=\"TocsinTestAlert\", tocsin_test=\"{token}\"}}"),
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "tocsin-test-alert",
                "groupLabels": {"alertname": "TocsinTestAlert", "tocsin_test": token},
                "commonLabels": labels,
                "commonAnnotations": {"summary": summary},
                "externalURL": st.0.public_url,
                "alerts": [{
                    "status": "firing",
                    "labels": labels,
                    "annotations": {"summary": summary},
                    "startsAt": now,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "",
                    "fingerprint": token,
                }],
            });
            let results =
                crate::ingest::webhook(&st, &source, body.to_string().as_bytes(), &actor).await?;
            results.first().and_then(|r| r.alert_id)
        }
        SourceType::Pagerduty => {
            let severity = match req.severity {
                Some(s) => severity_value(&source, s, Some(&pagerduty::SEVERITIES))?,
                None => "warning".to_owned(),
            };
            let body = json!({
                "routing_key": "test-alert",
                "event_action": "trigger",
                "dedup_key": dedup,
                "payload": {
                    "summary": summary,
                    "source": "tocsin send-test-alert",
                    "severity": severity,
                    "custom_details": req.labels,
                },
            });
            let ev = pagerduty::parse(body.to_string().as_bytes())
                .map_err(|e| ApiError::internal("test alert", &e.join("; ")))?;
            let cmd = pagerduty::map(&ev, &source.prometheus, &generated_key(), now)
                .map_err(|e| ApiError::internal("test alert", &e.join("; ")))?;
            apply_as(&st, &source, cmd, &actor, now).await?.alert_id
        }
        SourceType::Opsgenie => {
            // P1 (SEV0) … P5 (SEV4).
            let priority = format!("P{}", 1 + severity.level());
            let body = json!({
                "message": summary,
                "alias": dedup,
                "priority": priority,
                "source": "tocsin send-test-alert",
                "details": req.labels,
            });
            let create = opsgenie::parse_create(body.to_string().as_bytes())
                .map_err(|e| ApiError::internal("test alert", &e))?;
            let cmd = opsgenie::map_create(&create, &source.prometheus, &generated_key(), now)
                .map_err(|e| ApiError::internal("test alert", &e))?;
            apply_as(&st, &source, cmd, &actor, now).await?.alert_id
        }
        SourceType::Ilert => {
            let body = json!({
                "integrationKey": "test-alert",
                "eventType": "ALERT",
                "summary": summary,
                "alertKey": dedup,
                // 1 (SEV0) … 5 (SEV4).
                "severity": 1 + severity.level(),
                "labels": req.labels,
            });
            let ev = ilert::parse(body.to_string().as_bytes())
                .map_err(|e| ApiError::internal("test alert", &e))?;
            let cmd = ilert::map(&ev, &source.prometheus, &generated_key(), now)
                .map_err(|e| ApiError::internal("test alert", &e))?;
            apply_as(&st, &source, cmd, &actor, now).await?.alert_id
        }
    };
    let Some(alert_id) = alert_id else {
        return Err(ApiError::internal(
            "test alert",
            &"the test event made no alert",
        ));
    };
    let alert =
        st.0.store
            .get_alert(alert_id)
            .await
            .map_err(|e| ApiError::from_store("test alert", e))?
            .ok_or_else(|| ApiError::internal("test alert", &"the test alert vanished"))?;
    Ok(alert)
}
