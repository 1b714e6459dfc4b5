//! Keys travel in URL paths; logs and errors must never show them.

/// Path prefixes whose next segment is a secret key.
const KEYED_PREFIXES: [&str; 5] = [
    "/api/v1/events/prometheus/",
    "/webhooks/",
    "/api/heartbeats/",
    "/api/v1/heartbeats/",
    "/ical/",
];

/// The path with any key segment replaced by `<redacted>`.
pub fn redact_path(path: &str) -> String {
    for p in KEYED_PREFIXES {
        if let Some(rest) = path.strip_prefix(p) {
            if rest.is_empty() {
                return path.to_owned();
            }
            return format!("{p}<redacted>");
        }
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hidden() {
        assert_eq!(
            redact_path("/api/v1/events/prometheus/s3cr3t"),
            "/api/v1/events/prometheus/<redacted>"
        );
        assert_eq!(redact_path("/webhooks/abc/def"), "/webhooks/<redacted>");
        assert_eq!(
            redact_path("/api/heartbeats/k"),
            "/api/heartbeats/<redacted>"
        );
        assert_eq!(redact_path("/api/v1/alerts/3"), "/api/v1/alerts/3");
    }
}
