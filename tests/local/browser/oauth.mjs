// One headless Chromium for tests/local/test_oauth_e2e.py, driven by JSON commands on stdin (one
// per line), answering one JSON line each on stdout, so a module shares one browser:
//   {"cmd": "approve", "url": <authorization URL>, "account": A, "action": "Allow"|"Deny", "refused"?: true}
//      opens the URL as a person would, signs in on the console if asked (dev login as A), reads
//      the consent screen, clicks the button and answers the URL the browser ended on (or, when
//      the answer is expected to be refused, the error the page shows).
//   {"cmd": "delete", "name": <key name>}  deletes the key in the console, as a person would.
//   {"cmd": "quit"}
// env: CONSOLE_URL (the local server), SCREENSHOT_DIR, CHROMIUM.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const BASE = process.env.CONSOLE_URL;
const SHOTS = process.env.SCREENSHOT_DIR;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

await mkdir(SHOTS, { recursive: true });
const profile = await mkdtemp(join(tmpdir(), "oauth-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
  locale: "en-US",
  timezoneId: "UTC",
});
context.setDefaultTimeout(20000);
const page = context.pages()[0] || (await context.newPage());
const pageErrors = [];
page.on("pageerror", (err) => pageErrors.push(String(err)));
const button = (name) => page.getByRole("button", { name, exact: true });
const text = (id) => page.locator(`#${id}`).innerText();

let signedInAs = null;

async function approve({ url, account, action, refused = false }) {
  if (signedInAs !== account) {
    // Another user: sign the last one out (the tab's sessionStorage holds the sign-in).
    if (!page.url().startsWith(BASE)) await page.goto(BASE + "/");
    await page.evaluate(() => sessionStorage.removeItem("apikeys.token"));
  }
  await page.goto(url); // 302 to the console with ?consent=<id>
  const consentUrl = page.url();
  const signIn = page.getByRole("heading", { name: "Sign in to manage API keys" });
  const asked = page.locator("#consent-details");
  await Promise.race([signIn.waitFor(), asked.waitFor()]);
  let signedIn = false;
  if (await signIn.isVisible()) {
    await page.getByLabel("Account").fill(account);
    await button("Sign in").click();
    signedIn = true;
    signedInAs = account;
  }
  await asked.waitFor();
  const facts = {
    signed_in_as: await page.locator("#account-name").innerText(),
    consent_url: consentUrl,
    signed_in_here: signedIn,
    title: await page.getByRole("heading", { level: 1 }).first().innerText(),
    client: await text("consent-client"),
    host: await text("consent-host"),
    kind: await text("consent-kind"),
    key_name: await text("consent-key-name"),
    scopes: await text("consent-scopes"),
  };
  await page.screenshot({ path: join(SHOTS, `oauth-consent-${action.toLowerCase()}.png`), fullPage: true });
  if (refused) {
    // The answer is refused (a full plan): the page says why and stays.
    await button(action).click();
    const error = page.locator("#consent-error");
    await error.waitFor();
    await page.screenshot({ path: join(SHOTS, "oauth-consent-refused.png"), fullPage: true });
    return { ...facts, error: await error.innerText(), final_url: page.url() };
  }
  const done = page.waitForURL((target) => !target.href.startsWith(BASE), { waitUntil: "commit" });
  await button(action).click();
  await done;
  return { ...facts, final_url: page.url() };
}

async function remove({ name }) {
  await page.goto(BASE + "/");
  const row = page.locator("#keys-body tr", { hasText: name }).first();
  await row.waitFor();
  const badge = await row.locator(".badge.connection").innerText();
  await row.getByRole("button", { name: `Delete ${name}` }).click();
  await button("Delete key").click();
  await row.waitFor({ state: "detached" });
  await page.screenshot({ path: join(SHOTS, "oauth-deleted.png"), fullPage: true });
  return { badge };
}

const commands = { approve, delete: remove };
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  if (command.cmd === "quit") break;
  try {
    const result = await commands[command.cmd](command);
    console.log(JSON.stringify({ ok: true, ...result, page_errors: pageErrors }));
  } catch (err) {
    await page.screenshot({ path: join(SHOTS, `oauth-failed-${command.cmd}.png`), fullPage: true }).catch(() => {});
    console.log(JSON.stringify({ ok: false, error: String(err.stack || err), page_errors: pageErrors }));
  }
}
await context.close();
await rm(profile, { recursive: true, force: true });
