//! Audit entries of catalog writes: what each write changes, as
//! before/after values of the spec's top-level keys with secrets redacted.
//! They are written by the transaction that writes the catalog
//! ([`write`]); alert actions, maintenance windows and tokens are audited
//! by the store's own transactions.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tocsin_store::{
    Actor, AuditRecord, CatalogCommit, CatalogWrite, Store, StoreError, StoredCatalog,
};

/// The top-level keys whose values differ between `before` and `after`,
/// each as `{"before": …, "after": …}` with secrets redacted. A key whose
/// change is only in a secret says `{"secret": "changed"}`.
pub fn diff(kind: &str, id: &str, before: Option<&Value>, after: Option<&Value>) -> Value {
    let redacted = |v: Option<&Value>| {
        v.cloned().map(|mut v| {
            tocsin_config::catalog::redact(kind, id, &mut v);
            v
        })
    };
    let (rb, ra) = (redacted(before), redacted(after));
    let field = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).cloned();
    let mut keys = std::collections::BTreeSet::new();
    for v in [before, after].into_iter().flatten() {
        if let Value::Object(m) = v {
            keys.extend(m.keys().cloned());
        }
    }
    let mut out = Map::new();
    for k in keys {
        if field(before, &k) == field(after, &k) {
            continue;
        }
        let (b, a) = (field(rb.as_ref(), &k), field(ra.as_ref(), &k));
        let entry = if b == a {
            json!({"secret": "changed"})
        } else {
            json!({"before": b, "after": a})
        };
        out.insert(k, entry);
    }
    Value::Object(out)
}

/// What `writes` would record, as of `stored` (the catalog they were
/// planned from). Unchanged objects record nothing; a key write records
/// `rotate-key` unless its object is written beside it.
pub fn records(stored: &StoredCatalog, writes: &[CatalogWrite], actor: &Actor) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    for w in writes {
        match w {
            CatalogWrite::Put { kind, id, spec, .. } => {
                let before = stored.object(kind, id).map(|o| &o.spec);
                if before == Some(spec) {
                    continue;
                }
                let action = if before.is_some() { "update" } else { "create" };
                let d = diff(kind, id, before, Some(spec));
                out.push(AuditRecord::new(actor, kind, id.clone(), action, d));
            }
            CatalogWrite::Delete { kind, id, .. } => {
                let Some(before) = stored.object(kind, id) else {
                    continue;
                };
                let d = diff(kind, id, Some(&before.spec), None);
                out.push(AuditRecord::new(actor, kind, id.clone(), "delete", d));
            }
            CatalogWrite::Key { source_id, key } => {
                let (kind, id) = match source_id.strip_prefix("heartbeat:") {
                    Some(h) => ("heartbeats", h),
                    None => ("sources", source_id.as_str()),
                };
                let beside = writes.iter().any(|o| match o {
                    CatalogWrite::Put { kind: k, id: i, .. }
                    | CatalogWrite::Delete { kind: k, id: i, .. } => k == kind && i == id,
                    CatalogWrite::Key { .. } => false,
                });
                if beside {
                    continue;
                }
                let action = if key.is_some() {
                    "rotate-key"
                } else {
                    "forget-key"
                };
                out.push(AuditRecord::new(
                    actor,
                    kind,
                    id,
                    action,
                    json!({"key": {"secret": "changed"}}),
                ));
            }
        }
    }
    out
}

/// Write `writes`, planned from `stored`, with their audit entries.
pub async fn write(
    store: &dyn Store,
    stored: &StoredCatalog,
    writes: &[CatalogWrite],
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CatalogCommit, StoreError> {
    let audit = records(stored, writes, actor);
    store.write_catalog(writes, &audit, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_names_changed_keys_and_hides_secrets() {
        let before =
            json!({"id": "p", "type": "prometheus", "key": "k1", "escalation_policy": "a"});
        let after = json!({"id": "p", "type": "prometheus", "key": "k2", "escalation_policy": "b"});
        let d = diff("sources", "p", Some(&before), Some(&after));
        assert_eq!(d["escalation_policy"], json!({"before": "a", "after": "b"}));
        assert_eq!(d["key"], json!({"secret": "changed"}));
        assert!(d.get("type").is_none());
        assert!(!d.to_string().contains("k1") && !d.to_string().contains("k2"));
    }
}
