//! Per-source summary/details templates (Jinja syntax, rendered with minijinja).

use minijinja::Environment;
use serde::Serialize;

/// A template that failed to compile or render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// The compiled `templates:` of one source.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    has_summary: bool,
    has_details: bool,
}

impl Templates {
    /// Compile the templates; the error says which one and why.
    pub fn compile(summary: Option<&str>, details: Option<&str>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        if let Some(s) = summary {
            env.add_template_owned("summary", s.to_owned())
                .map_err(|e| TemplateError(format!("summary: {e}")))?;
        }
        if let Some(d) = details {
            env.add_template_owned("details", d.to_owned())
                .map_err(|e| TemplateError(format!("details: {e}")))?;
        }
        Ok(Templates {
            env,
            has_summary: summary.is_some(),
            has_details: details.is_some(),
        })
    }

    fn render(&self, name: &str, ctx: &impl Serialize) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| TemplateError(format!("{name}: {e}")))?;
        tmpl.render(minijinja::value::Serde(ctx))
            .map(|s| s.trim().to_owned())
            .map_err(|e| TemplateError(format!("{name}: {e}")))
    }

    /// Render the summary template, if there is one.
    pub fn summary(&self, ctx: &impl Serialize) -> Option<Result<String, TemplateError>> {
        self.has_summary.then(|| self.render("summary", ctx))
    }

    /// Render the details template, if there is one.
    pub fn details(&self, ctx: &impl Serialize) -> Option<Result<String, TemplateError>> {
        self.has_details.then(|| self.render("details", ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors_name_the_template() {
        let err = Templates::compile(Some("{{ broken"), None).unwrap_err();
        assert!(err.0.starts_with("summary:"), "{err}");
        let err = Templates::compile(None, Some("{% if %}")).unwrap_err();
        assert!(err.0.starts_with("details:"), "{err}");
    }

    #[test]
    fn renders_with_context() {
        let t = Templates::compile(Some("{{ status | upper }}: {{ n }}"), None).unwrap();
        let out = t
            .summary(&serde_json::json!({"status": "firing", "n": 3}))
            .unwrap()
            .unwrap();
        assert_eq!(out, "FIRING: 3");
        assert!(t.details(&serde_json::json!({})).is_none());
    }
}
