// The demo host page: gets a fresh widget URL (each URL opens once), embeds it, and
// lists the postMessage events the widget sends.

const frame = document.getElementById("demo-widget");
const events = document.getElementById("demo-events");
const form = document.getElementById("demo-options");

window.addEventListener("message", (event) => {
  if (event.source !== frame.contentWindow || !event.data || event.data.mx !== true) return;
  const item = document.createElement("li");
  const type = document.createElement("strong");
  type.textContent = event.data.type;
  const metadata = document.createElement("code");
  metadata.textContent = JSON.stringify(event.data.metadata);
  item.append(type, " ", metadata);
  events.append(item);
});

async function openWidget() {
  const options = Object.fromEntries(new FormData(form));
  // A checkbox: the option is a JSON boolean.
  options.enable_simplefin_token = form.elements.enable_simplefin_token.checked;
  const response = await fetch("/demo/widget_url", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ widget_url: { widget_type: "connect_widget", ...options } }),
  });
  const body = await response.json();
  if (!response.ok) {
    events.replaceChildren(Object.assign(document.createElement("li"), {
      textContent: body?.error?.message || "Could not get a widget URL.",
    }));
    return;
  }
  events.replaceChildren();
  frame.src = body.widget_url.url;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  openWidget();
});

openWidget();
