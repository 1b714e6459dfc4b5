#!/usr/bin/env python3
"""The status page under the load an outage brings.

Runs a release `tocsin serve` on SQLite with a public service that has an
open incident, a public maintenance window ahead and a subscriber, then,
with wrk over loopback for DURATION each:

  1. Alertmanager ingest alone (bench/alertmanager.lua, CONNS connections);
  2. `/status.json` and `/status` alone (STATUS_CONNS connections);
  3. both at once: ingest and `/status.json` (every response a 200);
  4. both at once: ingest and `/status.json` with `If-None-Match` (304s);
  5. both at once: ingest and `/status` (HTML).

and reports requests/s, latency and errors of each. The machine's 2 cores
are shared by wrk and Tocsin: compare within one run.

    python3 bench/status.py
    DURATION=20s CONNS=16 STATUS_CONNS=32 python3 bench/status.py
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from common import ROOT, build_release, free_port

DURATION = os.environ.get("DURATION", "10s")
# JOIN=1: the ingested alerts are Checkout's, at or above its
# auto_incident_from, so every batch joins the open incident and moves the
# status page's version (the snapshot is rebuilt all the time). JOIN=0:
# they belong to a service that is not on the page.
JOIN = os.environ.get("JOIN", "1") == "1"
CONNS = int(os.environ.get("CONNS", "16"))
STATUS_CONNS = int(os.environ.get("STATUS_CONNS", "32"))
KEY = "status-bench-key-0123456789abcdef"
TOKEN = "status-bench-token-0123456789abcd"

CONFIG = """
server: {{listen: 127.0.0.1:{port}}}
database: {{url: "sqlite://{dir}/t.db"}}
notifications: {{bundle_window: 10s}}
api_tokens: [{{name: bench, token: {token}, role: admin}}]
users:
  - {{id: alice, contacts: [{{id: hook, type: webhook, url: "http://127.0.0.1:9/hook"}}], notify: {{high: [{{contact: hook, after: 0m}}]}}}}
escalation_policies:
  - {{id: p, levels: [{{notify: ["user:alice"], escalate_after: 1h}}]}}
services:
  - {{id: checkout, name: Checkout, public: true, auto_incident_from: {auto}}}
  - {{id: search, name: Search, public: true}}
  - {{id: billing, name: Billing}}
sources:
  - {{id: am, type: prometheus, key: {key}, escalation_policy: p, service: {ingest_service}}}
status_page: {{title: Bench status}}
"""


def api(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]}")
    return json.loads(data) if data else None


def wrk(url, conns, script=None, headers=(), env=None):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{DURATION}", "--latency", "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def parse(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def lat(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return float("nan")
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": lat(50), "p99": lat(99), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else ""}


def run(jobs):
    procs = [(name, wrk(*args, **kw)) for name, args, kw in jobs]
    return {name: parse(p.communicate()[0]) for name, p in procs}


def main():
    if not shutil.which("wrk"):
        sys.exit("bench/status.py: wrk is missing; apt-get install wrk")
    binary = build_release()
    work = tempfile.mkdtemp(prefix="tocsin-status-bench-")
    port = free_port()
    with open(f"{work}/tocsin.yaml", "w") as f:
        f.write(CONFIG.format(port=port, dir=work, key=KEY, token=TOKEN, auto="SEV4" if JOIN else "SEV1",
                              ingest_service="checkout" if JOIN else "billing"))
    log = open(f"{work}/log", "w")
    proc = subprocess.Popen([binary, "serve", "--config", f"{work}/tocsin.yaml"], stdout=log, stderr=log)
    try:
        for _ in range(300):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        inc = api(port, "POST", "/api/v1/incidents", {
            "title": "Checkout errors", "severity": "SEV1", "public": True,
            "services": [{"id": "checkout", "impact": "partial_outage"}], "message": "We see errors at checkout."})
        for i in range(5):
            api(port, "POST", f"/api/v1/incidents/{inc['id']}/updates",
                {"message": f"Update {i}: still working on it.", "public": True})
        api(port, "POST", "/api/v1/maintenance", {"service": "search", "duration": "2h", "public": True,
                                                   "title": "Search index rebuild",
                                                   "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))})
        base = f"http://127.0.0.1:{port}"
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/status.json")
        r = c.getresponse()
        r.read()
        etag = r.getheader("etag")
        ingest = (f"{base}/api/v1/events/prometheus/{KEY}", CONNS)
        ing_kw = {"script": "bench/alertmanager.lua"}
        results = {}
        results["ingest alone"] = run([("i", ingest, ing_kw)])["i"]
        results["/status.json alone"] = run([("s", (f"{base}/status.json", STATUS_CONNS), {})])["s"]
        results["/status alone"] = run([("s", (f"{base}/status", STATUS_CONNS), {})])["s"]
        for name, path, headers in [("/status.json", "/status.json", ()),
                                    ("/status.json 304", "/status.json", (f"If-None-Match: {etag}",)),
                                    ("/status", "/status", ())]:
            r = run([("i", ingest, ing_kw), ("s", (f"{base}{path}", STATUS_CONNS), {"headers": headers})])
            results[f"{name} during ingest"] = r["s"]
            results[f"ingest during {name}"] = r["i"]
        inc_now = api(port, "GET", f"/api/v1/incidents/{inc['id']}")
        print(f"Status page benchmark, {DURATION} a point, wrk over loopback, ingest at {CONNS} connections, "
              f"status at {STATUS_CONNS}; 2 cores shared by wrk and Tocsin. JOIN={int(JOIN)}: "
              f"{len(inc_now['alert_ids'])} alerts joined the open incident.\n")
        print("| load | requests/s | p50 ms | p99 ms | non-2xx/3xx | socket errors |")
        print("|---|---:|---:|---:|---:|---|")
        for name, r in results.items():
            print(f"| {name} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['non2xx']} | {r['errors'] or '-'} |")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
