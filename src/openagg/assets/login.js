// The login of the pages behind one (the engineer console, the developer portal):
// their JSON API under a cookie session (api/pages.py: session_guard), and the login
// form that opens the session (POST <api>/login).

import { fill, h, requestJson } from "/assets/dom.js";

// The page's API under `base` (e.g. "/console/api"). The session cookie goes by itself;
// every change also sends the CSRF token of the session given to `api.setSession`.
// A 401 while logged in means the session ended (expired, logged out in another tab,
// account disabled): `ended(error)` runs, and the error is rethrown marked `handled`.
export function sessionApi(base, ended) {
  let csrfToken = null;
  async function api(method, path, body) {
    const headers = method !== "GET" && csrfToken ? { "X-CSRF-Token": csrfToken } : {};
    try {
      return await requestJson(method, base + path, body, headers);
    } catch (error) {
      if (error.status === 401 && csrfToken !== null && path !== "/login") {
        csrfToken = null;
        error.handled = true;
        ended(error);
      }
      throw error;
    }
  }
  api.setSession = (session) => {
    csrfToken = session ? session.csrf_token : null;
  };
  return api;
}

// A login form of two required fields, an identifier (sent trimmed) and a secret, each
// {id, name, label, ...input attributes}. Submitting posts them to `api`'s /login; the
// session it opens goes to `api.setSession`, then to `opened`. A refusal shows the
// server's message in the form and gives the secret the focus (emptied first when
// `clearSecret`). `message` is shown in the form from the start. The page's look:
// `classes.form`, `classes.field` (a wrapper around each label and input, if any),
// `classes.submit`, `error` ({class, id} of the message, placed first or last).
export function loginForm({
  api,
  fields,
  missing,
  opened,
  message = null,
  clearSecret = false,
  classes = {},
  error = {},
  errorFirst = false,
}) {
  const inputs = fields.map(({ label, ...attrs }) => h("input", { ...attrs, required: true }));
  const [identifier, secret] = inputs;
  const errorSlot = h("div");
  const say = (text) => {
    // A new alert each time, so screen readers announce a repeated message again.
    errorSlot.hidden = !text;
    fill(errorSlot, text ? h("p", { class: error.class, id: error.id, role: "alert" }, text) : null);
  };
  say(message);
  const rows = fields.map(({ id, label }, i) => {
    const pair = [h("label", { for: id }, label), inputs[i]];
    return classes.field ? h("div", { class: classes.field }, pair) : pair;
  });
  const submit = h("button", { type: "submit", class: classes.submit }, "Log in");
  const form = h("form", { class: classes.form, novalidate: true },
    errorFirst ? errorSlot : null, rows, submit, errorFirst ? null : errorSlot);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(null);
    const blank = !identifier.value.trim() ? identifier : !secret.value ? secret : null;
    if (blank) {
      say(missing);
      blank.focus();
      return;
    }
    submit.disabled = true;
    let session;
    try {
      session = await api("POST", "/login", {
        [identifier.name]: identifier.value.trim(),
        [secret.name]: secret.value,
      });
    } catch (refused) {
      say(refused.message);
      submit.disabled = false;
      if (clearSecret) secret.value = "";
      secret.focus();
      return;
    }
    secret.value = "";
    submit.disabled = false;
    api.setSession(session);
    opened(session);
  });
  return { form, identifier, secret };
}
