//! The SQL of the catalog: objects as JSON specs with their origin and
//! revision, and one version row that every change bumps.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::db::{Backend, Conn, DbError, Row, Tx, args};
use crate::imp::{ms, spec_hash};
use crate::{
    AuditRecord, CatalogCommit, CatalogObject, CatalogWrite, Expect, Origin, StoreError,
    StoredCatalog,
};

const COLUMNS: &str =
    "kind, id, spec, secret_refs, origin, origin_file, revision, created_at, updated_at";

fn object(r: &Row) -> Result<CatalogObject, DbError> {
    let origin = match r.get::<String>("origin")?.as_str() {
        "managed" => Origin::Managed,
        _ => Origin::Provisioned {
            file: r.get::<Option<String>>("origin_file")?.unwrap_or_default(),
        },
    };
    let spec: String = r.get("spec")?;
    let refs: String = r.get("secret_refs")?;
    Ok(CatalogObject {
        kind: r.get("kind")?,
        id: r.get("id")?,
        spec: serde_json::from_str(&spec).map_err(DbError::decode)?,
        secret_refs: serde_json::from_str(&refs).map_err(DbError::decode)?,
        origin,
        revision: r.get("revision")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// Every object and the version they are at. The objects are read between
/// two reads of the version; a write in between makes it read again.
pub(crate) async fn read<B: Backend>(b: &B) -> Result<StoredCatalog, StoreError> {
    let mut conn = b.reader().await?;
    let version_of = |row: Row| row.get::<i64>("version");
    let mut before = version_of(
        conn.fetch_one("SELECT version FROM catalog_state WHERE id = 1", args![])
            .await?,
    )?;
    for _ in 0..5 {
        let rows = conn
            .fetch(
                &format!("SELECT {COLUMNS} FROM catalog_objects ORDER BY kind, id"),
                args![],
            )
            .await?;
        let after = version_of(
            conn.fetch_one("SELECT version FROM catalog_state WHERE id = 1", args![])
                .await?,
        )?;
        if after == before {
            let objects = rows.iter().map(object).collect::<Result<Vec<_>, _>>()?;
            return Ok(StoredCatalog {
                version: after,
                objects,
            });
        }
        before = after;
    }
    Err(StoreError::Unavailable(
        "the catalog kept changing while it was read; try again".into(),
    ))
}

struct Current {
    revision: i64,
    hash: String,
    refs: String,
    origin: String,
    file: Option<String>,
}

fn origin_columns(o: &Origin) -> (&'static str, Option<&str>) {
    match o {
        Origin::Managed => ("managed", None),
        Origin::Provisioned { file } => ("provisioned", Some(file.as_str())),
    }
}

fn check(
    kind: &str,
    id: &str,
    expect: Expect,
    current: Option<&Current>,
) -> Result<(), StoreError> {
    let conflict = |message: String| StoreError::Conflict {
        kind: kind.to_owned(),
        id: id.to_owned(),
        current: current.map(|c| c.revision),
        message,
    };
    match (expect, current) {
        (Expect::Any, _) => Ok(()),
        (Expect::Absent, None) => Ok(()),
        (Expect::Absent, Some(_)) => Err(conflict("already exists".into())),
        (Expect::Revision(_), None) => Err(conflict("does not exist (any more)".into())),
        (Expect::Revision(r), Some(c)) if c.revision == r => Ok(()),
        (Expect::Revision(r), Some(c)) => Err(conflict(format!(
            "was changed since it was read (revision {} now, {r} expected); read it again and repeat the change",
            c.revision
        ))),
    }
}

/// Apply `writes` in one transaction (see [`crate::Store::write_catalog`]).
pub(crate) async fn write<B: Backend>(
    b: &B,
    writes: &[CatalogWrite],
    audit: &[AuditRecord],
    at: DateTime<Utc>,
) -> Result<CatalogCommit, StoreError> {
    let now = ms(at);
    let mut tx = b.begin().await?;
    // Taking the version row first serialises catalog writers (PostgreSQL
    // holds its row lock until commit); the version is used only if
    // something changes, else the transaction is rolled back.
    let version: i64 = tx
        .fetch_one(
            "UPDATE catalog_state SET version = version + 1 WHERE id = 1 RETURNING version",
            args![],
        )
        .await?
        .get("version")?;
    let mut commit = CatalogCommit {
        version,
        ..CatalogCommit::default()
    };
    for w in writes {
        let (kind, id, expect) = match w {
            CatalogWrite::Put {
                kind, id, expect, ..
            }
            | CatalogWrite::Delete { kind, id, expect } => (kind, id, *expect),
            CatalogWrite::Key { source_id, key } => {
                match key {
                    Some(k) => {
                        tx.execute(
                            "INSERT INTO source_keys (source_id, key, created_at) VALUES ($1, $2, $3) ON CONFLICT (source_id) DO UPDATE SET key = excluded.key",
                            args![source_id, k, now],
                        )
                        .await?;
                    }
                    None => {
                        tx.execute(
                            "DELETE FROM source_keys WHERE source_id = $1",
                            args![source_id],
                        )
                        .await?;
                    }
                }
                commit.updated += 1;
                continue;
            }
        };
        let current = tx
            .fetch_optional(
                "SELECT revision, spec_hash, secret_refs, origin, origin_file FROM catalog_objects WHERE kind = $1 AND id = $2",
                args![kind, id],
            )
            .await?
            .map(|r| -> Result<Current, DbError> {
                Ok(Current {
                    revision: r.get("revision")?,
                    hash: r.get("spec_hash")?,
                    refs: r.get("secret_refs")?,
                    origin: r.get("origin")?,
                    file: r.get("origin_file")?,
                })
            })
            .transpose()?;
        check(kind, id, expect, current.as_ref())?;
        match w {
            CatalogWrite::Put {
                spec,
                secret_refs,
                origin,
                ..
            } => {
                let hash = spec_hash(spec);
                let refs = refs_json(secret_refs)?;
                let (origin, file) = origin_columns(origin);
                match &current {
                    Some(c)
                        if c.hash == hash
                            && c.refs == refs
                            && c.origin == origin
                            && c.file.as_deref() == file =>
                    {
                        commit.unchanged += 1;
                    }
                    Some(_) => {
                        tx.execute(
                            "UPDATE catalog_objects SET spec = $1, spec_hash = $2, secret_refs = $3, origin = $4, origin_file = $5, revision = $6, updated_at = $7 WHERE kind = $8 AND id = $9",
                            args![spec.to_string(), hash, refs, origin, file, version, now, kind, id],
                        )
                        .await?;
                        commit.updated += 1;
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO catalog_objects (kind, id, spec, spec_hash, secret_refs, origin, origin_file, revision, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                            args![kind, id, spec.to_string(), hash, refs, origin, file, version, now],
                        )
                        .await?;
                        commit.created += 1;
                    }
                }
            }
            CatalogWrite::Key { .. } => {}
            CatalogWrite::Delete { .. } => {
                if current.is_some() {
                    tx.execute(
                        "DELETE FROM catalog_objects WHERE kind = $1 AND id = $2",
                        args![kind, id],
                    )
                    .await?;
                    commit.removed += 1;
                }
            }
        }
    }
    if commit.changed() {
        for r in audit {
            crate::audit::record(&mut tx, r, at).await?;
        }
        tx.commit().await?;
    } else {
        // Nothing changed: the version stays where it was.
        drop(tx);
        commit.version = version - 1;
    }
    Ok(commit)
}

fn refs_json(refs: &BTreeMap<String, String>) -> Result<String, StoreError> {
    Ok(serde_json::to_string(refs)?)
}
