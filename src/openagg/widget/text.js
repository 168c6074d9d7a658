// What the widget's screens show of an institution's and an account's data: an
// institution's instructions (MX sends a little HTML), its logo, an account's type.

import { h } from "/assets/dom.js";

// The tags MX's instructional_text uses. Anything else keeps only its text; the
// contents of these are dropped whole (code or styling, not words for the user).
const KEPT = new Set(["B", "STRONG", "I", "EM", "BR", "P", "UL", "OL", "LI", "A"]);
const DROPPED = new Set([
  "SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT", "IFRAME", "OBJECT", "EMBED", "SVG", "MATH",
  "HEAD", "TITLE",
]);

function safeHref(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null; // relative or malformed: nothing to link to from the widget
  }
}

// DOMParser's document is inert (no scripts run, no images load, no handlers fire),
// and nothing from it is inserted: new nodes are built from the kept tags and text,
// with no attribute copied but an http(s) link's href.
function copy(parent) {
  const out = [];
  for (const node of parent.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      out.push(node.textContent);
    } else if (node.nodeType === Node.ELEMENT_NODE && !DROPPED.has(node.tagName)) {
      const inner = copy(node);
      const tag = node.tagName;
      if (!KEPT.has(tag)) {
        out.push(...inner);
      } else if (tag === "A") {
        const href = safeHref(node.getAttribute("href"));
        out.push(href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, inner)
          : inner);
      } else {
        out.push(h(tag.toLowerCase(), {}, inner));
      }
    }
  }
  return out;
}

// An institution's instructions as DOM nodes, to put in a <div>.
export function richText(html) {
  return copy(new DOMParser().parseFromString(String(html), "text/html").body);
}

// "CREDIT_CARD" -> "Credit card": every screen that names an account type uses this.
export function kindOf(type) {
  const words = (type || "").replace(/_/g, " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// The institution's logo, or its initial where it has none or the logo fails to load.
export function institutionLogo(inst, size = "small") {
  const initial = h("span", { class: "oa-logo oa-logo-initial", "aria-hidden": "true" },
    (inst.name || "?").trim().charAt(0).toUpperCase());
  const src = size === "medium"
    ? inst.medium_logo_url || inst.small_logo_url
    : inst.small_logo_url || inst.medium_logo_url;
  if (!src) return initial;
  const img = h("img", { class: "oa-logo", src, alt: "", width: 40, height: 40 });
  img.addEventListener("error", () => img.replaceWith(initial), { once: true });
  return img;
}
