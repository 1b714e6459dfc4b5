//! `${ENV}` expansion and `*_file` secrets, applied to the YAML tree before
//! it is typed, so that every key of the schema gets them.

use std::path::Path;

use yaml_serde::Value;

use crate::Problem;

/// How secrets were written: key path → the `${…}` text, or `file:PATH`
/// for a `*_file` key (under the path of the key it fills).
pub type Refs = std::collections::BTreeMap<String, String>;

pub(crate) fn expand(
    tree: &mut Value,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    refs: &mut Refs,
) -> Result<(), Vec<Problem>> {
    let mut w = Walk {
        base,
        env,
        problems: Vec::new(),
        refs,
    };
    w.walk(tree, String::new());
    if w.problems.is_empty() {
        Ok(())
    } else {
        Err(w.problems)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

struct Walk<'a> {
    base: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
    refs: &'a mut Refs,
}

impl Walk<'_> {
    fn walk(&mut self, v: &mut Value, path: String) {
        match v {
            Value::String(s) => match expand_str(s, self.env) {
                Ok(out) => {
                    if out != *s {
                        self.refs.insert(path, std::mem::replace(s, out));
                    }
                }
                Err(msg) => self.problems.push(Problem::new(path, msg)),
            },
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.walk(item, format!("{path}[{i}]"));
                }
            }
            Value::Mapping(map) => self.mapping(map, &path),
            _ => {}
        }
    }

    fn mapping(&mut self, map: &mut yaml_serde::Mapping, path: &str) {
        let mut from_files = Vec::new();
        for (k, item) in map.iter_mut() {
            let key = k.as_str().unwrap_or("?").to_owned();
            self.walk(item, join(path, &key));
            if let Some(target) = key.strip_suffix("_file") {
                from_files.push((key.clone(), target.to_owned()));
            }
        }
        for (file_key, target) in from_files {
            let here = join(path, &file_key);
            if map.contains_key(target.as_str()) {
                self.problems.push(Problem::new(
                    here,
                    format!("set either `{target}` or `{file_key}`, not both"),
                ));
                continue;
            }
            let Some(Value::String(file)) = map.remove(file_key.as_str()) else {
                self.problems
                    .push(Problem::new(here, "expected a file path (a string)"));
                continue;
            };
            let full = self.base.join(&file);
            match std::fs::read_to_string(&full) {
                Ok(secret) => {
                    let secret = secret.trim_end_matches(['\n', '\r']).to_owned();
                    self.refs.remove(&here);
                    self.refs
                        .insert(join(path, &target), format!("file:{file}"));
                    map.insert(Value::String(target), Value::String(secret));
                }
                Err(e) => self.problems.push(Problem::new(
                    here,
                    format!("cannot read secret file {} ({e})", full.display()),
                )),
            }
        }
    }
}

/// Expand `${NAME}` and `${NAME:-default}`; `$$` is a literal `$`.
pub(crate) fn expand_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner.find('}') else {
                return Err(format!(
                    "unterminated `${{` in `{s}`; write ${{NAME}}, or $$ for a literal $"
                ));
            };
            let expr = &inner[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{expr}}}` is not a valid environment variable reference"
                ));
            }
            match (env(name), default) {
                (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (_, None) => {
                    return Err(format!(
                        "environment variable {name} is not set; export it or use ${{{name}:-default}}"
                    ));
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}
