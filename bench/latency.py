#!/usr/bin/env python3
"""Page latency: webhook received -> first notification handed to the provider.

Runs a release `tocsin serve` on SQLite whose one user is paged by webhook at
a local sink (in this process), posts unique Alertmanager webhooks (HIGH
priority) at a steady rate, and reports, per alert, the time from sending the
webhook to the sink receiving the notification. Loopback only; bounded in
count and time; stops by itself.

    python3 bench/latency.py                 # 100 webhooks/s for 30 s
    RATE=50 SECONDS=10 python3 bench/latency.py
    BUNDLE=10s python3 bench/latency.py      # with bundling (one user!)

Bundling is off by default here (`bundle_window: 0s`): with it on, every
alert but the first in each window waits for the window to end, by design,
because all of them page the same person. BUNDLE=10s shows that side: how
many messages the one responder got for the whole storm.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import build_release, firing, free_port, summaries, webhook
from common import covered as covered_by

RATE = int(os.environ.get("RATE", "100"))
SECONDS = int(os.environ.get("SECONDS", "30"))
BUNDLE = os.environ.get("BUNDLE", "0s")
KEY = "latency-bench-key-0123456789abcdef"

sent = {}
received = {}
messages = [0]
covered = [0]  # alerts the messages were about, listed or only counted
lock = threading.Lock()


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.monotonic()
        try:
            doc = json.loads(body)
            names = summaries(doc)
            with lock:
                messages[0] += 1
                covered[0] += covered_by(doc)
                for summary in names:
                    received.setdefault(summary, now)
        except (ValueError, KeyError, TypeError):
            pass
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def body(i):
    labels = {"alertname": "LatencyProbe", "probe": str(i), "severity": "critical"}
    annotations = {"summary": f"lat-{i}"}
    return webhook("probe", str(i), [firing(labels, annotations, f"{i:016x}")], labels, annotations)


def main():
    tocsin = build_release()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}/hook"
    port = free_port()
    work = tempfile.mkdtemp(prefix="tocsin-latency-")
    cfg = os.path.join(work, "tocsin.yaml")
    with open(cfg, "w") as f:
        f.write(f"""
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "sqlite://{work}/t.db"}}
notifications: {{bundle_window: {BUNDLE}}}
users:
  - {{id: u, contacts: [{{id: hook, type: webhook, url: "{sink_url}"}}], notify: {{high: [{{contact: hook, after: 0m}}]}}}}
escalation_policies: [{{id: p, levels: [{{notify: ["user:u"], escalate_after: 1h}}]}}]
sources: [{{id: bench, type: prometheus, escalation_policy: p, key: {KEY}}}]
""")
    server = subprocess.Popen([tocsin, "serve", "--config", cfg],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TOCSIN_LOG": "warn"})
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        ingest = []

        def post(i):
            req = urllib.request.Request(f"{url}/api/v1/events/prometheus/{KEY}", data=body(i),
                                         headers={"Content-Type": "application/json"})
            t0 = time.monotonic()
            with lock:
                sent[f"lat-{i}"] = t0
            urllib.request.urlopen(req, timeout=10).read()
            ingest.append(time.monotonic() - t0)

        total = RATE * SECONDS
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            for i in range(total):
                # Steady rate: request i leaves at start + i / RATE.
                delay = start + i / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(post, i)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if len(received) >= total:
                    break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=15)
        sink.shutdown()

    lat = sorted((received[k] - sent[k]) * 1000 for k in received if k in sent)
    q = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")
    ing = sorted(x * 1000 for x in ingest)
    qi = lambda p: ing[min(len(ing) - 1, int(p / 100 * len(ing)))] if ing else float("nan")
    print(f"Page latency, {RATE} webhooks/s for {SECONDS} s (SQLite, webhook channel to a local sink, bundle_window {BUNDLE}):\n")
    print("| measure | n | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| webhook -> first notification | {len(lat)} | {q(50):.1f} | {q(90):.1f} | {q(99):.1f} | {lat[-1] if lat else float('nan'):.1f} |")
    print(f"| webhook -> 202 | {len(ing)} | {qi(50):.1f} | {qi(90):.1f} | {qi(99):.1f} | {ing[-1] if ing else float('nan'):.1f} |")
    # A bundle lists ten alerts and counts the rest: those are covered, but
    # have no latency of their own.
    missing = total - max(len(lat), covered[0])
    print(f"\nsent {total}, notified {len(lat)} by name and {covered[0]} in all, missing {missing}, in {messages[0]} messages")
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
