// What OpenAgg's pages (the Connect widget, the engineer console, the developer
// portal) share: building DOM nodes, showing a view, and calling their JSON APIs with
// MX's error envelope ({"error": {"message": ...}}) turned into an ApiError. The
// login of the pages behind one is in login.js.

export class ApiError extends Error {
  constructor(message, status, handled = false) {
    super(message);
    this.status = status;
    this.handled = handled; // already shown to the user (e.g. the login form after a 401)
  }
}

// fetch() a JSON API: the parsed body, null for 204, or an ApiError with the server's
// message (status 0 when the server could not be reached). A Blob body (a File) is sent
// as it is, as raw bytes; any other body as JSON.
export async function requestJson(method, url, body, headers = {}) {
  const raw = body instanceof Blob;
  let type = null;
  if (body !== undefined) type = raw ? "application/octet-stream" : "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        Accept: "application/json",
        ...(type ? { "Content-Type": type } : {}),
        ...headers,
      },
      body: body === undefined || raw ? body : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError("We couldn't reach the server. Check your connection and try again.", 0);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = data?.error?.message || `The request failed (${response.status}).`;
    throw new ApiError(message, response.status);
  }
  return data;
}

// Children as h() and fill() take them: nested arrays flattened, null, undefined and
// false left out (optional parts), strings as text nodes (never HTML).
function nodes(children) {
  return children
    .flat(Infinity)
    .filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
}

// h("p", {class: "x", onclick: f}, "text", child): an element with attributes,
// listeners and children.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...nodes(children));
  return el;
}

// Replace an element's children (the DOM's replaceChildren() would print "null").
export function fill(el, ...children) {
  el.replaceChildren(...nodes(children));
}

// Shows a new view in `root`: its title as a heading that takes the focus (so a screen
// reader reads where the user now is), then the content. The title is also said in
// the page's `live` region when one is given. Returns the heading.
export function showView(root, { title, headingId, live = null }, ...content) {
  const heading = h("h1", { tabindex: "-1", id: headingId }, title);
  fill(root, heading, content);
  heading.focus();
  if (live) live.textContent = title;
  return heading;
}
