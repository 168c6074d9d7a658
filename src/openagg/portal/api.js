// The portal's JSON API (/portal/api): the session cookie goes by itself; every
// change also sends the CSRF token the login handed out.

import { requestJson } from "/assets/dom.js";

export { ApiError } from "/assets/dom.js";

let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token;
}

export function api(method, path, body) {
  const headers = method !== "GET" && csrfToken ? { "X-CSRF-Token": csrfToken } : {};
  return requestJson(method, `/portal/api${path}`, body, headers);
}
