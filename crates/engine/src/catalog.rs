//! What the workers need to know from the configuration: policies,
//! schedules, and each user's contacts and notification rules.

use std::collections::HashMap;

use chrono::TimeDelta;
use tocsin_config::Config;
use tocsin_domain::Priority;
use tocsin_domain::escalation::{Level, Policy, Target};
use tocsin_domain::schedule::Schedule;

/// Where one contact method sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRoute {
    pub channel: String,
    pub address: String,
}

/// A user's contacts and rules.
#[derive(Debug, Clone, Default)]
pub struct UserRules {
    pub contacts: HashMap<String, ContactRoute>,
    pub high: Vec<(String, TimeDelta)>,
    pub low: Vec<(String, TimeDelta)>,
}

impl UserRules {
    pub fn rules(&self, p: Priority) -> &[(String, TimeDelta)] {
        match p {
            Priority::High => &self.high,
            Priority::Low => &self.low,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub policies: HashMap<String, Policy>,
    pub schedules: HashMap<String, Schedule>,
    pub users: HashMap<String, UserRules>,
}

impl Catalog {
    /// Build from a validated config (invalid targets were reported by
    /// validation and are left out here).
    pub fn from_config(c: &Config) -> Catalog {
        let policies = c
            .escalation_policies
            .iter()
            .map(|p| {
                let levels = p
                    .levels
                    .iter()
                    .map(|l| Level {
                        targets: l
                            .notify
                            .iter()
                            .filter_map(|t| t.parse::<Target>().ok())
                            .collect(),
                        escalate_after: l.escalate_after,
                    })
                    .collect();
                (
                    p.id.clone(),
                    Policy {
                        id: p.id.clone(),
                        repeat: p.repeat,
                        levels,
                    },
                )
            })
            .collect();
        let schedules = c
            .schedules
            .iter()
            .map(|s| (s.id.clone(), s.to_domain()))
            .collect();
        let users = c
            .users
            .iter()
            .map(|u| {
                let contacts = u
                    .contacts
                    .iter()
                    .filter_map(|ct| {
                        ct.value().map(|v| {
                            (
                                ct.id.clone(),
                                ContactRoute {
                                    channel: ct.kind.channel().to_owned(),
                                    address: v.to_owned(),
                                },
                            )
                        })
                    })
                    .collect();
                let rules = |rs: &[tocsin_config::NotifyRule]| {
                    rs.iter()
                        .map(|r| (r.contact.clone(), r.after.as_chrono()))
                        .collect()
                };
                (
                    u.id.clone(),
                    UserRules {
                        contacts,
                        high: rules(&u.notify.high),
                        low: rules(&u.notify.low),
                    },
                )
            })
            .collect();
        Catalog {
            policies,
            schedules,
            users,
        }
    }
}
