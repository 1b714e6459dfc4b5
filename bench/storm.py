#!/usr/bin/env python3
"""Alert storm: one team gets 100,000 alerts in bursts while other people are
paged now and then. Measures what SPEC §10 promises of storms:

- nothing lost, nobody paged twice: every storm alert is stored, and the
  storm's one responder is told about each exactly once (the messages'
  alert counts add up to the storm);
- one responder gets a handful of messages a minute (bundling);
- another person's page still meets the page-latency bar while the storm is
  being delivered (webhook -> notification of bystanders, p99 < 500 ms);
- memory stays under 300 MB (peak RSS of `tocsin serve`);
- how long after the storm's last burst the backlog is settled.

Runs a release `tocsin serve` on SQLite (or PostgreSQL: DATABASE_URL=...),
with webhook sinks in this process. Loopback only; bounded in count and
time; stops by itself.

    python3 bench/storm.py                      # 100,000 alerts, 10 bursts
    ALERTS=20000 BURSTS=4 python3 bench/storm.py
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

from common import build_release, covered, firing, free_port, summaries, webhook

ALERTS = int(os.environ.get("ALERTS", "100000"))
BURSTS = int(os.environ.get("BURSTS", "10"))
PER_REQUEST = int(os.environ.get("PER_REQUEST", "100"))
GAP = float(os.environ.get("GAP", "3"))  # seconds between bursts
BYSTANDERS = 10
PROBE_EVERY = 1.2  # s; each bystander is probed every BYSTANDERS * PROBE_EVERY s (> bundle window)
DATABASE_URL = os.environ.get("DATABASE_URL", "")
STORM_KEY = "storm-bench-key-0123456789abcdef"
OTHER_KEY = "other-bench-key-0123456789abcdef"

lock = threading.Lock()
storm_messages = []  # (monotonic time, alerts covered)
probe_sent = {}
probe_got = {}
probe_acked = {}
probe_ids = {}
TOKEN = "storm-bench-token-0123456789abcdef"


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.monotonic()
        try:
            doc = json.loads(body)
            if self.path == "/storm":
                with lock:
                    storm_messages.append((now, covered(doc)))
            else:
                names = summaries(doc)
                with lock:
                    for n in names:
                        probe_got.setdefault(n, now)
        except (ValueError, KeyError, TypeError):
            pass
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def alert(name, i):
    return firing({"alertname": name, "instance": f"host-{i}", "severity": "critical"},
                  {"summary": f"{name}-{i}"}, f"{abs(hash((name, i))):016x}")


def rss_peak_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def metric(url, name):
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    tocsin = build_release()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    sink.daemon_threads = True
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_base = f"http://127.0.0.1:{sink.server_address[1]}"
    port = free_port()
    work = tempfile.mkdtemp(prefix="tocsin-storm-")
    db = DATABASE_URL or f"sqlite://{work}/t.db"
    users = [f"  - {{id: u, contacts: [{{id: hook, type: webhook, url: \"{sink_base}/storm\"}}], notify: {{high: [{{contact: hook, after: 0m}}]}}}}"]
    for b in range(BYSTANDERS):
        users.append(f"  - {{id: v{b}, contacts: [{{id: hook, type: webhook, url: \"{sink_base}/v{b}\"}}], notify: {{high: [{{contact: hook, after: 0m}}]}}}}")
    policies = ["  - {id: storm, levels: [{notify: [\"user:u\"], escalate_after: 1h}]}"]
    for b in range(BYSTANDERS):
        policies.append(f"  - {{id: p{b}, routing_key: v{b}, levels: [{{notify: [\"user:v{b}\"], escalate_after: 1h}}]}}")
    cfg = os.path.join(work, "tocsin.yaml")
    with open(cfg, "w") as f:
        f.write(f"""
server: {{listen: "127.0.0.1:{port}"}}
database: {{url: "{db}"}}
api_tokens: [{{name: bench, token: {TOKEN}, role: observer}}]
users:
{chr(10).join(users)}
escalation_policies:
{chr(10).join(policies)}
sources:
  - {{id: storm, type: prometheus, grouping: alert, escalation_policy: storm, key: {STORM_KEY}}}
  - {{id: other, type: prometheus, grouping: alert, escalation_policy: p0, key: {OTHER_KEY}}}
""")
    server = subprocess.Popen([tocsin, "serve", "--config", cfg],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "tocsin.log"), "w"),
                              env={**os.environ, "TOCSIN_LOG": "warn"})
    url = f"http://127.0.0.1:{port}"
    errors = [0]
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)

        def post(key, data, name=None):
            req = urllib.request.Request(f"{url}/api/v1/events/prometheus/{key}", data=data,
                                         headers={"Content-Type": "application/json"})
            for _ in range(20):
                try:
                    answer = urllib.request.urlopen(req, timeout=30).read()
                    if name:
                        with lock:
                            probe_acked[name] = time.monotonic()
                            probe_ids[name] = json.loads(answer)["alerts"][0]["id"]
                    return
                except OSError:
                    time.sleep(0.2)
            with lock:
                errors[0] += 1

        done = threading.Event()

        def probes():
            # One bystander page every PROBE_EVERY s, each to the next
            # bystander (routing_key picks its policy), so each bystander's
            # page is the first in its bundle window.
            n = 0
            while not done.is_set():
                b = n % BYSTANDERS
                name = f"probe-{n}"
                a = alert(name, n)
                a["labels"]["routing_key"] = f"v{b}"
                a["annotations"]["summary"] = name
                with lock:
                    probe_sent[name] = time.monotonic()
                threading.Thread(target=post, args=(OTHER_KEY, webhook("g", name, [a]), name), daemon=True).start()
                n += 1
                done.wait(PROBE_EVERY)

        prober = threading.Thread(target=probes, daemon=True)
        start = time.monotonic()
        prober.start()
        per_burst = ALERTS // BURSTS
        with ThreadPoolExecutor(max_workers=16) as pool:
            for burst in range(BURSTS):
                futures = []
                for r in range(0, per_burst, PER_REQUEST):
                    base = burst * per_burst + r
                    alerts = [alert("Storm", base + j) for j in range(min(PER_REQUEST, per_burst - r))]
                    futures.append(pool.submit(post, STORM_KEY, webhook("g", f"storm-{base}", alerts)))
                for f in futures:
                    f.result()
                if burst + 1 < BURSTS:
                    time.sleep(GAP)
        storm_end = time.monotonic()
        ingest_s = storm_end - start
        # Wait for the storm's responder to have heard of every alert.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with lock:
                covered = sum(n for _, n in storm_messages)
            if covered >= ALERTS:
                break
            time.sleep(0.2)
        settled = time.monotonic()
        time.sleep(3)  # and let a few more probes through after the storm
        done.set()
        prober.join()
        time.sleep(1)
        peak = rss_peak_mb(server.pid)
        # Where the slowest bystander page spent its time.
        with lock:
            slow = max((k for k in probe_got if k in probe_sent), key=lambda k: probe_got[k] - probe_sent[k], default=None)
        slow_timeline = []
        if slow and slow in probe_ids:
            req = urllib.request.Request(f"{url}/api/v1/alerts/{probe_ids[slow]}", headers={"Authorization": f"Bearer {TOKEN}"})
            doc = json.loads(urllib.request.urlopen(req, timeout=10).read())
            slow_timeline = [(e["at"], e["kind"], e["message"][:90]) for e in doc["timeline"]]
        stored = metric(url, "tocsin_alerts{status=\"pending\"}")
    finally:
        server.terminate()
        server.wait(timeout=40)
        sink.shutdown()

    with lock:
        covered = sum(n for _, n in storm_messages)
        msgs = list(storm_messages)
        lat = sorted((probe_got[k] - probe_sent[k]) * 1000 for k in probe_got if k in probe_sent)
        acks = sorted((probe_acked[k] - probe_sent[k]) * 1000 for k in probe_acked if k in probe_sent)
        probes_sent = len(probe_sent)
    q = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")
    per_minute = {}
    for t, _ in msgs:
        m = int((t - start) // 60)
        per_minute[m] = per_minute.get(m, 0) + 1
    backend = "PostgreSQL" if DATABASE_URL.startswith("postgres") else "SQLite"
    print(f"Storm: {ALERTS} alerts in {BURSTS} bursts ({PER_REQUEST} a request, {GAP} s apart), {backend}, bundle window 10s\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| storm ingested in | {ingest_s:.1f} s ({ALERTS / ingest_s:.0f} alerts/s) |")
    print(f"| storm alerts stored (pending) | {stored:.0f} of {ALERTS} |")
    print(f"| responder's messages | {len(msgs)} |")
    print(f"| alerts those messages covered | {covered} (storm: {ALERTS}) |")
    print(f"| messages per minute (max) | {max(per_minute.values()) if per_minute else 0} |")
    print(f"| backlog settled after the last burst | {settled - storm_end:.1f} s |")
    print(f"| peak RSS of tocsin serve | {peak:.0f} MB |")
    print(f"| bystander pages | {len(lat)} of {probes_sent} delivered |")
    print(f"| bystander webhook -> notification p50 / p99 / max | {q(50):.0f} / {q(99):.0f} / {lat[-1] if lat else float('nan'):.0f} ms |")
    qa = lambda p: acks[min(len(acks) - 1, int(p / 100 * len(acks)))] if acks else float("nan")
    print(f"| bystander webhook -> 202 p50 / p99 / max | {qa(50):.0f} / {qa(99):.0f} / {acks[-1] if acks else float('nan'):.0f} ms |")
    print(f"| failed requests | {errors[0]} |")
    ok = covered == ALERTS and stored >= ALERTS and len(lat) == probes_sent and errors[0] == 0
    print("\n" + ("nothing lost, nobody paged twice" if ok else "PROBLEM: see the table"))
    if slow_timeline:
        print(f"\nthe slowest bystander page ({q(100):.0f} ms), its timeline:")
        for at, kind, msg in slow_timeline:
            print(f"  {at} {kind}: {msg}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
