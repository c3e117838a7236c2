// Browser scenarios for the Settings → API Keys page, run by tests/local/test_console_browser.py.
// One headless Chromium serves the whole module: each stdin line is a JSON command
//   {"scenario": <name>, "account": <a fresh account>, "env": {<extra variables>}}
// run in a fresh browser context (no cookies or storage carried over), answered by one JSON line
// of facts on stdout. By hand, one scenario: `ACCOUNT=… node console.mjs <scenario>`.
// env: CONSOLE_URL (the local server), SCREENSHOT_DIR, CHROMIUM.
// playwright-core drives Debian's chromium; every request goes to 127.0.0.1 (the Cognito
// scenario answers the hosted-UI URLs inside the browser, as AWS cannot run here).
// Prints one JSON line of facts for pytest to assert on; exits 1 on a failed step.
import assert from "node:assert/strict";
import { createHash, createSign } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const BASE = process.env.CONSOLE_URL;
let ACCOUNT = process.env.ACCOUNT; // each command names its own
const SHOTS = process.env.SCREENSHOT_DIR;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const KEY_PATTERN = /^ot_[A-Za-z0-9]{38}$/;
let facts = {}; // what the running scenario reports

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true, animations: "disabled" });
}

async function api(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function mintToken(account, plan = null) {
  const reply = await api("POST", "/_local/login", { body: { account, plan } });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.token;
}

const sessionToken = (page) => page.evaluate(() => sessionStorage.getItem("apikeys.token"));
const activeId = (page) => page.evaluate(() => document.activeElement && document.activeElement.id);
/** Focus moves in the dialog's close event, a task after the dialog hides: give it a moment. */
async function focusSettles(page, predicate, arg) {
  await page.waitForFunction(predicate, arg, { timeout: 3000 }).catch(() => {});
}
const nameField = (page) => page.locator("#create-form").getByLabel("Name");
const button = (page, name) => page.getByRole("button", { name, exact: true });

async function signIn(page, plan = "pro") {
  await page.goto(BASE + "/");
  await page.getByRole("heading", { name: "Sign in to manage API keys" }).waitFor();
  await page.getByLabel("Account").fill(ACCOUNT);
  await page.getByLabel("Plan").selectOption(plan);
  await button(page, "Sign in").click();
  await page.getByRole("heading", { name: "API Keys", level: 1 }).waitFor();
}

/** Create a key through the page; returns the full key read from the one-time dialog. */
async function createKey(page, name) {
  await nameField(page).fill(name);
  await button(page, "Create API Key").click();
  const dialog = page.getByRole("dialog", { name: "API key created" });
  await dialog.waitFor();
  const key = await dialog.getByLabel("Your new API key").inputValue();
  assert.match(key, KEY_PATTERN);
  await button(page, "I've saved my key").click();
  await dialog.waitFor({ state: "hidden" });
  await page.locator("#keys-body tr", { hasText: name }).first().waitFor();
  return key;
}

async function pageHoldsKey(page, key) {
  return page.evaluate((secret) => {
    const values = [...document.querySelectorAll("input, textarea")].map((el) => el.value);
    const storage = [...Object.values(sessionStorage), ...Object.values(localStorage)];
    return document.documentElement.outerHTML.includes(secret) || document.body.innerText.includes(secret)
      || values.some((v) => v.includes(secret)) || storage.some((v) => v.includes(secret));
  }, key);
}

function usage(page) {
  return page.locator("#usage").innerText();
}

// ------------------------------------------------------------------------- scenarios

const scenarios = {
  /** Create → shown once → copy → authorizes → masked only → delete with confirmation → 401. */
  async lifecycle(page) {
    await page.goto(BASE + "/");
    await page.getByRole("heading", { name: "Sign in to manage API keys" }).waitFor();
    await shot(page, "01-sign-in");
    await signIn(page);
    await page.getByText("No API keys yet.").waitFor();
    facts.empty_usage = await usage(page);
    await shot(page, "02-empty");

    // The name's validation message is the API's own.
    const token = await sessionToken(page);
    const refused = await api("POST", "/keys", { token, body: { name: "   " } });
    assert.equal(refused.status, 400);
    await nameField(page).fill("   ");
    await button(page, "Create API Key").click();
    const nameError = page.locator("#key-name-error");
    await nameError.waitFor();
    facts.validation_message = await nameError.innerText();
    facts.api_validation_message = refused.body.error.message;
    facts.name_invalid = await nameField(page).getAttribute("aria-invalid");
    await shot(page, "03-validation");

    // Create: the dialog shows the full key once, with the warning, focus on the key.
    await nameField(page).fill("Zapier Integration");
    await button(page, "Create API Key").click();
    const dialog = page.getByRole("dialog", { name: "API key created" });
    await dialog.waitFor();
    facts.dialog_warning = await dialog.locator("#secret-warning").innerText();
    facts.focus_in_dialog = await activeId(page);
    const shown = await dialog.getByLabel("Your new API key").inputValue();
    facts.key_format_ok = KEY_PATTERN.test(shown);
    facts.name_error_cleared = await nameError.isHidden();
    await shot(page, "04-key-created");

    await button(page, "Copy").click();
    await page.getByText("Copied to the clipboard.").waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    facts.copied_equals_shown = copied === shown;
    const whoami = await api("GET", "/v1/whoami", { token: copied });
    facts.whoami_before = whoami.status;
    facts.whoami_account = whoami.body && whoami.body.account_id;

    await button(page, "I've saved my key").click();
    await dialog.waitFor({ state: "hidden" });
    await focusSettles(page, () => document.activeElement.id === "key-name");
    facts.focus_after_dialog = await activeId(page);
    facts.key_left_in_page = await pageHoldsKey(page, copied);
    const row = page.locator("#keys-body tr", { hasText: "Zapier Integration" });
    await row.waitFor();
    facts.row_display = await row.locator("code.masked").innerText();
    facts.expected_display = `${copied.slice(0, 7)}…${copied.slice(-4)}`;
    facts.rows = await page.locator("#keys-body tr").count();
    facts.usage_after_create = await usage(page);

    // Reload: still signed in (this tab), last used is now set, with the exact time on hover.
    // The authorizer records the use on a background thread: wait until the API lists it.
    const deadline = Date.now() + 15000;
    let lastUsedAt = null;
    while (Date.now() < deadline && !lastUsedAt) {
      const listed = await api("GET", "/keys", { token });
      lastUsedAt = listed.body.keys.find((k) => k.last_used_at)?.last_used_at ?? null;
      if (!lastUsedAt) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(lastUsedAt, "the API never listed the key's use");
    // The page's clock is pinned relative to the recorded use, so the wording does not depend
    // on how long the steps above took: 10 s after it, then 5 minutes after it.
    await page.clock.setFixedTime(Date.parse(lastUsedAt) + 10_000);
    await page.reload();
    await row.waitFor();
    const lastUsed = row.locator('td[data-label="Last used"] time');
    await lastUsed.waitFor();
    facts.last_used_text = await lastUsed.innerText();
    facts.last_used_title = await lastUsed.getAttribute("title");
    await page.clock.setFixedTime(Date.parse(lastUsedAt) + 5 * 60_000);
    await page.reload();
    await lastUsed.waitFor();
    facts.last_used_text_later = await lastUsed.innerText();
    facts.key_left_after_reload = await pageHoldsKey(page, copied);
    await shot(page, "05-list");

    // Delete: the confirmation names the key and the 401; Escape cancels, focus comes back.
    const deleteButton = row.getByRole("button", { name: "Delete Zapier Integration" });
    await deleteButton.click();
    const confirm = page.getByRole("dialog", { name: "Delete “Zapier Integration”?" });
    await confirm.waitFor();
    facts.confirm_text = await confirm.locator("#delete-text").innerText();
    facts.focus_on_cancel = await activeId(page);
    await shot(page, "06-delete-confirm");
    await page.keyboard.press("Escape");
    await confirm.waitFor({ state: "hidden" });
    await focusSettles(page, () => document.activeElement.textContent.trim().startsWith("Delete"));
    facts.focus_back_on_delete = await page.evaluate(() => document.activeElement.textContent.trim());
    facts.whoami_after_cancel = (await api("GET", "/v1/whoami", { token: copied })).status;

    await page.keyboard.press("Enter"); // the focused Delete button reopens the confirmation
    await confirm.waitFor();
    await confirm.getByRole("button", { name: "Delete key" }).click();
    await confirm.waitFor({ state: "hidden" });
    await page.getByText("No API keys yet.").waitFor();
    facts.usage_after_delete = await usage(page);
    facts.whoami_after_delete = (await api("GET", "/v1/whoami", { token: copied })).status;
    await shot(page, "07-deleted");
  },

  /** At the plan's cap the page shows the API's key_limit_reached message. */
  async limit(page) {
    await signIn(page, "pro");
    for (const name of ["Zapier Integration", "CI pipeline", "Reporting job"]) await createKey(page, name);
    facts.usage_at_cap = await usage(page);
    facts.usage_at_cap_class = await page.locator("#usage").getAttribute("class");
    await nameField(page).fill("One too many");
    await button(page, "Create API Key").click();
    const hint = page.locator("#limit-hint");
    await hint.waitFor();
    facts.limit_hint = await hint.innerText();
    facts.dialog_opened = await page.getByRole("dialog").isVisible();
    const direct = await api("POST", "/keys", { token: await sessionToken(page), body: { name: "direct" } });
    facts.api_limit_status = direct.status;
    facts.api_limit_code = direct.body.error.code;
    facts.api_limit_message = direct.body.error.message;
    facts.rows = await page.locator("#keys-body tr").count();
    await shot(page, "08-limit");

    // Deleting one frees a slot: the hint goes away.
    await page.getByRole("button", { name: "Delete CI pipeline" }).click();
    await page.getByRole("button", { name: "Delete key" }).click();
    await page.locator("#keys-body tr", { hasText: "CI pipeline" }).waitFor({ state: "detached" });
    facts.hint_hidden_after_delete = await hint.isHidden();
    facts.usage_after_delete = await usage(page);
  },

  /** Issue 24 item 5: within ExpiryNoticeDays (7 by default) of its expiry a key's row says
   * "Expires in N days" in the warning style, in UTC days as the ApiKeyExpiring event counts. */
  async expiring(page) {
    await signIn(page, "advanced");
    const expiry = page.locator("#create-form").getByLabel("Expires");
    await expiry.selectOption({ label: "In 7 days" });
    await createKey(page, "Trial integration");
    await expiry.selectOption({ label: "In 30 days" });
    await createKey(page, "Monthly report");
    await createKey(page, "Never expires");
    const cell = (name) => page.locator("#keys-body tr", { hasText: name }).locator('td[data-label="Expires"]');
    const warning = cell("Trial integration").locator(".badge.expiring");
    facts.soon_text = await warning.innerText();
    facts.soon_title = await warning.getAttribute("title");
    facts.soon_colors = await warning.evaluate((el) => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color]);
    facts.later_text = await cell("Monthly report").innerText();
    facts.never_text = await cell("Never expires").innerText();
    facts.warnings = await page.locator("#keys-body .badge.expiring").count();
    await shot(page, "14-expiring");

    // A key on its last day but one (made through the API: the form offers 7 days at least).
    const token = await sessionToken(page);
    assert.equal((await api("POST", "/keys", { token, body: { name: "Short trial", expires_in_days: 1 } })).status, 201);
    await page.reload();
    await page.locator("#keys-body tr", { hasText: "Short trial" }).waitFor();
    facts.last_day_text = await cell("Short trial").innerText();
    // The page's clock a day before the 7-day key's window (back: the session stays valid).
    const listed = await api("GET", "/keys", { token });
    const expiresAt = Date.parse(listed.body.keys.find((k) => k.name === "Trial integration").expires_at);
    await page.clock.setFixedTime(expiresAt - 8 * 86400_000);
    await page.reload();
    await page.locator("#keys-body tr", { hasText: "Trial integration" }).waitFor();
    facts.before_window_text = await cell("Trial integration").innerText();
    facts.before_window_warnings = await page.locator("#keys-body .badge.expiring").count();
  },

  /** After a downgrade below the key count: the keys keep working, the page says why nothing
   * can be created or rolled and how many keys to delete; the API refuses the roll. */
  async overlimit(page) {
    await signIn(page, "advanced");
    const keys = [];
    for (const name of ["One", "Two", "Three", "Four"]) keys.push(await createKey(page, name));
    await button(page, "Sign out").click();
    await signIn(page, "pro"); // the billing system moves the account down to Pro (3 keys)
    const notice = page.locator("#over-limit");
    await notice.waitFor();
    facts.over_limit_notice = await notice.innerText();
    facts.usage_over = await usage(page);
    facts.whoami_over = (await api("GET", "/v1/whoami", { token: keys[0] })).status;
    const listing = await api("GET", "/keys", { token: await sessionToken(page) });
    const roll = await api("POST", `/keys/${listing.body.keys[0].id}/roll`, { token: await sessionToken(page) });
    facts.roll_status = roll.status;
    facts.roll_code = roll.body.error.code;
    facts.roll_message = roll.body.error.message;
    await shot(page, "08b-over-limit");
    await page.getByRole("button", { name: "Delete One" }).click();
    await page.getByRole("button", { name: "Delete key" }).click();
    await page.locator("#keys-body tr", { hasText: "One" }).waitFor({ state: "detached" });
    facts.notice_hidden_at_limit = await notice.isHidden();
  },

  /** First hour: a new account signed in with "Keep the account's plan" starts on Pro; an
   * account without a plan (its GET /keys answer simulated in the browser, as a cancelled
   * subscription would give) is told what to do instead of "Delete a key or upgrade". */
  async firsthour(page) {
    await signIn(page, "");
    await page.getByText("No API keys yet.").waitFor();
    facts.new_account_usage = await usage(page);
    await button(page, "Sign out").click();
    await page.route("**/keys", (route) =>
      route.request().method() === "GET"
        ? route.fulfill({ status: 200, contentType: "application/json",
            body: JSON.stringify({ keys: [], plan: null, key_limit: 0, key_count: 0 }) })
        : route.continue(),
    );
    await signIn(page, "");
    const notice = page.locator("#over-limit");
    await notice.waitFor();
    facts.planless_notice = await notice.innerText();
    facts.planless_usage = await usage(page);
    await shot(page, "08c-no-plan");
  },

  /** Roll with a grace period shows the new key once and lists both; rename; phone width. */
  async roll(page) {
    await signIn(page, "pro");
    const oldKey = await createKey(page, "Production server");
    await page.getByRole("button", { name: "Roll Production server" }).click();
    const rollDialog = page.getByRole("dialog", { name: "Roll “Production server”?" });
    await rollDialog.waitFor();
    facts.roll_focus = await activeId(page);
    await rollDialog.getByLabel("Keep the old key working for").selectOption({ label: "1 hour" });
    await shot(page, "09-roll-dialog");
    await rollDialog.getByRole("button", { name: "Roll key" }).click();
    const secret = page.getByRole("dialog", { name: "New key for “Production server”" });
    await secret.waitFor();
    const newKey = await secret.getByLabel("Your new API key").inputValue();
    facts.new_key_format_ok = KEY_PATTERN.test(newKey);
    facts.new_key_differs = newKey !== oldKey;
    facts.roll_context = await secret.locator("#secret-context").innerText();
    facts.old_display = `${oldKey.slice(0, 7)}…${oldKey.slice(-4)}`;
    await shot(page, "10-rolled-key");
    await button(page, "I've saved my key").click();
    await secret.waitFor({ state: "hidden" });
    await page.locator("#keys-body tr").nth(1).waitFor();
    facts.statuses = await page.locator("#keys-body .badge").allInnerTexts();
    facts.rolling_expires = await page.locator("#keys-body tr", { hasText: "Rolling out" })
      .locator('td[data-label="Expires"] time').getAttribute("datetime");
    facts.usage_after_roll = await usage(page);
    facts.whoami_old = (await api("GET", "/v1/whoami", { token: oldKey })).status;
    facts.whoami_new = (await api("GET", "/v1/whoami", { token: newKey })).status;
    facts.keys_left_in_page = (await pageHoldsKey(page, oldKey)) || (await pageHoldsKey(page, newKey));

    // Rename the active key; the API's validation message for a too-long name.
    const activeRow = page.locator("#keys-body tr", { hasText: "Active" });
    await activeRow.getByRole("button", { name: "Rename Production server" }).click();
    const rename = page.getByRole("dialog", { name: "Rename API key" });
    await rename.waitFor();
    await rename.getByLabel("New name").fill("x".repeat(65));
    await rename.getByRole("button", { name: "Save" }).click();
    await rename.locator("#rename-error").waitFor();
    facts.rename_error = await rename.locator("#rename-error").innerText();
    await rename.getByLabel("New name").fill("Production server (eu-west-1)");
    await rename.getByRole("button", { name: "Save" }).click();
    await rename.waitFor({ state: "hidden" });
    await page.locator("#keys-body tr", { hasText: "Production server (eu-west-1)" }).waitFor();
    facts.names = await page.locator("#keys-body .key-name").allInnerTexts();

    // A fuller account for the README's picture: two more keys fill the Pro plan.
    await createKey(page, "Zapier Integration");
    await createKey(page, "Nightly reporting job");
    await api("GET", "/v1/whoami", { token: newKey });
    await page.reload();
    await page.locator("#keys-body tr").nth(3).waitFor();
    facts.usage_full = await usage(page);
    await page.locator("body").evaluate(() => document.activeElement.blur());
    await shot(page, "11-overview");

    // Phone width: no sideways scrolling, every action still reachable.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => window.innerWidth === 390);
    facts.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    facts.phone_delete_visible = await page.getByRole("button", { name: "Delete Zapier Integration" }).isVisible();
    await shot(page, "12-phone");
    await page.getByRole("button", { name: "Delete Zapier Integration" }).click();
    await page.getByRole("dialog", { name: "Delete “Zapier Integration”?" }).waitFor();
    await shot(page, "13-phone-delete");
  },

  /** Loading, the API unreachable (then a retry), and a session the API refuses. */
  /** Create a key restricted to one scope from the API's catalogue; the list shows it; the
   * rename dialog narrows it to another scope, which API Gateway enforces on the next request. */
  async scopes(page) {
    await signIn(page, "pro");
    const form = page.locator("#create-form");
    await form.getByRole("checkbox", { name: "whoami" }).waitFor();
    facts.offered = await form.locator("#key-scopes label").allInnerTexts();
    facts.boxes_disabled_when_full = await form.getByRole("checkbox", { name: "whoami" }).isDisabled();
    await form.getByLabel("Only these scopes:").check();
    await form.getByRole("checkbox", { name: "whoami" }).check();
    const key = await createKey(page, "Cron job");
    const row = page.locator("#keys-body tr", { hasText: "Cron job" });
    facts.listed_scopes = await row.locator('td[data-label="Scopes"]').innerText();
    facts.reset_to_full = await form.getByLabel("Full access").isChecked();
    facts.whoami_scoped = (await api("GET", "/v1/whoami", { token: key })).status;
    await shot(page, "14-scoped-key");

    await row.getByRole("button", { name: "Rename Cron job" }).click();
    const dialog = page.getByRole("dialog", { name: "Rename API key" });
    await dialog.waitFor();
    facts.dialog_whoami_checked = await dialog.getByRole("checkbox", { name: "whoami" }).isChecked();
    await dialog.getByRole("checkbox", { name: "whoami" }).uncheck();
    await dialog.getByRole("checkbox", { name: "mcp" }).check();
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "hidden" });
    await page.locator("#keys-body tr", { hasText: "Cron job" }).locator('td[data-label="Scopes"]', { hasText: "mcp" })
      .waitFor();
    facts.listed_after_patch = await row.locator('td[data-label="Scopes"]').innerText();
    facts.whoami_after_patch = (await api("GET", "/v1/whoami", { token: key })).status;
    facts.key_left_in_page = await pageHoldsKey(page, key);
  },

  async states(page) {
    await signIn(page, "pro");
    await createKey(page, "Staging");

    // Loading: hold the list request back until the screenshot is taken.
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await page.route("**/keys", async (route) => {
      if (route.request().method() === "GET") await held;
      await route.continue();
    });
    await page.reload();
    await page.getByText("Loading keys…").waitFor();
    facts.loading_busy = await page.locator(".list").getAttribute("aria-busy");
    await shot(page, "14-loading");
    release();
    await page.locator("#keys-body tr", { hasText: "Staging" }).waitFor();
    await page.unroute("**/keys");

    // The API cannot be reached: an error state with a retry that recovers.
    await page.route("**/keys", (route) => route.abort("connectionrefused"));
    await page.reload();
    const error = page.locator("#list-error");
    await error.waitFor();
    facts.error_text = await error.innerText();
    await shot(page, "15-error");
    await page.unroute("**/keys");
    await button(page, "Try again").click();
    await page.locator("#keys-body tr", { hasText: "Staging" }).waitFor();
    facts.recovered = await error.isHidden();

    // A session the API no longer accepts: back to sign-in, with the API's message.
    await page.evaluate(() => {
      const claims = btoa(JSON.stringify({ sub: "x", exp: Math.floor(Date.now() / 1000) + 3600 }));
      sessionStorage.setItem("apikeys.token", `e30.${claims.replace(/=+$/, "")}.c2ln`);
    });
    await page.reload();
    const message = page.locator("#sign-in-message");
    await message.waitFor();
    facts.session_message = await message.innerText();
    facts.api_unauthorized_message = (await api("GET", "/keys", { token: "e30.e30.c2ln" })).body.error.message;
    await shot(page, "16-session-ended");
  },

  /** Cognito hosted sign-in, as against a deployed stack: config.js in Cognito mode. */
  async cognito(page) {
    await signIn(page, "pro");
    await createKey(page, "Staging");
    await page.evaluate(() => sessionStorage.clear());

    // Cognito hosted sign-in (authorization code + PKCE). Cognito is AWS and cannot run here,
    // so its two endpoints are answered in the browser; the ID token is a local IdP token that
    // the local API really verifies.
    const idToken = await mintToken(ACCOUNT);
    const domain = "https://auth.console.test";
    const seen = {};
    await page.route("**/config.js", (route) => route.fulfill({
      contentType: "text/javascript",
      body: `window.APIKEYS_CONFIG = {apiBaseUrl: "", auth: {mode: "cognito", domain: "${domain}", clientId: "client123"}};`,
    }));
    await page.route(`${domain}/oauth2/authorize?**`, (route) => {
      const url = new URL(route.request().url());
      Object.assign(seen, Object.fromEntries(url.searchParams));
      const back = new URL(url.searchParams.get("redirect_uri"));
      back.search = new URLSearchParams({ code: "code-1", state: url.searchParams.get("state") }).toString();
      return route.fulfill({ status: 302, headers: { Location: back.toString() } });
    });
    await page.route(`${domain}/oauth2/token`, (route) => {
      const form = new URLSearchParams(route.request().postData());
      const challenge = createHash("sha256").update(form.get("code_verifier") || "").digest("base64url");
      seen.token_request_ok = form.get("grant_type") === "authorization_code" && form.get("code") === "code-1"
        && form.get("client_id") === "client123" && challenge === seen.code_challenge;
      return route.fulfill({
        status: seen.token_request_ok ? 200 : 400,
        headers: { "Access-Control-Allow-Origin": "*" },
        contentType: "application/json",
        body: JSON.stringify(seen.token_request_ok ? { id_token: idToken, token_type: "Bearer" } : { error: "invalid_grant" }),
      });
    });
    await page.goto(BASE + "/");
    await button(page, "Sign in").click();
    await page.locator("#keys-body tr", { hasText: "Staging" }).waitFor();
    facts.cognito = {
      response_type: seen.response_type, client_id: seen.client_id, method: seen.code_challenge_method,
      redirect_uri: seen.redirect_uri, token_request_ok: seen.token_request_ok,
    };
    facts.url_after_sign_in = page.url();
    facts.account_shown = await page.locator("#account-name").innerText();
  },

  /** Issue 22 item 1: a route the hosting does not forward reaches the S3 origin, which answers
   * 403 with XML. The page says what could not be loaded instead of an empty notice list or a
   * silent "Full access" only; the keys still load. */
  async unrouted(page) {
    const s3 = (route) => route.fulfill({
      status: 403,
      contentType: "application/xml",
      body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
    });
    await page.route(`${BASE}/scopes`, s3);
    await page.route(`${BASE}/revocations`, s3);
    await signIn(page);
    await createKey(page, "Still listed");
    const visibleText = async (selector) => {
      const element = page.locator(selector);
      if ((await element.count()) === 0 || (await element.isHidden())) return null;
      return element.innerText();
    };
    await page.waitForFunction(() => {
      const shown = (id) => document.getElementById(id) && !document.getElementById(id).hidden;
      return shown("revocations-error") && shown("scopes-error");
    }, null, { timeout: 3000 }).catch(() => {});
    facts.rows = await page.locator("#keys-body tr").count();
    facts.revocations_error = await visibleText("#revocations-error");
    facts.scopes_error = await visibleText("#scopes-error");
    await shot(page, "console-unrouted");
    // Routed again (a redeploy): the next load clears both messages.
    await page.unroute(`${BASE}/scopes`);
    await page.unroute(`${BASE}/revocations`);
    await page.reload();
    await page.locator("#keys-body tr", { hasText: "Still listed" }).waitFor();
    await page.waitForFunction(() => {
      const hidden = (id) => !document.getElementById(id) || document.getElementById(id).hidden;
      return hidden("revocations-error") && hidden("scopes-error") && document.querySelectorAll("#key-scopes input").length > 0;
    }, null, { timeout: 5000 }).catch(() => {});
    facts.revocations_error_after = await visibleText("#revocations-error");
    facts.scopes_error_after = await visibleText("#scopes-error");
    facts.scope_boxes_after = await page.locator("#key-scopes input").count();
  },

  /** A key GitHub finds in a public repo: the signed report revokes it, the next request with
   * it is refused, and the page says which key, when and where it was found.
   * env: GITHUB_KEY_ID and GITHUB_KEY_PEM, the test's own P-256 key (served as GitHub's). */
  async leaked(page) {
    await signIn(page);
    const key = await createKey(page, "CI deploy key");
    await createKey(page, "Kept");
    facts.whoami_before = (await api("GET", "/v1/whoami", { token: key })).status;
    facts.notice_hidden_before = await page.locator("#leaked-keys").isHidden();
    const url = "https://github.com/octo/app/blob/main/.env";
    const body = JSON.stringify([{ token: key, type: "ot_api_key", url, source: "content" }]);
    const signature = createSign("SHA256").update(body).sign(process.env.GITHUB_KEY_PEM).toString("base64");
    const response = await fetch(BASE + "/secret-scanning/github", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Github-Public-Key-Identifier": process.env.GITHUB_KEY_ID,
        "Github-Public-Key-Signature": signature,
      },
      body,
    });
    facts.report_status = response.status;
    facts.report_label = (await response.json())[0].label;
    facts.whoami_after = (await api("GET", "/v1/whoami", { token: key })).status;
    await page.reload();
    const notice = page.locator("#leaked-keys");
    await notice.waitFor();
    facts.notice_text = await notice.locator("li").innerText();
    facts.notice_link = await notice.locator("li a").getAttribute("href");
    facts.notice_time_title = await notice.locator("li time").getAttribute("title");
    facts.rows = await page.locator("#keys-body tr").count();
    facts.usage = await usage(page);
    facts.key_in_page = await pageHoldsKey(page, key);
    await shot(page, "20-leaked-key-notice");
  },

  /** Issue 23: each key's requests of the last 30 days as bars with the total, read by eye and by
   * a screen reader, and who created it. The test seeded the keys and their counts (USAGE_KEYS). */
  async usage(page) {
    const seeded = JSON.parse(process.env.USAGE_KEYS);
    await signIn(page, "pro");
    await page.locator("#keys-body tr").nth(seeded.length - 1).waitFor();
    facts.keys = {};
    for (const key of seeded) {
      const row = page.locator(`#keys-body tr[data-key-id="${key.id}"]`);
      const chart = row.locator('td[data-label="Requests, last 30 days"] svg');
      const bars = chart.locator("rect");
      const label = await chart.getAttribute("aria-label");
      facts.keys[key.name] = {
        role: await chart.getAttribute("role"),
        label,
        // What assistive technology gets: one image, named by its text.
        images_named: await page.getByRole("img", { name: label, exact: true }).count(),
        bars: await bars.evaluateAll((all) => all.map((bar) => Number(bar.dataset.requests))),
        dates: await bars.evaluateAll((all) => all.map((bar) => bar.dataset.date)),
        heights: await bars.evaluateAll((all) => all.map((bar) => Number(bar.getAttribute("height")))),
        last_tip: await bars.last().locator("title").textContent(),
        total: await row.locator(".requests-total").innerText(),
        created_by: await row.locator(".created-by").innerText(),
      };
    }
    await page.locator("body").evaluate(() => document.activeElement.blur());
    await shot(page, "14-requests");

    // Phone width: the chart keeps its 30 bars inside the screen, and nothing scrolls sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => window.innerWidth === 390);
    facts.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    facts.phone_charts = await page.locator("#keys-body svg.bars").evaluateAll((charts) =>
      charts.map((chart) => {
        const box = chart.getBoundingClientRect();
        return { left: box.left, right: box.right, width: box.width, viewport: window.innerWidth };
      }),
    );
    await shot(page, "15-requests-phone");
  },
};

// ------------------------------------------------------------------------- run

if (!BASE || !SHOTS || (process.argv[2] && !scenarios[process.argv[2]])) {
  console.error(`usage: CONSOLE_URL=… SCREENSHOT_DIR=… node console.mjs [<${Object.keys(scenarios).join("|")}>]`);
  process.exit(2);
}
await mkdir(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true, // Playwright adds --headless
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
  ],
});

/** One scenario in a context of its own; its facts, with the page's errors and any failure. */
async function run(name) {
  facts = {};
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    permissions: ["clipboard-read", "clipboard-write"],
    locale: "en-US",
    timezoneId: "UTC",
    // The local server's CSP allows only its own origin, as the page needs locally; a deployed
    // page's CSP adds the Cognito domain (README). The Cognito scenario stands in for that.
    bypassCSP: name === "cognito",
  });
  context.setDefaultTimeout(20000);
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(String(err)));
  let error = null;
  try {
    await scenarios[name](page);
  } catch (err) {
    error = String(err.stack || err);
    await shot(page, `failed-${name}`).catch(() => {});
  }
  await context.close();
  return { ...facts, page_errors: pageErrors, error };
}

if (process.argv[2]) {
  const answer = await run(process.argv[2]);
  console.log(JSON.stringify(answer));
  await browser.close();
  process.exit(answer.error ? 1 : 0);
}
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  ACCOUNT = command.account;
  Object.assign(process.env, command.env || {});
  console.log(JSON.stringify(await run(command.scenario)));
}
await browser.close();
