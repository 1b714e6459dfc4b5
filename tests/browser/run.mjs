// Tocsin's web UI in Debian's Chromium, against real `tocsin serve`
// processes (SQLite; PostgreSQL with two nodes for live updates).
//
//   node tests/browser/run.mjs            (after `cargo build -p tocsin`)
//   BROWSER_ONLY=axe node tests/browser/run.mjs
//   SCREENSHOTS=docs/screenshots node tests/browser/run.mjs
//
// Needs: /usr/bin/chromium (Debian package `chromium`) and `npm ci` here.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import {
  PASSWORD, WIDTHS, api, assert, config, context, equal, eventually, fire, freePort, oidcProvider, run,
  scratch, serve, setPassword, signIn, sink,
} from "./lib.mjs";

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

let main; // the shared SQLite server
let hook; // its webhook sink

async function mainServer() {
  if (main) return main;
  const dir = scratch("main");
  hook = await sink();
  const port = await freePort();
  // Single sign-on through a real provider, next to passwords.
  const idp = await oidcProvider(`http://127.0.0.1:${port}/auth/oidc/callback`);
  fs.writeFileSync(`${dir}/oidc-secret`, idp.secret);
  const extra = `auth:
  oidc: {issuer: "${idp.issuer}", client_id: ${idp.clientId}, client_secret_file: ${dir}/oidc-secret, label: Sign in with Example SSO}`;
  main = await serve(dir, "main", config({ port, db: `sqlite://${dir}/t.db`, hook: hook.url, extra }), port);
  for (const u of ["alice", "bob", "olga"]) setPassword(main.config, u);
  return main;
}

/** The alert's stored state, through the API. */
async function alertState(base, id) {
  const r = await api(base, "GET", `/api/v1/alerts/${id}`);
  equal(r.status, 200, "GET alert");
  return r.json;
}

const tests = [
  ["sign in with a password; a wrong password is refused and says so", async () => {
    const { base } = await mainServer();
    for (const width of Object.values(WIDTHS)) {
      const ctx = await context(width);
      const page = await ctx.newPage();
      await page.goto(base + "/");
      await page.waitForURL(/\/login/);
      await page.getByLabel("User id or email").fill("bob");
      await page.getByLabel("Password").fill("not the password");
      await page.getByRole("button", { name: "Sign in" }).click();
      const error = await page.locator("#login-error").textContent();
      assert(error.includes("wrong user or password"), `the error says what is wrong: ${error}`);
      equal(await page.getByLabel("User id or email").inputValue(), "bob", "the login stays filled in");
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(base + "/alerts");
      assert((await page.locator("header .who").textContent()).includes("Bob Responder"), "signed in as Bob");
      const cookies = await ctx.cookies();
      const session = cookies.find((c) => c.name === "tocsin_session");
      assert(session && session.httpOnly && session.sameSite === "Lax", `session cookie: ${JSON.stringify(session)}`);
      assert(!(await page.evaluate(() => document.cookie)).includes("tocsin_session"), "scripts cannot read the session");
      // Sign out: back to the sign-in page, and the alert list is closed.
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/login\?why=bye/);
      await page.goto(base + "/alerts");
      await page.waitForURL(/\/login/);
      await ctx.close();
    }
  }],

  ["sign in through a real OpenID Connect provider; an unknown email is refused with a clear page", async () => {
    const { base } = await mainServer();
    const through = async (ctx, login) => {
      const page = await ctx.newPage();
      await page.goto(`${base}/login?next=%2Foncall`);
      await page.getByRole("link", { name: "Sign in with Example SSO" }).click();
      // The provider's own pages: sign in, then consent.
      await page.waitForURL(/127\.0\.0\.1:\d+\/interaction\//);
      await page.locator("input[name=login]").fill(login);
      await page.locator("input[name=password]").fill("anything");
      await page.getByRole("button", { name: "Sign-in" }).click();
      await page.getByRole("button", { name: "Continue" }).click();
      await page.waitForURL((u) => u.toString().startsWith(base));
      return page;
    };
    const ctx = await context();
    const page = await through(ctx, "alice");
    await page.waitForURL(`${base}/oncall`);
    assert((await page.locator("header .who").textContent()).includes("Alice Admin"), "alice@example.com is alice");
    await page.goto(`${base}/profile`);
    assert((await page.locator("body").textContent()).includes("oidc"), "the session says how it signed in");
    await ctx.close();
    const stranger = await context();
    const refused = await through(stranger, "zed");
    const text = await refused.locator("main").textContent();
    assert(text.includes("no Tocsin user has the email zed@example.com"), `a clear refusal: ${text}`);
    equal((await stranger.cookies()).filter((c) => c.name === "tocsin_session").length, 0, "no session");
    await stranger.close();
  }],

  ["an expired session sends the browser back to sign in, then where it was going", async () => {
    const dir = scratch("expiry");
    const h = await sink();
    const port = await freePort();
    const yaml = config({ port, db: `sqlite://${dir}/t.db`, hook: h.url, extra: "auth: {session_lifetime: 5s}" });
    const srv = await serve(dir, "expiry", yaml, port);
    setPassword(srv.config, "bob");
    const id = await fire(srv.base, "ExpiryCheck");
    const ctx = await context();
    const page = await signIn(ctx, srv.base, "bob");
    await page.waitForTimeout(5500);
    await page.goto(`${srv.base}/alerts/${id}`);
    await page.waitForURL(/\/login\?/);
    assert((await page.locator(".notice").textContent()).includes("Your session expired"), "says why");
    await page.getByLabel("User id or email").fill("bob");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${srv.base}/alerts/${id}`);
    await ctx.close();
  }],

  ["a webhook posted while the list is open appears without reload; accepting it in the UI stops its escalation", async () => {
    const { base } = await mainServer();
    for (const width of Object.values(WIDTHS)) {
      const ctx = await context(width);
      const page = await signIn(ctx, base, "bob");
      await page.waitForSelector("#alert-list[data-connected='1']", { state: "attached" });
      await page.evaluate(() => { window.__noReload = true; });
      const name = `DiskFull${width}`;
      const id = await fire(base, name);
      const row = page.locator(`#alert-${id}`);
      await row.waitFor({ timeout: 2500 });
      assert((await row.textContent()).includes(`${name} is failing`), "the row shows the summary");
      assert(await page.evaluate(() => window.__noReload === true), "the page was not reloaded");
      // Counts follow within a few seconds (counted at most every 3 s).
      await eventually("the pending count follows", async () =>
        Number(await page.locator('[data-count="pending"]').textContent()) >= 1, 5000);
      // Its escalation is running: a step, and Bob was paged.
      await eventually("bob is paged", () => hook.requests.some((r) => r.url === "/hook/bob" && r.body.includes(name)));
      await row.getByRole("link").click();
      await page.waitForURL(`${base}/alerts/${id}`);
      await page.getByRole("button", { name: "Accept", exact: true }).click();
      await page.waitForURL(`${base}/alerts/${id}?done=accept`);
      equal(await page.locator("#alert-status").textContent(), "accepted", "the page shows it accepted");
      const a = await alertState(base, id);
      equal(a.status, "accepted", "stored as accepted");
      equal(a.accepted_by, "user:bob", "by bob");
      assert(!a.escalation.some((s) => s.status === "pending" || s.status === "running"),
        `no escalation step left to run: ${JSON.stringify(a.escalation)}`);
      assert(a.timeline.some((t) => t.kind === "accepted" && t.channel === "web"), "the timeline names the web UI");
      await ctx.close();
    }
  }],

  ["a form POST without the CSRF token, and an observer's forged accept, get 403 and change nothing", async () => {
    const { base } = await mainServer();
    const id = await fire(base, "ForgeryCheck");
    const ctx = await context();
    const bob = await signIn(ctx, base, "bob");
    const noToken = await bob.evaluate(async (id) => {
      const r = await fetch(`/alerts/${id}/resolve`, { method: "POST", body: new URLSearchParams({}) });
      return r.status;
    }, id);
    equal(noToken, 403, "no CSRF token");
    const olgaCtx = await context();
    const olga = await signIn(olgaCtx, base, "olga");
    await olga.goto(`${base}/alerts/${id}`);
    equal(await olga.getByRole("button", { name: "Accept", exact: true }).count(), 0, "no Accept button for an observer");
    const forged = await olga.evaluate(async (id) => {
      const csrf = document.querySelector("input[name=_csrf]").value;
      const r = await fetch(`/alerts/${id}/accept`, { method: "POST", body: new URLSearchParams({ _csrf: csrf }) });
      return { status: r.status, text: await r.text() };
    }, id);
    equal(forged.status, 403, "an observer's accept, with a good token");
    assert(forged.text.includes("alerts.act"), "names the missing permission");
    equal((await alertState(base, id)).status, "pending", "nothing changed");
    await ctx.close();
    await olgaCtx.close();
  }],

  ["creating an override changes who is on call, on the schedule page and in the API", async () => {
    const { base } = await mainServer();
    const oncall = async () => (await api(base, "GET", "/api/v1/schedules/sre-rota/oncall")).json.on_call.user;
    equal(await oncall(), "alice", "alice before");
    for (const width of Object.values(WIDTHS)) {
      const ctx = await context(width);
      const page = await signIn(ctx, base, "bob");
      await page.getByRole("link", { name: "Schedules" }).click();
      await page.getByRole("link", { name: "SRE rota" }).click();
      await page.waitForURL(`${base}/schedules/sre-rota`);
      assert((await page.locator("#on-call-now").textContent()).includes("Alice Admin"), "alice on call");
      await page.locator("#shifts").getByRole("button", { name: "I take this shift" }).first().click();
      await page.waitForURL(`${base}/schedules/sre-rota?done=override`);
      assert((await page.locator("#on-call-now").textContent()).includes("Bob Responder"), "bob on call on the page");
      equal(await oncall(), "bob", "bob in the API");
      assert((await page.locator("#overrides").textContent()).includes("Bob Responder"), "the override is listed");
      await page.locator("#overrides").getByRole("button", { name: "Remove" }).click();
      await page.waitForURL(`${base}/schedules/sre-rota?done=deleted`);
      equal(await oncall(), "alice", "alice again");
      await ctx.close();
    }
    // "Cover me": Alice has Bob cover tomorrow morning.
    const ctx = await context();
    const page = await signIn(ctx, base, "alice");
    await page.goto(`${base}/schedules/sre-rota`);
    const form = page.locator("#cover");
    await form.getByLabel("Who takes it").selectOption("bob");
    const day = new Date(Date.now() + 86400000).toISOString().slice(0, 10);
    await form.getByLabel("From").fill(`${day}T09:00`);
    await form.getByLabel("To").fill(`${day}T12:00`);
    await form.getByRole("button", { name: "Add override" }).click();
    await page.waitForURL(`${base}/schedules/sre-rota?done=override`);
    const at = (await api(base, "GET", `/api/v1/schedules/sre-rota/oncall?at=${encodeURIComponent(`${day}T10:00:00+01:00`)}`)).json;
    equal(at.on_call.user, "bob", "bob covers tomorrow 10:00 Berlin");
    await page.locator("#overrides").getByRole("button", { name: "Remove" }).click();
    await ctx.close();
  }],

  ["\"send me a test notification\" reaches a local sink and the page shows the result", async () => {
    const { base } = await mainServer();
    const ctx = await context(WIDTHS.phone);
    const page = await signIn(ctx, base, "bob");
    await page.goto(`${base}/profile`);
    const before = hook.requests.length;
    await page.getByRole("button", { name: "Send me a test notification" }).click();
    const results = await page.locator("#test-results").textContent();
    assert(results.includes("hook") && results.includes("✔"), `the result is shown: ${results}`);
    const got = hook.requests.slice(before).find((r) => r.url === "/hook/bob");
    assert(got && got.body.includes("Test notification for Bob Responder"), "the sink got it");
    // A personal token, shown once, that works against the API.
    await page.getByLabel("Name").fill("laptop");
    await page.getByRole("button", { name: "Make a token" }).click();
    const token = (await page.locator("#new-token").textContent()).trim();
    const me = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    equal((await me.json()).user.id, "bob", "the token acts as bob");
    await page.goto(`${base}/profile`);
    await page.locator("#tokens").getByRole("button", { name: "Revoke" }).click();
    const again = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    equal(again.status, 401, "revoked");
    await ctx.close();
  }],

  ["managed objects are created and edited in forms with the API's key-path errors; provisioned ones are read-only", async () => {
    const { base } = await mainServer();
    const bad = "id: payments\nname: Payments\nescalation_policy: nope\nteam: sre\n";
    const viaApi = await api(base, "POST", "/api/v1/services", { id: "payments", name: "Payments", escalation_policy: "nope", team: "sre" });
    equal(viaApi.status, 422, "the API refuses it");
    const ctx = await context();
    const page = await signIn(ctx, base, "alice");
    await page.goto(`${base}/services`);
    await page.getByRole("link", { name: "New" }).click();
    await page.waitForURL(`${base}/catalog/services/new`);
    await page.getByLabel(/The same keys as under/).fill(bad);
    await page.getByRole("button", { name: "Create" }).click();
    const problems = await page.locator("#problems").textContent();
    for (const p of viaApi.json.error.problems) {
      assert(problems.includes(p.path) && problems.includes(p.message), `the form shows ${p.path}: ${p.message}; it shows ${problems}`);
    }
    equal((await api(base, "GET", "/api/v1/services/payments")).status, 404, "nothing was created");
    await page.getByLabel(/The same keys as under/).fill(bad.replace("nope", "sre-pager"));
    await page.getByRole("button", { name: "Create" }).click();
    await page.waitForURL(`${base}/catalog/services/payments?done=created`);
    equal(await page.locator("#origin").textContent(), "managed here", "a managed object");
    const text = await page.getByLabel(/The same keys as under/).inputValue();
    await page.getByLabel(/The same keys as under/).fill(text.replace("name: Payments", "name: Payments API"));
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(`${base}/catalog/services/payments?done=saved`);
    equal((await api(base, "GET", "/api/v1/services/payments")).json.name, "Payments API", "saved through the same path");
    // A stale form (someone saved in between) is refused, not merged.
    const stale = await ctx.newPage();
    await stale.goto(`${base}/catalog/services/payments`);
    const now = await page.getByLabel(/The same keys as under/).inputValue();
    await page.getByLabel(/The same keys as under/).fill(now.replace("name: Payments API", "name: Payments v2"));
    await page.getByRole("button", { name: "Save" }).click();
    await page.waitForURL(`${base}/catalog/services/payments?done=saved`);
    await stale.getByRole("button", { name: "Save" }).click();
    const why = await stale.locator(".error").textContent();
    assert(why.includes("changed"), `the stale save says why: ${why}`);
    equal((await api(base, "GET", "/api/v1/services/payments")).json.name, "Payments v2", "the later save stands");
    // The provisioned service is read-only, naming its file.
    await page.goto(`${base}/catalog/services/checkout`);
    assert((await page.locator("#origin").textContent()).includes("main.yaml"), "origin names the file");
    equal(await page.locator("textarea").count(), 0, "no editor");
    // Delete the managed one.
    await page.goto(`${base}/catalog/services/payments`);
    await page.getByRole("button", { name: "Delete payments" }).click();
    await page.waitForURL(`${base}/services`);
    equal((await api(base, "GET", "/api/v1/services/payments")).status, 404, "deleted");
    // A responder sees no editor at all.
    const bobCtx = await context();
    const bob = await signIn(bobCtx, base, "bob");
    await bob.goto(`${base}/catalog/escalation_policies/sre-pager`);
    equal(await bob.locator("textarea").count(), 0, "bob cannot edit policies");
    await bobCtx.close();
    await ctx.close();
  }],

  ["a source's page shows its URL and alertmanager.yml, sends a test alert, and lists what it received", async () => {
    const { base } = await mainServer();
    const ctx = await context(WIDTHS.phone);
    const page = await signIn(ctx, base, "bob");
    await page.goto(`${base}/sources`);
    await page.getByRole("link", { name: "prometheus" }).first().click();
    const url = await page.locator("#source-url").textContent();
    assert(url.endsWith("/api/v1/events/prometheus/browser-prom-key-0123456789abcd"), `bob (sre) sees the key: ${url}`);
    assert((await page.locator("pre.snippet").first().textContent()).includes(`url: ${url}`), "the snippet carries it");
    await page.getByRole("button", { name: "Send a test alert" }).click();
    await page.waitForURL(/\/alerts\/\d+\?done=test/);
    assert((await page.locator("h1").textContent()).includes("Test alert from Tocsin"), "the test alert's page");
    await page.goto(`${base}/catalog/sources/prometheus`);
    assert((await page.locator("#recent-events").textContent()).includes("created"), "the test alert is among the last events");
    const olgaCtx = await context();
    const olga = await signIn(olgaCtx, base, "olga");
    await olga.goto(`${base}/catalog/sources/prometheus`);
    assert((await olga.locator("#source-url").textContent()).endsWith("/<key>"), "an observer does not see the key");
    equal(await olga.getByRole("button", { name: "Send a test alert" }).count(), 0, "nor the button");
    await olgaCtx.close();
    await ctx.close();
  }],

  ["maintenance windows start and end from the page", async () => {
    const { base } = await mainServer();
    const ctx = await context();
    const page = await signIn(ctx, base, "bob");
    await page.goto(`${base}/maintenance`);
    const form = page.locator("#start-maintenance");
    await form.getByLabel("For").selectOption("service:checkout");
    await form.getByLabel("Reason").fill("database upgrade");
    await form.getByRole("button", { name: "Start or schedule" }).click();
    await page.waitForURL(`${base}/maintenance?done=started`);
    const windows = (await api(base, "GET", "/api/v1/maintenance")).json;
    const list = windows.windows || windows.maintenance || windows;
    const w = list.find((x) => x.reason === "database upgrade");
    assert(w && w.target_id === "checkout", `the API lists it: ${JSON.stringify(windows)}`);
    await page.locator("#windows").getByRole("button", { name: "End now" }).click();
    await page.waitForURL(`${base}/maintenance?done=ended`);
    equal(await page.locator("#windows").count(), 0, "no window left");
    await ctx.close();
  }],

  ["an incident opened and updated in the UI shows on the status page, which needs no script; bars show their day on focus", async () => {
    const { base } = await mainServer();
    const ctx = await context();
    const page = await signIn(ctx, base, "bob");
    await page.goto(`${base}/incidents`);
    const form = page.locator("#open-incident");
    await form.getByLabel("Title").fill("Search results are slow");
    await form.getByLabel("Severity").selectOption("SEV2");
    await form.locator("input[name=services][value=search]").check();
    await form.locator("select[name=impact-search]").selectOption("partial_outage");
    await form.getByLabel("First update").fill("We are looking into slow searches.");
    await form.locator("input[name=public]").check();
    await form.getByRole("button", { name: "Open incident" }).click();
    await page.waitForURL(/\/incidents\/\d+$/);
    const id = page.url().split("/").pop();
    const update = page.locator("#post-update");
    await update.getByLabel("Update").fill("A slow index was rebuilt; watching.");
    await update.locator("select[name=status]").selectOption("monitoring");
    await update.locator("input[name=public]").check();
    await update.getByRole("button", { name: "Post update" }).click();
    await page.waitForURL(`${base}/incidents/${id}`);
    const inc = (await api(base, "GET", `/api/v1/incidents/${id}`)).json;
    equal(inc.status, "monitoring", "the API has the update");
    equal(inc.updates.length, 2, "two updates");
    assert(inc.updates.every((u) => u.public), "both public");
    const audit = (await api(base, "GET", `/api/v1/audit?kind=incident&object=${id}`)).json;
    assert(audit.entries.every((e) => e.actor === "user:bob" && e.channel === "web"), JSON.stringify(audit));
    // An observer sees no forms, and a forged update is refused.
    const olgaCtx = await context();
    const olga = await signIn(olgaCtx, base, "olga");
    await olga.goto(`${base}/incidents/${id}`);
    equal(await olga.locator("#post-update").count(), 0, "no update form for an observer");
    await olgaCtx.close();

    // The public page, with JavaScript off.
    for (const [label, width] of Object.entries(WIDTHS)) {
      const anon = await context(width, { javaScriptEnabled: false });
      const status = await anon.newPage();
      await status.goto(`${base}/status`);
      equal(await status.locator("#overall").textContent(), "Partial System Outage", "the banner");
      const text = await status.locator("main").textContent();
      assert(text.includes("Search results are slow") && text.includes("A slow index was rebuilt"), "the incident and its updates");
      assert(!text.includes("Billing"), "a service that is not public is not shown");
      equal(await status.locator("#service-search .state").textContent(), "Partial outage", "the service's state");
      equal(await status.locator("#service-search .bar").count(), 90, "90 daily bars");
      // The last bar (today) shows its tooltip on focus, naming the incident.
      const today = status.locator("#service-search .bar").last();
      await today.focus();
      assert(await today.locator(".tip").isVisible(), "the tooltip shows on focus");
      assert((await today.locator(".tip").textContent()).includes("Search results are slow"), "today's incident");
      const overflow = await status.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      equal(overflow, 0, `${label}: not wider than the screen`);
      if (process.env.SCREENSHOTS) {
        const out = path.resolve(process.env.SCREENSHOTS);
        fs.mkdirSync(out, { recursive: true });
        await status.screenshot({ path: `${out}/status-${label}.png`, fullPage: true });
        await status.goto(`${base}/status/incidents/${id}`);
        await status.screenshot({ path: `${out}/status-incident-${label}.png` });
      }
      await anon.close();
    }
    // Badges render as SVG images in the browser.
    const bctx = await context();
    const b = await bctx.newPage();
    await b.setContent(`<img id="b1" src="${base}/status/badge/search.svg"><img id="b2" src="${base}/status/badge/checkout.svg">`);
    await b.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0));
    const widths = await b.evaluate(() => [...document.images].map((i) => i.naturalWidth));
    assert(widths.every((w) => w > 100), `badges drawn: ${widths}`);
    if (process.env.SCREENSHOTS) await b.locator("body").screenshot({ path: `${path.resolve(process.env.SCREENSHOTS)}/status-badges.png` });
    await bctx.close();
    // Resolve from the page.
    await page.goto(`${base}/incidents/${id}`);
    await page.getByRole("button", { name: "Resolve" }).click();
    await page.waitForURL(`${base}/incidents/${id}`);
    equal((await api(base, "GET", `/api/v1/incidents/${id}`)).json.status, "resolved", "resolved in the API");
    await ctx.close();
  }],

  ["axe-core finds no serious or critical violation on any page, at 390 and 1440 px", async () => {
    const { base } = await mainServer();
    const id = await fire(base, "AxeCheck", "warning");
    const pages = ["/login", "/alerts", "/alerts?status=pending", `/alerts/${id}`, "/oncall", "/schedules",
      "/schedules/sre-rota", "/profile", "/policies", "/services", "/sources", "/catalog/sources/prometheus",
      "/catalog/escalation_policies/sre-pager", "/catalog/services/new", "/heartbeats", "/catalog/heartbeats/nightly-backup",
      "/support-hours", "/catalog/support_hours/office", "/users", "/catalog/users/alice", "/teams", "/catalog/teams/sre", "/maintenance", "/admin", "/admin/audit", "/admin/deliveries", "/admin/catalog", "/incidents", "/status", "/status/internal", "/nope-404"];
    const problems = [];
    for (const [label, width] of Object.entries(WIDTHS)) {
      // axe is put in by the test (bypassing the page's CSP for it alone).
      const ctx = await context(width, { bypassCSP: true });
      const page = await ctx.newPage();
      for (const p of pages) {
        if (p !== "/login" && !page.url().includes("/alerts")) {
          await page.goto(base + "/login");
          if (page.url().endsWith("/login")) {
            await page.getByLabel("User id or email").fill("alice");
            await page.getByLabel("Password").fill(PASSWORD);
            await page.getByRole("button", { name: "Sign in" }).click();
            await page.waitForURL(base + "/alerts");
          }
        }
        await page.goto(base + p);
        await page.evaluate(axeSource);
        const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
        for (const v of result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")) {
          problems.push(`${label} ${p}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
        }
        // Nothing is wider than the screen.
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 0) problems.push(`${label} ${p}: ${overflow} px wider than the screen`);
      }
      await ctx.close();
    }
    assert(problems.length === 0, `accessibility problems:\n${problems.join("\n")}`);
  }],

  ["the pages are usable with the keyboard alone", async () => {
    const { base } = await mainServer();
    const ctx = await context();
    const page = await ctx.newPage();
    await page.goto(base + "/login");
    // The login field has the focus on arrival; type, Tab to the password,
    // type, Enter.
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === "login");
    await page.keyboard.type("alice");
    await page.keyboard.press("Tab");
    equal(await page.evaluate(() => document.activeElement.id), "password", "Tab moves to the password");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Enter");
    await page.waitForURL(base + "/alerts", { timeout: 10000 }).catch(() => {});
    if (!page.url().endsWith("/alerts")) {
      const why = await page.locator("main").textContent();
      throw new Error(`keyboard sign-in did not reach the alerts (${page.url()}): ${why}`);
    }
    // The first Tab reaches the skip link, which moves focus to the content.
    await page.keyboard.press("Tab");
    equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content", "skip link first");
    await page.keyboard.press("Enter");
    await page.waitForURL(/#main$/, { timeout: 5000 });
    await ctx.close();
  }],

  ["two nodes on PostgreSQL: an alert that arrives at one appears live in a list open on the other", async () => {
    const pg = process.env.TOCSIN_TEST_POSTGRES_URL;
    if (!pg) {
      if (process.env.CI) throw new Error("TOCSIN_TEST_POSTGRES_URL is not set (scripts/test starts PostgreSQL)");
      console.log("      (skipped: TOCSIN_TEST_POSTGRES_URL is not set)");
      return;
    }
    const dbName = `browser_${Date.now()}`;
    const psql = spawnSync("psql", [pg, "-q", "-c", `CREATE DATABASE ${dbName}`], { encoding: "utf8" });
    if (psql.status !== 0) throw new Error(`psql: ${psql.stderr}`);
    const db = pg.replace(/\/[^/]*$/, `/${dbName}`);
    const dir = scratch("pg");
    const h = await sink();
    const [pa, pb] = [await freePort(), await freePort()];
    const a = await serve(dir, "node-a", config({ port: pa, db, hook: h.url }), pa);
    const b = await serve(dir, "node-b", config({ port: pb, db, hook: h.url }), pb);
    setPassword(a.config, "bob");
    const ctx = await context();
    const page = await signIn(ctx, a.base, "bob");
    await page.waitForSelector("#alert-list[data-connected='1']", { state: "attached" });
    const id = await fire(b.base, "OtherNode");
    await page.locator(`#alert-${id}`).waitFor({ timeout: 2500 });
    // The session is a row: node B honours the cookie node A set.
    const onB = await ctx.newPage();
    await onB.goto(`${b.base}/alerts/${id}`);
    equal(onB.url(), `${b.base}/alerts/${id}`, "signed in on node B too");
    assert((await onB.locator("header .who").textContent()).includes("Bob Responder"), "as bob");
    // Accepted on node B through the API: node A's list shows it.
    await api(b.base, "POST", `/api/v1/alerts/${id}/accept`);
    await eventually("accepted shows on node A", async () =>
      (await page.locator(`#alert-${id} .badge`).textContent()) === "accepted", 2500);
    await ctx.close();
  }],
];

// Screenshots of the main pages at both widths, for the README.
if (process.env.SCREENSHOTS) {
  tests.push(["screenshots", async () => {
    const out = path.resolve(process.env.SCREENSHOTS);
    fs.mkdirSync(out, { recursive: true });
    const { base } = await mainServer();
    await fire(base, "CertificateExpiry", "warning");
    const accepted = await fire(base, "QueueBacklog", "critical");
    await api(base, "POST", `/api/v1/alerts/${accepted}/accept`);
    await fire(base, "DiskFillingUp", "warning");
    const id = await fire(base, "HighLatency", "critical");
    await api(base, "POST", `/api/v1/alerts/${id}/comment`, { text: "Looking at the p99 graph now." });
    await eventually("the page went out", async () => (await api(base, "GET", `/api/v1/alerts/${id}`)).json.notifications.length > 0);
    const shots = [
      ["alerts", "/alerts"], ["alert", `/alerts/${id}`], ["schedule", "/schedules/sre-rota"], ["oncall", "/oncall"],
      ["source", "/catalog/sources/prometheus"], ["profile", "/profile"], ["audit", "/admin/audit"],
    ];
    for (const [label, width] of Object.entries(WIDTHS)) {
      const ctx = await context(width);
      const login = await ctx.newPage();
      await login.goto(base + "/login");
      await login.screenshot({ path: `${out}/ui-login-${label}.png` });
      const page = await signIn(ctx, base, "alice");
      for (const [name, p] of shots) {
        await page.goto(base + p);
        await page.screenshot({ path: `${out}/ui-${name}-${label}.png` });
      }
      await ctx.close();
    }
  }]);
}

await run(tests);
