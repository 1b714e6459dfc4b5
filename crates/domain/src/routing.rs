//! Which escalation policy and service an alert goes to (SPEC §2.2 "Routing").

use std::collections::HashMap;

use crate::ingest::RoutingHint;

/// The routing facts of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// `routing_key` → escalation policy id.
    pub policies_by_routing_key: HashMap<String, String>,
    /// service id → its escalation policy id, if it has one.
    pub services: HashMap<String, Option<String>>,
}

/// The outcome of routing one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub policy_id: String,
    pub service_id: Option<String>,
    /// How the policy was chosen, for the timeline.
    pub note: String,
}

/// What a source contributes to routing.
#[derive(Debug, Clone, Copy)]
pub struct SourceRouting<'a> {
    pub policy_id: &'a str,
    pub service_id: Option<&'a str>,
}

impl Router {
    /// Routing key → that policy; else `service_id` → the service and its
    /// policy; else the source's policy. Unknown keys and services fall back
    /// to the source's policy, and the note says so.
    pub fn route(&self, hint: &RoutingHint, source: SourceRouting<'_>) -> Route {
        let known_service = hint
            .service_id
            .as_deref()
            .and_then(|id| self.services.get(id).map(|p| (id, p)));
        let service_id = known_service
            .map(|(id, _)| id.to_owned())
            .or_else(|| source.service_id.map(str::to_owned));

        if let Some(key) = &hint.routing_key {
            if let Some(policy) = self.policies_by_routing_key.get(key) {
                return Route {
                    policy_id: policy.clone(),
                    service_id,
                    note: format!("routed to escalation policy `{policy}` by routing key `{key}`"),
                };
            }
            return Route {
                policy_id: source.policy_id.to_owned(),
                service_id,
                note: format!(
                    "routing key `{key}` matches no escalation policy; fell back to the source's policy `{}`",
                    source.policy_id
                ),
            };
        }
        match (&hint.service_id, known_service) {
            (Some(_), Some((id, Some(policy)))) => Route {
                policy_id: policy.clone(),
                service_id,
                note: format!("routed to escalation policy `{policy}` of service `{id}`"),
            },
            (Some(_), Some((id, None))) => Route {
                policy_id: source.policy_id.to_owned(),
                service_id,
                note: format!(
                    "service `{id}` has no escalation policy; used the source's policy `{}`",
                    source.policy_id
                ),
            },
            (Some(unknown), None) => Route {
                policy_id: source.policy_id.to_owned(),
                service_id,
                note: format!(
                    "service_id `{unknown}` matches no service; fell back to the source's policy `{}`",
                    source.policy_id
                ),
            },
            (None, _) => Route {
                policy_id: source.policy_id.to_owned(),
                service_id,
                note: format!(
                    "routed to the source's escalation policy `{}`",
                    source.policy_id
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router {
            policies_by_routing_key: HashMap::from([("rk".into(), "p-key".into())]),
            services: HashMap::from([
                ("checkout".into(), Some("p-svc".into())),
                ("bare".into(), None),
            ]),
        }
    }

    const SRC: SourceRouting<'static> = SourceRouting {
        policy_id: "p-src",
        service_id: Some("src-svc"),
    };

    fn hint(key: Option<&str>, svc: Option<&str>) -> RoutingHint {
        RoutingHint {
            routing_key: key.map(Into::into),
            service_id: svc.map(Into::into),
        }
    }

    #[test]
    fn routing_key_wins() {
        let r = router().route(&hint(Some("rk"), Some("checkout")), SRC);
        assert_eq!(r.policy_id, "p-key");
        assert_eq!(r.service_id.as_deref(), Some("checkout"));
    }

    #[test]
    fn unknown_routing_key_falls_back_and_says_so() {
        let r = router().route(&hint(Some("nope"), None), SRC);
        assert_eq!(r.policy_id, "p-src");
        assert!(
            r.note.contains("matches no escalation policy"),
            "{}",
            r.note
        );
        assert_eq!(r.service_id.as_deref(), Some("src-svc"));
    }

    #[test]
    fn service_id_picks_service_policy() {
        let r = router().route(&hint(None, Some("checkout")), SRC);
        assert_eq!(
            (r.policy_id.as_str(), r.service_id.as_deref()),
            ("p-svc", Some("checkout"))
        );
        let r = router().route(&hint(None, Some("bare")), SRC);
        assert_eq!(
            (r.policy_id.as_str(), r.service_id.as_deref()),
            ("p-src", Some("bare"))
        );
        let r = router().route(&hint(None, Some("ghost")), SRC);
        assert_eq!(r.policy_id, "p-src");
        assert!(r.note.contains("matches no service"), "{}", r.note);
    }

    #[test]
    fn default_is_source_policy() {
        let r = router().route(&hint(None, None), SRC);
        assert_eq!(r.policy_id, "p-src");
    }
}
