#!/usr/bin/env python3
"""Web UI page latency with many alerts stored.

Runs a release `tocsin serve` on SQLite (and, with DBS="sqlite postgres",
on a throwaway PostgreSQL too), stores ALERTS alerts through the
Alertmanager webhook (100 alerts a request, one Tocsin alert each), signs
in through the sign-in form, then fetches every main page REPEAT times in a
row over one keep-alive connection and reports, per page, the median, p95
and worst time to the last byte. `/healthz` (no storage, no template) is
measured the same way in the same run: the floor of this machine's HTTP
path. Loopback only; stops what it started.

    python3 bench/pages.py                       # 10,000 alerts, SQLite
    ALERTS=50000 REPEAT=50 python3 bench/pages.py
    DBS="sqlite postgres" python3 bench/pages.py
"""
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from common import ROOT, build_release, firing, free_port, webhook

ALERTS = int(os.environ.get("ALERTS", "10000"))
REPEAT = int(os.environ.get("REPEAT", "30"))
DBS = os.environ.get("DBS", "sqlite").split()
KEY = "pages-bench-key-0123456789abcdef0"
PASSWORD = "correct horse battery"

CONFIG = """
server: {{listen: 127.0.0.1:{port}}}
database: {{url: "{db}"}}
notifications: {{bundle_window: 0s}}
teams: [{{id: sre, name: SRE}}]
users:
  - {{id: alice, name: Alice, email: alice@example.com, role: admin, teams: [sre], timezone: Europe/Berlin}}
  - {{id: bob, name: Bob, email: bob@example.com, teams: [sre]}}
escalation_policies:
  - {{id: sre-pager, team: sre, levels: [{{notify: ["schedule:sre-rota"], escalate_after: 5m}}]}}
services: [{{id: checkout, name: Checkout, team: sre, escalation_policy: sre-pager}}]
sources:
  - {{id: prometheus, type: prometheus, grouping: alert, team: sre, key: {key}, escalation_policy: sre-pager, service: checkout}}
schedules:
  - id: sre-rota
    name: SRE rota
    team: sre
    timezone: Europe/Berlin
    layers:
      - {{name: Weekly, users: [alice, bob], rotation: 1w, handoff: "2026-11-30T09:00"}}
      - {{name: Nights, users: [bob, alice], rotation: 1d, handoff: "2026-11-30T20:00", restrict: [{{from: "20:00", to: "08:00"}}]}}
"""


def wait_ready(port, proc):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"tocsin exited early ({proc.returncode})")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("tocsin did not become ready")


def load(port, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.monotonic()
    for start in range(0, n, 100):
        alerts = [
            firing({"alertname": f"Check{i % 50}", "instance": f"host-{i}", "severity": ["critical", "warning", "info"][i % 3]},
                   {"summary": f"Check {i % 50} failing on host-{i}"}, f"fp{i:08d}")
            for i in range(start, min(n, start + 100))
        ]
        c.request("POST", f"/api/v1/events/prometheus/{KEY}", body=webhook("batch", str(start), alerts),
                  headers={"content-type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 202:
            sys.exit(f"webhook: {r.status}")
    return time.monotonic() - t0


def sign_in(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/login")
    r = c.getresponse()
    body = r.read().decode()
    login_cookie = r.getheader("set-cookie").split(";")[0]
    csrf = re.search(r'name="_csrf" value="([^"]+)"', body).group(1)
    form = urllib.parse.urlencode({"_csrf": csrf, "login": "alice", "password": PASSWORD, "next": "/alerts"})
    c.request("POST", "/login", body=form, headers={
        "content-type": "application/x-www-form-urlencoded", "cookie": login_cookie,
        "origin": f"http://127.0.0.1:{port}"})
    r = c.getresponse()
    r.read()
    if r.status != 303:
        sys.exit(f"sign-in: {r.status}")
    return r.getheader("set-cookie").split(";")[0]


def measure(port, cookie, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    size = 0
    for i in range(REPEAT + 2):
        t0 = time.perf_counter()
        c.request("GET", path, headers={"cookie": cookie})
        r = c.getresponse()
        body = r.read()
        dt = (time.perf_counter() - t0) * 1000
        if r.status != 200:
            sys.exit(f"GET {path}: {r.status} {body[:200]!r}")
        if i >= 2:  # the first two warm caches
            times.append(dt)
        size = len(body)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], times[-1], size


def run(binary, backend, work, pg_url):
    port = free_port()
    db = f"sqlite://{work}/pages.db" if backend == "sqlite" else pg_url
    cfg = os.path.join(work, f"{backend}.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(port=port, db=db, key=KEY))
    log = open(os.path.join(work, f"{backend}.log"), "w")
    proc = subprocess.Popen([binary, "serve", "--config", cfg], stdout=log, stderr=log,
                            env={**os.environ, "RUST_LOG": "warn"})
    try:
        wait_ready(port, proc)
        subprocess.run([binary, "users", "set-password", "alice", "--config", cfg], input=PASSWORD + "\n",
                       text=True, check=True, stdout=subprocess.DEVNULL)
        took = load(port, ALERTS)
        cookie = sign_in(port)
        print(f"\n### {backend}: {ALERTS} alerts stored ({took:.1f} s to load), {REPEAT} requests a page\n")
        print("| page | median ms | p95 ms | worst ms | bytes |")
        print("|---|---:|---:|---:|---:|")
        pages = ["/healthz", "/alerts", "/alerts?status=pending", "/alerts?severity=SEV0&source=prometheus",
                 "/alerts?label=alertname%3DCheck7", f"/alerts/{ALERTS // 2}", "/oncall", "/schedules",
                 "/schedules/sre-rota", "/profile", "/sources", "/catalog/sources/prometheus", "/maintenance",
                 "/admin", "/admin/audit", "/admin/deliveries", "/admin/catalog"]
        for p in pages:
            med, p95, worst, size = measure(port, cookie, p)
            print(f"| `{p}` | {med:.1f} | {p95:.1f} | {worst:.1f} | {size} |")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main():
    binary = build_release()
    work = tempfile.mkdtemp(prefix="tocsin-pages-")
    os.chmod(work, 0o755)  # PostgreSQL runs as its own user
    pg_dir = None
    pg_url = None
    try:
        if "postgres" in DBS:
            pg_dir = os.path.join(work, "pg")
            pg_url = subprocess.run([os.path.join(ROOT, "scripts", "pg-start"), pg_dir, str(free_port())],
                                    check=True, capture_output=True, text=True).stdout.strip()
        for backend in DBS:
            run(binary, backend, work, pg_url)
    finally:
        if pg_dir:
            subprocess.run([os.path.join(ROOT, "scripts", "pg-stop"), pg_dir], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
