-- wrk script: realistic, varied Alertmanager webhook bodies (version 4).
-- Every request is a new group (unique groupKey and fingerprints) with 1 to 5
-- alerts (or exactly $ALERTS), so that every 2xx must leave something stored:
-- what the run counts afterwards is compared with what wrk saw answered.

-- Globals, so that done() can read them from each thread with thread:get().
counter = 0
alerts_sent = 0
ok_requests = 0
thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid
  math.randomseed(os.time() + thread_id * 7919)
end

local fixed = tonumber(os.getenv("ALERTS") or "0") or 0

local severities = {"critical", "warning", "error", "info"}
local names = {"HighLatency", "DiskFull", "InstanceDown", "ErrorBudgetBurn", "QueueBacklog"}

local function alert(name, sev, i, n, group)
  local fp = string.format("%08x%08x", thread_id * 1000003 + counter, i)
  local node = "node-" .. i
  return string.format(
    '{"status":"firing","labels":{"alertname":"%s","cluster":"bench","instance":"10.0.%d.%d:9100","job":"node","node":"%s","service":"svc-%d","severity":"%s"},'
    .. '"annotations":{"description":"%s on %s has been above threshold for 5 minutes (value %d).","summary":"%s on %s","runbook_url":"https://runbooks.example.com/%s"},'
    .. '"startsAt":"2026-11-21T05:%02d:%02d.%03dZ","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph?g0.expr=up%%3D%%3D0\\u0026g0.tab=1","fingerprint":"%s"}',
    name, group % 250, i, node, group % 17, sev, name, node, math.random(1000), name, node, name,
    math.random(0, 59), math.random(0, 59), math.random(0, 999), fp)
end

function request()
  counter = counter + 1
  local n = (counter % 5) + 1
  if fixed > 0 then
    n = fixed
  end
  local name = names[(counter % #names) + 1]
  local sev = severities[(counter % #severities) + 1]
  local group = thread_id * 100000000 + counter
  local parts = {}
  for i = 1, n do
    parts[i] = alert(name, sev, i, n, group)
  end
  alerts_sent = alerts_sent + n
  local body = string.format(
    '{"receiver":"tocsin","status":"firing","alerts":[%s],"groupLabels":{"alertname":"%s","group":"%d"},'
    .. '"commonLabels":{"alertname":"%s","cluster":"bench","severity":"%s"},"commonAnnotations":{},'
    .. '"externalURL":"http://alertmanager:9093","version":"4","groupKey":"{}:{alertname=\\"%s\\", group=\\"%d\\"}","truncatedAlerts":0}',
    table.concat(parts, ","), name, group, name, sev, name, group)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok_requests = ok_requests + 1
  end
end

function done(summary, latency, requests)
  local sent, ok = 0, 0
  for _, t in ipairs(threads) do
    sent = sent + (t:get("alerts_sent") or 0)
    ok = ok + (t:get("ok_requests") or 0)
  end
  io.write(string.format(
    'RESULT {"requests":%d,"ok_requests":%d,"non_2xx":%d,"socket_errors":%d,"duration_us":%d,"alerts_sent":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, ok, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, sent, latency:percentile(50), latency:percentile(99)))
end
