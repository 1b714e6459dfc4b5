//! The status page's Atom feed (every public update its own entry) and
//! its SVG badges.

use tocsin_domain::Catalog;
use tocsin_domain::incident::ComponentStatus;
use tocsin_store::PublicEvent;

use super::summary::Summary;
use crate::state::AppState;

/// Text for XML content and attributes.
pub(crate) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newline are not XML.
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The feed: the newest 50 public updates of incidents the public page
/// shows.
pub(crate) fn atom(st: &AppState, s: &Summary, events: &[PublicEvent], c: &Catalog) -> String {
    let base = &st.0.public_url;
    let shown = |e: &PublicEvent| {
        e.services.is_empty()
            || e.services
                .iter()
                .any(|id| c.services.get(id).is_some_and(|x| x.public))
    };
    let events: Vec<&PublicEvent> = events.iter().filter(|e| shown(e)).collect();
    let updated = events
        .first()
        .map_or(s.page.updated_at, |e| e.event.at)
        .to_rfc3339();
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!("  <title>{}</title>\n", xml(&s.page.name)));
    out.push_str(&format!(
        "  <subtitle>Incident updates of {}</subtitle>\n",
        xml(&s.page.name)
    ));
    out.push_str(&format!("  <id>{}/status</id>\n", xml(base)));
    out.push_str(&format!(
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}/status\"/>\n",
        xml(base)
    ));
    out.push_str(&format!(
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}/status/feed.atom\"/>\n",
        xml(base)
    ));
    out.push_str(&format!("  <updated>{updated}</updated>\n"));
    out.push_str("  <author><name>Tocsin</name></author>\n");
    for e in events {
        let ev = &e.event;
        let link = format!("{base}/status/incidents/{}", ev.incident_id);
        let affected: Vec<String> = e
            .services
            .iter()
            .filter(|id| c.services.get(*id).is_some_and(|x| x.public))
            .map(|id| {
                c.services
                    .get(id)
                    .map_or_else(|| id.clone(), |x| x.name.clone())
            })
            .collect();
        let mut text = format!("{}: {}", ev.status.label(), ev.message);
        if !affected.is_empty() {
            text.push_str(&format!("\n\nAffects: {}", affected.join(", ")));
        }
        out.push_str("  <entry>\n");
        out.push_str(&format!("    <id>{}#update-{}</id>\n", xml(&link), ev.id));
        out.push_str(&format!(
            "    <title>{} — {}</title>\n",
            xml(&e.title),
            ev.status.label()
        ));
        out.push_str(&format!(
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            xml(&link)
        ));
        out.push_str(&format!(
            "    <published>{}</published>\n",
            ev.at.to_rfc3339()
        ));
        out.push_str(&format!("    <updated>{}</updated>\n", ev.at.to_rfc3339()));
        out.push_str(&format!(
            "    <content type=\"text\">{}</content>\n",
            xml(&text)
        ));
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

fn colour(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Operational => "#1a7f37",
        ComponentStatus::DegradedPerformance => "#9a6700",
        ComponentStatus::PartialOutage => "#bc4c00",
        ComponentStatus::MajorOutage => "#cf222e",
        ComponentStatus::UnderMaintenance => "#0969da",
    }
}

/// A badge: the service's name and its state, in the state's colour.
pub(crate) fn badge(name: &str, s: ComponentStatus) -> String {
    let state = s.label().to_lowercase();
    // About 7 px a character at 11 px Verdana, plus padding.
    let w = |t: &str| 10 + 7 * t.chars().count();
    let (lw, rw) = (w(name), w(&state));
    let total = lw + rw;
    format!(
        concat!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" role=\"img\" aria-label=\"{label}: {state}\">",
            "<title>{label}: {state}</title>",
            "<rect width=\"{lw}\" height=\"20\" rx=\"3\" fill=\"#555\"/>",
            "<rect x=\"{lw}\" width=\"{rw}\" height=\"20\" rx=\"3\" fill=\"{colour}\"/>",
            "<rect x=\"{lw}\" width=\"4\" height=\"20\" fill=\"{colour}\"/>",
            "<g fill=\"#fff\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\" text-anchor=\"middle\">",
            "<text x=\"{lx}\" y=\"14\">{label}</text><text x=\"{rx}\" y=\"14\">{state}</text></g></svg>"
        ),
        total = total,
        lw = lw,
        rw = rw,
        colour = colour(s),
        label = xml(name),
        state = xml(&state),
        lx = lw / 2,
        rx = lw + rw / 2,
    )
}
