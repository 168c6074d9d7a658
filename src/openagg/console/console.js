// OpenAgg engineer console. One ES module plus charts.js, no dependencies, no build
// step. It drives /console/api with the session cookie, and sends the session's CSRF
// token in X-CSRF-Token on every change. Views: #/queue, #/tickets/<guid>,
// #/incidents, #/long-tail, #/charts.

import { h, showView } from "/assets/dom.js";
import { loginForm, sessionApi } from "/assets/login.js";
import {
  barChart,
  duration,
  durationUnit,
  figure,
  hbarChart,
  numbersTable,
  percent,
  short,
} from "./charts.js";

const API = "/console/api";
const main = document.getElementById("main");
const live = document.getElementById("live");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const whoName = document.getElementById("who-name");
const ENDED = new Set(["CLOSED", "INVALID"]);
const POLL_MS = 1500;

let session = null; // {operator, csrf_token, expires_at}
let navigation = 0; // bumped on every view change: late answers for old views are dropped
let views = 0;
let pollTimer = null;

// --- the console API -------------------------------------------------------------------

// A 401 on a call while logged in: the session ended (expired, logged out elsewhere,
// operator disabled).
const api = sessionApi(API, (e) => {
  session = null;
  showLogin(e.message);
});

// --- DOM helpers -----------------------------------------------------------------------


function announce(text) {
  live.textContent = "";
  // A fresh text node, so screen readers read a repeated message again.
  setTimeout(() => {
    live.textContent = text;
  }, 30);
}

function render(view, title, ...content) {
  stopPolling();
  main.dataset.view = view;
  main.dataset.seq = String(++views);
  delete main.dataset.status;
  main.setAttribute("aria-busy", "false");
  document.title = `${title} · OpenAgg console`;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.nav === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  showView(main, { title, headingId: "view-title" }, content);
}

function loading(view, title) {
  stopPolling();
  main.dataset.view = view;
  delete main.dataset.status;
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(h("h1", { tabindex: "-1" }, title), h("p", {}, "Loading…"));
}

function failed(view, title, error, retry) {
  if (error.handled) return;
  render(
    view,
    title,
    h("p", { role: "alert", class: "error" }, error.message),
    h("button", { type: "button", onclick: retry }, "Try again"),
  );
}

function time(iso) {
  if (!iso) return "–";
  return `${iso.replace("T", " ").replace(/:\d\dZ$/, "")} UTC`;
}

function ticketLink(guid) {
  return h("a", { href: `#/tickets/${encodeURIComponent(guid)}` }, guid);
}

function badge(status) {
  return h("span", { class: `badge status-${status}` }, status.replaceAll("_", " "));
}

function table(caption, headers, rows, className = "") {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: `list ${className}` },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        rows.map((cells) =>
          h(
            "tr",
            {},
            cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell)),
          ),
        ),
      ),
    ),
  );
}

function stopPolling() {
  if (pollTimer !== null) clearTimeout(pollTimer);
  pollTimer = null;
}

// --- login -----------------------------------------------------------------------------

function showLogin(message) {
  navigation++;
  nav.hidden = true;
  who.hidden = true;
  const login = loginForm({
    api,
    fields: [
      { id: "login-email", name: "email", label: "Email", type: "email", autocomplete: "username" },
      {
        id: "login-password",
        name: "password",
        label: "Password",
        type: "password",
        autocomplete: "current-password",
      },
    ],
    missing: "Enter your email and password.",
    clearSecret: true,
    classes: { form: "login" },
    error: { class: "error", id: "login-error" },
    opened: (opened) => {
      session = opened;
      loggedIn();
    },
  });
  render(
    "login",
    "Log in to the engineer console",
    message ? h("p", { class: "notice", id: "login-message" }, message) : null,
    h("p", {}, "Operators are created with ", h("code", {}, "openagg operators create"), "."),
    login.form,
  );
  login.identifier.focus();
}

function loggedIn() {
  nav.hidden = false;
  who.hidden = false;
  whoName.textContent = `${session.operator.name} (${session.operator.email})`;
  route();
}

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/logout");
  } catch (e) {
    if (e.handled) return;
  }
  session = null;
  api.setSession(null);
  showLogin("You have logged out.");
});

// --- router ----------------------------------------------------------------------------

function route() {
  if (!session) return;
  const hash = location.hash || "#/queue";
  const ticket = hash.match(/^#\/tickets\/([^/]+)$/);
  if (ticket) return showTicket(decodeURIComponent(ticket[1]));
  if (hash === "#/incidents") return showIncidents();
  if (hash === "#/long-tail") return showLongTail();
  if (hash.startsWith("#/charts")) return showCharts();
  return showQueue();
}

window.addEventListener("hashchange", route);

// --- queue -----------------------------------------------------------------------------

async function showQueue() {
  const mine = ++navigation;
  loading("queue", "Queue");
  let data;
  try {
    data = await api("GET", "/queue");
  } catch (e) {
    if (mine === navigation) failed("queue", "Queue", e, showQueue);
    return;
  }
  if (mine !== navigation) return;
  const rows = data.tickets.map((t) => [
    String(t.queue_position ?? "–"),
    ticketLink(t.guid),
    badge(t.status),
    t.institution_code,
    t.cause || "–",
    String(t.report_count),
    t.channel,
    duration(t.age_seconds),
    time(t.estimated_resolution_at),
  ]);
  const find = h("input", { id: "find-guid", name: "guid", placeholder: "TKT-…", required: true });
  const findForm = h(
    "form",
    { class: "inline" },
    h("label", { for: "find-guid" }, "Open a ticket by guid"),
    find,
    h("button", { type: "submit", class: "secondary" }, "Open"),
  );
  findForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const guid = find.value.trim();
    if (guid) location.hash = `#/tickets/${encodeURIComponent(guid)}`;
  });
  render(
    "queue",
    "Queue",
    h(
      "p",
      {},
      `${data.tickets.length} ticket(s), oldest first. A reopened ticket keeps its original place; `,
      "tickets waiting for the end user's answers or being verified after a fix are not in the queue.",
    ),
    h(
      "div",
      { class: "toolbar" },
      h("button", { type: "button", class: "secondary", onclick: showQueue }, "Refresh"),
      findForm,
    ),
    data.tickets.length
      ? table(
          "The engineers' queue, first in, first out",
          ["#", "Ticket", "Status", "Institution", "Cause", "Reports", "Channel", "Age", "Estimate"],
          rows,
          "queue",
        )
      : h("p", { class: "empty" }, "The queue is empty."),
  );
}

// --- one ticket ------------------------------------------------------------------------

function field(name, value) {
  return [h("dt", {}, name), h("dd", {}, value ?? "–")];
}

async function showTicket(guid) {
  const mine = ++navigation;
  loading("ticket", guid);
  let data;
  try {
    data = await api("GET", `/tickets/${encodeURIComponent(guid)}`);
  } catch (e) {
    if (mine === navigation) failed("ticket", guid, e, () => showTicket(guid));
    return;
  }
  if (mine !== navigation) return;
  renderTicket(data);
}

function renderTicket(data, extra = {}) {
  const t = data.support_ticket;
  const ended = ENDED.has(t.status);
  const error = h("p", { class: "error", role: "alert", id: "action-error" });
  const notice = h("p", { class: "notice", id: "action-notice" }, extra.notice || "");

  async function act(button, action, body, message) {
    error.textContent = "";
    const buttons = [...main.querySelectorAll("button:not([disabled])")];
    for (const b of buttons) b.disabled = true;
    const path = `/tickets/${encodeURIComponent(t.guid)}`;
    try {
      const result = await api("POST", `${path}/${action}`, body);
      // Reading the answers returns them alone (and erases them): show them on the
      // ticket as it is now; every other action returns the ticket.
      const answers = action === "read_login_info" ? result.answers : undefined;
      const detail = answers ? await api("GET", path) : result;
      const text = message(result);
      renderTicket(detail, { notice: text, answers });
      announce(text);
    } catch (e) {
      if (e.handled) return;
      for (const b of buttons) b.disabled = false;
      error.textContent = e.message;
      button.focus();
    }
  }

  const details = h(
    "dl",
    { class: "fields" },
    field("Status", badge(t.status)),
    field("Queue position", t.queue_position === null ? "–" : String(t.queue_position)),
    field("Estimated resolution", time(t.estimated_resolution_at)),
    field("Institution", t.institution_code),
    field("Channel", t.channel),
    field("Connection status at escalation", t.connection_status),
    field("Cause at escalation", t.cause),
    field("Report count", String(t.report_count)),
    field("User", t.user_guid),
    field("Member", t.member_guid),
    field("Accounts", t.account_guids.length ? t.account_guids.join(", ") : "–"),
    field("Created", `${time(t.created_at)} (${duration(t.age_seconds)} ago)`),
    field("Updated", time(t.updated_at)),
    field("Resolved", time(t.resolved_at)),
  );
  const texts = h(
    "div",
    { class: "texts" },
    h("h2", {}, "Description"),
    h("p", { class: "free-text", id: "ticket-description" }, t.description || "–"),
    h("h2", {}, "Special instructions"),
    h("p", { class: "free-text", id: "ticket-instructions" }, t.special_instructions || "–"),
  );

  const verifying = t.verifying_since
    ? h(
        "p",
        { class: "notice verifying", id: "verifying" },
        `Being verified since ${time(t.verifying_since)}: the member is being re-aggregated. `,
        "The ticket closes if it succeeds and reopens if it still fails; this page updates by itself.",
      )
    : null;

  const sections = [
    h("p", { class: "back" }, h("a", { href: "#/queue" }, "← Back to the queue")),
    verifying,
    notice,
    error,
    details,
    texts,
    loginInfoSection(t, extra.answers, act),
  ];
  if (ended) {
    sections.push(h("p", { class: "notice" }, `This ticket is ${t.status}: there is nothing left to do.`));
  } else {
    sections.push(actionsSection(t, act));
  }
  sections.push(historySection(data.history));
  render("ticket", t.guid, ...sections);
  main.dataset.status = t.status;
  if (t.verifying_since) pollWhileVerifying(t.guid, data.history.length);
}

function pollWhileVerifying(guid, seen) {
  const mine = navigation;
  pollTimer = setTimeout(async () => {
    pollTimer = null;
    try {
      const data = await api("GET", `/tickets/${encodeURIComponent(guid)}`);
      if (mine !== navigation) return;
      if (data.support_ticket.verifying_since && data.history.length === seen) {
        pollWhileVerifying(guid, seen);
        return;
      }
      renderTicket(data);
      announce(`${guid} is now ${data.support_ticket.status}.`);
    } catch (e) {
      if (!e.handled && mine === navigation) pollWhileVerifying(guid, seen);
    }
  }, POLL_MS);
}

function loginInfoSection(t, answers, act) {
  const info = t.login_info;
  const parts = [h("h2", { id: "aai-title" }, "Additional login info")];
  if (answers) {
    parts.push(
      h(
        "div",
        { class: "answers", id: "login-answers" },
        h("p", { class: "notice" }, "Shown once: OpenAgg has erased these answers. Use them now."),
        h("dl", { class: "fields" }, answers.flatMap((a) => field(a.label, h("code", {}, a.value)))),
      ),
    );
  }
  if (info.prompts.length) {
    parts.push(
      h("p", {}, "Asked of the end user:"),
      h(
        "ul",
        {},
        info.prompts.map((p) =>
          h("li", {}, `${p.label} (${p.type}${p.options.length ? `: ${p.options.join(", ")}` : ""})`),
        ),
      ),
    );
  }
  if (info.answers_waiting) {
    const read = h(
      "button",
      {
        type: "button",
        id: "read-login-info",
        onclick: () =>
          act(read, "read_login_info", undefined, () => "The answers are shown below, once."),
      },
      "Read the answers (once)",
    );
    parts.push(h("p", {}, "The end user has answered. ", read));
  } else if (!info.prompts.length && !answers) {
    parts.push(h("p", {}, "None asked."));
  }
  return h("section", { "aria-labelledby": "aai-title", class: "aai" }, ...parts);
}

function noteField(id, label, required = false) {
  return [
    h("label", { for: id }, label),
    h("textarea", { id, name: "note", rows: "2", maxlength: "2000", required }),
  ];
}

function actionsSection(t, act) {
  const guid = t.guid;
  const waiting = t.status === "ADDITIONAL_LOGIN_INFO_REQUIRED";

  const take = h(
    "button",
    {
      type: "button",
      id: "take",
      disabled: waiting || undefined,
      onclick: () => act(take, "take", undefined, () => `You took ${guid}.`),
    },
    "Take",
  );

  // Escalate.
  const escalateForm = h(
    "form",
    { class: "action", id: "escalate-form", novalidate: true },
    h("h3", {}, "Escalate"),
    h("p", { class: "hint" }, "Hand it up (a senior engineer, the institution); it keeps its place."),
    ...noteField("escalate-note", "Note (optional)"),
    h("button", { type: "submit", class: "secondary" }, "Escalate"),
  );
  escalateForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const note = escalateForm.querySelector("textarea").value.trim();
    act(event.submitter, "escalate", note ? { note } : {}, () => `${guid} is escalated.`);
  });

  // Mark invalid.
  const invalidForm = h(
    "form",
    { class: "action", id: "invalid-form", novalidate: true },
    h("h3", {}, "Mark invalid"),
    h("p", { class: "hint" }, "Not an aggregation problem. Say why, for the history."),
    ...noteField("invalid-note", "Why (required)", true),
    h("button", { type: "submit", class: "danger" }, "Mark invalid"),
  );
  invalidForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const note = invalidForm.querySelector("textarea").value.trim();
    act(event.submitter, "invalid", { note }, () => `${guid} is marked invalid.`);
  });

  // Resolve.
  const incident = h("input", { type: "checkbox", id: "resolve-incident", name: "incident" });
  const resolveForm = h(
    "form",
    { class: "action", id: "resolve-form", novalidate: true },
    h("h3", {}, "Resolve"),
    h(
      "p",
      { class: "hint" },
      "Re-aggregates the member: the ticket closes if it then succeeds and reopens (at its place) if it still fails.",
    ),
    h(
      "div",
      { class: "check" },
      incident,
      h(
        "label",
        { for: "resolve-incident" },
        `Whole incident: also every member failing at ${t.institution_code} ` +
          `with ${t.cause || "this cause"}, and their tickets`,
      ),
    ),
    ...noteField("resolve-note", "Note (optional)"),
    h("button", { type: "submit" }, "Resolve"),
  );
  resolveForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const note = resolveForm.querySelector("textarea").value.trim();
    const body = { incident: incident.checked, ...(note ? { note } : {}) };
    act(event.submitter, "resolve", body, (result) => {
      const r = result.resolution;
      const parts = [`Re-aggregating ${r.jobs_started} member(s).`];
      if (r.verifying.length) parts.push(`Verifying: ${r.verifying.join(", ")}.`);
      if (r.reopened.length) parts.push(`Reopened at once (needs the end user): ${r.reopened.join(", ")}.`);
      return parts.join(" ");
    });
  });

  return h(
    "section",
    { class: "actions", "aria-labelledby": "actions-title" },
    h("h2", { id: "actions-title" }, "Actions"),
    h("div", { class: "toolbar" }, take, waiting ? h("span", { class: "hint" }, "Waiting for the end user's answers.") : null),
    h("div", { class: "action-grid" }, promptBuilder(t, act), resolveForm, escalateForm, invalidForm),
  );
}

function promptBuilder(t, act) {
  const list = h("div", { class: "prompts", id: "prompts" });
  let counter = 0;

  function addPrompt() {
    const n = ++counter;
    const label = h("input", { id: `prompt-label-${n}`, class: "prompt-label", maxlength: "200", required: true });
    const type = h(
      "select",
      { id: `prompt-type-${n}`, class: "prompt-type" },
      h("option", { value: "TEXT" }, "Text"),
      h("option", { value: "TOKEN" }, "One-time code (token)"),
      h("option", { value: "OPTIONS" }, "Choice between options"),
    );
    const options = h("input", {
      id: `prompt-options-${n}`,
      class: "prompt-options",
      placeholder: "SMS, Email",
    });
    const optionsRow = h(
      "div",
      { class: "options-row", hidden: true },
      h("label", { for: `prompt-options-${n}` }, "Options (comma-separated)"),
      options,
    );
    type.addEventListener("change", () => {
      optionsRow.hidden = type.value !== "OPTIONS";
    });
    const fieldset = h(
      "fieldset",
      { class: "prompt" },
      h("legend", {}, `Question ${n}`),
      h("label", { for: `prompt-label-${n}` }, "Question shown to the end user"),
      label,
      h("label", { for: `prompt-type-${n}` }, "Answer type"),
      type,
      optionsRow,
    );
    const remove = h("button", { type: "button", class: "link" }, `Remove question ${n}`);
    remove.addEventListener("click", () => {
      fieldset.remove();
      list.querySelector(".prompt-label")?.focus();
    });
    fieldset.append(remove);
    list.append(fieldset);
    return label;
  }

  addPrompt();
  const add = h("button", { type: "button", class: "secondary", id: "add-prompt" }, "Add a question");
  add.addEventListener("click", () => addPrompt().focus());
  const form = h(
    "form",
    { class: "action", id: "login-info-form", novalidate: true },
    h("h3", {}, "Request login info"),
    h(
      "p",
      { class: "hint" },
      "Ask the end user questions, like an MFA challenge. The ticket waits for them (its estimate freezes).",
    ),
    list,
    add,
    ...noteField("login-info-note", "Note (optional)"),
    h("button", { type: "submit" }, "Ask the end user"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const prompts = [...list.querySelectorAll("fieldset.prompt")].map((fs) => {
      const type = fs.querySelector(".prompt-type").value;
      const prompt = { label: fs.querySelector(".prompt-label").value.trim(), type };
      if (type === "OPTIONS") {
        prompt.options = fs
          .querySelector(".prompt-options")
          .value.split(",")
          .map((o) => o.trim())
          .filter(Boolean);
      }
      return prompt;
    });
    const note = form.querySelector("textarea").value.trim();
    act(event.submitter, "request_login_info", { prompts, ...(note ? { note } : {}) }, () =>
      `${t.guid} now waits for the end user's answers.`,
    );
  });
  return form;
}

function historySection(events) {
  const rows = events.map((e) => [
    time(e.created_at),
    e.action.replaceAll("_", " "),
    `${e.actor.type}${e.actor.name || e.actor.id ? `: ${e.actor.name || e.actor.id}` : ""}`,
    `${e.from_status || "–"} → ${e.to_status || "–"}`,
    e.channel || "–",
    e.client_address || "–",
    e.note || "",
  ]);
  return h(
    "section",
    { "aria-labelledby": "history-title" },
    h("h2", { id: "history-title" }, "History"),
    table(
      "Every report and change, oldest first",
      ["When", "Action", "By", "Status", "Channel", "From", "Note"],
      rows,
      "history",
    ),
  );
}

// --- incidents and the long tail --------------------------------------------------------

function ticketLinks(guids) {
  if (!guids.length) return "–";
  const shown = guids.slice(0, 5).flatMap((g, i) => (i ? [", ", ticketLink(g)] : [ticketLink(g)]));
  return h("span", {}, ...shown, guids.length > 5 ? ` and ${guids.length - 5} more` : "");
}

async function showIncidents() {
  const mine = ++navigation;
  loading("incidents", "Incidents");
  let data;
  try {
    data = await api("GET", "/incidents");
  } catch (e) {
    if (mine === navigation) failed("incidents", "Incidents", e, showIncidents);
    return;
  }
  if (mine !== navigation) return;
  const rows = data.incidents.map((i, n) => [
    String(n + 1),
    String(i.impact),
    `${i.institution_name} (${i.institution_code})`,
    i.cause,
    String(i.affected_users),
    String(i.failing_members),
    String(i.open_tickets),
    time(i.broken_since),
    ticketLinks(i.ticket_guids),
  ]);
  render(
    "incidents",
    "Incidents",
    h(
      "p",
      {},
      "Failing members and open tickets grouped by institution and cause, largest impact first. ",
      "Impact: each distinct active end user affected counts 1 plus the days they have been broken (up to 30), ",
      "and each open ticket adds 5. Resolving one of its tickets with “Whole incident” re-aggregates every member in it.",
    ),
    data.incidents.length
      ? table(
          "Incidents by impact",
          [
            "Rank",
            "Impact",
            "Institution",
            "Cause",
            "Users affected",
            "Failing members",
            "Open tickets",
            "Broken since",
            "Tickets",
          ],
          rows,
          "incidents",
        )
      : h("p", { class: "empty" }, "No incidents: nothing is failing and no ticket is open."),
  );
}

async function showLongTail() {
  const mine = ++navigation;
  loading("long-tail", "Long tail");
  let data;
  try {
    data = await api("GET", "/long_tail");
  } catch (e) {
    if (mine === navigation) failed("long-tail", "Long tail", e, showLongTail);
    return;
  }
  if (mine !== navigation) return;
  const rows = data.institutions.map((i) => [
    `${i.institution_name} (${i.institution_code})`,
    String(i.users),
    String(i.failing_members),
    String(i.open_tickets),
    i.causes.join(", "),
    ticketLinks(i.ticket_guids),
  ]);
  render(
    "long-tail",
    "Long tail",
    h(
      "p",
      {},
      `Institutions with at most ${data.max_users} distinct end users that have failing members or open tickets, `,
      "most open tickets first: the work an impact ranking would never reach.",
    ),
    data.institutions.length
      ? table(
          "Small institutions with open problems",
          ["Institution", "Users", "Failing members", "Open tickets", "Causes", "Tickets"],
          rows,
          "long-tail",
        )
      : h("p", { class: "empty" }, "No small institution has an open problem."),
  );
}

// --- charts ----------------------------------------------------------------------------

function chartDays() {
  const m = location.hash.match(/^#\/charts\?days=(\d+)$/);
  return m ? Number(m[1]) : 30;
}

async function showCharts() {
  const mine = ++navigation;
  const days = chartDays();
  loading("charts", "Charts");
  let data;
  try {
    data = await api("GET", `/charts?days=${days}`);
  } catch (e) {
    if (mine === navigation) failed("charts", "Charts", e, showCharts);
    return;
  }
  if (mine !== navigation) return;

  const select = h(
    "select",
    { id: "chart-days" },
    [7, 30, 90, 365].map((d) => h("option", { value: String(d), selected: d === days || undefined }, `${d} days`)),
  );
  select.addEventListener("change", () => {
    location.hash = `#/charts?days=${select.value}`;
  });

  render(
    "charts",
    "Charts",
    h("p", {}, `Computed at ${time(data.generated_at)}. Days are UTC days.`),
    h("div", { class: "toolbar" }, h("label", { for: "chart-days" }, "Window"), select),
    h(
      "div",
      { class: "chart-grid" },
      openTicketsChart(data.open_tickets),
      resolutionChart(data.time_to_resolution),
      failureChart(data.failure_rates),
      queueAgeChart(data.queue_age),
    ),
  );
}

function openTicketsChart(d) {
  const points = d.points;
  const last = points[points.length - 1];
  const peak = Math.max(0, ...points.map((p) => p.open_tickets));
  const summary = `${last.open_tickets} open now; at most ${peak} at the end of a day over the last ${d.days} days.`;
  return figure(
    "chart-open",
    "Open tickets over time",
    summary,
    barChart({
      label: `Open tickets at the end of each day. ${summary}`,
      categories: points.map((p) => p.day.slice(5)),
      series: [{ name: "open tickets", values: points.map((p) => p.open_tickets), className: "open" }],
      counts: true,
    }),
    numbersTable(
      "numbers-open",
      "Open tickets per day",
      ["Day", "Open tickets"],
      points.map((p) => [p.day, String(p.open_tickets)]),
    ),
  );
}

function resolutionChart(r) {
  const closed = r.weeks.reduce((n, w) => n + w.closed, 0);
  const summary = closed
    ? `${closed} ticket(s) closed; median ${duration(r.median_seconds)}, 90th percentile ${duration(r.p90_seconds)}.`
    : "No ticket was closed in this window.";
  const unit = durationUnit(Math.max(0, ...r.weeks.map((w) => w.p90_seconds ?? 0)));
  const scaled = (s) => (s === null ? null : s / unit.seconds);
  const weekly = barChart({
    label: `Time to resolution per week ending on the date shown, in ${unit.name}. ${summary}`,
    categories: r.weeks.map((w) => w.end.slice(5, 10)),
    series: [
      { name: `median (${unit.name})`, values: r.weeks.map((w) => scaled(w.median_seconds)), className: "median" },
      { name: `90th percentile (${unit.name})`, values: r.weeks.map((w) => scaled(w.p90_seconds)), className: "p90" },
    ],
    format: short,
  });
  const histogram = barChart({
    label: `How long closed tickets took: ${r.histogram.map((b) => `${b.label}: ${b.count}`).join(", ")}.`,
    categories: r.histogram.map((b) => b.label),
    series: [{ name: "tickets", values: r.histogram.map((b) => b.count), className: "hist" }],
    height: 180,
    counts: true,
  });
  return figure(
    "chart-resolution",
    "Time to resolution",
    summary,
    weekly,
    h(
      "div",
      {},
      numbersTable(
        "numbers-ttr-weeks",
        "Time to resolution per week",
        ["Week ending", "Closed", "Median", "90th percentile"],
        r.weeks.map((w) => [time(w.end), String(w.closed), duration(w.median_seconds), duration(w.p90_seconds)]),
      ),
      numbersTable(
        "numbers-ttr-histogram",
        "Time to resolution histogram",
        ["Took", "Tickets"],
        r.histogram.map((b) => [b.label, String(b.count)]),
      ),
    ),
    h("h3", {}, "How long they took"),
    histogram,
  );
}

function failureChart(f) {
  const rows = f.institutions;
  const worst = rows[0];
  const summary = worst
    ? `Over the last ${f.window_days} day(s); worst: ${worst.institution_code}, ` +
      `${percent(worst.failure_rate)} of ${worst.attempts} attempt(s).`
    : `No aggregation attempt in the last ${f.window_days} day(s).`;
  return figure(
    "chart-failures",
    "Failure rate per institution",
    summary,
    rows.length
      ? hbarChart({
          label: `Share of attempts failing on the platform's or the institution's side. ${summary}`,
          rows: rows.map((i) => ({
            name: i.institution_code,
            value: i.failure_rate,
            text: `${percent(i.failure_rate)} (${i.failures}/${i.attempts})`,
          })),
        })
      : h("p", { class: "empty" }, "Nothing to draw."),
    numbersTable(
      "numbers-failures",
      "Failure rate per institution",
      ["Institution", "Attempts", "Failures", "Failure rate", "End-user failures"],
      rows.map((i) => [
        i.institution_code,
        String(i.attempts),
        String(i.failures),
        percent(i.failure_rate),
        String(i.end_user_failures),
      ]),
    ),
  );
}

function queueAgeChart(q) {
  const oldest = q.oldest
    ? `oldest ${q.oldest.guid} (${q.oldest.status}), ${duration(q.oldest.age_seconds)}`
    : "none open";
  const summary = `${q.open_tickets} open ticket(s), ${q.in_queue} in the queue; ${oldest}.`;
  return figure(
    "chart-age",
    "Queue age",
    summary,
    barChart({
      label: `Open tickets by age: ${q.buckets.map((b) => `${b.label}: ${b.count}`).join(", ")}. ${summary}`,
      categories: q.buckets.map((b) => b.label),
      series: [{ name: "open tickets", values: q.buckets.map((b) => b.count), className: "age" }],
      height: 180,
      counts: true,
    }),
    numbersTable(
      "numbers-age",
      "Open tickets by age",
      ["Age", "Open tickets"],
      q.buckets.map((b) => [b.label, String(b.count)]),
    ),
    q.oldest ? h("p", {}, "Oldest open ticket: ", ticketLink(q.oldest.guid)) : null,
  );
}

// --- start -----------------------------------------------------------------------------

async function start() {
  try {
    session = await api("GET", "/session");
    api.setSession(session);
  } catch (e) {
    showLogin(e.status === 401 ? e.message : `The console could not start: ${e.message}`);
    return;
  }
  loggedIn();
}

start();
