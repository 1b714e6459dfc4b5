//! OpenAPI schemas of the domain types that serialize as strings of their
//! own syntax (severities, priorities, durations): the API document says
//! what they look like.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::{DurationSpec, Priority, Severity};

fn string_enum(values: &[&str], description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .into()
}

impl PartialSchema for Severity {
    fn schema() -> RefOr<Schema> {
        let all: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        string_enum(&all, "SEV0 (most severe) to SEV4 (least severe).")
    }
}

impl ToSchema for Severity {}

impl PartialSchema for Priority {
    fn schema() -> RefOr<Schema> {
        string_enum(
            &["high", "low"],
            "high alerts escalate; low alerts notify level 1 and stop.",
        )
    }
}

impl ToSchema for Priority {}

impl PartialSchema for DurationSpec {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^([0-9]+[smhdw])+$"))
            .examples(["30s", "5m", "1h30m", "2w"])
            .description(Some("A duration with units: s, m, h, d, w."))
            .into()
    }
}

impl ToSchema for DurationSpec {}
