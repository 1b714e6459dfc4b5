//! What the fuzz targets (`fuzz/`) run on every input, one function per
//! wire format. Each parses arbitrary bytes the way its endpoint does, maps
//! what parses, and checks the invariants every mapped event must keep. A
//! panic here, from the parser or from a failed invariant, is a finding.
//!
//! The functions live in the library (not in `fuzz/`) so that the unit
//! tests run them over the seed corpus on stable Rust in CI, and so that
//! the targets stay one line each.

use chrono::{TimeZone, Utc};
use tocsin_domain::{AlertEvent, Grouping, SeverityMap};

use crate::alertmanager::{self, PrometheusSettings};
use crate::{Command, heartbeat, ilert, opsgenie, pagerduty};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn settings(grouping: Grouping) -> PrometheusSettings {
    PrometheusSettings {
        grouping,
        severity_map: SeverityMap::new(&Default::default(), tocsin_domain::Severity::Sev2),
        high_priority_from: None,
        templates: None,
    }
}

/// Invariants of any mapped event.
fn check_event(e: &AlertEvent) {
    assert!(!e.dedup_key.as_str().is_empty(), "empty dedup key");
    assert!(
        e.summary.chars().count() <= 1024,
        "summary longer than 1024 characters"
    );
    assert!(!e.members.is_empty(), "an event without members");
    if e.resolved && e.stateless {
        assert!(
            e.members.iter().all(|m| !m.is_firing()),
            "a resolved event with a firing member"
        );
    }
    assert!(
        e.resolved_at
            .is_none_or(|r| e.members.iter().any(|m| m.ends_at == Some(r))),
        "resolved_at is not a member's end"
    );
}

fn check_command(c: &Command) {
    match c {
        Command::Trigger(e) => {
            check_event(e);
            assert!(!e.resolved && e.stateless);
        }
        Command::Resolve(e) => {
            check_event(e);
            assert!(e.resolved && e.stateless);
        }
        Command::Accept(k) => assert!(!k.as_str().is_empty()),
    }
}

/// An Alertmanager webhook body, under both groupings.
pub fn alertmanager(data: &[u8]) {
    let Ok(hook) = alertmanager::parse(data) else {
        return;
    };
    for g in [Grouping::Group, Grouping::Alert] {
        if let Ok(events) = alertmanager::map(&hook, &settings(g), now()) {
            assert!(!events.is_empty(), "a webhook that maps to nothing");
            if g == Grouping::Alert {
                assert_eq!(events.len(), hook.alerts.len());
            }
            events.iter().for_each(check_event);
        }
    }
}

/// A PagerDuty Events v2 body (alert event and change event).
pub fn pagerduty(data: &[u8]) {
    if let Ok(ev) = pagerduty::parse(data) {
        match pagerduty::map(&ev, &settings(Grouping::Group), "generated-key", now()) {
            Ok(c) => check_command(&c),
            Err(errors) => assert!(!errors.is_empty(), "a rejection without a reason"),
        }
    }
    if let Ok(ch) = pagerduty::parse_change(data)
        && let Ok(c) = pagerduty::map_change(&ch, now())
    {
        assert!(!c.summary.is_empty() && c.summary.chars().count() <= 1024);
    }
}

/// An Opsgenie create body, and identifiers for close/acknowledge.
pub fn opsgenie(data: &[u8]) {
    if let Ok(c) = opsgenie::parse_create(data)
        && let Ok(cmd) =
            opsgenie::map_create(&c, &settings(Grouping::Group), "generated-key", now())
    {
        check_command(&cmd);
        if let Command::Trigger(e) = &cmd {
            assert!(e.summary.chars().count() <= 130);
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = opsgenie::genie_key(&text);
    for kind in [None, Some("id"), Some("alias"), Some("tiny"), Some("x")] {
        let _ = opsgenie::identifier(&text, kind);
    }
}

/// An ilert Events API body.
pub fn ilert(data: &[u8]) {
    let Ok(ev) = ilert::parse(data) else {
        return;
    };
    if let Ok(c) = ilert::map(&ev, &settings(Grouping::Group), "Generated-Key", now()) {
        check_command(&c);
        let key = c.key().as_str();
        assert_eq!(key, key.to_lowercase(), "ilert keys are case-insensitive");
    }
}

/// A heartbeat ping body.
pub fn heartbeat(data: &[u8]) {
    let _ = heartbeat::check_ping(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/alertmanager");
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "json")
                && let Ok(b) = std::fs::read(e.path())
            {
                out.push(b);
            }
        }
        let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds");
        for sub in std::fs::read_dir(seeds).into_iter().flatten().flatten() {
            for e in std::fs::read_dir(sub.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(b) = std::fs::read(e.path()) {
                    out.push(b);
                }
            }
        }
        out
    }

    /// Every seed, whole and cut at every 7th byte, through every target.
    #[test]
    fn seeds_and_their_prefixes_keep_every_invariant() {
        let seeds = fixtures();
        assert!(seeds.len() >= 10, "seeds missing: {}", seeds.len());
        for s in &seeds {
            for end in (0..=s.len()).step_by(7).chain([s.len()]) {
                let d = &s[..end];
                alertmanager(d);
                pagerduty(d);
                opsgenie(d);
                ilert(d);
                heartbeat(d);
            }
        }
    }
}
