// OpenAgg Connect widget. ES modules (this one and the pages' shared /assets/dom.js),
// no dependencies, no build step.
//
// It drives the platform through the widget API (/connect/api, authenticated by the
// session token the page was served with) and tells the host app what happens with
// MX's version-4 postMessage events ({mx: true, type, metadata}), or, in a mobile
// WebView, with navigations to <scheme>://<namespace>/<event>?metadata=<JSON>.

import { h, requestJson, showView } from "/assets/dom.js";
import { institutionLogo, kindOf, richText } from "/connect/static/text.js";

const boot = JSON.parse(document.getElementById("oa-boot").textContent);
const opts = boot.options;
const API = "/connect/api";
const root = document.getElementById("oa-root");
const live = document.getElementById("oa-live");

// The platform's connection-status groups (domain/statuses.py, domain/tickets.py).
const groups = boot.status_groups;
// MX: credentials must be updated before the member aggregates again.
const NEEDS_CREDENTIALS = new Set(groups.needs_new_credentials);
// Only an aggregation engineer can fix these: their screens offer "Report a problem".
const NEEDS_ENGINEER = new Set(groups.engineer_fixable);
// MX: no aggregation should be attempted on these.
const NOT_AGGREGATABLE = new Set(groups.not_aggregatable);
const LOGIN_INFO_REQUIRED = "ADDITIONAL_LOGIN_INFO_REQUIRED";

// --- events to the host ----------------------------------------------------------------

const webviewQueue = [];
let webviewBusy = false;

function flushWebview() {
  // One navigation at a time: a new one would cancel one still being handed over.
  if (webviewBusy || webviewQueue.length === 0) return;
  webviewBusy = true;
  window.location.href = webviewQueue.shift();
  setTimeout(() => {
    webviewBusy = false;
    flushWebview();
  }, 60);
}

function send(type, metadata) {
  if (opts.is_mobile_webview) {
    const path = type.replace(/^mx\//, "");
    const query = encodeURIComponent(JSON.stringify(metadata));
    webviewQueue.push(`${opts.ui_message_webview_url_scheme}://${path}?metadata=${query}`);
    flushWebview();
    return;
  }
  const message = { mx: true, type, metadata };
  if (window.parent && window.parent !== window) window.parent.postMessage(message, "*");
  if (window.opener) window.opener.postMessage(message, "*");
}

function sendConnect(event, extra = {}) {
  send(`mx/connect/${event}`, {
    user_guid: boot.user_guid,
    session_guid: boot.session_guid,
    ...extra,
  });
}

// OpenAgg's own events (support tickets), in their own namespace: MX has none of these.
function sendOpenAgg(event, extra = {}) {
  send(`openagg/connect/${event}`, {
    user_guid: boot.user_guid,
    session_guid: boot.session_guid,
    ...extra,
  });
}

// --- the widget API ---------------------------------------------------------------------

function api(method, path, body) {
  return requestJson(method, API + path, body, {
    Authorization: `Bearer ${boot.session_token}`,
  });
}

// --- DOM helpers --------------------------------------------------------------------------


let step = null;
let views = 0;

function show(next, title, ...content) {
  const previous = step;
  step = next;
  root.dataset.screen = next;
  root.dataset.view = String(++views); // tells two visits of one screen apart
  root.removeAttribute("aria-busy");
  showView(root, { title, headingId: "oa-title", live }, content);
  if (previous !== null && previous !== next) sendConnect("stepChange", { previous, current: next });
}

function button(label, onclick, kind = "primary", extra = {}) {
  return h("button", { type: "button", class: `oa-button oa-${kind}`, onclick, ...extra }, label);
}

function alertBox(message) {
  return h("p", { class: "oa-alert", role: "alert" }, message);
}

function helpLink(href, label) {
  return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label) : null;
}

const money = (amount, currency) => {
  if (amount === null || amount === undefined) return "";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "USD" })
      .format(amount);
  } catch {
    return amount.toFixed(2);
  }
};

const searchAllowed = () => !opts.disable_institution_search;

function backToSearchButton(label = "Connect a different institution") {
  if (!searchAllowed()) return null;
  return button(label, () => {
    sendConnect("backToSearch");
    showSearch();
  }, "secondary");
}

// --- screens --------------------------------------------------------------------------------

let searchTimer = null;

async function showSearch(initial = false) {
  const results = h("ul", { class: "oa-results", "aria-labelledby": "oa-results-label" });
  const count = h("p", { class: "oa-hint", id: "oa-results-label", role: "status" });
  const input = h("input", {
    id: "oa-search",
    type: "search",
    autocomplete: "off",
    placeholder: "Bank name",
    "aria-describedby": "oa-results-label",
  });
  const render = (institutions, query) => {
    if (institutions.length === 0 && uploadAllowed()) {
      // A bank OpenAgg can't connect to is still reachable through its statement files.
      count.textContent = query
        ? `We can't connect to "${query}". You can still add its accounts with a `
          + "statement file downloaded from its website."
        : "No institution matches. You can still add your accounts with a statement file.";
      results.replaceChildren(h("li", {}, h("button", {
        type: "button",
        class: "oa-institution oa-upload-choice",
        onclick: () => showUpload(),
      },
      h("span", { class: "oa-name" }, "Upload a statement file"),
      h("span", { class: "oa-url" }, FORMATS_IN_WORDS))));
      return;
    }
    count.textContent = institutions.length === 0
      ? "No institution matches. Check the spelling or try a shorter name."
      : `${institutions.length} institution${institutions.length === 1 ? "" : "s"}`;
    results.replaceChildren(...institutions.map((inst) => h("li", {},
      h("button", {
        type: "button",
        class: "oa-institution oa-with-logo",
        onclick: () => selectInstitution(inst),
      },
      institutionLogo(inst),
      h("span", { class: "oa-name" }, inst.name),
      inst.url ? h("span", { class: "oa-url" }, inst.url.replace(/^https?:\/\//, "")) : null),
    )));
  };
  const search = async (query) => {
    try {
      render((await api("GET", `/institutions?q=${encodeURIComponent(query)}`)).institutions,
        query);
    } catch (error) {
      handleFatal(error, () => count.replaceChildren(alertBox(error.message)));
    }
  };
  input.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const query = input.value.trim();
      if (query) sendConnect("institutionSearch", { query });
      search(query);
    }, 250);
  });
  const title = opts.mode === "verification"
    ? "Select your bank to verify your account"
    : "Select your institution";
  const other = uploadAllowed()
    ? h("p", { class: "oa-other" }, h("span", { class: "oa-hint" }, "Bank not listed? "),
      button("Upload a statement file", () => showUpload(), "link", { id: "oa-upload-choice" }))
    : null;
  show("search", title,
    h("label", { for: "oa-search" }, "Search for your bank or credit union"),
    input, other, count, results);
  if (!initial) input.focus();
  await search("");
}

async function selectInstitution(inst) {
  sendConnect("selectedInstitution", {
    code: inst.code,
    guid: inst.guid,
    name: inst.name,
    url: inst.url || "",
  });
  // The institution of imported files: it has nothing to sign in to.
  if (inst.code === boot.statement_file_code && uploadAllowed()) return showUpload();
  await showCredentials(inst.code);
}

async function showCredentials(code, member = null) {
  let detail;
  try {
    detail = await api("GET", `/institutions/${encodeURIComponent(code)}`);
  } catch (error) {
    return handleFatal(error, () => showProblem(error.message));
  }
  const inst = detail.institution;
  if (inst.supports_oauth && (!member || member.is_oauth)) return showOAuth(inst, member);
  const errorSlot = h("div");
  const fields = detail.credentials.map((c) => {
    const id = `oa-cred-${c.guid}`;
    const isPassword = c.field_type === "PASSWORD" || c.type === "PASSWORD";
    return h("div", { class: "oa-field" },
      h("label", { for: id }, c.label),
      h("input", {
        id,
        name: c.guid,
        type: isPassword ? "password" : "text",
        required: true,
        autocomplete: isPassword ? "current-password" : "username",
        autocapitalize: "none",
        spellcheck: "false",
      }));
  });
  const submit = h("button", { type: "submit", class: "oa-button oa-primary" },
    member ? "Update and connect" : "Connect");
  const form = h("form", { class: "oa-form", novalidate: true }, errorSlot, ...fields, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const missing = fields.map((f) => f.querySelector("input")).filter((i) => !i.value);
    for (const i of fields.map((f) => f.querySelector("input"))) {
      i.toggleAttribute("aria-invalid", !i.value);
    }
    if (missing.length) {
      errorSlot.replaceChildren(alertBox("Please fill in every field."));
      missing[0].focus();
      return;
    }
    const credentials = detail.credentials.map((c) => ({
      guid: c.guid,
      value: form.querySelector(`[name="${c.guid}"]`).value,
    }));
    submit.disabled = true;
    submit.textContent = "Connecting…";
    const institution = { code: inst.code, guid: inst.guid };
    try {
      let result;
      if (member) {
        sendConnect("updateCredentials", { member_guid: member.guid, institution });
        result = await api("PUT", `/members/${member.guid}/credentials`, { credentials });
      } else {
        sendConnect("enterCredentials", { institution });
        result = await api("POST", "/members", { institution_code: inst.code, credentials });
      }
      follow(result.member);
    } catch (error) {
      if (!member) {
        sendConnect("createMemberError", {
          institution_guid: inst.guid,
          institution_code: inst.code,
        });
      }
      handleFatal(error, () => {
        errorSlot.replaceChildren(alertBox(error.message));
        submit.disabled = false;
        submit.textContent = member ? "Update and connect" : "Connect";
        form.querySelector("input")?.focus();
      });
    }
  });
  const help = [
    helpLink(inst.forgot_username_url, "Forgot your username?"),
    helpLink(inst.forgot_password_url, "Forgot your password?"),
    helpLink(inst.trouble_signing_in_url, "Trouble signing in?"),
  ].filter(Boolean);
  const title = member ? `Update your ${inst.name} credentials` : `Sign in to ${inst.name}`;
  show("enterCreds", title,
    h("div", { class: "oa-intro" }, institutionLogo(inst, "medium"),
      inst.instructional_text
        ? h("div", { class: "oa-hint oa-instructions" }, richText(inst.instructional_text))
        : null),
    form,
    help.length ? h("ul", { class: "oa-help" }, help.map((a) => h("li", {}, a))) : null,
    h("p", { class: "oa-hint" },
      "Your credentials go to OpenAgg encrypted and are never shown to the app."),
    member ? null : backToSearchButton("Back to search"));
}

// --- a statement file: a bank OpenAgg can't connect to --------------------------------
//
// The end user downloads a statement from their bank's website and uploads it here.
// The import (docs/imports.md) creates the managed member, or adds to the one an
// earlier file of the same accounts made; "Done" then tells the app as a connection
// does (memberConnected), and creates nothing more.

const FORMATS_IN_WORDS = "OFX, QFX, QIF, CSV, CAMT.053 or MT940";
// The picker shows these; a phone's picker may grey out any other file.
const FILE_TYPES = ".ofx,.qfx,.qbo,.qif,.csv,.tsv,.txt,.xml,.sta,.mt940,.940";

// A statement file is a bank's, not a verified account: verification needs the bank.
const uploadAllowed = () => opts.mode !== "verification";

// A file dropped beside the drop zone would otherwise replace the widget with it.
for (const type of ["dragover", "drop"]) {
  document.addEventListener(type, (event) => {
    if (step === "upload") event.preventDefault();
  });
}

function uploadError(error, name) {
  if (error.status === 413) {
    return `${name} is too large. Download a shorter period from your bank, a year for `
      + "example, and upload each file.";
  }
  // The import's own words, without repeating what the alert's title says.
  const reason = error.message.replace(/^The file cannot be imported: /, "");
  if (error.status !== 400) return reason;
  return `${reason.charAt(0).toUpperCase()}${reason.slice(1)}. Check that this is the file `
    + "your bank gave you, unchanged, or download it again.";
}

function showUpload() {
  let busy = false;
  const errorSlot = h("div");
  const status = h("p", { class: "oa-status", role: "status" });
  const input = h("input", {
    id: "oa-file",
    type: "file",
    class: "oa-visually-hidden",
    accept: FILE_TYPES,
    "aria-describedby": "oa-file-hint",
  });
  const zone = h("div", { class: "oa-drop" },
    input,
    h("label", { for: "oa-file", class: "oa-drop-label" },
      h("span", { class: "oa-drop-title" }, "Choose a file"),
      h("span", { class: "oa-hint" }, "or drag and drop it here")),
    status);
  const upload = async (file) => {
    if (busy || !file) return;
    busy = true;
    zone.classList.add("oa-busy");
    zone.setAttribute("aria-busy", "true");
    errorSlot.replaceChildren();
    status.textContent = `Reading ${file.name}…`;
    try {
      const query = new URLSearchParams({ filename: file.name });
      showUploaded(await api("POST", `/imports?${query}`, file), file.name);
    } catch (error) {
      handleFatal(error, () => {
        busy = false;
        zone.classList.remove("oa-busy");
        zone.removeAttribute("aria-busy");
        status.textContent = "";
        input.value = ""; // the same file, fixed, can be chosen again
        errorSlot.replaceChildren(h("div", { class: "oa-alert", role: "alert" },
          h("p", { class: "oa-alert-title" }, `We couldn't read ${file.name}`),
          h("p", {}, uploadError(error, file.name))));
      });
    }
  };
  input.addEventListener("change", () => upload(input.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("oa-dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("oa-dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("oa-dragging");
    upload(event.dataTransfer.files[0]);
  });
  show("upload", "Upload a statement file",
    h("p", {}, "Download a statement from your bank's website (look for \"Download\" or "
      + "\"Export\"), then add it here. Uploading the same or overlapping statements "
      + "again never counts a transaction twice."),
    h("p", { class: "oa-hint", id: "oa-file-hint" }, `Accepted: ${FORMATS_IN_WORDS} files.`),
    errorSlot,
    zone,
    h("div", { class: "oa-actions" }, backToSearchButton("Back to search")));
}

function isoDay(iso) {
  try {
    return new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric", timeZone: "UTC",
    }).format(new Date(`${iso}T00:00:00Z`));
  } catch {
    return iso;
  }
}

const dayTag = (iso) => h("time", { datetime: iso }, isoDay(iso));

function showUploaded({ import: found, member }, filename) {
  const count = found.transaction_count;
  const added = found.transactions_added;
  const facts = [["File", `${filename} (${found.format})`],
    ["Transactions", count === added || count === 0 ? `${count}` : `${count}, ${added} new`]];
  if (found.from_date) {
    facts.push(["Dates", found.from_date === found.to_date
      ? [dayTag(found.from_date)]
      : [dayTag(found.from_date), " to ", dayTag(found.to_date)]]);
  }
  const accounts = h("ul", { class: "oa-accounts", "aria-labelledby": "oa-accounts-title" },
    found.accounts.map((a) => h("li", {},
      h("span", { class: "oa-name" }, a.name || "Account"),
      h("span", { class: "oa-type" }, kindOf(a.type)),
      h("span", { class: "oa-balance" }, money(a.balance, a.currency_code)))));
  const done = button("Done", () => {
    // The import made the member: tell the app as a finished connection does.
    sendConnect("memberConnected", { member_guid: member.guid });
    sendConnect("connected/primaryAction");
    done.disabled = true;
    live.textContent = "Done. You can close this window.";
  });
  const notes = found.warnings.length
    ? h("details", { class: "oa-notes" },
      h("summary", {}, `Notes about this file (${found.warnings.length})`),
      h("ul", {}, found.warnings.map((w) => h("li", {}, w))))
    : null;
  show("uploaded", "Here's what we found",
    h("p", { class: "oa-success" }, member.name === filename
      ? "Your statement is imported."
      : `Your statement is imported into ${member.name}.`),
    h("dl", { class: "oa-facts" }, facts.flatMap(([term, value]) => [
      h("dt", {}, term), h("dd", { "data-fact": term }, value)])),
    count > 0 && added === 0
      ? h("p", { class: "oa-hint" },
        "Every transaction in this file was already here from an earlier file: "
        + "none was added twice.")
      : null,
    h("h2", { id: "oa-accounts-title" },
      `${found.accounts.length} account${found.accounts.length === 1 ? "" : "s"}`),
    accounts,
    notes,
    h("div", { class: "oa-actions" }, done,
      button("Upload another file", () => showUpload(), "secondary")));
}

// --- OAuth: the end user signs in on the institution's own website -----------------------
//
// As in MX's widget: choosing an OAuth institution creates its member (or reuses the
// user's member still waiting there, PENDING), a button sends the user to the
// institution (event oauthRequested; with oauth_referral_source BROWSER the widget opens
// the page itself, with APP the host app does), and the widget polls the member until
// the step completes, then follows the connection as usual.

let oauthWait = null; // the waiting screen on show: {guid, view, popup}

async function showOAuth(inst, member = null) {
  if (member && member.connection_status !== "PENDING" && !member.oauth_window_uri) {
    return showOAuthRenewal(inst, member);
  }
  if (!member) {
    try {
      const body = { institution_code: inst.code, is_oauth: true };
      member = (await api("POST", "/members", body)).member;
    } catch (error) {
      sendConnect("createMemberError", {
        institution_guid: inst.guid,
        institution_code: inst.code,
      });
      return handleFatal(error, () => showProblem(error.message, () => showOAuth(inst)));
    }
  }
  statusUpdate(member);
  const bank = inst.name;
  show("enterCreds", `Connect to ${bank}`,
    h("p", {}, `${bank} has you sign in on its own website, where you choose what to share. `
      + `Your username and password stay with ${bank}: the app never sees them.`),
    inst.instructional_text
      ? h("div", { class: "oa-hint oa-instructions" }, richText(inst.instructional_text))
      : null,
    h("div", { class: "oa-actions" },
      button(`Go to ${bank}`, () => goToOAuth(inst, member)),
      backToSearchButton("Back to search")));
}

// Called from the button's click, so popup blockers let window.open through.
function goToOAuth(inst, member) {
  const url = member.oauth_window_uri;
  if (!url) return poll(member.guid); // finished meanwhile (another window, another device)
  sendConnect("oauthRequested", { url, member_guid: member.guid });
  const opensItself = opts.oauth_referral_source === "BROWSER" && !opts.is_mobile_webview;
  closeOAuthWindow();
  return showOAuthWaiting(inst, member, opensItself, opensItself ? openWindow(url) : null);
}

// The window keeps its opener, as MX's does: the platform's callback page, at the end,
// posts oauthComplete/* to it (to this origin only). The widget keeps a handle on the
// window, to know its messages and to close it when the step is done.
function openWindow(url) {
  return window.open(url, "_blank");
}

function showOAuthWaiting(inst, member, opensItself, popup) {
  const bank = inst.name;
  let intro;
  if (!opensItself) {
    intro = h("p", {}, `The app is opening ${bank}'s website. Sign in there and allow `
      + "access, then come back here: this page moves on by itself.");
  } else if (popup) {
    intro = h("p", {}, `We opened ${bank}'s website in a new window. Sign in there and allow `
      + "access: this page moves on by itself when you're done.");
  } else {
    intro = alertBox(`Your browser blocked the new window. Allow pop-ups for this page, `
      + `then select "Go to ${bank} again".`);
  }
  show("enterCreds", `Finish signing in at ${bank}`,
    intro,
    h("div", { class: "oa-progress", role: "progressbar", "aria-label": `Waiting for ${bank}` }),
    h("p", { class: "oa-status", role: "status" }, `Waiting for ${bank}…`),
    h("div", { class: "oa-actions" },
      button(`Go to ${bank} again`, () => goToOAuth(inst, member), "secondary"),
      button("Cancel", () => {
        clearTimeout(followed?.timer);
        closeOAuthWindow();
        showOAuth(inst, member);
      }, "link")));
  oauthWait = { guid: member.guid, view: root.dataset.view, popup, failed: false, errorSent: false };
  clearTimeout(followed.timer);
  followed.timer = setTimeout(() => poll(member.guid), boot.poll_interval_ms);
}

// A member whose OAuth step is open (PENDING, or renewing): keep polling while its
// waiting screen shows, else offer the step.
function awaitOAuth(member) {
  if (oauthWait?.guid === member.guid && oauthWait.view === root.dataset.view) {
    if (oauthWait.failed && !oauthWait.errorSent) {
      // The institution did not confirm access: the step stays open, and the same
      // link works again ("Go to ... again").
      oauthWait.errorSent = true;
      sendConnect("oauthError", { member_guid: member.guid });
      const said = root.querySelector(".oa-status");
      const bank = member.institution?.name || "The institution";
      if (said) {
        said.textContent = member.connection_status_message
          || `${bank} didn't give access this time. Try again with "Go to ${bank} again".`;
      }
    }
    followed.timer = setTimeout(() => poll(member.guid), boot.poll_interval_ms);
    return undefined;
  }
  return showOAuth(member.institution, member);
}

// How the OAuth step ended, told by the platform's callback page in the window the
// widget opened, or by the host app that got the redirect (APP referral source):
// the widget reads the member at once instead of at the next poll. The member's
// status stays the only truth; a message only says when to look.
function oauthOutcome(failed, memberGuid) {
  if (!oauthWait || (memberGuid && memberGuid !== oauthWait.guid)) return;
  if (failed) oauthWait.failed = true; // oauthError goes out once the member is read
  pollNow(oauthWait.guid);
}

function fromHost(event) {
  // The app embedding the widget (its iframe's parent), or a mobile WebView's own
  // bridge (no source).
  if (opts.is_mobile_webview) return !event.source || event.source === window;
  return window.parent !== window && event.source === window.parent;
}

function onMessage(event) {
  let data = event.data;
  if (typeof data === "string") {
    // MX's React Native SDK posts JSON text through the WebView's bridge.
    try {
      data = JSON.parse(data);
    } catch {
      return;
    }
  }
  if (!data || typeof data !== "object" || typeof data.type !== "string") return;
  const metadata = data.metadata && typeof data.metadata === "object" ? data.metadata : {};
  const outcome = /^oauthComplete\/(success|error)$/.exec(data.type);
  const fromOurWindow = oauthWait?.popup && event.source === oauthWait.popup
    && event.origin === window.location.origin;
  if (outcome && (fromOurWindow || fromHost(event))) {
    oauthOutcome(outcome[1] === "error", metadata.member_guid);
  } else if (data.type === "mx/client/oauthComplete" && fromHost(event)) {
    // MX's APP case: the app got the redirect, with status and member_guid in its query.
    let query = null;
    try {
      query = new URL(String(metadata.url)).searchParams;
    } catch {
      query = null;
    }
    oauthOutcome(query?.get("status") === "error", query?.get("member_guid"));
  }
}

window.addEventListener("message", onMessage);
// react-native-webview's postMessage reaches the page on document on Android.
document.addEventListener("message", onMessage);

function closeOAuthWindow() {
  if (oauthWait?.popup && !oauthWait.popup.closed) oauthWait.popup.close();
  oauthWait = null;
}

// An OAuth member past its first sign-in (connected, or DENIED after declining or a
// revoked consent): a fresh link sends the user through the institution's OAuth step
// again, which renews the same connection.
async function showOAuthRenewal(inst, member) {
  try {
    member = (await api("GET", `/members/${member.guid}/oauth_window_uri`)).member;
  } catch (error) {
    return handleFatal(error, () => showProblem(error.message, () => showOAuth(inst, member)));
  }
  return showOAuth(inst, member);
}

// The OAuth step the widget waited on is over: tell the host app how it ended (MX's
// oauthError when access was not granted; success shows in the statuses that follow).
function oauthEnded(member) {
  if (oauthWait?.guid !== member.guid || oauthWait.errorSent) return;
  if (member.connection_status === "DENIED") sendConnect("oauthError", { member_guid: member.guid });
}

// --- following a member ---------------------------------------------------------------

let followed = null; // {guid, lastStatus, timer}

function statusUpdate(member) {
  if (!followed || followed.guid !== member.guid) {
    followed = { guid: member.guid, lastStatus: null, timer: null, round: null };
  }
  if (member.connection_status !== followed.lastStatus && member.connection_status_id !== null) {
    followed.lastStatus = member.connection_status;
    sendConnect("memberStatusUpdate", {
      member_guid: member.guid,
      connection_status: member.connection_status_id,
    });
  }
}

function follow(member) {
  statusUpdate(member);
  clearTimeout(followed.timer);
  const status = member.connection_status;
  if (status === "PENDING" || (member.is_oauth && member.oauth_window_uri && oauthWait)) {
    return awaitOAuth(member);
  }
  oauthEnded(member);
  closeOAuthWindow(); // the OAuth step, if any, is over
  if (status === "CHALLENGED" && member.challenges.length) return showMfa(member);
  if (member.is_being_aggregated) {
    showConnecting(member);
    followed.timer = setTimeout(() => poll(member.guid), boot.poll_interval_ms);
    return;
  }
  if (status === "CONNECTED") return showConnected(member);
  return showLoginError(member);
}

let pollFailures = 0;
let pollInFlight = false;
let pollAgain = false;

// Read the member now rather than at the next poll; one read at a time.
function pollNow(guid) {
  clearTimeout(followed?.timer);
  if (pollInFlight) {
    pollAgain = true; // the read under way may predate what made us look
    return;
  }
  poll(guid);
}

async function poll(guid) {
  pollInFlight = true;
  try {
    const { member } = await api("GET", `/members/${guid}`);
    pollFailures = 0;
    pollInFlight = false;
    follow(member);
    if (pollAgain) {
      pollAgain = false;
      if (oauthWait?.guid === guid) pollNow(guid);
    }
  } catch (error) {
    pollInFlight = false;
    pollAgain = false;
    pollFailures += 1;
    if (error.status === 404) return showProblem("This connection no longer exists.");
    handleFatal(error, () => {
      if (pollFailures < 5) {
        followed.timer = setTimeout(() => poll(guid), boot.poll_interval_ms * pollFailures);
      } else {
        showProblem("We lost touch with the server while connecting.", () => poll(guid));
      }
    });
  }
}

function showConnecting(member) {
  const name = member.institution.name;
  const delayed = member.connection_status === "DELAYED";
  const message = delayed
    ? "This is taking longer than usual. Your bank is slow to answer; we are still working "
      + "on it and will finish on our own. You can wait here or come back later."
    : member.connection_status_message || "Connecting…";
  if (step === "connecting") {
    // Same screen: update the status text without moving focus.
    root.querySelector(".oa-status").textContent = message;
    root.querySelector(".oa-progress").classList.toggle("oa-delayed", delayed);
    return;
  }
  show("connecting", `Connecting to ${name}`,
    h("div", { class: "oa-progress", role: "progressbar", "aria-label": "Connecting" }),
    h("p", { class: "oa-status", role: "status" }, message));
}

function challengeField(challenge, index) {
  const id = `oa-mfa-${index}`;
  if (challenge.type === "OPTIONS" || challenge.type === "IMAGE_OPTIONS") {
    const options = challenge.type === "OPTIONS" ? challenge.options : challenge.image_options;
    return h("fieldset", { class: "oa-field oa-options" },
      h("legend", {}, challenge.label),
      options.map((option, i) => h("label", { class: "oa-option" },
        h("input", {
          type: "radio",
          name: challenge.guid,
          value: option.value,
          required: true,
          id: `${id}-${i}`,
        }),
        option.data_uri ? h("img", { src: option.data_uri, alt: option.label }) : null,
        h("span", {}, option.label))));
  }
  return h("div", { class: "oa-field" },
    challenge.image_data
      ? h("img", { class: "oa-challenge-image", src: challenge.image_data, alt: "Security image" })
      : null,
    h("label", { for: id }, challenge.label),
    h("input", {
      id,
      name: challenge.guid,
      type: "text",
      required: true,
      autocomplete: challenge.type === "TOKEN" ? "one-time-code" : "off",
      inputmode: challenge.type === "TOKEN" ? "numeric" : undefined,
    }));
}

function showMfa(member) {
  const errorSlot = h("div");
  const submit = h("button", { type: "submit", class: "oa-button oa-primary" }, "Continue");
  const form = h("form", { class: "oa-form", novalidate: true },
    errorSlot, member.challenges.map(challengeField), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answers = [];
    for (const challenge of member.challenges) {
      const chosen = form.querySelector(`[name="${challenge.guid}"]:checked`)
        || form.querySelector(`input[type="text"][name="${challenge.guid}"]`);
      if (!chosen || !chosen.value) {
        errorSlot.replaceChildren(alertBox("Please answer every question."));
        form.querySelector(`[name="${challenge.guid}"]`).focus();
        return;
      }
      answers.push({ guid: challenge.guid, value: chosen.value });
    }
    submit.disabled = true;
    sendConnect("submitMFA", { member_guid: member.guid });
    try {
      follow((await api("PUT", `/members/${member.guid}/resume`, { challenges: answers })).member);
    } catch (error) {
      handleFatal(error, () => {
        errorSlot.replaceChildren(alertBox(error.message));
        submit.disabled = false;
      });
    }
  });
  show("mfa", `${member.institution.name} needs to verify it's you`,
    h("p", { class: "oa-hint" }, member.connection_status_message), form);
}

async function showConnected(member, announce = true) {
  let accounts = [];
  let problem = null;
  try {
    accounts = (await api("GET", `/members/${member.guid}/accounts`)).accounts;
  } catch (error) {
    problem = error.message;
  }
  // Sent when this session's connection finished, not when opening on an old one.
  if (announce) sendConnect("memberConnected", { member_guid: member.guid });
  const list = h("ul", { class: "oa-accounts", "aria-label": "Connected accounts" },
    accounts.map((a) => h("li", {},
      h("span", { class: "oa-name" }, a.name || "Account"),
      h("span", { class: "oa-type" },
        [kindOf(a.type), a.account_number ? `••${a.account_number}` : null]
          .filter(Boolean).join(" ")),
      h("span", { class: "oa-balance" }, money(a.balance, a.currency_code)))));
  const done = button("Done", () => {
    sendConnect("connected/primaryAction");
    done.disabled = true;
    live.textContent = "Done. You can close this window.";
  });
  show("connected", `You're connected to ${member.institution.name}`,
    h("p", { class: "oa-success" },
      opts.mode === "verification" ? "Your account is verified." : "Your accounts are connected."),
    problem ? alertBox(problem) : list,
    h("div", { class: "oa-actions" }, done, backToSearchButton("Connect another institution"),
      opts.enable_simplefin_token
        ? button("Use this connection in another app", () => showAnotherApp(member),
          "secondary", { id: "oa-another-app" })
        : null,
      button("Remove this connection", () => confirmDelete(member), "link")));
}

// --- "Use this connection in another app": a SimpleFIN setup token ----------------------
//
// Only when the app that opened the widget asked for it (enable_simplefin_token). Budget
// apps (Actual Budget, Firefly III, Sure, Home Assistant) read the user's accounts with
// a SimpleFIN setup token: the widget makes one for this session's user and shows it
// once. The token itself is never put in an event.

const BUDGET_APPS = "Actual Budget, Firefly III, Sure and Home Assistant";

function showAnotherApp(member, problem = null) {
  const back = () => showConnected(member, false);
  const make = button("Get a setup token", async () => {
    make.disabled = true;
    try {
      const made = (await api("POST", "/simplefin_token")).simplefin_token;
      sendOpenAgg("simplefinTokenCreated", {
        simplefin_token_guid: made.guid, expires_at: made.expires_at,
      });
      showSetupToken(member, made);
    } catch (error) {
      handleFatal(error, () => showAnotherApp(member, error.status === 429
        ? "You already have several setup tokens that haven't been used yet. Paste one "
          + "you copied into your app, or try again tomorrow: an unused token stops "
          + "working after a day."
        : error.message));
    }
  }, "primary", { id: "oa-make-token" });
  show("anotherApp", "Use your accounts in another app",
    problem ? alertBox(problem) : null,
    h("p", {}, `Apps like ${BUDGET_APPS} can show the balances and transactions `
      + "of every account you connected here. They ask for a ",
    h("strong", {}, "SimpleFIN setup token"), ": a long code you copy here and paste there."),
    h("p", { class: "oa-hint" }, "The app can only read your accounts: it can't move money "
      + "or change anything. Only share the token with an app you trust."),
    h("div", { class: "oa-actions" }, make, button("Back", back, "secondary")));
}

function showSetupToken(member, made) {
  const field = h("textarea", {
    id: "oa-token", class: "oa-token", readonly: true, rows: 4, spellcheck: "false",
    "aria-describedby": "oa-token-note",
  }, made.token);
  const copied = h("p", { class: "oa-hint", role: "status", id: "oa-copied" });
  const copy = button("Copy", async () => {
    field.focus();
    field.select();
    let done = false;
    try {
      await navigator.clipboard.writeText(made.token);
      done = true;
    } catch {
      // An iframe without clipboard access: copy the selection instead.
      try { done = document.execCommand("copy"); } catch { done = false; }
    }
    copied.textContent = done
      ? "Copied. Now paste it into the other app."
      : "The token is selected: copy it with your device's Copy command.";
  }, "primary oa-copy", { id: "oa-copy-token" });
  show("setupToken", "Your SimpleFIN setup token",
    h("label", { for: "oa-token" }, "Setup token"),
    field, copy, copied,
    h("dl", { class: "oa-facts", id: "oa-token-note" },
      h("dt", {}, "Use it by"),
      h("dd", { "data-fact": "expires" },
        h("time", { datetime: made.expires_at }, longDate(made.expires_at))),
      h("dt", {}, "Works once"),
      h("dd", { "data-fact": "once" }, "The first app you paste it into keeps it. For "
        + "another app, come back and get a new token.")),
    h("h2", {}, "Where to paste it"),
    h("p", {}, `In ${BUDGET_APPS}, add a bank connection and choose `,
      h("strong", {}, "SimpleFIN"), ". When the app asks for a SimpleFIN setup token, "
      + "paste this one."),
    h("p", { class: "oa-hint" }, "Keep it private until you have used it: whoever pastes it "
      + "first can read your accounts. We only show it now."),
    h("div", { class: "oa-actions" },
      button("Back to my accounts", () => showConnected(member, false), "secondary",
        { id: "oa-token-done" })));
}

// What each error status means for the end user, and what they can do about it.
function errorHelp(member) {
  const bank = member.institution.name;
  const status = member.connection_status;
  const update = button(member.is_oauth ? `Reconnect ${bank}` : "Update credentials",
    () => showCredentials(member.institution.code, member));
  const retry = (label = "Try again") => button(label, async () => {
    try {
      follow((await api("POST", `/members/${member.guid}/retry`)).member);
    } catch (error) {
      handleFatal(error, () => showProblem(error.message));
    }
  });
  const site = member.institution.url;
  if (NEEDS_CREDENTIALS.has(status)) {
    const refused = status === "DENIED" || status === "PREVENTED";
    // An OAuth member never gave the widget credentials: its consent was declined or ended.
    const title = !refused ? `${bank} needs more sign-in information`
      : member.is_oauth ? `${bank} didn't give access` : "Your credentials weren't accepted";
    return [title, update];
  }
  if (NEEDS_ENGINEER.has(status)) {
    return [`We couldn't connect to ${bank}`, [
      h("p", {}, status === "FAILED"
        ? "This is usually temporary: try again in a few minutes, or report the problem "
          + "if it keeps happening."
        : `Connecting to ${bank} has failed several times. Try again, or report the `
          + "problem and our engineers will fix it."),
      retry(),
      button("Report a problem", () => showReport(member), "secondary")]];
  }
  if (NOT_AGGREGATABLE.has(status)) return [`This connection to ${bank} can't be used`, null];
  switch (status) {
    case "REJECTED":
      return ["That answer wasn't accepted", retry()];
    case "EXPIRED":
      return ["The security question timed out", retry()];
    case "IMPEDED":
      return [`Finish a step at ${bank}`, [
        site ? h("p", {}, "Sign in at ", helpLink(site, bank),
          ", take care of the message waiting for you, then come back.") : null,
        retry("I've done it, try again")]];
    case "LOCKED":
      return [`Your ${bank} account is locked`, [
        h("p", {}, "Contact ", site ? helpLink(site, bank) : bank,
          " to unlock it, then update your credentials here."), update]];
    default:
      return [`We couldn't finish connecting to ${bank}`, retry()];
  }
}

// An error screen first looks for the member's open support ticket: its status and
// estimate replace a bare error where an engineer is on it, and the engineer's
// questions come first wherever they are waiting.
async function showLoginError(member, { checkTicket = true } = {}) {
  if (checkTicket) {
    const ticket = await openTicket(member);
    if (ticket && (NEEDS_ENGINEER.has(member.connection_status)
      || ticket.status === LOGIN_INFO_REQUIRED)) {
      return showTicket(member, ticket, "open");
    }
  }
  const [title, actions] = errorHelp(member);
  show("loginError", title,
    h("p", { class: "oa-alert", role: "alert" }, member.connection_status_message),
    h("div", { class: "oa-actions" }, actions,
      backToSearchButton(),
      button("Remove this connection", () => confirmDelete(member), "link")));
}

function confirmDelete(member) {
  const name = member.institution.name;
  const cancel = () => (member.connection_status === "CONNECTED"
    ? showConnected(member, false)
    : showLoginError(member));
  show("deleteMember", `Remove ${name}?`,
    h("p", {}, `The app will no longer see your ${name} accounts. You can connect again later.`),
    h("div", { class: "oa-actions" },
      button("Remove", async () => {
        try {
          await api("DELETE", `/members/${member.guid}`);
        } catch (error) {
          return handleFatal(error, () => showProblem(error.message));
        }
        clearTimeout(followed?.timer);
        followed = null;
        sendConnect("memberDeleted", { member_guid: member.guid });
        show("deleted", `${name} was removed`,
          h("p", {}, "The connection and its data were deleted."),
          backToSearchButton("Connect an institution"));
      }, "danger"),
      button("Cancel", cancel, "secondary")));
}

function showProblem(message, retry = null) {
  show("error", "Something went wrong",
    alertBox(message),
    retry ? button("Try again", retry) : null,
    backToSearchButton("Back to search"));
}

function handleFatal(error, otherwise) {
  if (error.status === 401) {
    clearTimeout(followed?.timer);
    show("error", "This session has ended",
      alertBox(error.message),
      h("p", {}, "Please close this window and start again from the app."));
    return;
  }
  otherwise();
}

// --- support: "Report a problem" -------------------------------------------------------------
//
// OpenAgg's support tickets (docs/support.md): the end user asks an engineer for help
// with a connection only an engineer can fix, then sees the ticket's status, place in
// line and estimate whenever they come back, and answers the engineer's questions.

async function openTicket(member) {
  try {
    return (await api("GET", `/members/${member.guid}/support_tickets/open`)).support_ticket;
  } catch {
    return null; // the error screen still helps without it
  }
}

const TICKET_WORDS = {
  NEW: "Reported. It's waiting for an engineer.",
  IN_PROCESS: "An engineer is working on it.",
  ADDITIONAL_LOGIN_INFO_REQUIRED: "An engineer needs a little more information from you.",
  ADDITIONAL_LOGIN_INFO_SUBMITTED: "We have your answers. An engineer is working on it.",
  ESCALATED: "A specialist is looking into it, with your bank if needed.",
  REOPENED: "Still being worked on: the first fix didn't hold, so it kept its place in line.",
  CLOSED: "Fixed.",
  INVALID: "Closed: our engineers found nothing to fix on our side.",
};

function ticketWords(ticket) {
  const open = ticket.status !== "CLOSED" && ticket.status !== "INVALID";
  if (open && ticket.queue_position === null && ticket.status !== LOGIN_INFO_REQUIRED) {
    return "An engineer made a fix. We're checking it by connecting again.";
  }
  return TICKET_WORDS[ticket.status] || ticket.status;
}

function longDate(iso) {
  const date = new Date(iso);
  try {
    // With the zone: a deadline's hour means little without it.
    return new Intl.DateTimeFormat(undefined, {
      weekday: "long", month: "long", day: "numeric", hour: "numeric", minute: "2-digit",
      timeZoneName: "short",
    }).format(date);
  } catch {
    return date.toString();
  }
}

function ticketFacts(ticket) {
  const facts = [["Status", ticketWords(ticket)]];
  if (ticket.queue_position !== null) {
    facts.push(["Your place in line", ticket.queue_position === 1
      ? "Next" : `${ticket.queue_position}`]);
  }
  if (ticket.estimated_resolution_at && ticket.status !== "CLOSED"
    && ticket.status !== "INVALID") {
    const late = new Date(ticket.estimated_resolution_at).getTime() < Date.now();
    facts.push([late ? "We expected to fix it by" : "Expected to be fixed by",
      h("time", { datetime: ticket.estimated_resolution_at },
        longDate(ticket.estimated_resolution_at)),
      late ? " It's taking longer than we thought; it's still being worked on." : null]);
  }
  if (ticket.report_count > 1) facts.push(["Reports", `${ticket.report_count}`]);
  facts.push(["Reference", h("span", { class: "oa-ref" }, ticket.guid)]);
  return h("dl", { class: "oa-ticket" }, facts.flatMap(([term, ...value]) => [
    h("dt", {}, term), h("dd", { "data-fact": term }, ...value)]));
}

const TITLES = {
  new: "We've reported the problem",
  joined: "We added your report to the open one",
  answered: "Thanks, we sent your answers",
};

function showTicket(member, ticket, how) {
  if (ticket.status === LOGIN_INFO_REQUIRED && how === "open") {
    return showLoginInfo(member, ticket);
  }
  const bank = member.institution.name;
  const working = member.connection_status === "CONNECTED";
  const intro = {
    new: `Our engineers fix problems in the order they're reported. You don't need to do `
      + `anything else: your ${bank} connection will start working again on its own.`,
    joined: "This connection already had an open report. We added what you told us to it; "
      + "it keeps its place in line.",
    answered: "The engineer fixing your connection can read them now.",
  }[how] || `You reported a problem with your ${bank} connection. Here is where it stands.`;
  show("supportTicket", TITLES[how] || `Your report about ${bank}`,
    h("p", {}, intro),
    ticketFacts(ticket),
    h("div", { class: "oa-actions" },
      ticket.status === LOGIN_INFO_REQUIRED
        ? button("Answer the engineer's questions", () => showLoginInfo(member, ticket))
        : null,
      working
        ? button("See your accounts", () => showConnected(member, false), "secondary")
        : button("Try connecting again now", async () => {
          try {
            follow((await api("POST", `/members/${member.guid}/retry`)).member);
          } catch (error) {
            handleFatal(error, () => showProblem(error.message));
          }
        }, "secondary"),
      button("Tell us more", () => showReport(member, ticket), "secondary"),
      backToSearchButton(),
      button("Remove this connection", () => confirmDelete(member), "link")));
}

const PROBLEM_CHOICES = [
  ["not_connecting", "It keeps failing to connect"],
  ["wrong_data", "My accounts, balances or transactions look wrong"],
  ["other", "Something else"],
];

function showReport(member, ticket = null) {
  const bank = member.institution.name;
  const errorSlot = h("div");
  const details = h("textarea", {
    id: "oa-report-details",
    name: "details",
    rows: "4",
    maxlength: "3000",
    "aria-describedby": "oa-report-details-hint",
  });
  const submit = h("button", { type: "submit", class: "oa-button oa-primary" }, "Send report");
  const form = h("form", { class: "oa-form", novalidate: true },
    errorSlot,
    h("fieldset", { class: "oa-field oa-options" },
      h("legend", {}, "What went wrong?"),
      PROBLEM_CHOICES.map(([value, label], i) => h("label", { class: "oa-option" },
        h("input", { type: "radio", name: "problem", value, checked: i === 0 }),
        h("span", {}, label)))),
    h("div", { class: "oa-field" },
      h("label", { for: "oa-report-details" }, "Details (optional)"),
      h("p", { class: "oa-hint", id: "oa-report-details-hint" },
        "What you see and since when. Never include your password."),
      details),
    submit);
  // Back to where things stand now: the status may have changed meanwhile.
  const back = async () => {
    if (ticket) return showTicket(member, ticket, "open-status");
    try {
      return follow((await api("GET", `/members/${member.guid}`)).member);
    } catch (error) {
      return handleFatal(error, () => showLoginError(member, { checkTicket: false }));
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const problem = form.querySelector('input[name="problem"]:checked')?.value;
    if (!problem) {
      errorSlot.replaceChildren(alertBox("Please choose what went wrong."));
      form.querySelector('input[name="problem"]').focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Sending…";
    try {
      const body = { problem };
      if (details.value.trim()) body.details = details.value.trim();
      const result = await api("POST", `/members/${member.guid}/support_tickets`, body);
      const sent = result.support_ticket;
      sendOpenAgg("problemReported", {
        member_guid: member.guid,
        support_ticket_guid: sent.guid,
        status: sent.status,
        joined: result.joined,
      });
      showTicket(member, sent, result.joined ? "joined" : "new");
    } catch (error) {
      handleFatal(error, () => {
        errorSlot.replaceChildren(alertBox(error.message));
        submit.disabled = false;
        submit.textContent = "Send report";
        errorSlot.querySelector(".oa-alert")?.setAttribute("tabindex", "-1");
        errorSlot.querySelector(".oa-alert")?.focus();
      });
    }
  });
  show("reportProblem", ticket ? "Tell us more about the problem" : `Report a problem with ${bank}`,
    h("p", { class: "oa-hint" }, ticket
      ? "We'll add this to your open report."
      : "An engineer will look into it. You can come back here to see how it's going."),
    form,
    h("div", { class: "oa-actions" }, button("Cancel", back, "secondary")));
}

function showLoginInfo(member, ticket) {
  const bank = member.institution.name;
  const prompts = ticket.additional_login_info || [];
  const errorSlot = h("div");
  const submit = h("button", { type: "submit", class: "oa-button oa-primary" }, "Send answers");
  const form = h("form", { class: "oa-form", novalidate: true },
    errorSlot, prompts.map(challengeField), submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answers = [];
    for (const prompt of prompts) {
      const chosen = form.querySelector(`[name="${prompt.guid}"]:checked`)
        || form.querySelector(`input[type="text"][name="${prompt.guid}"]`);
      if (!chosen || !chosen.value.trim()) {
        errorSlot.replaceChildren(alertBox("Please answer every question."));
        form.querySelector(`[name="${prompt.guid}"]`).focus();
        return;
      }
      answers.push({ guid: prompt.guid, value: chosen.value });
    }
    submit.disabled = true;
    try {
      const path = `/members/${member.guid}/support_tickets/${ticket.guid}/additional_login_info`;
      const updated = (await api("PUT", path, { answers })).support_ticket;
      sendOpenAgg("loginInfoSubmitted", {
        member_guid: member.guid,
        support_ticket_guid: ticket.guid,
      });
      showTicket(member, updated, "answered");
    } catch (error) {
      handleFatal(error, () => {
        errorSlot.replaceChildren(alertBox(error.message));
        submit.disabled = false;
      });
    }
  });
  show("loginInfo", `Our engineer needs a bit more from you`,
    h("p", {}, `To fix your ${bank} connection, the engineer working on it asks:`),
    form,
    h("p", { class: "oa-hint" },
      "Your answers are encrypted. Only that engineer can read them, once, and they are "
      + "deleted when your report is closed."),
    h("div", { class: "oa-actions" },
      button("Answer later", () => showTicket(member, ticket, "later"), "secondary")));
}

// --- start ----------------------------------------------------------------------------

function initialStep(member) {
  // MX's initial_step values; a member still in progress opens on its connection.
  if (member.connection_status === "CHALLENGED" && member.challenges.length) return "mfa";
  if (member.connection_status === "PENDING") return "enterCreds"; // MX's OAuth step
  if (opts.update_credentials || member.connection_status === "IMPORTED") return "enterCreds";
  if (member.is_being_aggregated || member.connection_status === "CONNECTED") return "connected";
  return "loginError";
}

async function start() {
  send("mx/load", {});
  if (opts.current_member_guid) {
    let member;
    try {
      member = (await api("GET", `/members/${opts.current_member_guid}`)).member;
    } catch (error) {
      sendConnect("loaded", { initial_step: "search" });
      return handleFatal(error, () => showProblem(error.message));
    }
    const initial = initialStep(member);
    sendConnect("loaded", { initial_step: initial });
    if (initial === "enterCreds") {
      statusUpdate(member);
      return showCredentials(member.institution.code, member);
    }
    if (initial === "connected" && !member.is_being_aggregated) {
      statusUpdate(member);
      const ticket = await openTicket(member);
      if (ticket?.status === LOGIN_INFO_REQUIRED) return showLoginInfo(member, ticket);
      return showConnected(member, false);
    }
    return follow(member);
  }
  if (opts.current_institution_code) {
    sendConnect("loaded", { initial_step: "enterCreds" });
    return showCredentials(opts.current_institution_code);
  }
  sendConnect("loaded", { initial_step: "search" });
  return showSearch(true);
}

start();
