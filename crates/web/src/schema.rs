//! The shapes of the API's JSON answers, for the OpenAPI document. The
//! stored types (alerts, timelines, tokens, audit entries, …) describe
//! themselves; these are the envelopes and views the handlers build.
//! Objects may carry more fields than listed (`additionalProperties`).
//! `schemathesis` checks in CI that every answer matches.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::Value;
use tocsin_domain::{AlertStatus, Role};
use tocsin_store::{Alert, AuditEntry, ChangeEvent, MaintenanceWindow, PersonalToken};
use utoipa::ToSchema;

/// `{"error": {"code", "message"}}`: every refusal and failure.
#[derive(ToSchema, serde::Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema, serde::Serialize)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `stale`, `invalid`, `payload_too_large`, `unsupported_media_type`,
    /// `storage_unavailable`, `internal`, …
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// 422 on catalog input: each problem with its key path.
    pub problems: Option<Vec<Problem>>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct Problem {
    /// The key path inside the body (`levels[0].notify[0]`).
    pub path: String,
    pub message: String,
}

/// `GET /api/v1/alerts`
#[derive(ToSchema, serde::Serialize)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/changes`
#[derive(ToSchema, serde::Serialize)]
pub struct ChangeList {
    pub changes: Vec<ChangeEvent>,
}

/// Who is on call, and from which layer or override.
#[derive(ToSchema, serde::Serialize)]
pub struct OnCall {
    pub user: String,
    pub name: String,
    /// `{"layer": N}` or `{"override": N}`.
    pub source: Value,
    /// The layer's name, or `override`.
    pub source_name: String,
}

/// `GET /api/v1/schedules/{id}/oncall`
#[derive(ToSchema, serde::Serialize)]
pub struct OnCallAnswer {
    pub schedule: String,
    pub at: DateTime<Utc>,
    /// Null when nobody is on call.
    pub on_call: Option<OnCall>,
}

/// One shift of a schedule.
#[derive(ToSchema, serde::Serialize)]
pub struct ShiftView {
    pub user: String,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub source: Value,
    pub source_name: String,
}

/// `GET /api/v1/schedules/{id}/shifts`
#[derive(ToSchema, serde::Serialize)]
pub struct ShiftList {
    pub schedule: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub shifts: Vec<ShiftView>,
}

/// A schedule with who is on call now (and its stored object's fields).
#[derive(ToSchema, serde::Serialize)]
pub struct ScheduleView {
    pub id: String,
    pub name: String,
    pub timezone: String,
    pub on_call: Option<OnCall>,
    /// The iCalendar feed; its token is the credential.
    pub ical_url: String,
}

/// `GET /api/v1/schedules`
#[derive(ToSchema, serde::Serialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

/// A user (and their stored object's fields, without secrets).
#[derive(ToSchema, serde::Serialize)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub timezone: Option<String>,
    pub role: Role,
    pub teams: Vec<String>,
    pub ical_url: String,
}

/// `GET /api/v1/users`
#[derive(ToSchema, serde::Serialize)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// The result of one contact method's test.
#[derive(ToSchema, serde::Serialize)]
pub struct TestResult {
    pub contact: String,
    pub channel: String,
    pub ok: bool,
    pub detail: Option<String>,
    pub error: Option<String>,
}

/// `POST /api/v1/users/{id}/test-notification`
#[derive(ToSchema, serde::Serialize)]
pub struct TestNotification {
    pub user: String,
    pub results: Vec<TestResult>,
}

/// A heartbeat with its state.
#[derive(ToSchema, serde::Serialize)]
pub struct HeartbeatView {
    pub id: String,
    pub name: String,
    /// `unknown` (never pinged), `healthy` or `overdue`.
    pub state: String,
    pub interval: String,
    pub grace: String,
    pub escalation_policy: String,
    pub last_ping_at: Option<DateTime<Utc>>,
    pub overdue_at: Option<DateTime<Utc>>,
    pub pings: i64,
    pub alert_id: Option<i64>,
}

/// `GET /api/v1/heartbeats`
#[derive(ToSchema, serde::Serialize)]
pub struct HeartbeatList {
    pub heartbeats: Vec<HeartbeatView>,
}

/// What a ping did.
#[derive(ToSchema, serde::Serialize)]
pub struct PingAnswer {
    /// `ok`, or `ignored` for a body that is not a ping.
    pub status: String,
    pub heartbeat: String,
    pub state: Option<String>,
    pub armed: Option<bool>,
    pub overdue_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// A maintenance window, and whether it is active now.
#[derive(ToSchema, serde::Serialize)]
pub struct WindowView {
    #[schema(inline)]
    #[serde(flatten)]
    pub window: MaintenanceWindow,
    pub active: bool,
}

/// `GET /api/v1/maintenance`
#[derive(ToSchema, serde::Serialize)]
pub struct WindowList {
    pub windows: Vec<WindowView>,
}

/// `GET /api/v1/me`
#[derive(ToSchema, serde::Serialize)]
pub struct Me {
    pub token: MeToken,
    /// `user` (acts as a user) or `service`.
    pub kind: String,
    pub role: Role,
    pub user: Option<MeUser>,
    pub teams: Vec<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct MeToken {
    pub name: String,
    /// A personal token's id; null for a token of the config file.
    pub id: Option<String>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct MeUser {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
}

/// `GET /api/v1/tokens`
#[derive(ToSchema, serde::Serialize)]
pub struct TokenList {
    pub tokens: Vec<PersonalToken>,
}

/// `GET /api/v1/audit`
#[derive(ToSchema, serde::Serialize)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// The alert a test event made.
#[derive(ToSchema, serde::Serialize)]
pub struct TestAlertAnswer {
    pub alert: Alert,
}

/// A catalog object: its spec in the shape of tocsin.yaml (secrets left
/// out), where it came from and its revision (the ETag).
#[derive(ToSchema, serde::Serialize)]
pub struct CatalogObject {
    pub id: String,
    pub origin: Origin,
    pub revision: i64,
}

#[derive(ToSchema, serde::Serialize)]
pub struct Origin {
    /// `provisioned` (from a file) or `managed` (through the API).
    pub kind: String,
    pub file: Option<String>,
}

/// A source or heartbeat just made: its key and URL, shown this once.
#[derive(ToSchema, serde::Serialize)]
pub struct CreatedObject {
    pub id: String,
    pub origin: Origin,
    pub revision: i64,
    pub key: Option<String>,
    pub webhook_url: Option<String>,
    pub ping_url: Option<String>,
}

/// `POST /api/v1/sources/{id}/rotate-key`
#[derive(ToSchema, serde::Serialize)]
pub struct RotatedKey {
    pub id: String,
    pub key: String,
    pub webhook_url: String,
}

/// `GET /api/v1/schedules/{id}/overrides`
#[derive(ToSchema, serde::Serialize)]
pub struct OverrideList {
    pub schedule: String,
    /// The file's (no id) and those made through the API (with id, origin
    /// and revision).
    pub overrides: Vec<Value>,
}

/// `POST /api/v1/schedules/{id}/overrides`
#[derive(ToSchema, serde::Serialize)]
pub struct NewOverride {
    pub user: String,
    /// Local time of the schedule (`2026-12-24T18:00`) or RFC 3339.
    pub from: String,
    pub to: String,
}

/// A plan: each change as data and as a line (`+ create sources/two`).
#[derive(ToSchema, serde::Serialize)]
pub struct PlanAnswer {
    pub file: String,
    pub changes: Vec<Value>,
    pub lines: Vec<String>,
}

/// What an Alertmanager webhook did.
#[derive(ToSchema, serde::Serialize)]
pub struct IngestAnswer {
    /// `accepted`: committed.
    pub status: String,
    pub alerts: Vec<IngestedAlert>,
}

#[derive(ToSchema, serde::Serialize)]
pub struct IngestedAlert {
    pub id: i64,
    pub status: AlertStatus,
}

/// PagerDuty's answer (`{status, message, dedup_key}`; on error `errors`).
#[derive(ToSchema, serde::Serialize)]
pub struct PagerDutyAnswer {
    pub status: String,
    pub message: String,
    pub dedup_key: Option<String>,
    pub errors: Option<Vec<String>>,
}

/// Opsgenie's answer (`{result, took, requestId}`, `{data, …}`, or on
/// error `{message, code, took, requestId}`).
#[derive(ToSchema, serde::Serialize)]
pub struct OpsgenieAnswer {
    pub result: Option<String>,
    pub message: Option<String>,
    pub code: Option<i64>,
    pub data: Option<Value>,
    pub took: f64,
    #[serde(rename = "requestId")]
    pub request_id: String,
}

/// ilert's answer (`{alertKey, alertUrl, responseCode}`, or on error
/// `{message, code}`).
#[derive(ToSchema, serde::Serialize)]
pub struct IlertAnswer {
    #[serde(rename = "alertKey")]
    pub alert_key: Option<String>,
    #[serde(rename = "alertUrl")]
    pub alert_url: Option<String>,
    #[serde(rename = "responseCode")]
    pub response_code: Option<String>,
    pub message: Option<String>,
    pub code: Option<i64>,
}

/// `GET /healthz`, `GET /readyz`
#[derive(ToSchema, serde::Serialize)]
pub struct Health {
    /// `ok` (alive) or `ready` (storage answers).
    pub status: String,
    /// `sqlite` or `postgres` (readyz).
    pub storage: Option<String>,
}
