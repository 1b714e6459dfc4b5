// What the browser tests share: real `tocsin serve` processes on loopback,
// a local webhook sink, Debian's Chromium driven by playwright-core, and a
// small runner that stops everything it started, by pid.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
export const bin = process.env.TOCSIN_BIN || path.join(repo, "target/debug/tocsin");
export const PASSWORD = "correct horse battery";
export const TOKEN = "browser-admin-token-0123456789";
export const PROM_KEY = "browser-prom-key-0123456789abcd";
export const WIDTHS = { phone: 390, desktop: 1440 };

/** Everything started, to stop at the end (also on failure). */
const started = [];

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wait until `url` answers 200. */
export async function waitOk(url, ms = 30000, child = null) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child && child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}) before ${url} answered`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`${url} did not answer 200 within ${ms} ms`);
}

/** Poll `check` until it returns a truthy value. */
export async function eventually(what, check, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms (last: ${last})`);
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export function equal(got, want, message) {
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`${message}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

/** A scratch directory, removed at the end. */
export function scratch(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tocsin-browser-${name}-`));
  started.push({ name: `dir ${dir}`, stop: async () => fs.rmSync(dir, { recursive: true, force: true }) });
  return dir;
}

/** A local HTTP sink that records every request (webhook notifications). */
export async function sink() {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  started.push({ name: `sink :${port}`, stop: () => new Promise((r) => server.close(r)) });
  return { url: `http://127.0.0.1:${port}`, requests };
}

/** The tocsin.yaml of the browser tests. */
export function config({ port, db, hook, extra = "" }) {
  return `
server:
  listen: 127.0.0.1:${port}
database:
  url: ${db}
notifications:
  bundle_window: 0s
api_tokens:
  - {name: browser, token: ${TOKEN}, role: admin}
teams:
  - {id: sre, name: SRE}
  - {id: db, name: Databases}
users:
  - id: alice
    name: Alice Admin
    email: alice@example.com
    role: admin
    teams: [sre]
    timezone: Europe/Berlin
    contacts: [{id: hook, type: webhook, url: "${hook}/hook/alice"}]
    notify: {high: [{contact: hook, after: 0m}], low: [{contact: hook, after: 0m}]}
  - id: bob
    name: Bob Responder
    email: bob@example.com
    teams: [sre]
    timezone: Europe/Berlin
    contacts: [{id: hook, type: webhook, url: "${hook}/hook/bob"}]
    notify: {high: [{contact: hook, after: 0m}], low: [{contact: hook, after: 0m}]}
  - id: olga
    name: Olga Observer
    email: olga@example.com
    role: observer
    teams: [sre]
escalation_policies:
  - id: sre-pager
    name: SRE pager
    team: sre
    levels:
      - {notify: ["user:bob"], escalate_after: 5m}
      - {notify: ["user:alice"], escalate_after: 5m}
services:
  - {id: checkout, name: Checkout, team: sre, escalation_policy: sre-pager, public: true}
  - {id: search, name: Search, team: sre, public: true}
  - {id: billing, name: Billing, team: sre}
sources:
  - {id: prometheus, type: prometheus, team: sre, key: ${PROM_KEY}, escalation_policy: sre-pager, service: checkout}
heartbeats:
  - {id: nightly-backup, name: Nightly backup, interval: 24h, grace: 1h, team: sre, escalation_policy: sre-pager}
support_hours:
  - {id: office, timezone: Europe/Berlin, weekly: {mon-fri: "09:00-18:00"}}
schedules:
  - id: sre-rota
    name: SRE rota
    team: sre
    timezone: Europe/Berlin
    layers:
      - {name: Primary, users: [alice], rotation: 1w, handoff: "2026-11-30T09:00"}
${extra}
`;
}

/**
 * Start `tocsin serve` with `yaml` (written to `dir`); resolves when ready.
 * Its output goes to files in `dir`, shown when a test fails.
 */
export async function serve(dir, name, yaml, port) {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, yaml);
  const out = fs.openSync(path.join(dir, `${name}.out`), "w");
  const err = fs.openSync(path.join(dir, `${name}.err`), "w");
  const child = spawn(bin, ["serve", "--config", file], {
    stdio: ["ignore", out, err],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn", NO_COLOR: "1" },
  });
  const entry = {
    name: `tocsin ${name} (pid ${child.pid})`,
    dir,
    logs: () => fs.readFileSync(path.join(dir, `${name}.err`), "utf8").slice(-1500),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", resolve);
        process.kill(child.pid, "SIGTERM");
        setTimeout(() => child.exitCode === null && process.kill(child.pid, "SIGKILL"), 10000);
      }),
  };
  started.push(entry);
  const base = `http://127.0.0.1:${port}`;
  await waitOk(`${base}/readyz`, 30000, child);
  return { base, config: file, child, entry, banner: () => fs.readFileSync(path.join(dir, `${name}.out`), "utf8") };
}

/**
 * A real OpenID Connect provider process (oidc-provider) on loopback for
 * client `tocsin`, sending the browser back to `redirectUri`.
 */
export async function oidcProvider(redirectUri) {
  const port = await freePort();
  const secret = "oidc-client-secret-0123456789abcdef";
  const child = spawn(process.execPath, [path.join(here, "oidc-provider.mjs"), String(port), "tocsin", secret, redirectUri], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  started.push({
    name: `oidc-provider (pid ${child.pid})`,
    logs: () => log.slice(-1500),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", resolve);
        process.kill(child.pid, "SIGTERM");
        setTimeout(() => child.exitCode === null && process.kill(child.pid, "SIGKILL"), 5000);
      }),
  });
  const issuer = `http://127.0.0.1:${port}`;
  await waitOk(`${issuer}/.well-known/openid-configuration`, 15000, child);
  return { issuer, clientId: "tocsin", secret };
}

/** `tocsin users set-password USER --config FILE`, the password on stdin. */
export function setPassword(configFile, user, password = PASSWORD) {
  const r = spawnSync(bin, ["users", "set-password", user, "--config", configFile], {
    input: `${password}\n`,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`set-password ${user}: ${r.stderr}`);
}

/** Call the API with the admin token. */
export async function api(base, method, p, body) {
  const r = await fetch(base + p, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json };
}

/** Post one Alertmanager webhook (the shape Alertmanager 0.25 sends); the alert id. */
export async function fire(base, name, severity = "critical") {
  const body = {
    version: "4",
    groupKey: `{}:{alertname="${name}"}`,
    truncatedAlerts: 0,
    status: "firing",
    receiver: "tocsin",
    groupLabels: { alertname: name },
    commonLabels: { alertname: name, severity },
    commonAnnotations: { summary: `${name} is failing` },
    externalURL: "http://alertmanager.example:9093",
    alerts: [
      {
        status: "firing",
        labels: { alertname: name, severity, instance: "web-1:9100" },
        annotations: { summary: `${name} is failing`, description: `The ${name} check failed three times.` },
        startsAt: new Date().toISOString(),
        endsAt: "0001-01-01T00:00:00Z",
        generatorURL: "http://prometheus.example:9090/graph",
        fingerprint: `fp${name}`,
      },
    ],
  };
  const r = await fetch(`${base}/api/v1/events/prometheus/${PROM_KEY}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (r.status !== 202) throw new Error(`webhook: ${r.status} ${await r.text()}`);
  return (await r.json()).alerts[0].id;
}

let browser;

/** Debian's Chromium, headless, started once. */
export async function launch() {
  if (browser) return browser;
  // playwright gives every launch a fresh, empty profile of its own.
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  started.push({ name: "chromium", stop: () => browser.close() });
  return browser;
}

/** A fresh browser profile (its own cookies) at `width` px. */
export async function context(width = WIDTHS.desktop, options = {}) {
  const b = await launch();
  return b.newContext({ viewport: { width, height: width < 600 ? 844 : 900 }, ...options });
}

/** Sign in through the form; the page, on the alert list. */
export async function signIn(ctx, base, login, password = PASSWORD) {
  const page = await ctx.newPage();
  await page.goto(`${base}/login`);
  await page.getByLabel("User id or email").fill(login);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/alerts`);
  return page;
}

/** Run the tests in order; stop everything; exit 1 on any failure. */
export async function run(tests) {
  const only = process.env.BROWSER_ONLY;
  let failed = 0;
  for (const [name, fn] of tests) {
    if (only && !name.includes(only)) continue;
    const t0 = Date.now();
    try {
      await fn();
      console.log(`ok    ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL  ${name} (${Date.now() - t0} ms)\n      ${String(e && e.stack ? e.stack : e).split("\n").join("\n      ")}`);
      for (const s of started) if (s.logs) console.log(`--- ${s.name} log (tail) ---\n${s.logs()}`);
    }
  }
  for (const s of started.reverse()) {
    try {
      await s.stop();
    } catch (e) {
      console.log(`could not stop ${s.name}: ${e}`);
    }
  }
  console.log(failed ? `${failed} browser test(s) failed` : "all browser tests passed");
  process.exit(failed ? 1 : 0);
}
