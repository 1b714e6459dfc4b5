/// A body that could not be understood. `field` is the JSON path of the
/// offending field (`alerts[0].startsAt`), or empty for the whole body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct WireError {
    pub field: String,
    pub message: String,
}

impl WireError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        WireError {
            field: field.into(),
            message: message.into(),
        }
    }

    fn describe(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }

    /// Parse JSON into `T`, naming the path of the first bad field.
    pub fn parse_json<'de, T: serde::Deserialize<'de>>(body: &'de [u8]) -> Result<T, WireError> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." || path == "?" {
                String::new()
            } else {
                path
            };
            WireError::new(field, inner.to_string())
        })
    }
}
