// Settings → API Keys: a plain-JS page over the management API (no build step, no CDN).
// A full key lives only in the one-time dialog's input while it is open; closing the dialog
// erases it, and nothing else on the page (or in storage) ever holds it.
"use strict";

(() => {
  const config = window.APIKEYS_CONFIG || {};
  const API = String(config.apiBaseUrl || "").replace(/\/+$/, "");
  const AUTH = config.auth || { mode: "local" };
  const STORE = window.sessionStorage; // the sign-in lasts for this tab only
  const $ = (id) => document.getElementById(id);

  const state = { keys: [], plan: null, limit: 0, count: 0, limitMessage: "", loaded: false, scopes: null, daily: null };

  // ---------------------------------------------------------------- formatting

  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const UNITS = [
    ["year", 365 * 86400], ["month", 30 * 86400], ["week", 7 * 86400],
    ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1],
  ];

  function relative(iso) {
    const seconds = (Date.parse(iso) - Date.now()) / 1000;
    if (Math.abs(seconds) < 45) return seconds < 0 ? "just now" : "in a few seconds";
    for (const [unit, size] of UNITS) {
      // 0.98: a span a few seconds short of a whole unit ("in 59.9 minutes") reads as that unit.
      if (Math.abs(seconds) >= size * 0.98 || unit === "second") return rtf.format(Math.round(seconds / size), unit);
    }
    return iso;
  }

  function exact(iso) {
    return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "long" });
  }

  /** A <time> showing a relative time, with the exact time on hover and for assistive tech. */
  function timeElement(iso) {
    const el = document.createElement("time");
    el.dateTime = iso;
    el.title = exact(iso);
    el.textContent = relative(iso);
    el.setAttribute("aria-label", `${el.textContent} (${el.title})`);
    return el;
  }

  function refreshTimes() {
    for (const el of document.querySelectorAll("time[datetime]")) {
      el.textContent = relative(el.dateTime);
      el.setAttribute("aria-label", `${el.textContent} (${el.title})`);
    }
  }

  function planTitle(plan) {
    return plan ? plan.charAt(0).toUpperCase() + plan.slice(1) : "No plan";
  }

  function plural(n, noun) {
    return `${n} ${noun}${n === 1 ? "" : "s"}`;
  }

  /** After a downgrade: existing keys keep working (or, on a plan without keys, are kept but
   * refused) while creating and rolling wait for the count to fit the plan. */
  function overLimitNotice() {
    if (state.loaded && state.count === 0 && state.limit === 0) {
      // No plan (or one without keys): nothing to delete, so say how to get a plan.
      const what = state.plan ? `The ${planTitle(state.plan)} plan allows no API keys.` : "This account has no plan yet.";
      const how =
        AUTH.mode === "cognito"
          ? "Choose a plan (Pro allows 3 keys) to create your first key."
          : "Sign out and sign in again with a plan chosen, or run `apikeys-local plan set ACCOUNT pro`, then reload.";
      return `${what} ${how}`;
    }
    const has = `This account has ${plural(state.count, "API key")}`;
    if (state.count > 0 && state.limit === 0) {
      const owner = state.plan ? `the ${planTitle(state.plan)} plan allows` : "no plan, which allows";
      return `${has} and ${owner} none, so they are refused. They are kept: choose a plan to use them again.`;
    }
    const excess = state.count - state.limit;
    if (excess <= 0) return "";
    return (
      `${has} and the ${planTitle(state.plan)} plan allows ${state.limit}. They keep working, but keys ` +
      `cannot be created or rolled until you delete ${plural(excess, "key")} or upgrade your plan.`
    );
  }

  function quoted(name) {
    return `“${name}”`;
  }

  // ---------------------------------------------------------------- requests chart (issue 23)

  const SVG = "http://www.w3.org/2000/svg";
  const numbers = new Intl.NumberFormat();
  const BAR = 3; // px per day: a 2 px bar and a 1 px gap, 30 days in 90 px (fits a phone's row)
  const HEIGHT = 24;

  function requestsText(n) {
    return `${numbers.format(n)} ${n === 1 ? "request" : "requests"}`;
  }

  function shortDate(day) {
    return new Date(`${day}T00:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
  }

  /** A key's last 30 days as a bar chart (one bar a UTC day, oldest first, scaled to its busiest
   * day) and its total. A picture to the eye; to a screen reader one image with a text name,
   * "1,234 requests in the last 30 days". Each bar's tooltip gives its day and count. The total
   * is `requests_30d`; the bars come from the list's `requests_by_day`, read by the same query. */
  function requestsChart(key) {
    const days = (state.daily && state.daily.days) || [];
    const counts = (state.daily && state.daily.keys && state.daily.keys[key.id]) || days.map(() => 0);
    const total = key.requests_30d || 0;
    const label = `${requestsText(total)} in the last 30 days`;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "bars");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    svg.setAttribute("width", String(BAR * Math.max(days.length, 30)));
    svg.setAttribute("height", String(HEIGHT));
    svg.setAttribute("viewBox", `0 0 ${BAR * Math.max(days.length, 30)} ${HEIGHT}`);
    const title = document.createElementNS(SVG, "title");
    title.textContent = label;
    svg.append(title);
    const busiest = Math.max(0, ...counts);
    days.forEach((day, i) => {
      const n = counts[i] || 0;
      // A day without requests keeps a 1 px stub, so the 30 days stay visible; any request shows.
      const height = n === 0 ? 1 : Math.max(2, Math.round((n / busiest) * HEIGHT));
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("class", n === 0 ? "bar none" : "bar");
      bar.setAttribute("x", String(i * BAR));
      bar.setAttribute("y", String(HEIGHT - height));
      bar.setAttribute("width", String(BAR - 1));
      bar.setAttribute("height", String(height));
      bar.dataset.date = day;
      bar.dataset.requests = String(n);
      const tip = document.createElementNS(SVG, "title");
      tip.textContent = `${shortDate(day)}: ${requestsText(n)}`;
      bar.append(tip);
      svg.append(bar);
    });
    const figure = document.createElement("span");
    figure.className = "requests";
    const sum = Object.assign(document.createElement("span"), { className: "requests-total", textContent: numbers.format(total) });
    sum.setAttribute("aria-hidden", "true"); // the image's name says it already
    figure.append(svg, sum);
    return figure;
  }

  // ---------------------------------------------------------------- sign-in

  function decodeClaims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = decodeURIComponent(
        Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
      );
      return JSON.parse(json);
    } catch {
      return null;
    }
  }

  function currentToken() {
    const token = STORE.getItem("apikeys.token");
    const claims = token && decodeClaims(token);
    if (!claims || (claims.exp && claims.exp * 1000 <= Date.now())) {
      STORE.removeItem("apikeys.token");
      return null;
    }
    return { token, claims };
  }

  function redirectUri() {
    return AUTH.redirectUri || window.location.origin + window.location.pathname;
  }

  function base64url(bytes) {
    return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomString() {
    return base64url(crypto.getRandomValues(new Uint8Array(32)));
  }

  /** Cognito hosted sign-in: authorization code flow with PKCE (no client secret in a page). */
  async function startHostedSignIn() {
    const verifier = randomString();
    const stateParam = randomString();
    const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    STORE.setItem("apikeys.pkce", JSON.stringify({ verifier, state: stateParam }));
    const url = new URL("/oauth2/authorize", AUTH.domain);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: AUTH.clientId,
      redirect_uri: redirectUri(),
      scope: AUTH.scope || "openid email",
      state: stateParam,
      code_challenge: challenge,
      code_challenge_method: "S256",
    }).toString();
    window.location.assign(url.toString());
  }

  /** Back from the hosted sign-in with ?code=…&state=…: trade the code for the ID token. */
  async function finishHostedSignIn() {
    const params = new URLSearchParams(window.location.search);
    if (!params.has("code") && !params.has("error")) return;
    const saved = JSON.parse(STORE.getItem("apikeys.pkce") || "null");
    STORE.removeItem("apikeys.pkce");
    window.history.replaceState(null, "", redirectUri() + window.location.hash);
    if (params.has("error")) throw new Error(params.get("error_description") || params.get("error"));
    if (!saved || saved.state !== params.get("state")) throw new Error("The sign-in response did not match this page's request. Please sign in again.");
    const response = await fetch(new URL("/oauth2/token", AUTH.domain), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: AUTH.clientId,
        code: params.get("code"),
        redirect_uri: redirectUri(),
        code_verifier: saved.verifier,
      }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.id_token) throw new Error(body.error_description || body.error || "Sign-in failed. Please try again.");
    STORE.setItem("apikeys.token", body.id_token); // API Gateway's Cognito authorizer takes the ID token
  }

  /** Local server only: the emulator's dev-login endpoint mints a token from its identity provider. */
  async function devLogin(event) {
    event.preventDefault();
    const error = $("dev-login-error");
    error.hidden = true;
    const account = $("dev-account").value.trim();
    const plan = $("dev-plan").value;
    const button = event.submitter || event.target.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const body = await request("POST", "/_local/login", { account, plan: plan || null }, { auth: false });
      STORE.setItem("apikeys.token", body.token);
      enterConsole();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  function showSignIn(message) {
    $("console").hidden = true;
    $("account-bar").hidden = true;
    $("sign-in").hidden = false;
    const note = $("sign-in-message");
    note.textContent = message || "";
    note.hidden = !message;
    const hosted = AUTH.mode === "cognito";
    $("dev-login").hidden = hosted;
    $("hosted-login").hidden = !hosted;
    (hosted ? $("hosted-sign-in") : $("dev-account")).focus();
  }

  function signOut(message) {
    STORE.removeItem("apikeys.token");
    state.limitMessage = "";
    if (AUTH.mode === "cognito" && !message) {
      const url = new URL("/logout", AUTH.domain);
      url.search = new URLSearchParams({ client_id: AUTH.clientId, logout_uri: AUTH.logoutUri || redirectUri() }).toString();
      window.location.assign(url.toString());
      return;
    }
    showSignIn(message);
  }

  // ---------------------------------------------------------------- OAuth consent (issue 21)

  /** ?consent=<id> from the authorization server, kept in this tab until answered (through sign-in). */
  function pendingConsent() {
    const params = new URLSearchParams(window.location.search);
    const fromUrl = params.get("consent");
    if (fromUrl) {
      STORE.setItem("apikeys.consent", fromUrl);
      params.delete("consent");
      const rest = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (rest ? `?${rest}` : "") + window.location.hash);
    }
    return STORE.getItem("apikeys.consent");
  }

  function consentError(message) {
    const error = $("consent-error");
    error.textContent = message;
    error.hidden = false;
  }

  function leaveConsent() {
    STORE.removeItem("apikeys.consent");
    $("consent").hidden = true;
    $("console").hidden = false;
    state.loaded = false;
    loadKeys();
    loadScopes();
  }

  async function showConsent(requestId) {
    $("console").hidden = true;
    $("consent").hidden = false;
    $("consent-error").hidden = true;
    $("consent-details").hidden = true;
    $("consent-done").hidden = true;
    let asked;
    try {
      asked = await request("GET", `/oauth/consent/${encodeURIComponent(requestId)}`);
    } catch (err) {
      STORE.removeItem("apikeys.consent");
      consentError(err.status === 404 ? "This connection request has expired or was already answered. Start again from the app." : err.message);
      $("consent-done").hidden = false;
      return;
    }
    $("consent-title").textContent = `Connect ${asked.client_name}?`;
    $("consent-client").textContent = asked.client_name;
    $("consent-host").textContent = asked.redirect_host;
    $("consent-kind").textContent = asked.client_kind === "metadata"
      ? `its metadata URL ${asked.client_id}`
      : `a registration (client id ${asked.client_id})`;
    $("consent-key-name").textContent = asked.key_name;
    $("consent-scopes").textContent = asked.scopes.join(", ");
    $("consent-details").hidden = false;
    $("consent-allow").focus();
  }

  async function answerConsent(approve, button) {
    const requestId = STORE.getItem("apikeys.consent");
    if (!requestId) return leaveConsent();
    await busy(button, async () => {
      try {
        const answer = await request("POST", `/oauth/consent/${encodeURIComponent(requestId)}`, { approve });
        STORE.removeItem("apikeys.consent");
        window.location.assign(answer.redirect_to);
      } catch (err) {
        if (err.code !== "key_limit_reached") STORE.removeItem("apikeys.consent");
        consentError(err.message);
        if (err.code !== "key_limit_reached") $("consent-details").hidden = true;
        $("consent-done").hidden = false;
      }
    });
  }

  function enterConsole() {
    const session = currentToken();
    if (!session) return showSignIn();
    const c = session.claims;
    $("account-name").textContent = c.email || c["cognito:username"] || c.sub || "";
    $("sign-in").hidden = true;
    $("account-bar").hidden = false;
    const consent = STORE.getItem("apikeys.consent");
    if (consent) return showConsent(consent);
    $("console").hidden = false;
    state.loaded = false;
    loadKeys();
    loadScopes();
    $("key-name").focus();
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function request(method, path, body, { auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) {
      const session = currentToken();
      if (!session) {
        signOut("Your session has ended. Please sign in again.");
        throw new ApiError(401, "unauthorized", "Your session has ended. Please sign in again.");
      }
      headers.Authorization = `Bearer ${session.token}`;
    }
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, "network_error", "Could not reach the API. Check your connection and try again.");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error;
      const err = new ApiError(
        response.status,
        (error && error.code) || `http_${response.status}`,
        (error && error.message) || `The API answered with status ${response.status}. Please try again.`,
      );
      if (auth && response.status === 401) signOut(err.message);
      throw err;
    }
    return data;
  }

  // ---------------------------------------------------------------- the list

  function setListState(which, message) {
    $("list-loading").hidden = which !== "loading";
    $("list-error").hidden = which !== "error";
    $("list-empty").hidden = which !== "empty";
    $("keys-table").hidden = which !== "table";
    if (which === "error") $("list-error-text").textContent = message;
  }

  /** A part of the page that could not load says so: an empty list would read as "nothing to
   * show" (no leaked keys, no scopes), which is what a misrouted deployment looked like. */
  function showLoadError(id, message) {
    $(id).textContent = message;
    $(id).hidden = !message;
  }

  /** Keys revoked in the last 30 days because they were found in public or reported: what,
   * when and where, so the customer can replace them. The key list still loads without it, and
   * a failure is shown, never an empty notice list. */
  async function loadRevocations() {
    try {
      const data = await request("GET", "/revocations");
      renderRevocations(data.revocations || []);
      showLoadError("revocations-error", "");
    } catch (err) {
      renderRevocations([]);
      if (err.status !== 401) {
        showLoadError("revocations-error", `Could not load notices of leaked or reported keys: ${err.message}`);
      }
    }
  }

  function renderRevocations(revocations) {
    const list = $("leaked-keys-list");
    list.replaceChildren();
    for (const revoked of revocations) {
      const item = document.createElement("li");
      item.dataset.keyId = revoked.key_id;
      const why = revoked.reason === "leaked" ? "it was found in public" : "someone reported it";
      item.append(`${quoted(revoked.name)} was revoked `, timeElement(revoked.revoked_at), ` because ${why}`);
      if (revoked.url) {
        item.append(" at ");
        // Only an http(s) address becomes a link: a report's url is not ours to trust.
        if (/^https?:\/\//i.test(revoked.url)) {
          const link = Object.assign(document.createElement("a"), { href: revoked.url, textContent: revoked.url });
          link.rel = "noopener noreferrer";
          link.target = "_blank";
          item.append(link);
        } else {
          item.append(Object.assign(document.createElement("code"), { textContent: revoked.url }));
        }
      }
      item.append(".");
      list.append(item);
    }
    $("leaked-keys").hidden = revocations.length === 0;
  }

  async function loadKeys() {
    const list = document.querySelector(".list");
    list.setAttribute("aria-busy", "true");
    if (!state.loaded) setListState("loading");
    try {
      const data = await request("GET", "/keys");
      state.keys = data.keys;
      state.daily = data.requests_by_day || null;
      state.plan = data.plan;
      state.limit = data.key_limit;
      state.count = data.key_count;
      state.loaded = true;
      render();
      await loadRevocations();
    } catch (err) {
      if (err.status !== 401) {
        state.loaded = false;
        setListState("error", err.message);
      }
    } finally {
      list.removeAttribute("aria-busy");
    }
  }

  // "Expires in N days" in the warning style within the largest ExpiryNoticeDays (config.js
  // `expiryNoticeDays`, default 7): UTC days, as the ApiKeyExpiring audit event counts them. Not for
  // a key being rolled out or an OAuth connection's (its app renews it), which get no notice either.
  const NOTICE_DAYS =
    Math.max(0, ...String(config.expiryNoticeDays || "").split(",").map(Number).filter((n) => n > 0)) || 7;

  function expiryTime(key) {
    const days = Math.floor(Date.parse(key.expires_at) / 86400000) - Math.floor(Date.now() / 86400000);
    if (key.status !== "active" || key.connection || days < 0 || days > NOTICE_DAYS) return timeElement(key.expires_at);
    const warning = document.createElement("span");
    warning.className = "badge expiring";
    warning.textContent = days === 0 ? "Expires today" : `Expires in ${plural(days, "day")}`;
    warning.title = exact(key.expires_at);
    warning.setAttribute("aria-label", `${warning.textContent} (${warning.title})`);
    return warning;
  }

  function statusBadge(key) {
    const badge = document.createElement("span");
    badge.className = `badge ${key.status}`;
    badge.textContent = { active: "Active", expired: "Expired", rolling: "Rolling out" }[key.status] || key.status;
    if (key.status === "rolling") badge.title = "Replaced by a roll; works until its expiry.";
    return badge;
  }

  function actionButton(label, name, handler, className = "") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = `button small ${className}`.trim();
    button.append(label);
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = ` ${name}`;
    button.append(hidden);
    button.addEventListener("click", handler);
    return button;
  }

  function cell(label, ...content) {
    const td = document.createElement("td");
    td.dataset.label = label;
    td.append(...content);
    return td;
  }

  // ---------------------------------------------------------------- scopes

  // The catalogue comes from the API (GET /scopes), so the console offers exactly what create accepts.
  async function loadScopes() {
    try {
      state.scopes = (await request("GET", "/scopes")).scopes;
      showLoadError("scopes-error", "");
    } catch (err) {
      state.scopes = []; // only "Full access" can be offered; the API still validates every request
      if (err.status !== 401) {
        showLoadError("scopes-error", `Could not load the scopes, so only full-access keys can be created: ${err.message}`);
      }
    }
    fillScopes("key", ["*"]);
  }

  function fillScopes(prefix, selected) {
    const full = selected.length === 1 && selected[0] === "*";
    const list = $(`${prefix}-scopes`);
    list.replaceChildren();
    for (const scope of state.scopes || []) {
      const box = Object.assign(document.createElement("input"), { type: "checkbox", value: scope.name });
      box.checked = !full && selected.includes(scope.name);
      const label = document.createElement("label");
      label.title = scope.routes.length ? scope.routes.join(", ") : "Checked by the API itself";
      label.append(box, Object.assign(document.createElement("code"), { textContent: scope.name }));
      list.append(label);
    }
    for (const radio of document.querySelectorAll(`input[name="${prefix}-access"]`)) {
      radio.checked = radio.value === (full ? "full" : "scoped");
    }
    syncScopes(prefix);
    fieldError($(`${prefix}-access`), $(`${prefix}-scopes-error`), "");
  }

  function syncScopes(prefix) {
    const scoped = document.querySelector(`input[name="${prefix}-access"]:checked`).value === "scoped";
    for (const box of $(`${prefix}-scopes`).querySelectorAll("input")) box.disabled = !scoped;
  }

  function chosenScopes(prefix) {
    if (document.querySelector(`input[name="${prefix}-access"]:checked`).value === "full") return ["*"];
    return [...$(`${prefix}-scopes`).querySelectorAll("input:checked")].map((box) => box.value);
  }

  for (const prefix of ["key", "rename"]) {
    for (const radio of document.querySelectorAll(`input[name="${prefix}-access"]`)) {
      radio.addEventListener("change", () => syncScopes(prefix));
    }
  }

  function scopesText(key) {
    const scopes = key.scopes || ["*"];
    return scopes.length === 1 && scopes[0] === "*" ? "Full access" : scopes.join(", ");
  }

  function render() {
    const atLimit = state.count >= state.limit;
    const usage = $("usage");
    usage.textContent = `${state.count} of ${state.limit} keys · ${planTitle(state.plan)}`;
    usage.classList.toggle("at-limit", atLimit);
    if (!atLimit) state.limitMessage = "";
    const hint = $("limit-hint");
    hint.textContent = state.limitMessage;
    hint.hidden = !state.limitMessage;
    const over = $("over-limit");
    over.textContent = overLimitNotice();
    over.hidden = !over.textContent;

    const body = $("keys-body");
    body.replaceChildren();
    for (const key of state.keys) {
      const row = document.createElement("tr");
      row.dataset.keyId = key.id;
      const name = document.createElement("span");
      name.className = "key-name";
      name.textContent = key.name;
      const display = document.createElement("code");
      display.className = "mono masked";
      display.textContent = key.display;
      const never = () => Object.assign(document.createElement("span"), { className: "muted", textContent: "Never" });
      const actions = document.createElement("div");
      actions.className = "actions";
      const live = key.status === "active";
      if (live) actions.append(actionButton("Rename", key.name, () => openRename(key)));
      if (live) actions.append(actionButton("Roll", key.name, () => openRoll(key)));
      actions.append(actionButton("Delete", key.name, () => openDelete(key), "danger-text"));
      const nameCell = document.createElement("th");
      nameCell.scope = "row";
      nameCell.dataset.label = "Name";
      const title = Object.assign(document.createElement("span"), { className: "key-title" });
      title.append(name);
      nameCell.append(title);
      if (key.connection) {
        const badge = Object.assign(document.createElement("span"), {
          className: "badge connection",
          textContent: `Connected app · ${key.connection.client_name}`,
          title: `Connected with OAuth from ${key.connection.redirect_host}`,
        });
        title.append(badge);
      }
      if (key.created_by) {
        // Who made it: a key nobody recognises is a key nobody dares delete (null on older keys).
        nameCell.append(Object.assign(document.createElement("span"), {
          className: "created-by", textContent: `Created by ${key.created_by}`,
        }));
      }
      row.append(
        nameCell,
        cell("Key", display),
        cell("Scopes", Object.assign(document.createElement("span"), { className: "scopes", textContent: scopesText(key) })),
        cell("Created", timeElement(key.created_at)),
        cell("Last used", key.last_used_at ? timeElement(key.last_used_at) : never()),
        cell("Requests, last 30 days", requestsChart(key)),
        cell("Expires", key.expires_at ? expiryTime(key) : never()),
        cell("Status", statusBadge(key)),
        cell("Actions", actions),
      );
      body.append(row);
    }
    setListState(state.keys.length ? "table" : "empty");
  }

  function announce(text) {
    const el = $("announcer");
    el.textContent = "";
    window.setTimeout(() => { el.textContent = text; }, 50);
  }

  function showActionError(message) {
    const el = $("action-error");
    el.textContent = message || "";
    el.hidden = !message;
  }

  // ---------------------------------------------------------------- dialogs

  let returnFocusTo = null;

  function openDialog(dialog, focus) {
    returnFocusTo = document.activeElement;
    dialog.showModal();
    (focus || dialog.querySelector("input, select, button")).focus();
  }

  function restoreFocus() {
    const usable = returnFocusTo && returnFocusTo.isConnected && returnFocusTo !== document.body;
    const target = usable ? returnFocusTo : $("key-name");
    returnFocusTo = null;
    target.focus();
  }

  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.addEventListener("close", () => {
      if (dialog.id !== "secret-dialog" || !pendingFocusAfterSecret) restoreFocus();
    });
  }

  function fieldError(input, errorEl, message) {
    errorEl.textContent = message || "";
    errorEl.hidden = !message;
    if (message) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-errormessage", errorEl.id);
    } else {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-errormessage");
    }
  }

  async function busy(button, work) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      return await work();
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  // The one-time secret. `pendingFocusAfterSecret` lets a roll send focus back to the list.
  let pendingFocusAfterSecret = null;

  function showSecret(title, key, context) {
    $("secret-title").textContent = title;
    $("secret-value").value = key;
    $("copy-status").textContent = "";
    const ctx = $("secret-context");
    ctx.replaceChildren(...(context || []));
    ctx.hidden = !context;
    const dialog = $("secret-dialog");
    if (!returnFocusTo) returnFocusTo = document.activeElement;
    dialog.showModal();
    $("secret-value").focus();
    $("secret-value").select();
  }

  $("secret-dialog").addEventListener("close", () => {
    // Forget the key: clear the field and its selection, so no copy of it stays in the page.
    const input = $("secret-value");
    input.value = "";
    input.setSelectionRange(0, 0);
    $("copy-status").textContent = "";
    $("secret-context").replaceChildren();
    const target = pendingFocusAfterSecret;
    pendingFocusAfterSecret = null;
    if (target) {
      returnFocusTo = null;
      target.focus();
    }
  });

  $("copy-secret").addEventListener("click", async () => {
    const input = $("secret-value");
    const status = $("copy-status");
    try {
      await navigator.clipboard.writeText(input.value);
      status.textContent = "Copied to the clipboard.";
    } catch {
      input.focus();
      input.select();
      const ok = document.execCommand && document.execCommand("copy");
      status.textContent = ok ? "Copied to the clipboard." : "Copy failed: the key is selected, press Ctrl+C (⌘C) to copy it.";
    }
  });

  // ---------------------------------------------------------------- create

  $("create-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("key-name");
    const days = $("key-expiry").value;
    fieldError(input, $("key-name-error"), "");
    showActionError("");
    const body = { name: input.value };
    if (days) body.expires_in_days = Number(days);
    const scopes = chosenScopes("key");
    if (scopes[0] !== "*") body.scopes = scopes;
    fieldError($("key-access"), $("key-scopes-error"), "");
    await busy($("create-button"), async () => {
      let created;
      try {
        created = await request("POST", "/keys", body);
      } catch (err) {
        if (err.code === "key_limit_reached") {
          state.limitMessage = err.message; // the API's own words: plan, limit, what to upgrade to
          $("limit-hint").textContent = err.message;
          $("limit-hint").hidden = false;
          loadKeys();
        } else if (err.code === "invalid_request" && err.message.startsWith("scopes")) {
          fieldError($("key-access"), $("key-scopes-error"), err.message);
        } else if (err.code === "invalid_request") {
          fieldError(input, $("key-name-error"), err.message);
          input.focus();
        } else if (err.status !== 401) {
          showActionError(err.message);
        }
        return;
      }
      input.value = "";
      $("key-expiry").value = "";
      fillScopes("key", ["*"]);
      const secret = created.key;
      delete created.key;
      returnFocusTo = input; // after the dialog, ready to name the next key
      showSecret("API key created", secret, [`${quoted(created.name)} is ready to use.`]);
      loadKeys();
    });
  });

  // ---------------------------------------------------------------- delete

  let deleting = null;

  function openDelete(key) {
    deleting = key;
    $("delete-title").textContent = `Delete ${quoted(key.name)}?`;
    const text = $("delete-text");
    const code = Object.assign(document.createElement("code"), { className: "mono", textContent: key.display });
    text.replaceChildren(
      `The key ${quoted(key.name)} (`, code, ") is revoked at once: integrations using it get ",
      Object.assign(document.createElement("strong"), { textContent: "401 Unauthorized" }),
      " on their very next request. This can't be undone.",
    );
    $("delete-error").hidden = true;
    openDialog($("delete-dialog"), $("delete-cancel"));
  }

  $("delete-confirm").addEventListener("click", async (event) => {
    const key = deleting;
    if (!key) return;
    await busy(event.currentTarget, async () => {
      try {
        await request("DELETE", `/keys/${encodeURIComponent(key.id)}`);
      } catch (err) {
        if (err.status === 401) return;
        if (err.code !== "not_found") {
          $("delete-error").textContent = err.message;
          $("delete-error").hidden = false;
          return;
        }
      }
      deleting = null;
      returnFocusTo = $("list-title");
      $("delete-dialog").close();
      announce(`Deleted ${quoted(key.name)}.`);
      await loadKeys();
    });
  });
  $("delete-dialog").addEventListener("close", () => { deleting = null; });

  // ---------------------------------------------------------------- rename

  let renaming = null;

  function openRename(key) {
    renaming = key;
    $("rename-name").value = key.name;
    fieldError($("rename-name"), $("rename-error"), "");
    fillScopes("rename", key.scopes || ["*"]);
    openDialog($("rename-dialog"), $("rename-name"));
    $("rename-name").select();
  }

  $("rename-cancel").addEventListener("click", () => $("rename-dialog").close());
  $("rename-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = renaming;
    if (!key) return;
    const input = $("rename-name");
    await busy(event.submitter, async () => {
      try {
        const body = { name: input.value };
        const scopes = chosenScopes("rename");
        if (scopes.join(" ") !== (key.scopes || ["*"]).join(" ")) body.scopes = scopes; // only a real change
        const updated = await request("PATCH", `/keys/${encodeURIComponent(key.id)}`, body);
        renaming = null;
        $("rename-dialog").close();
        announce(body.scopes ? `Saved ${quoted(updated.name)}: ${scopesText(updated)}.` : `Renamed to ${quoted(updated.name)}.`);
        await loadKeys();
      } catch (err) {
        if (err.status === 401) return;
        if (err.code === "invalid_request" && err.message.startsWith("scopes")) {
          fieldError($("rename-access"), $("rename-scopes-error"), err.message);
          return;
        }
        fieldError(input, $("rename-error"), err.message);
        input.focus();
      }
    });
  });

  // ---------------------------------------------------------------- roll

  let rolling = null;

  function openRoll(key) {
    rolling = key;
    $("roll-title").textContent = `Roll ${quoted(key.name)}?`;
    $("roll-text").textContent =
      `A new key replaces ${quoted(key.name)} (${key.display}) in the same slot. ` +
      "Update your integrations with the new key before the old one stops working.";
    $("roll-error").hidden = true;
    openDialog($("roll-dialog"), $("roll-grace"));
  }

  $("roll-cancel").addEventListener("click", () => $("roll-dialog").close());
  $("roll-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = rolling;
    if (!key) return;
    const grace = Number($("roll-grace").value);
    await busy(event.submitter, async () => {
      let created;
      try {
        created = await request("POST", `/keys/${encodeURIComponent(key.id)}/roll`, { grace_period_seconds: grace });
      } catch (err) {
        if (err.status === 401) return;
        $("roll-error").textContent = err.message;
        $("roll-error").hidden = false;
        return;
      }
      rolling = null;
      pendingFocusAfterSecret = $("list-title");
      $("roll-dialog").close();
      const secret = created.key;
      delete created.key;
      let context;
      if (grace > 0) {
        // The old key works until now + grace, never past its own expiry (the list shows the exact time).
        let until = Date.now() + grace * 1000;
        if (key.expires_at) until = Math.min(until, Date.parse(key.expires_at));
        const iso = new Date(until).toISOString();
        context = [
          `The old key (${key.display}) keeps working until ${exact(iso)} (`, timeElement(iso), "). Then it is refused.",
        ];
      } else {
        context = [`The old key (${key.display}) no longer works.`];
      }
      showSecret(`New key for ${quoted(created.name)}`, secret, context);
      loadKeys();
    });
  });

  // ---------------------------------------------------------------- start

  $("dev-login").addEventListener("submit", devLogin);
  $("consent-allow").addEventListener("click", (event) => answerConsent(true, event.currentTarget));
  $("consent-deny").addEventListener("click", (event) => answerConsent(false, event.currentTarget));
  $("consent-done").addEventListener("click", () => leaveConsent());
  $("hosted-sign-in").addEventListener("click", () => startHostedSignIn());
  $("sign-out").addEventListener("click", () => signOut());
  $("retry").addEventListener("click", () => loadKeys());
  $("list-title").tabIndex = -1;
  window.setInterval(refreshTimes, 30000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !$("console").hidden) loadKeys();
  });

  (async () => {
    pendingConsent();
    if (AUTH.mode === "cognito") {
      try {
        await finishHostedSignIn();
      } catch (err) {
        return showSignIn(err.message);
      }
    }
    if (currentToken()) enterConsole();
    else showSignIn();
  })();
})();
