//! `tocsin.yaml`: the whole schema of SPEC §11, loaded in three steps:
//!
//! 1. parse YAML into a tree;
//! 2. expand `${ENV}` / `${ENV:-default}` in strings and read `*_file` keys
//!    into their sibling (`key_file` → `key`);
//! 3. deserialize into typed structs (unknown keys are errors) and check
//!    references between objects.
//!
//! Every error names the file, the key path
//! (`escalation_policies[0].levels[1].notify[0]`) and what was expected.

pub mod catalog;
mod expand;
pub mod model;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use expand::Refs;
pub use model::*;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `sources[0].escalation_policy`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Everything wrong with a config file (at least one problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.path.is_empty() {
                write!(f, "{}: {}", self.file.display(), p.message)?;
            } else {
                write!(f, "{}: {}: {}", self.file.display(), p.path, p.message)?;
            }
        }
        Ok(())
    }
}

/// Read, expand, parse and validate a config file.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    load_with_refs(file).map(|(c, _)| c)
}

/// [`load`], also returning how secrets were written (see [`from_str_with_refs`]).
pub fn load_with_refs(file: &Path) -> Result<(Config, Refs), ConfigError> {
    let fail = |problems: Vec<Problem>| ConfigError {
        file: file.to_path_buf(),
        problems,
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        fail(vec![Problem::new(
            "",
            format!("cannot read the file ({e}); pass the path of an existing tocsin.yaml"),
        )])
    })?;
    let base = file.parent().unwrap_or_else(|| Path::new("."));
    from_str_with_refs(&text, base, &|name| std::env::var(name).ok()).map_err(fail)
}

/// Parse config text. `base` resolves relative `*_file` paths; `env` looks up
/// environment variables (injected so tests do not touch the process env).
pub fn from_str(
    text: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<Problem>> {
    from_str_with_refs(text, base, env).map(|(c, _)| c)
}

/// [`from_str`], also returning how each expanded value was written (key
/// path → `${…}` or `file:PATH`), which `tocsin export` prints back.
pub fn from_str_with_refs(
    text: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Refs), Vec<Problem>> {
    let mut refs = Refs::new();
    let mut tree: yaml_serde::Value = yaml_serde::from_str(text)
        .map_err(|e| vec![Problem::new("", format!("not valid YAML: {e}"))])?;
    if tree.is_null() {
        tree = yaml_serde::Value::Mapping(yaml_serde::Mapping::new());
    }
    expand::expand(&mut tree, base, env, &mut refs)?;
    let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        vec![Problem::new(path, e.into_inner().to_string())]
    })?;
    validate::validate(&config)?;
    Ok((config, refs))
}

#[cfg(test)]
mod tests;
