"""What bench/latency.py and bench/storm.py share: ports, Alertmanager
bodies, reading Tocsin's webhook messages, and building the server."""
import json
import os
import socket
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def firing(labels, annotations, fingerprint):
    """One firing Prometheus alert as Alertmanager sends it."""
    return {
        "status": "firing", "labels": labels, "annotations": annotations,
        "startsAt": "2026-11-21T05:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "", "fingerprint": fingerprint,
    }


def webhook(group_label, group, alerts, common_labels=None, common_annotations=None):
    """An Alertmanager webhook (version 4) for the group `group_label=group`."""
    return json.dumps({
        "receiver": "tocsin", "status": "firing", "alerts": alerts,
        "groupLabels": {group_label: group},
        "commonLabels": common_labels if common_labels is not None else {group_label: group},
        "commonAnnotations": common_annotations or {},
        "externalURL": "http://am", "version": "4",
        "groupKey": f'{{}}:{{{group_label}="{group}"}}', "truncatedAlerts": 0,
    }).encode()


def summaries(message):
    """The alerts a Tocsin webhook message lists, by summary."""
    return [message["alert"]["summary"]] + [b["summary"] for b in message.get("also", [])]


def covered(message):
    """How many alerts a Tocsin webhook message is about (listed or counted)."""
    return 1 + int(message.get("also_count", 0))


def build_release():
    """The release binary: built here, or TOCSIN_BIN when it names one."""
    if os.environ.get("TOCSIN_BIN"):
        return os.environ["TOCSIN_BIN"]
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "tocsin"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, "target", "release", "tocsin")
