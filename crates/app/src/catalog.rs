//! The catalog as data: provisioning a file into storage (with a plan of
//! what changes), loading the stored catalog into the typed one the server
//! runs on, and keeping every node's copy current.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tocsin_config::catalog::{self as files, Entry};
use tocsin_config::{Config, Problem, Refs};
use tocsin_domain::Catalog;
use tocsin_store::{Actor, CatalogObject, CatalogWrite, Expect, Origin, Store, StoredCatalog};

use crate::AppError;

/// Secrets Tocsin keeps in storage for the catalog's objects.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    /// Source id → its key (from the file, or generated and stored).
    pub source_keys: BTreeMap<String, String>,
    /// Schedule id → the token of its calendar feed.
    pub schedule_feeds: BTreeMap<String, String>,
    /// User id → the token of their "my shifts" feed.
    pub user_feeds: BTreeMap<String, String>,
    /// The key that signs accept/resolve links in messages.
    pub link_secret: String,
    /// Heartbeat id → its key (from the file, or generated and stored).
    pub heartbeat_keys: BTreeMap<String, String>,
}

/// A new random key: 128 bits, hex.
pub fn generate_key() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The catalog in effect: typed, with its keys, and as stored (for the API).
#[derive(Debug)]
pub struct Loaded {
    pub catalog: Arc<Catalog>,
    pub secrets: Secrets,
    pub stored: StoredCatalog,
}

impl Loaded {
    /// The stored object of `kind` with `id`.
    pub fn object(&self, kind: &str, id: &str) -> Option<&CatalogObject> {
        self.stored.object(kind, id)
    }
}

/// What a plan does to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub op: Op,
    pub kind: String,
    pub id: String,
    /// For an update: the top-level keys that change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.op {
            Op::Create => write!(f, "+ create {}/{}", self.kind, self.id),
            Op::Delete => write!(f, "- delete {}/{}", self.kind, self.id),
            Op::Update => write!(
                f,
                "~ update {}/{} ({})",
                self.kind,
                self.id,
                self.keys.join(", ")
            ),
        }
    }
}

/// What provisioning a file would change, and the writes that do it.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub file: String,
    pub changes: Vec<Change>,
    pub(crate) writes: Vec<CatalogWrite>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Managed => "is managed through the API".to_owned(),
        Origin::Provisioned { file } => format!("comes from the file {file}"),
    }
}

/// The top-level keys whose values differ between two specs.
fn changed_keys(old: &Value, new: &Value, old_refs: &Refs, new_refs: &Refs) -> Vec<String> {
    let empty = serde_json::Map::new();
    let (a, b) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: BTreeSet<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    for (path, r) in old_refs.iter().chain(new_refs.iter()) {
        if old_refs.get(path) != Some(r) || new_refs.get(path) != Some(r) {
            let top = path.split(['.', '[']).next().unwrap_or(path);
            keys.insert(top.to_owned());
        }
    }
    keys.into_iter().collect()
}

/// Plan provisioning `config` (a checked file, recorded as `file`) over
/// `stored`: the file's objects are created or updated, and the objects
/// this file provisioned before and no longer declares are deleted. Others
/// (managed, or from another file) are never touched: declaring one of
/// them with a different spec is an error naming where it comes from.
/// The catalog after the change is checked as a whole; every problem names
/// its key path (the file's own paths, or the other object it is about).
pub fn plan(
    stored: &StoredCatalog,
    file: &str,
    config: &Config,
    refs: &Refs,
) -> Result<Plan, AppError> {
    let entries = files::entries(config, refs).map_err(|e| AppError::Internal(e.to_string()))?;
    let owner = Origin::Provisioned {
        file: file.to_owned(),
    };
    let by_key: BTreeMap<(&str, &str), &CatalogObject> = stored
        .objects
        .iter()
        .map(|o| ((o.kind.as_str(), o.id.as_str()), o))
        .collect();
    let mut plan = Plan {
        file: file.to_owned(),
        ..Plan::default()
    };
    let mut problems = Vec::new();
    let mut declared = BTreeSet::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &entries {
        let path = object_path(e.kind, &e.id, &mut index);
        declared.insert((e.kind, e.id.as_str()));
        match by_key.get(&(e.kind, e.id.as_str())) {
            None => {
                plan.changes.push(Change {
                    op: Op::Create,
                    kind: e.kind.to_owned(),
                    id: e.id.clone(),
                    keys: vec![],
                });
                plan.writes.push(put(e, &owner, Expect::Absent));
            }
            Some(o) if o.origin == owner => {
                if o.spec != e.spec || o.secret_refs != e.secret_refs {
                    plan.changes.push(Change {
                        op: Op::Update,
                        kind: e.kind.to_owned(),
                        id: e.id.clone(),
                        keys: changed_keys(&o.spec, &e.spec, &o.secret_refs, &e.secret_refs),
                    });
                    plan.writes.push(put(e, &owner, Expect::Revision(o.revision)));
                }
            }
            Some(o) if o.spec == e.spec => {}
            Some(o) => problems.push(Problem::new(
                path,
                format!(
                    "{} `{}` already exists and {}; remove it from this file, or change it where it comes from",
                    e.kind,
                    e.id,
                    origin_text(&o.origin)
                ),
            )),
        }
    }
    for o in &stored.objects {
        if o.origin == owner && !declared.contains(&(o.kind.as_str(), o.id.as_str())) {
            plan.changes.push(Change {
                op: Op::Delete,
                kind: o.kind.clone(),
                id: o.id.clone(),
                keys: vec![],
            });
            plan.writes.push(CatalogWrite::Delete {
                kind: o.kind.clone(),
                id: o.id.clone(),
                expect: Expect::Revision(o.revision),
            });
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    // The catalog after the change: the file's objects first (so that key
    // paths into them are the file's), then everything else that stays.
    let deleted: BTreeSet<(&str, &str)> = plan
        .changes
        .iter()
        .filter(|c| c.op == Op::Delete)
        .map(|c| (c.kind.as_str(), c.id.as_str()))
        .collect();
    let others: Vec<&CatalogObject> = stored
        .objects
        .iter()
        .filter(|o| {
            let k = (o.kind.as_str(), o.id.as_str());
            !declared.contains(&k) && !deleted.contains(&k)
        })
        .collect();
    check_whole(
        entries
            .iter()
            .map(|e| (e.kind, e.id.as_str(), &e.spec, None))
            .chain(
                others
                    .iter()
                    .map(|o| (o.kind.as_str(), o.id.as_str(), &o.spec, Some(&o.origin))),
            ),
    )?;
    // Keys the file sets go in the same transaction as their objects.
    let keys: Vec<CatalogWrite> = entries
        .iter()
        .filter(|e| written_now(&plan, e))
        .filter_map(|e| {
            Some(CatalogWrite::Key {
                source_id: key_source(e.kind, &e.id)?,
                key: Some(e.spec.get("key")?.as_str()?.to_owned()),
            })
        })
        .collect();
    plan.writes.extend(keys);
    Ok(plan)
}

/// Whether the plan creates or updates this entry.
fn written_now(plan: &Plan, e: &Entry) -> bool {
    plan.changes
        .iter()
        .any(|c| c.op != Op::Delete && c.kind == e.kind && c.id == e.id)
}

/// The source id a kind's keys are stored under, if it has a key.
pub(crate) fn key_source(kind: &str, id: &str) -> Option<String> {
    match kind {
        "sources" => Some(id.to_owned()),
        "heartbeats" => Some(tocsin_wire::heartbeat::source_id(id)),
        _ => None,
    }
}

/// The key path of an object in a file: `providers.ID`, or `KIND[i]` for
/// the next index of its kind (counted in `index`).
fn object_path<'a>(kind: &'a str, id: &str, index: &mut BTreeMap<&'a str, usize>) -> String {
    if kind == "providers" {
        format!("providers.{id}")
    } else {
        let i = index.entry(kind).and_modify(|i| *i += 1).or_insert(0);
        format!("{kind}[{i}]")
    }
}

fn put(e: &Entry, origin: &Origin, expect: Expect) -> CatalogWrite {
    CatalogWrite::Put {
        kind: e.kind.to_owned(),
        id: e.id.clone(),
        spec: e.spec.clone(),
        secret_refs: e.secret_refs.clone(),
        origin: origin.clone(),
        expect,
    }
}

/// Check a whole catalog of (kind, id, spec, origin) with the rules of
/// `check-config`. A problem inside an object that has an origin (it is
/// not one being written) is reported by that object's kind and id, since
/// its index means nothing to the caller.
pub(crate) fn check_whole<'a>(
    objects: impl Iterator<Item = (&'a str, &'a str, &'a Value, Option<&'a Origin>)>,
) -> Result<Config, AppError> {
    check_split(objects).map_err(|(mut own, others)| {
        own.extend(others);
        AppError::Invalid(own)
    })
}

/// [`check_whole`], with the problems apart: those inside the objects
/// without an origin (being written), and those they cause in stored
/// objects (reported by kind and id).
pub(crate) fn check_split<'a>(
    objects: impl Iterator<Item = (&'a str, &'a str, &'a Value, Option<&'a Origin>)>,
) -> Result<Config, (Vec<Problem>, Vec<Problem>)> {
    let objects: Vec<_> = objects.collect();
    let (overrides, objects): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .partition(|(kind, ..)| *kind == OVERRIDES);
    let mut doc = files::document(objects.iter().map(|(k, id, s, _)| (*k, *id, *s)));
    let mut located: Vec<(String, String, Option<&Origin>)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (kind, id, _, origin) in &objects {
        let path = object_path(kind, id, &mut index);
        located.push((path, format!("{kind} `{id}`"), *origin));
    }
    // An override made through the API is checked where a file would put
    // it: in its schedule's `overrides` (the same rules, and the same
    // model once built).
    let (mut missing_own, mut missing_others) = (Vec::new(), Vec::new());
    for (_, id, spec, origin) in &overrides {
        let schedule = spec.get("schedule").and_then(Value::as_str).unwrap_or("");
        let entry = json_override(spec);
        let list = doc
            .get_mut("schedules")
            .and_then(Value::as_array_mut)
            .and_then(|all| {
                all.iter_mut()
                    .enumerate()
                    .find(|(_, s)| s.get("id").and_then(Value::as_str) == Some(schedule))
            });
        match list {
            Some((i, s)) => {
                if let Value::Object(m) = s {
                    let ov = m
                        .entry("overrides")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(items) = ov {
                        located.push((
                            format!("schedules[{i}].overrides[{}]", items.len()),
                            format!("override `{id}` of schedule `{schedule}`"),
                            *origin,
                        ));
                        items.push(entry);
                    }
                }
            }
            None => match origin {
                None => missing_own.push(Problem::new(
                    format!("{OVERRIDES}[0].schedule"),
                    format!("unknown schedule `{schedule}`"),
                )),
                Some(_) => missing_others.push(Problem::new(
                    format!("{OVERRIDES}.{id}"),
                    format!(
                        "override `{id}` (made through the API) would be left without its schedule `{schedule}`; delete it first (DELETE /api/v1/schedules/{schedule}/overrides/{id})"
                    ),
                )),
            },
        }
    }
    // The most specific place first (an override inside its schedule).
    located.sort_by_key(|(path, ..)| std::cmp::Reverse(path.len()));
    let problems = match files::parse_document(doc) {
        Ok(config) if missing_own.is_empty() && missing_others.is_empty() => return Ok(config),
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    };
    let within = |path: &str, prefix: &str| {
        path == prefix
            || path.starts_with(&format!("{prefix}."))
            || path.starts_with(&format!("{prefix}["))
    };
    let (mut own, mut others) = (missing_own, missing_others);
    for p in problems {
        let hit = located.iter().find(|(prefix, ..)| within(&p.path, prefix));
        let theirs = matches!(hit, Some((_, _, Some(_))));
        let p = {
            let rest = |prefix: &str| {
                p.path
                    .strip_prefix(prefix)
                    .unwrap_or("")
                    .trim_start_matches('.')
                    .to_owned()
            };
            match hit {
                Some((prefix, what, Some(origin))) => Problem::new(
                    p.path.clone(),
                    format!(
                        "{what} ({}) would be left broken{}: {}",
                        origin_text(origin),
                        Some(rest(prefix))
                            .filter(|r| !r.is_empty())
                            .map(|r| format!(" at `{r}`"))
                            .unwrap_or_default(),
                        p.message
                    ),
                ),
                // The override being written: paths inside it.
                Some((prefix, _, None)) if prefix.contains(".overrides[") => {
                    let r = rest(prefix);
                    Problem::new(
                        if r.is_empty() {
                            format!("{OVERRIDES}[0]")
                        } else {
                            format!("{OVERRIDES}[0].{r}")
                        },
                        p.message,
                    )
                }
                _ => p,
            }
        };
        if theirs { others.push(p) } else { own.push(p) }
    }
    Err((own, others))
}

/// The stored kind of overrides made through the API (not a tocsin.yaml
/// key: they are checked and built inside their schedule).
pub const OVERRIDES: &str = "overrides";

/// An override's entry in its schedule: `{user, from, to}`.
fn json_override(spec: &Value) -> Value {
    let mut m = serde_json::Map::new();
    for k in ["user", "from", "to"] {
        if let Some(v) = spec.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    Value::Object(m)
}

/// Write a plan in one transaction (every object checked against the
/// revision the plan was made from, the keys the file sets with them).
/// `Ok(false)`: nothing to do.
pub async fn apply(
    store: &dyn Store,
    stored: &StoredCatalog,
    plan: &Plan,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    if plan.writes.is_empty() {
        return Ok(false);
    }
    let commit = crate::audit::write(store, stored, &plan.writes, actor, now).await?;
    Ok(commit.changed())
}

/// Who provisioning `file` is in the audit log: `config:FILE`.
pub fn file_actor(file: &str) -> Actor {
    Actor::new(format!("config:{file}"), "provisioning")
}

/// Provision a checked file: plan over the stored catalog and apply. A
/// plan that lost a race with another writer (another node provisioning
/// the same file at the same moment) is made again.
pub async fn provision(
    store: &dyn Store,
    file: &str,
    config: &Config,
    refs: &Refs,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Plan, AppError> {
    let mut attempt = 0;
    loop {
        let stored = store.catalog().await?;
        let plan = plan(&stored, file, config, refs)?;
        match apply(store, &stored, &plan, actor, now).await {
            Err(AppError::Store(tocsin_store::StoreError::Conflict { .. })) if attempt < 3 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
            Ok(_) => return Ok(plan),
        }
    }
}

/// The stored catalog as a tocsin.yaml document (kinds in the order of a
/// file), with secrets as references; also the environment variables the
/// export made up for secrets set through the API.
pub fn export(stored: &StoredCatalog) -> (Value, Vec<String>) {
    let mut made_up = Vec::new();
    let mut specs = Vec::new();
    for kind in files::KINDS {
        for o in stored.objects.iter().filter(|o| o.kind == *kind) {
            let (spec, extra) = files::exported(&o.kind, &o.id, &o.spec, &o.secret_refs);
            made_up.extend(extra);
            specs.push((o.kind.as_str(), o.id.as_str(), spec));
        }
    }
    let doc = files::document(specs.iter().map(|(k, id, s)| (*k, *id, s)));
    (doc, made_up)
}

/// [`export`] as tocsin.yaml text.
pub fn export_yaml(stored: &StoredCatalog) -> Result<(String, Vec<String>), AppError> {
    let (doc, made_up) = export(stored);
    let text = files::to_yaml(&doc).map_err(AppError::Internal)?;
    Ok((text, made_up))
}

/// A file sent by `tocsin apply`: the name it is recorded by, the document
/// as the client read and expanded it, and how its secrets were written.
#[derive(Debug, Clone, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct FileUpload {
    /// The name that owns the file's objects.
    pub file: String,
    /// The file as JSON, secrets expanded.
    pub document: Value,
    /// How each secret was written (`${ENV}`, `*_file`), by key path.
    #[serde(default)]
    pub secret_refs: Refs,
}

/// Plan (and with `apply`, apply in one transaction) an uploaded file.
pub async fn plan_upload(
    store: &dyn Store,
    upload: FileUpload,
    apply_it: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Plan, AppError> {
    if upload.file.trim().is_empty() {
        return Err(AppError::Invalid(vec![Problem::new(
            "file",
            "missing; the name that owns the file's objects (tocsin apply sends the path given)",
        )]));
    }
    let config = files::parse_document(upload.document).map_err(AppError::Invalid)?;
    if apply_it {
        let actor = Actor::new(actor.name.clone(), format!("apply {}", upload.file));
        provision(
            store,
            &upload.file,
            &config,
            &upload.secret_refs,
            &actor,
            now,
        )
        .await
    } else {
        plan(
            &store.catalog().await?,
            &upload.file,
            &config,
            &upload.secret_refs,
        )
    }
}

/// Read the stored catalog and build the typed one, with its keys.
pub async fn load(store: &dyn Store, now: DateTime<Utc>) -> Result<Loaded, AppError> {
    let stored = store.catalog().await?;
    let config = check_whole(
        stored
            .objects
            .iter()
            .map(|o| (o.kind.as_str(), o.id.as_str(), &o.spec, Some(&o.origin))),
    )?;
    let catalog = files::build(&config, stored.version);
    let secrets = secrets(store, &catalog, now).await?;
    Ok(Loaded {
        catalog: Arc::new(catalog),
        secrets,
        stored,
    })
}

/// The keys and feed tokens of every object: stored ones, or new ones
/// stored now for next time and for other nodes.
async fn secrets(store: &dyn Store, c: &Catalog, now: DateTime<Utc>) -> Result<Secrets, AppError> {
    let mut out = Secrets::default();
    for s in c.sources.values() {
        let key = store
            .source_key(&s.id, s.configured_key.as_deref(), &generate_key(), now)
            .await?;
        out.source_keys.insert(s.id.clone(), key);
    }
    for h in c.heartbeats.values() {
        let key = store
            .source_key(
                &tocsin_wire::heartbeat::source_id(&h.id),
                h.configured_key.as_deref(),
                &generate_key(),
                now,
            )
            .await?;
        out.heartbeat_keys.insert(h.id.clone(), key);
    }
    for id in c.schedules.keys() {
        let token = store
            .named_secret("ical-schedule", id, &generate_key(), now)
            .await?;
        out.schedule_feeds.insert(id.clone(), token);
    }
    for id in c.users.keys() {
        let token = store
            .named_secret("ical-user", id, &generate_key(), now)
            .await?;
        out.user_feeds.insert(id.clone(), token);
    }
    out.link_secret = store
        .named_secret("links", "hmac", &generate_key(), now)
        .await?;
    Ok(out)
}

type Subscriber = Box<dyn Fn(&Arc<Loaded>) + Send + Sync>;

/// The catalog in effect on this node, reloaded when the stored version
/// moves: at once after a change made here, and within a poll
/// ([`Catalogs::POLL`]) after a change made by another node.
pub struct Catalogs {
    store: Arc<dyn Store>,
    current: RwLock<Arc<Loaded>>,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Serialises reloads, so an older one never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
}

impl Catalogs {
    /// How often the stored version is read.
    pub const POLL: Duration = Duration::from_millis(500);

    /// Load the stored catalog.
    pub async fn open(store: Arc<dyn Store>, now: DateTime<Utc>) -> Result<Arc<Self>, AppError> {
        let loaded = load(store.as_ref(), now).await?;
        Ok(Arc::new(Catalogs {
            store,
            current: RwLock::new(Arc::new(loaded)),
            subscribers: Mutex::new(Vec::new()),
            reloading: tokio::sync::Mutex::new(()),
        }))
    }

    /// The catalog in effect now.
    pub fn current(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Call `f` with every catalog put in effect from now on.
    pub fn subscribe(&self, f: impl Fn(&Arc<Loaded>) + Send + Sync + 'static) {
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(Box::new(f));
        }
    }

    /// Reload when the stored version is not the one in effect. `Ok(true)`:
    /// a new catalog is in effect. A stored catalog that does not load
    /// (it cannot be: every write is checked whole) keeps the old one.
    pub async fn refresh(&self, now: DateTime<Utc>) -> Result<bool, AppError> {
        let _one = self.reloading.lock().await;
        let version = self.store.catalog_version().await?;
        if version == self.current().stored.version {
            return Ok(false);
        }
        let loaded = Arc::new(load(self.store.as_ref(), now).await?);
        match self.current.write() {
            Ok(mut c) => *c = loaded.clone(),
            Err(poisoned) => *poisoned.into_inner() = loaded.clone(),
        }
        if let Ok(subs) = self.subscribers.lock() {
            for f in subs.iter() {
                f(&loaded);
            }
        }
        tracing::info!(version = loaded.stored.version, "catalog reloaded");
        Ok(true)
    }

    /// Poll the stored version until `stop` is set.
    pub async fn watch(
        self: Arc<Self>,
        clock: impl Fn() -> DateTime<Utc> + Send,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Self::POLL) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.refresh(clock()).await {
                tracing::warn!(error = %e, "could not reload the catalog; keeping the one in effect");
            }
        }
    }
}
