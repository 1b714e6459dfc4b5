//! Charts of Prometheus metrics on the status page: each configured query
//! runs against `status_page.prometheus_url` `/api/v1/query_range` and is
//! drawn as SVG on the server (axes, units, time labels). Each chart is
//! fetched at most once a minute whatever the traffic and however many
//! nodes serve the page: one request of one node fetches (its turn taken in
//! storage, `Store::claim_chart_fetch`), stores the answer for the others,
//! and the rest draw from it; when Prometheus does not answer, the chart
//! says the data is unavailable and the page renders as ever.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::feed::xml;
use crate::state::AppState;

pub use tocsin_app::status::ChartSettings;

/// How long a drawing is served before Prometheus is asked again.
const FRESH: Duration = Duration::from_secs(60);
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// A drawing's size: drawn for the width it is shown at, so that its
/// text is about 12 px on a desktop and on a phone alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Size {
    w: f64,
    h: f64,
    left: f64,
    /// Time labels besides the first.
    ticks: i32,
}

/// For a desktop's column (shown up to 720 px wide).
pub(crate) const WIDE: Size = Size {
    w: 720.0,
    h: 240.0,
    left: 64.0,
    ticks: 4,
};
/// For a phone (`?narrow`, chosen by the page's `<picture>`).
pub(crate) const NARROW: Size = Size {
    w: 360.0,
    h: 220.0,
    left: 60.0,
    ticks: 2,
};
const COLOURS: [&str; 5] = ["#0969da", "#bc4c00", "#1a7f37", "#8250df", "#cf222e"];

/// What Prometheus answered for a chart, and when.
struct Fetched {
    at: Instant,
    series: Result<Vec<Series>, String>,
}

/// The drawings, one slot per chart.
#[derive(Default)]
pub(crate) struct Charts {
    slots: std::sync::Mutex<Vec<Option<std::sync::Arc<Fetched>>>>,
    fetching: tokio::sync::Mutex<()>,
    http: std::sync::OnceLock<Option<reqwest::Client>>,
}

impl Charts {
    fn slot(&self, index: usize) -> Option<std::sync::Arc<Fetched>> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.get(index).cloned().flatten()
    }

    fn store(&self, index: usize, d: Fetched) -> std::sync::Arc<Fetched> {
        let d = std::sync::Arc::new(d);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() <= index {
            slots.resize(index + 1, None);
        }
        slots[index] = Some(d.clone());
        d
    }

    /// Whether the chart's last fetch failed (the page says so).
    pub(crate) fn failed(&self, index: usize) -> bool {
        self.slot(index).is_some_and(|d| d.series.is_err())
    }

    fn client(&self) -> Option<&reqwest::Client> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// The chart as SVG, drawn at `size` from what Prometheus answered in
    /// the last minute (asked again once it is older).
    pub(crate) async fn svg(&self, st: &AppState, index: usize, size: Size) -> String {
        let Some(chart) = st.0.status.charts.get(index) else {
            return unavailable("no such chart", &no_chart(), size);
        };
        let fetched = match self.slot(index).filter(|d| d.at.elapsed() < FRESH) {
            Some(f) => f,
            None => {
                let _one = self.fetching.lock().await;
                match self.slot(index).filter(|d| d.at.elapsed() < FRESH) {
                    Some(f) => f,
                    None => {
                        let fetched = self.shared(st, chart).await;
                        self.store(index, fetched)
                    }
                }
            }
        };
        match &fetched.series {
            Ok(series) => draw(chart, series, st.now(), st.0.status.timezone, size),
            Err(why) => unavailable(why, chart, size),
        }
    }

    /// The chart's answer of the last minute from any node (stored), or a
    /// new one if this node wins the turn to ask Prometheus; every node
    /// together asks at most once a minute a chart.
    async fn shared(&self, st: &AppState, chart: &ChartSettings) -> Fetched {
        let key = chart_key(chart);
        let store = &st.0.store;
        let now = st.now();
        let fresh = TimeDelta::from_std(FRESH).unwrap_or(TimeDelta::minutes(1));
        // Local freshness for an answer that is `age` old.
        let since = |age: TimeDelta| {
            Instant::now()
                .checked_sub(age.to_std().unwrap_or_default())
                .unwrap_or_else(Instant::now)
        };
        let stored = |row: Option<(DateTime<Utc>, String)>| {
            let (at, body) = row.filter(|(_, b)| !b.is_empty())?;
            let series: Result<Vec<Series>, String> = serde_json::from_str(&body).ok()?;
            Some((at, series))
        };
        if let Some((at, series)) = stored(store.chart(&key).await.ok().flatten())
            && now - at < fresh
        {
            return Fetched {
                at: since(now - at),
                series,
            };
        }
        match store.claim_chart_fetch(&key, now, fresh).await {
            Ok(false) => {
                // Another node is asking right now: show what there is, and
                // look again in a few seconds.
                let retry = since(fresh - TimeDelta::seconds(5));
                match stored(store.chart(&key).await.ok().flatten()) {
                    Some((_, series)) => Fetched { at: retry, series },
                    None => Fetched {
                        at: retry,
                        series: Err("the data is being fetched; reload in a moment".into()),
                    },
                }
            }
            // Our turn (or storage is down: ask anyway, the page must work).
            claimed => {
                if let Err(e) = &claimed {
                    tracing::warn!(error = %e, "status page chart: storage did not answer; asking Prometheus anyway");
                }
                let series = self.fetch(st, chart, now).await;
                if let Err(why) = &series {
                    tracing::warn!(chart = %chart.title, error = %why, "status page chart: Prometheus did not answer");
                }
                if claimed.is_ok()
                    && let Ok(body) = serde_json::to_string(&series)
                    && let Err(e) = store.store_chart(&key, &body).await
                {
                    tracing::warn!(error = %e, "status page chart: could not share the answer with other nodes");
                }
                Fetched {
                    at: Instant::now(),
                    series,
                }
            }
        }
    }

    async fn fetch(
        &self,
        st: &AppState,
        c: &ChartSettings,
        now: DateTime<Utc>,
    ) -> Result<Vec<Series>, String> {
        let base =
            st.0.status
                .prometheus_url
                .as_deref()
                .ok_or("status_page.prometheus_url is not set")?;
        let http = self.client().ok_or("the HTTP client could not be set up")?;
        let start = now - c.range;
        let query = serde_urlencoded::to_string([
            ("query", c.query.clone()),
            (
                "start",
                format!("{:.3}", start.timestamp_millis() as f64 / 1000.0),
            ),
            (
                "end",
                format!("{:.3}", now.timestamp_millis() as f64 / 1000.0),
            ),
            ("step", format!("{}", super::seconds(c.step))),
        ])
        .map_err(|e| format!("cannot encode the query: {e}"))?;
        let res = http
            .get(format!(
                "{}/api/v1/query_range?{query}",
                base.trim_end_matches('/')
            ))
            .send()
            .await
            .map_err(|e| format!("cannot reach Prometheus: {}", e.without_url()))?;
        let status = res.status();
        let body: Answer = res.json().await.map_err(|e| {
            format!("Prometheus answered {status} with something else than its JSON: {e}")
        })?;
        if body.status != "success" {
            return Err(format!(
                "Prometheus refused the query: {}",
                body.error.unwrap_or_default()
            ));
        }
        let data = body.data.ok_or("Prometheus sent no data")?;
        Ok(data
            .result
            .into_iter()
            .take(COLOURS.len())
            .map(|r| Series {
                name: r
                    .metric
                    .iter()
                    .filter(|(k, _)| k.as_str() != "__name__")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                points: r
                    .values
                    .into_iter()
                    .filter_map(|(t, v)| {
                        Some((t, v.parse::<f64>().ok().filter(|v| v.is_finite())?))
                    })
                    .collect(),
            })
            .collect())
    }
}

/// A chart's name in shared storage: its query, range and step (a changed
/// chart is fetched anew).
fn chart_key(c: &ChartSettings) -> String {
    use sha2::Digest;
    let text = format!(
        "{}\n{}\n{}",
        c.query,
        c.range.num_seconds(),
        c.step.num_milliseconds()
    );
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..16])
}

fn no_chart() -> ChartSettings {
    ChartSettings {
        service: String::new(),
        title: String::new(),
        query: String::new(),
        unit: None,
        range: TimeDelta::hours(24),
        step: TimeDelta::minutes(5),
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    error: Option<String>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(default)]
    metric: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

#[derive(serde::Serialize, Deserialize)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// A round step for about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A value with its unit, short: `1.5k req/s`, `250 ms`, `0.42 s`.
fn label(v: f64, unit: &str) -> String {
    let (v, prefix) = if v.abs() >= 1e9 {
        (v / 1e9, "G")
    } else if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let n = if v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    match (prefix, unit) {
        ("", "") => n,
        (p, "") => format!("{n}{p}"),
        (p, u) => format!("{n}{p} {u}"),
    }
}

fn head(c: &ChartSettings, z: Size) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{t}\" font-family=\"system-ui, sans-serif\" font-size=\"12\"><title>{t}</title><rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>",
        t = xml(&c.title),
        w = z.w,
        h = z.h
    )
}

/// The drawing of a chart whose data could not be had.
fn unavailable(why: &str, c: &ChartSettings, z: Size) -> String {
    format!(
        "{}<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"16\" fill=\"#57606a\">Data unavailable</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#57606a\">{}</text></svg>",
        head(c, z),
        z.w / 2.0,
        z.h / 2.0 - 6.0,
        z.w / 2.0,
        z.h / 2.0 + 16.0,
        xml(&why
            .chars()
            .take(if z.w < 500.0 { 50 } else { 90 })
            .collect::<String>())
    )
}

fn draw(
    c: &ChartSettings,
    series: &[Series],
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
    z: Size,
) -> String {
    let unit = c.unit.as_deref().unwrap_or("");
    let end = now.timestamp_millis() as f64 / 1000.0;
    let start = end - super::seconds(c.range);
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    if all.is_empty() {
        let mut out = head(c, z);
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"15\" fill=\"#57606a\">No data in this period</text></svg>",
            z.w / 2.0,
            z.h / 2.0
        ));
        return out;
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).min(0.0);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let step = nice_step((hi - lo).max(f64::EPSILON * 10.0).max(hi.abs() * 1e-6), 4.0);
    let top = ((hi / step).ceil() * step).max(lo + step);
    let (pw, ph) = (z.w - z.left - RIGHT, z.h - TOP - BOTTOM);
    let x = |t: f64| z.left + (t - start) / (end - start) * pw;
    let y = |v: f64| TOP + (1.0 - (v - lo) / (top - lo)) * ph;
    let mut out = head(c, z);
    // Horizontal grid with value labels.
    let mut v = lo;
    while v <= top + step / 2.0 {
        out.push_str(&format!(
            "<line x1=\"{}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#d0d7de\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">{}</text>",
            z.left,
            z.w - RIGHT,
            z.left - 6.0,
            y(v) + 4.0,
            xml(&label(v, unit)),
            y = y(v)
        ));
        v += step;
    }
    // Time labels: 5 ticks, dates when the range is longer than two days.
    let long = c.range > TimeDelta::days(2);
    for i in 0..=z.ticks {
        let t = start + (end - start) * f64::from(i) / f64::from(z.ticks);
        let when = DateTime::<Utc>::from_timestamp_millis((t * 1000.0) as i64)
            .unwrap_or(now)
            .with_timezone(&tz);
        let text = if long {
            when.format("%-d %b").to_string()
        } else {
            when.format("%H:%M").to_string()
        };
        let anchor = match i {
            0 => "start",
            i if i == z.ticks => "end",
            _ => "middle",
        };
        out.push_str(&format!(
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#8c959f\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"#57606a\">{}</text>",
            z.h - BOTTOM,
            z.h - BOTTOM + 4.0,
            z.h - 10.0,
            xml(&text),
            x = x(t)
        ));
    }
    out.push_str(&format!(
        "<line x1=\"{}\" x2=\"{}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#8c959f\"/>",
        z.left,
        z.left,
        z.h - BOTTOM
    ));
    for (s, colour) in series.iter().zip(COLOURS) {
        // A gap in the data (a missing step) breaks the line.
        let gap = super::seconds(c.step) * 1.5;
        let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
        for p in &s.points {
            match runs.last_mut() {
                Some(r) if r.last().is_some_and(|l| p.0 - l.0 <= gap) => r.push(*p),
                _ => runs.push(vec![*p]),
            }
        }
        for r in runs {
            let pts: Vec<String> = r
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            out.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
                pts.join(" "),
                xml(&s.name)
            ));
        }
    }
    if series.len() > 1 {
        for (i, (s, colour)) in series.iter().zip(COLOURS).enumerate() {
            out.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"3\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\" fill=\"#1f2328\">{}</text>",
                z.left + 8.0,
                TOP + 6.0 + 14.0 * i as f64,
                z.left + 22.0,
                TOP + 10.0 + 14.0 * i as f64,
                xml(&s.name.chars().take(60).collect::<String>())
            ));
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_steps_are_round() {
        assert_eq!(nice_step(100.0, 4.0), 50.0);
        assert_eq!(nice_step(0.9, 4.0), 0.5);
        assert_eq!(label(1500.0, "req/s"), "1.50k req/s");
        assert_eq!(label(250.0, "ms"), "250 ms");
        assert_eq!(label(0.42, "s"), "0.42 s");
        assert_eq!(label(3.0, ""), "3");
    }

    #[test]
    fn a_chart_has_axes_time_labels_and_a_line() {
        let c = ChartSettings {
            service: "checkout".into(),
            title: "Requests <per second>".into(),
            query: "x".into(),
            unit: Some("req/s".into()),
            range: TimeDelta::hours(1),
            step: TimeDelta::minutes(1),
        };
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let end = now.timestamp() as f64;
        let s = Series {
            name: "job=tocsin".into(),
            points: (0..=60)
                .map(|i| (end - 3600.0 + 60.0 * f64::from(i), f64::from(i)))
                .collect(),
        };
        let svg = draw(&c, &[s], now, chrono_tz::UTC, WIDE);
        assert!(svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("req/s"));
        assert!(svg.contains("&lt;per second&gt;"), "the title is escaped");
        let ticks = svg.matches("text-anchor=\"middle\" fill").count() + 2;
        assert_eq!(ticks, 5, "five time labels");
        assert!(unavailable("refused", &c, WIDE).contains("Data unavailable"));
        let narrow = draw(&c, &[], now, chrono_tz::UTC, NARROW);
        assert!(narrow.contains("viewBox=\"0 0 360 220\""), "{narrow}");
    }
}
