//! Helpers for end-to-end tests: real processes (tocsin, Prometheus,
//! Alertmanager, PostgreSQL) on loopback, each killed by pid when dropped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process that is killed (by pid) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Start with stdout and stderr both in `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap();
        Self::spawn_split(name, cmd, out, log)
    }

    /// Start with stdout to `stdout` and stderr to `log`.
    pub fn spawn_split(name: &str, cmd: &mut Command, stdout: std::fs::File, log: &Path) -> Proc {
        let out = stdout;
        let err = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for the exit (SIGKILL after 15 s).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// An HTTP client for tests. The binary's reqwest features (rustls without
/// a built-in provider) apply here too, so install ring first.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `f` every 200 ms until it returns Some, or panic after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET base + path` with a bearer token, as JSON; retried for up to 10 s
/// while the server answers an error or is not up (e.g. right after a
/// restart).
pub async fn api_get(base: &str, token: &str, path: &str) -> serde_json::Value {
    let client = http();
    wait_for(path, Duration::from_secs(10), || {
        let client = client.clone();
        async move {
            let res = client
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .ok()?;
            if !res.status().is_success() {
                eprintln!("GET {path}: {}", res.status());
                return None;
            }
            res.json().await.ok()
        }
    })
    .await
}

pub async fn wait_http_ok(url: &str, timeout: Duration) {
    let client = http();
    wait_for(url, timeout, || {
        let client = client.clone();
        async move {
            match client.get(url).send().await {
                Ok(r) if r.status().is_success() => Some(()),
                _ => None,
            }
        }
    })
    .await
}

pub fn require_binary(path: &str, package: &str) -> String {
    assert!(
        Path::new(path).exists(),
        "{path} not found: install the Debian package {package} (scripts/test installs it)"
    );
    path.to_owned()
}

/// A PostgreSQL server of the test's own (scripts/pg-start / pg-stop).
pub struct Postgres {
    pub dir: PathBuf,
    pub port: u16,
    pub url: String,
}

impl Postgres {
    pub fn start(dir: &Path) -> Postgres {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-start");
        let out = Command::new("bash")
            .arg(script)
            .arg(dir)
            .arg(port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg-start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Postgres {
            dir: dir.to_owned(),
            port,
            url,
        }
    }

    pub fn stop(&self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-stop");
        let _ = Command::new("bash").arg(script).arg(&self.dir).status();
    }

    /// Start the stopped server again on the same port and data directory.
    pub fn restart(&self) {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .max()
            .unwrap();
        let pg_ctl = bin.join("pg_ctl");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        // As root, PostgreSQL must run as the postgres user.
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            Command::new(&pg_ctl)
        };
        let status = cmd
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .status();
        assert!(status.unwrap().success(), "restarting PostgreSQL failed");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// POST a fixture body from fixtures/alertmanager to a source's webhook URL;
/// the id of the first alert in the answer.
pub async fn post_fixture(base: &str, key: &str, fixture: &str) -> i64 {
    let res: serde_json::Value = send_fixture(base, key, fixture).await.json().await.unwrap();
    res["alerts"][0]["id"].as_i64().unwrap()
}

/// POST a fixture body to a source's webhook URL; the response as it came.
pub async fn send_fixture(base: &str, key: &str, fixture: &str) -> reqwest::Response {
    let path = format!(
        "{}/../../fixtures/alertmanager/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&path).unwrap();
    http()
        .post(format!("{base}/api/v1/events/prometheus/{key}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// `tocsin serve --config CFG` with the banner in `dir/out{run}` and the log
/// in `dir/err{run}`.
pub fn serve(dir: &Path, cfg: &Path, run: usize) -> Proc {
    let out = std::fs::File::create(dir.join(format!("out{run}"))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tocsin"));
    cmd.args(["serve", "--config"]).arg(cfg);
    Proc::spawn_split("tocsin", &mut cmd, out, &dir.join(format!("err{run}")))
}

/// The value of `harness_condition{node=…}` per node, as the scrape target
/// serves it.
pub type Series = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, f64>>>;

/// A scrape target serving `harness_condition{node="…",service="checkout"}`.
async fn start_target(series: Series) -> u16 {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let series = series.clone();
            async move {
                let mut out = String::from("# TYPE harness_condition gauge\n");
                for (node, v) in series.lock().unwrap().iter() {
                    out.push_str(&format!(
                        "harness_condition{{node=\"{node}\",service=\"checkout\"}} {v}\n"
                    ));
                }
                out
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// The real Prometheus (Debian `prometheus`) scraping a test target, with a
/// rule `HarnessDown` that fires while `harness_condition > 0`, and the real
/// Alertmanager (Debian `prometheus-alertmanager`) sending to `receivers`
/// (the YAML of its `receivers:` list, with one named `tocsin`).
pub struct Monitoring {
    pub prometheus: Proc,
    pub alertmanager: Proc,
    pub series: Series,
    pub am_port: u16,
    dir: PathBuf,
}

impl Monitoring {
    pub async fn start(dir: &Path, receivers: &str) -> Monitoring {
        Self::start_with(dir, "", receivers, "").await
    }

    /// Like [`Monitoring::start`], with sub-`routes` (YAML list items under
    /// `route.routes`) and `extra_rules` (YAML list items in the rule group).
    pub async fn start_with(
        dir: &Path,
        routes: &str,
        receivers: &str,
        extra_rules: &str,
    ) -> Monitoring {
        let prometheus_bin = require_binary("/usr/bin/prometheus", "prometheus");
        let am_bin = require_binary(
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
        );
        let series: Series = Default::default();
        let target_port = start_target(series.clone()).await;
        let (prom_port, am_port) = (free_port(), free_port());
        std::fs::write(
            dir.join("alertmanager.yml"),
            format!(
                r#"
route:
  receiver: tocsin
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 4s
  routes:
    - matchers: ['alertname = "none"']
      receiver: tocsin
{routes}
receivers:
{receivers}
"#
            ),
        )
        .unwrap();
        let alertmanager = spawn_alertmanager(&am_bin, dir, am_port, 0).await;

        std::fs::write(
            dir.join("rules.yml"),
            format!(
                r#"
groups:
  - name: harness
    rules:
      - alert: HarnessDown
        expr: harness_condition > 0
        labels:
          severity: critical
          service_id: checkout
          url: http://dashboards.example.test/d/harness
          urlLabel: Harness dashboard
        annotations:
          summary: 'harness down on {{{{ $labels.node }}}}'
          description: 'harness_condition is {{{{ $value }}}} on {{{{ $labels.node }}}}'
          runbook_url: http://runbooks.example.test/harness
{extra_rules}
"#
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                r#"
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{rules}"]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]}}]
scrape_configs:
  - job_name: harness
    static_configs: [{{targets: ["127.0.0.1:{target_port}"]}}]
"#,
                rules = dir.join("rules.yml").display()
            ),
        )
        .unwrap();
        let prometheus = Proc::spawn(
            "prometheus",
            Command::new(prometheus_bin)
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("prom-data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
                .arg("--rules.alert.resend-delay=1s"),
            &dir.join("prometheus.log"),
        );
        wait_http_ok(
            &format!("http://127.0.0.1:{prom_port}/-/ready"),
            Duration::from_secs(30),
        )
        .await;
        Monitoring {
            prometheus,
            alertmanager,
            series,
            am_port,
            dir: dir.to_owned(),
        }
    }

    /// Stop Alertmanager (SIGTERM, then wait).
    pub fn stop_alertmanager(&mut self) {
        self.alertmanager.terminate();
    }

    /// Start Alertmanager again with the same configuration and storage.
    pub async fn start_alertmanager(&mut self) {
        let am_bin = require_binary(
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
        );
        self.alertmanager = spawn_alertmanager(&am_bin, &self.dir, self.am_port, 1).await;
    }

    /// Set `harness_condition` of `node` (above 0 fires the rule).
    pub fn set(&self, node: &str, v: f64) {
        self.series.lock().unwrap().insert(node.to_owned(), v);
    }
}

async fn spawn_alertmanager(bin: &str, dir: &Path, port: u16, run: usize) -> Proc {
    let p = Proc::spawn(
        "alertmanager",
        Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=info"),
        &dir.join(format!("alertmanager-{run}.log")),
    );
    wait_http_ok(
        &format!("http://127.0.0.1:{port}/-/ready"),
        Duration::from_secs(30),
    )
    .await;
    p
}

/// A real SMTP server (aiosmtpd from PyPI; scripts/test installs it) that
/// stores every message in `dir/maildir`.
pub fn smtp_server(dir: &Path, port: u16) -> Proc {
    let maildir = dir.join("maildir");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "aiosmtpd",
        "-n",
        "-l",
        &format!("127.0.0.1:{port}"),
        "-c",
        "aiosmtpd.handlers.Mailbox",
    ])
    .arg(&maildir);
    Proc::spawn("aiosmtpd", &mut cmd, &dir.join("smtp.log"))
}

/// Every message the SMTP server of `dir` has stored, oldest first.
pub fn delivered(dir: &Path) -> Vec<String> {
    let new = dir.join("maildir").join("new");
    let mut files: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(new)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let at = e.metadata().and_then(|m| m.modified()).ok()?;
                    Some((at, std::fs::read_to_string(e.path()).ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort_by_key(|(at, _)| *at);
    files.into_iter().map(|(_, m)| m).collect()
}

/// The body of a stored message, undoing quoted-printable if it was used.
pub fn decode_body(mail: &str) -> String {
    let (head, body) = mail
        .split_once("\n\n")
        .or_else(|| mail.split_once("\r\n\r\n"))
        .unwrap_or((mail, ""));
    if !head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable")
    {
        return body.replace("\r\n", "\n");
    }
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) if bytes[i] == b'=' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// A line of a message's body starting with `prefix` (e.g. `Accept: `),
/// without the prefix.
pub fn body_line(mail: &str, prefix: &str) -> Option<String> {
    decode_body(mail)
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|l| l.trim().to_owned())
}

/// A scratch directory directly under /tmp, so that the postgres user can
/// reach it too.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tocsin-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An Alertmanager webhook (v4) body of one group `group` with `n` alerts
/// (`node` labels `n0`…, fingerprints unique to the group), all `status`
/// (`firing` or `resolved`), as Alertmanager 0.25 sends it.
pub fn alertmanager_body(group: &str, n: usize, status: &str) -> String {
    let ends = if status == "firing" {
        "0001-01-01T00:00:00Z"
    } else {
        "2026-11-21T06:00:00Z"
    };
    let alerts: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "status": status,
                "labels": {"alertname": group, "node": format!("n{i}"), "severity": "critical"},
                "annotations": {"summary": format!("{group} on n{i}")},
                "startsAt": "2026-11-21T05:00:00Z",
                "endsAt": ends,
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": format!("{:016x}", fingerprint(group, i)),
            })
        })
        .collect();
    serde_json::json!({
        "receiver": "tocsin",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": group},
        "commonLabels": {"alertname": group, "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{group}\"}}"),
        "truncatedAlerts": 0,
    })
    .to_string()
}

fn fingerprint(group: &str, i: usize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (group, i).hash(&mut h);
    h.finish()
}

/// POST an Alertmanager body to a source's webhook; asserts 202 and returns
/// the ids of the alerts the answer names, in order.
pub async fn post_alerts(base: &str, key: &str, body: String) -> Vec<i64> {
    let res = http()
        .post(format!("{base}/api/v1/events/prometheus/{key}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    res.json::<serde_json::Value>().await.unwrap()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}
