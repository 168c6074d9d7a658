// OpenAgg developer portal: a client's support tickets, and SimpleFIN setup tokens for
// its users. Plain ES modules, no build step.
//
// Views live in the URL's hash, so the browser's back button, reloads and shared links
// work: #/tickets?status=NEW&page=2, #/tickets/TKT-…, #/pending, #/simplefin. <main>
// carries data-view (login, tickets, pending, ticket, simplefin, error) and data-ready
// once filled in.

import { ApiError, fill, h, showView } from "/assets/dom.js";
import { loginForm, sessionApi } from "/assets/login.js";
import * as words from "./words.js";

const boot = JSON.parse(document.getElementById("op-boot").textContent);
const main = document.getElementById("op-main");
const live = document.getElementById("op-live");
const header = document.getElementById("op-header");
const PER_PAGE = 25;
const FILTERS = ["institution_code", "channel", "from_date", "to_date", "user_guid",
  "member_guid", "order"];

let session = null;
// A 401 on a call while logged in: the session expired, or another tab logged out.
const api = sessionApi("/portal/api", () => {
  setSession(null);
  showLogin("Your session has ended. Please log in again.");
});
let lastList = "#/tickets"; // where "Back to tickets" goes, filters included
let renderCount = 0;

// --- DOM helpers ---------------------------------------------------------------------


const alertBox = (message) => h("p", { class: "op-alert", role: "alert" }, message);
const time = (iso) => (iso ? h("time", { datetime: iso }, words.when(iso)) : "–");

// Shows a view: one heading that takes focus and is announced. Returns a token that
// tells a late answer for a view the user already left to drop itself.
function render(view, title, ...content) {
  renderCount += 1;
  main.dataset.view = view;
  main.dataset.render = String(renderCount); // tells two showings of one view apart
  delete main.dataset.ready;
  main.setAttribute("aria-busy", "true");
  showView(main, { title, headingId: "op-title", live }, content);
  document.title = `${title} · OpenAgg developer portal`;
  return renderCount;
}

function ready(token, announce) {
  if (token !== renderCount) return false;
  main.dataset.ready = "true";
  main.removeAttribute("aria-busy");
  if (announce) live.textContent = announce;
  return true;
}

const current = (token) => token === renderCount;

// --- session --------------------------------------------------------------------------

function setSession(next) {
  session = next;
  api.setSession(next);
  header.hidden = !next;
  document.getElementById("op-client").textContent = next
    ? `${next.client.name} (${next.client.client_id})`
    : "";
}

// Every API failure goes through here: a 401 means the session ended.
function failed(error, token, slot) {
  if (error.handled) return; // the session ended: the login shows
  if (error instanceof ApiError && error.status === 401) {
    // Expired, or logged out in another tab (the cookie is gone): say so either way.
    const message = session ? "Your session has ended. Please log in again." : error.message;
    setSession(null);
    showLogin(message);
    return;
  }
  if (!current(token)) return;
  slot.replaceChildren(alertBox(error.message));
  ready(token, error.message);
}

function showLogin(message = null) {
  const login = loginForm({
    api,
    fields: [
      {
        id: "op-client-id",
        name: "client_id",
        label: "Client ID",
        type: "text",
        autocomplete: "username",
        autocapitalize: "none",
        spellcheck: "false",
      },
      {
        id: "op-api-key",
        name: "api_key",
        label: "API key",
        type: "password",
        autocomplete: "current-password",
      },
    ],
    missing: "Enter your client ID and API key.",
    message,
    classes: { form: "op-form op-login", field: "op-field", submit: "op-button op-primary" },
    error: { class: "op-alert" },
    errorFirst: true,
    opened: (opened) => {
      setSession(opened);
      if (!location.hash || location.hash === "#/" || location.hash === "#/login") {
        location.hash = "#/tickets";
      } else {
        route();
      }
    },
  });
  const token = render("login", "Log in to the developer portal",
    h("p", { class: "op-hint" },
      "Use your app's client ID and API key: the same pair its backend sends to the API. "
      + "You will see your app's support tickets."),
    login.form);
  ready(token, message);
  if (message) login.identifier.focus();
}

async function logout() {
  try {
    await api("POST", "/logout");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      live.textContent = error.message;
      return;
    }
  }
  setSession(null);
  history.replaceState(null, "", location.pathname);
  showLogin("You have logged out.");
}

// --- the ticket list ---------------------------------------------------------------------

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  return { path, params: new URLSearchParams(query) };
}

function listHash(params) {
  const clean = new URLSearchParams();
  for (const [key, value] of params) if (value) clean.append(key, value);
  const query = clean.toString();
  return `#/tickets${query ? `?${query}` : ""}`;
}

function filterForm(params) {
  const chosen = new Set(params.getAll("status"));
  const field = (id, label, input) => h("div", { class: "op-field" },
    h("label", { for: id }, label), input);
  const text = (name, id, extra = {}) => h("input", {
    id, name, type: "text", value: params.get(name) || "", autocomplete: "off",
    spellcheck: "false", ...extra,
  });
  const date = (name, id) => h("input", { id, name, type: "date", value: params.get(name) || "" });
  const select = (name, id, options) => {
    const el = h("select", { id, name },
      options.map(([value, label]) => h("option", { value }, label)));
    el.value = params.get(name) || options[0][0];
    return el;
  };
  const form = h("form", { class: "op-filters-form", "aria-labelledby": "op-filters-title" },
    h("fieldset", { class: "op-statuses" },
      h("legend", {}, "Status"),
      words.TICKET_STATUSES.map(([code, short]) => h("label", { class: "op-check" },
        h("input", { type: "checkbox", name: "status", value: code, checked: chosen.has(code) }),
        short))),
    h("div", { class: "op-filter-grid" },
      field("op-f-institution", "Institution code",
        text("institution_code", "op-f-institution", { placeholder: "e.g. mxbank" })),
      field("op-f-channel", "Channel", select("channel", "op-f-channel",
        [["", "Any"], ["DIRECT", words.CHANNELS.DIRECT], ["INDIRECT", words.CHANNELS.INDIRECT]])),
      field("op-f-from", "Created from", date("from_date", "op-f-from")),
      field("op-f-to", "Created to", date("to_date", "op-f-to")),
      field("op-f-user", "User guid", text("user_guid", "op-f-user", { placeholder: "USR-…" })),
      field("op-f-member", "Member guid",
        text("member_guid", "op-f-member", { placeholder: "MBR-…" })),
      field("op-f-order", "Order", select("order", "op-f-order",
        [["newest", "Newest first"], ["oldest", "Oldest first"]]))),
    h("div", { class: "op-actions" },
      h("button", { type: "submit", class: "op-button op-primary" }, "Apply filters"),
      h("button", {
        type: "button",
        class: "op-button op-secondary",
        onclick: () => {
          if (location.hash === "#/tickets") route();
          else location.hash = "#/tickets";
        },
      }, "Clear filters")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      const v = String(value).trim();
      if (v && !(key === "order" && v === "newest")) next.append(key, v);
    }
    const target = listHash(next);
    if (target === location.hash) route();
    else location.hash = target;
  });
  // Folded on a phone (the list comes first), open on a wide screen.
  const active = chosen.size + FILTERS.filter((k) => k !== "order" && params.get(k)).length;
  return h("details", {
    class: "op-filters",
    open: window.matchMedia("(min-width: 800px)").matches,
  },
  h("summary", { id: "op-filters-title" }, active ? `Filters (${active} in use)` : "Filters"),
  form);
}

function statusBadge(ticket) {
  const waiting = ticket.status === "ADDITIONAL_LOGIN_INFO_REQUIRED";
  return h("span", {
    class: `op-badge op-status-${ticket.status.toLowerCase()}${waiting ? " op-attention" : ""}`,
    title: words.statusLong(ticket),
  }, words.statusShort(ticket));
}

function ticketLink(ticket) {
  return h("a", { href: `#/tickets/${encodeURIComponent(ticket.guid)}`, class: "op-guid" },
    ticket.guid);
}

function ticketTable(tickets, captionId) {
  // One element per cell, so the narrow layout can label it (a two-column grid).
  const cell = (label, ...content) => h("td", { "data-label": label }, h("div", {}, ...content));
  return h("table", { class: "op-table", "aria-labelledby": captionId },
    h("thead", {}, h("tr", {},
      ["Ticket", "Status", "Queue position", "Estimated resolution", "Institution", "Channel",
        "Reports", "Created", "User / member"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, tickets.map((t) => h("tr", { "data-guid": t.guid },
      cell("Ticket", ticketLink(t)),
      cell("Status", statusBadge(t)),
      cell("Queue position", words.position(t)),
      cell("Estimated resolution", words.isOpen(t) ? time(t.estimated_resolution_at) : "–"),
      cell("Institution", t.institution_code),
      cell("Channel", words.CHANNELS[t.channel] || t.channel),
      cell("Reports", String(t.report_count)),
      cell("Created", time(t.created_at)),
      cell("User / member",
        h("span", { class: "op-guid" }, t.user_guid || "deleted"), h("br"),
        h("span", { class: "op-guid" }, t.member_guid || "deleted"))))));
}

function pager(pagination, params, base) {
  const { current_page: pageNo, total_pages: pages } = pagination;
  if (pages <= 1) return null;
  const link = (page, label, rel) => {
    const next = new URLSearchParams(params);
    next.set("page", String(page));
    return h("a", { href: base(next), rel, class: "op-button op-secondary" }, label);
  };
  return h("nav", { class: "op-pager", "aria-label": "Pages" },
    pageNo > 1 ? link(pageNo - 1, "Previous page", "prev") : null,
    h("span", { "aria-current": "page" }, `Page ${pageNo} of ${pages}`),
    pageNo < pages ? link(pageNo + 1, "Next page", "next") : null);
}

function query(params, extra = {}) {
  const q = new URLSearchParams();
  for (const status of params.getAll("status")) q.append("status", status);
  for (const key of FILTERS) if (params.get(key)) q.set(key, params.get(key));
  q.set("page", params.get("page") || "1");
  q.set("records_per_page", String(PER_PAGE));
  for (const [key, value] of Object.entries(extra)) q.set(key, value);
  return q.toString();
}

async function showTickets(params) {
  lastList = listHash(params);
  const summary = h("p", { class: "op-summary", id: "op-results-title", role: "status" },
    "Loading tickets…");
  const results = h("div", { class: "op-results" });
  const token = render("tickets", "Support tickets",
    h("p", { class: "op-hint" },
      "Every ticket your end users (direct) and your support staff (indirect) opened, with "
      + "the status, queue position and estimate the end user sees."),
    filterForm(params),
    h("section", { class: "op-results-section", "aria-labelledby": "op-results-title" },
      summary, results));
  try {
    const data = await api("GET", `/tickets?${query(params)}`);
    if (!current(token)) return;
    const total = data.pagination.total_entries;
    const filtered = [...params.keys()].some((k) => k !== "page" && k !== "order");
    summary.textContent = total === 0
      ? (filtered ? "No ticket matches these filters." : "No support tickets yet.")
      : `${total} ticket${total === 1 ? "" : "s"}${filtered ? " match these filters" : ""}.`;
    results.replaceChildren(
      data.support_tickets.length ? ticketTable(data.support_tickets, "op-results-title") : "",
      pager(data.pagination, params, listHash) || "");
    ready(token, summary.textContent);
  } catch (error) {
    failed(error, token, summary);
  }
}

// --- tickets waiting on the end user's login info ----------------------------------------

function promptList(prompts) {
  return h("ul", { class: "op-prompts" }, prompts.map((p) => h("li", {},
    h("span", { class: "op-prompt-label" }, p.label),
    h("span", { class: "op-hint" }, ` (${words.promptType(p.type)}`,
      p.options?.length ? `: ${p.options.map((o) => o.label).join(", ")}` : "", ")"))));
}

async function showPending(params) {
  const summary = h("p", { class: "op-summary", id: "op-pending-title", role: "status" },
    "Loading…");
  const results = h("div", { class: "op-results" });
  const token = render("pending", "Pending login info",
    h("p", { class: "op-hint" },
      "An engineer needs more from these end users (a one-time code, a security answer…). "
      + "Ask them to open your app's Connect widget on the connection (a widget URL with "
      + "current_member_guid): it shows the questions. Your backend can also send the "
      + "answers with PUT /users/{user_guid}/support_tickets/{guid}/additional_login_info. "
      + "Answers are never shown here or anywhere else but to the engineer, once."),
    h("section", { "aria-labelledby": "op-pending-title" }, summary, results));
  try {
    const q = query(params, { order: "oldest" });
    const data = await api("GET",
      `/tickets?${q}&status=ADDITIONAL_LOGIN_INFO_REQUIRED`);
    if (!current(token)) return;
    const total = data.pagination.total_entries;
    summary.textContent = total === 0
      ? "No ticket is waiting for login info."
      : `${total} ticket${total === 1 ? " is" : "s are"} waiting for the end user, `
        + "longest waiting first.";
    results.replaceChildren(
      h("ul", { class: "op-cards" }, data.support_tickets.map((t) => h("li", {
        class: "op-card", "data-guid": t.guid,
      },
      h("h2", {}, ticketLink(t)),
      h("dl", { class: "op-facts" },
        fact("Institution", t.institution_code),
        fact("User", h("span", { class: "op-guid" }, t.user_guid || "deleted")),
        fact("Member", h("span", { class: "op-guid" }, t.member_guid || "deleted")),
        fact("Waiting since", time(t.updated_at))),
      h("p", { class: "op-prompts-title" }, "The engineer asks:"),
      promptList(t.additional_login_info || [])))),
      pager(data.pagination, params, (next) => `#/pending?${next}`) || "");
    ready(token, summary.textContent);
  } catch (error) {
    failed(error, token, summary);
  }
}

// --- SimpleFIN setup tokens ---------------------------------------------------------------

// A token for one user, shown once: the user pastes it into their budget app (Actual,
// Firefly III, Sure, Home Assistant), which claims it once.
function showSimplefin() {
  const result = h("div", { class: "op-results", id: "op-token-result" });
  const input = h("input", {
    id: "op-token-user", name: "user_guid", type: "text", required: true,
    autocomplete: "off", spellcheck: "false", placeholder: "USR-…",
  });
  const button = h("button", { type: "submit", class: "op-button" }, "Make a setup token");
  const form = h("form", { class: "op-token-form", "aria-labelledby": "op-title" },
    h("div", { class: "op-field" }, h("label", { for: "op-token-user" }, "User guid"), input),
    button);
  const token = render("simplefin", "SimpleFIN setup token",
    h("p", { class: "op-hint" },
      "For a user who connects a budget app (Actual Budget, Firefly III, Sure, Home "
      + "Assistant) to their accounts here. The token is shown once: give it to the user, "
      + "who pastes it into the app within 24 hours; the app claims it once. Your backend "
      + "can make and revoke tokens too (POST and DELETE /users/{user_guid}/simplefin_tokens)."),
    form, result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    result.replaceChildren();
    try {
      const made = (await api("POST",
        `/users/${encodeURIComponent(input.value.trim())}/simplefin_tokens`, {})).simplefin_token;
      const field = h("textarea", {
        id: "op-token-value", class: "op-token", readonly: true, rows: 3,
        "aria-describedby": "op-token-note",
      }, made.token);
      const copy = h("button", { type: "button", class: "op-button op-secondary" }, "Copy");
      copy.addEventListener("click", async () => {
        field.select();
        try { await navigator.clipboard.writeText(made.token); } catch { /* selected */ }
        live.textContent = "Token copied.";
      });
      result.replaceChildren(
        h("label", { for: "op-token-value" }, `Setup token for ${made.user_guid}`),
        field, copy,
        h("p", { class: "op-hint", id: "op-token-note" },
          `Shown only now. It can be claimed until ${words.when(made.expires_at)}; `
          + `its guid is ${made.guid}.`));
      live.textContent = "A setup token was made. It is shown only now.";
      field.focus();
      field.select();
    } catch (error) {
      if (!error.handled) result.replaceChildren(alertBox(error.message));
    } finally {
      button.disabled = false;
    }
  });
  ready(token);
}

// --- one ticket ---------------------------------------------------------------------------

function fact(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, ...value)];
}

function timeline(events, total) {
  return h("section", { class: "op-history", "aria-labelledby": "op-history-title" },
    h("h2", { id: "op-history-title" }, "History"),
    total > events.length
      ? h("p", { class: "op-hint" }, `The first ${events.length} of ${total} events.`)
      : null,
    h("ol", { class: "op-timeline" }, events.map((e) => h("li", { "data-action": e.action },
      h("div", { class: "op-event-head" },
        time(e.created_at),
        h("strong", {}, words.action(e.action))),
      h("div", { class: "op-event-body" },
        words.actor(e.actor),
        e.from_status && e.to_status && e.from_status !== e.to_status
          ? ` · ${e.from_status} → ${e.to_status}`
          : (!e.from_status && e.to_status ? ` · ${e.to_status}` : ""),
        e.channel ? ` · ${words.CHANNELS[e.channel] || e.channel}` : ""),
      e.note ? h("p", { class: "op-note" }, e.note) : null,
      e.request_id
        ? h("div", { class: "op-hint" }, "Request id ", h("code", {}, e.request_id))
        : null))));
}

function memberNow(member) {
  if (!member) return "deleted";
  const parts = [member.connection_status || "–"];
  if (member.is_being_aggregated) parts.push("(being aggregated now)");
  return parts.join(" ");
}

async function showTicket(guid) {
  const body = h("div", {}, h("p", { role: "status" }, "Loading the ticket…"));
  const token = render("ticket", `Ticket ${guid}`,
    h("p", {}, h("a", { href: lastList }, "← Back to support tickets")),
    body);
  let data;
  try {
    data = await api("GET", `/tickets/${encodeURIComponent(guid)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      error.message = "No ticket of yours has this guid.";
    }
    failed(error, token, body);
    return;
  }
  if (!current(token)) return;
  const t = data.support_ticket;
  const waiting = t.status === "ADDITIONAL_LOGIN_INFO_REQUIRED";
  fill(body,
    h("section", { class: "op-overview", "aria-label": "Status" },
      h("div", { class: "op-stat" }, h("span", { class: "op-stat-label" }, "Status"),
        statusBadge(t), h("span", { class: "op-hint" }, words.statusLong(t))),
      h("div", { class: "op-stat", "data-field": "queue_position" },
        h("span", { class: "op-stat-label" }, "Queue position"),
        h("span", { class: "op-stat-value" }, words.position(t)),
        waiting ? h("span", { class: "op-hint" }, "kept while the end user answers") : null),
      h("div", { class: "op-stat", "data-field": "estimated_resolution_at" },
        h("span", { class: "op-stat-label" }, "Estimated resolution"),
        h("span", { class: "op-stat-value" },
          words.isOpen(t) ? time(t.estimated_resolution_at) : "–"),
        words.isOpen(t) && t.estimated_resolution_at
          ? h("span", { class: "op-hint" },
            waiting ? "frozen until the end user answers"
              : words.fromNow(t.estimated_resolution_at))
          : null),
      h("div", { class: "op-stat" }, h("span", { class: "op-stat-label" }, "Reports"),
        h("span", { class: "op-stat-value" }, String(t.report_count)))),
    waiting
      ? h("section", { class: "op-pending", "aria-labelledby": "op-pending-here" },
        h("h2", { id: "op-pending-here" }, "Waiting for the end user's login info"),
        h("p", {}, "The engineer asks:"),
        promptList(t.additional_login_info || []),
        h("p", { class: "op-hint" },
          "The end user answers in the Connect widget opened on this member. "
          + "Answers are never shown here."))
      : null,
    h("section", { "aria-labelledby": "op-details-title" },
      h("h2", { id: "op-details-title" }, "Details"),
      h("dl", { class: "op-facts" },
        fact("Description", t.description || "–"),
        t.special_instructions ? fact("Special instructions", t.special_instructions) : [],
        fact("Institution", t.institution_code),
        fact("Channel", words.CHANNELS[t.channel] || t.channel),
        fact("User", h("span", { class: "op-guid" }, t.user_guid || "deleted")),
        fact("Member", h("span", { class: "op-guid" }, t.member_guid || "deleted")),
        fact("When reported", `${t.connection_status || "–"}, cause ${t.cause || "–"}`),
        fact("Member now", h("span", { "data-field": "member_status" }, memberNow(data.member))),
        data.member ? fact("Last successful aggregation",
          time(data.member.successfully_aggregated_at)) : [],
        t.account_guids.length
          ? fact("Accounts", t.account_guids.map((a) => h("span", { class: "op-guid" }, a, " ")))
          : [],
        fact("Created", time(t.created_at)),
        fact("Updated", time(t.updated_at)),
        t.resolved_at ? fact("Resolved", time(t.resolved_at)) : [])),
    timeline(data.history, data.history_total));
  ready(token, `Ticket ${guid}: ${words.statusShort(t)}`);
}

// --- routing ------------------------------------------------------------------------------

function markNav(path) {
  for (const [id, active] of [["op-nav-tickets", path.startsWith("/tickets")],
    ["op-nav-pending", path === "/pending"], ["op-nav-simplefin", path === "/simplefin"]]) {
    const link = document.getElementById(id);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!session) {
    showLogin(boot.message || null);
    boot.message = null;
    return;
  }
  const { path, params } = parseHash();
  markNav(path);
  const one = path.match(/^\/tickets\/([^/]+)$/);
  if (one) return showTicket(decodeURIComponent(one[1]));
  if (path === "/pending") return showPending(params);
  if (path === "/simplefin") return showSimplefin();
  if (path === "/tickets") return showTickets(params);
  location.replace("#/tickets");
  return null;
}

document.getElementById("op-logout").addEventListener("click", logout);
window.addEventListener("hashchange", route);
setSession(boot.session);
route();
