//! Provisioning files into the stored catalog and loading it back, on
//! SQLite and PostgreSQL: plans, ownership by file, whole-catalog checks,
//! and reloads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{TimeZone, Utc};
use serde_json::json;
use tocsin_app::{AppError, Catalogs, catalog};
use tocsin_store::{CatalogWrite, Expect, Origin, Store};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

const V1: &str = r#"
users:
  - {id: alice, name: Alice}
  - {id: bob}
escalation_policies:
  - {id: p, levels: [{notify: ["user:alice"], escalate_after: 5m}]}
sources:
  - {id: prom, type: prometheus, key: "${KEY}", escalation_policy: p}
"#;

const V2: &str = r#"
users:
  - {id: alice, name: Alice Example}
  - {id: carol}
escalation_policies:
  - {id: p, levels: [{notify: ["user:carol"], escalate_after: 5m}]}
sources:
  - {id: prom, type: prometheus, key: "${KEY}", escalation_policy: p}
"#;

fn parse(text: &str) -> (tocsin_config::Config, tocsin_config::Refs) {
    let env = |n: &str| (n == "KEY").then(|| "prom-key-0123456789abcdef".to_owned());
    tocsin_config::from_str_with_refs(text, Path::new("."), &env).unwrap()
}

async fn provision(s: &dyn Store, file: &str, text: &str) -> Result<catalog::Plan, AppError> {
    let (c, refs) = parse(text);
    catalog::provision(s, file, &c, &refs, &catalog::file_actor(file), now()).await
}

fn lines(plan: &catalog::Plan) -> Vec<String> {
    plan.changes.iter().map(|c| c.to_string()).collect()
}

async fn a_file_plans_and_owns_its_objects(s: Arc<dyn Store>) {
    let plan = provision(s.as_ref(), "a.yaml", V1).await.unwrap();
    assert_eq!(
        lines(&plan),
        [
            "+ create users/alice",
            "+ create users/bob",
            "+ create escalation_policies/p",
            "+ create sources/prom"
        ]
    );
    let loaded = catalog::load(s.as_ref(), now()).await.unwrap();
    assert_eq!(loaded.catalog.users["alice"].name, "Alice");
    assert_eq!(
        loaded.secrets.source_keys["prom"],
        "prom-key-0123456789abcdef"
    );
    assert_eq!(
        loaded.object("users", "bob").unwrap().origin,
        Origin::Provisioned {
            file: "a.yaml".into()
        }
    );
    assert_eq!(
        loaded.object("sources", "prom").unwrap().secret_refs["key"],
        "${KEY}"
    );
    let version = loaded.stored.version;

    // The same file again: nothing to do, nothing written.
    assert!(
        provision(s.as_ref(), "a.yaml", V1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.catalog_version().await.unwrap(), version);

    // A changed file: updates name the keys that change; what left the
    // file is deleted.
    let plan = provision(s.as_ref(), "a.yaml", V2).await.unwrap();
    assert_eq!(
        lines(&plan),
        [
            "~ update users/alice (name)",
            "+ create users/carol",
            "~ update escalation_policies/p (levels)",
            "- delete users/bob"
        ]
    );
    let loaded = catalog::load(s.as_ref(), now()).await.unwrap();
    assert!(!loaded.catalog.users.contains_key("bob"));
    assert_eq!(loaded.catalog.users["alice"].name, "Alice Example");

    // Another file never deletes a.yaml's objects, and may not redefine them.
    let other = "users:\n  - {id: carol, name: Somebody else}\n";
    match provision(s.as_ref(), "b.yaml", other).await.unwrap_err() {
        AppError::Invalid(p) => {
            assert_eq!(p[0].path, "users[0]");
            assert!(p[0].message.contains("comes from the file a.yaml"), "{p:?}");
        }
        e => panic!("expected a key-path error, got {e}"),
    }
    let b = provision(s.as_ref(), "b.yaml", "teams:\n  - {id: ops}\n")
        .await
        .unwrap();
    assert_eq!(lines(&b), ["+ create teams/ops"]);
    assert!(
        provision(s.as_ref(), "b.yaml", "{}\n")
            .await
            .unwrap()
            .changes
            == [catalog::Change {
                op: catalog::Op::Delete,
                kind: "teams".into(),
                id: "ops".into(),
                keys: vec![]
            }]
    );
}

async fn a_change_that_breaks_another_object_applies_nothing(s: Arc<dyn Store>) {
    provision(s.as_ref(), "a.yaml", V1).await.unwrap();
    // A service made through the API that uses the file's policy.
    s.write_catalog(
        &[CatalogWrite::Put {
            kind: "services".into(),
            id: "checkout".into(),
            spec: json!({"id": "checkout", "escalation_policy": "p"}),
            secret_refs: Default::default(),
            origin: Origin::Managed,
            expect: Expect::Absent,
        }],
        &[],
        now(),
    )
    .await
    .unwrap();
    let version = s.catalog_version().await.unwrap();
    let without_p = "users:\n  - {id: alice}\n";
    match provision(s.as_ref(), "a.yaml", without_p)
        .await
        .unwrap_err()
    {
        AppError::Invalid(p) => {
            assert!(
                p.iter().any(|p| p.message.contains("services `checkout`")
                    && p.message.contains("managed through the API")
                    && p.message.contains("unknown escalation_policies id `p`")),
                "{p:?}"
            );
        }
        e => panic!("expected a key-path error, got {e}"),
    }
    assert_eq!(
        s.catalog_version().await.unwrap(),
        version,
        "nothing applied"
    );
    let loaded = catalog::load(s.as_ref(), now()).await.unwrap();
    assert!(loaded.catalog.policies.contains_key("p"));
    assert!(loaded.catalog.users.contains_key("bob"));
}

async fn reloads_follow_the_stored_version(s: Arc<dyn Store>) {
    provision(s.as_ref(), "a.yaml", V1).await.unwrap();
    let catalogs = Catalogs::open(s.clone(), now()).await.unwrap();
    let seen = Arc::new(AtomicI64::new(0));
    let seen_by = seen.clone();
    catalogs.subscribe(move |l| seen_by.store(l.stored.version, Ordering::SeqCst));
    assert!(!catalogs.refresh(now()).await.unwrap(), "nothing new yet");
    let before = catalogs.current();
    provision(s.as_ref(), "a.yaml", V2).await.unwrap();
    assert!(catalogs.refresh(now()).await.unwrap());
    let after = catalogs.current();
    assert!(after.stored.version > before.stored.version);
    assert_eq!(seen.load(Ordering::SeqCst), after.stored.version);
    assert!(after.catalog.users.contains_key("carol"));
    // What was taken before the change keeps the catalog it started with.
    assert!(before.catalog.users.contains_key("bob"));
    assert!(!after.catalog.users.contains_key("bob"));
}

async fn a_file_cannot_drop_a_schedule_with_overrides_made_through_the_api(s: Arc<dyn Store>) {
    let with_schedule = format!(
        "{V1}schedules:\n  - {{id: primary, timezone: UTC, layers: [{{users: [alice], rotation: 1w, handoff: \"2026-01-05T09:00\"}}]}}\n"
    );
    provision(s.as_ref(), "a.yaml", &with_schedule)
        .await
        .unwrap();
    let o = tocsin_app::edit::create_override(
        s.as_ref(),
        "primary",
        json!({"user": "bob", "from": "2026-12-24T18:00", "to": "2026-12-25T09:00"}),
        &tocsin_store::Actor::new("token:admin", "api"),
        now(),
    )
    .await
    .unwrap();
    let loaded = catalog::load(s.as_ref(), now()).await.unwrap();
    let model = &loaded.catalog.schedules["primary"].model;
    assert_eq!(model.overrides.len(), 1, "built into its schedule");
    assert_eq!(model.overrides[0].user, "bob");
    match provision(s.as_ref(), "a.yaml", V1).await.unwrap_err() {
        AppError::Invalid(p) => assert!(
            p.iter().any(|p| p.message.contains(&format!(
                "override `{}` (made through the API) would be left without its schedule `primary`",
                o.object.id
            ))),
            "{p:?}"
        ),
        e => panic!("expected a key-path error, got {e}"),
    }
    // The user it names cannot leave the file either.
    let without_bob = with_schedule.replace("  - {id: bob}\n", "");
    match provision(s.as_ref(), "a.yaml", &without_bob)
        .await
        .unwrap_err()
    {
        AppError::Invalid(p) => assert!(
            p.iter().any(|p| p.message.contains("of schedule `primary`")
                && p.message.contains("unknown users id `bob`")),
            "{p:?}"
        ),
        e => panic!("expected a key-path error, got {e}"),
    }
    tocsin_app::edit::delete_override(
        s.as_ref(),
        "primary",
        &o.object.id,
        &tocsin_store::Actor::new("token:admin", "api"),
        now(),
    )
    .await
    .unwrap();
    provision(s.as_ref(), "a.yaml", V1).await.unwrap();
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (s, _dir) = super::common::fresh_store(false).await.unwrap();
                super::$name(s).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some((s, _dir)) = super::common::fresh_store(true).await {
                    super::$name(s).await;
                }
            }
        }
    )*};
}

both!(
    a_file_plans_and_owns_its_objects,
    a_change_that_breaks_another_object_applies_nothing,
    reloads_follow_the_stored_version,
    a_file_cannot_drop_a_schedule_with_overrides_made_through_the_api,
);
