// Inline SVG charts for the engineer console: bars only, no library. Each chart is a
// <figure> with the drawing (role="img" with a summary as its label) and a table of
// the same numbers for people who do not read the picture.

import { h } from "/assets/dom.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}


/** A round number at or above `value` for the top of an axis (1, 2 or 5 times 10^n). */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (m * power >= value - 1e-9) return m * power;
  return 10 * power;
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** The unit a set of durations (seconds) reads best in: {name, seconds}. */
export function durationUnit(largestSeconds) {
  if (largestSeconds < 120) return { name: "s", seconds: 1 };
  if (largestSeconds < 2 * 3600) return { name: "min", seconds: 60 };
  if (largestSeconds < 2 * 86400) return { name: "h", seconds: 3600 };
  return { name: "d", seconds: 86400 };
}

/** A short number for an axis: 12, 3.5, 0.25. */
export function short(value) {
  if (value === 0) return "0";
  if (Math.abs(value) >= 10) return value.toFixed(0);
  if (Math.abs(value) >= 1) return String(Number(value.toFixed(1)));
  return String(Number(value.toPrecision(2)));
}

export function percent(fraction) {
  return `${(fraction * 100).toFixed(fraction > 0 && fraction < 0.1 ? 1 : 0)}%`;
}

/** The numbers behind a chart, as a table (inside a disclosure to keep the page short). */
export function numbersTable(id, caption, headers, rows) {
  return h(
    "details",
    { class: "numbers" },
    h("summary", {}, `${caption}: the numbers`),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id },
        h("caption", { class: "visually-hidden" }, caption),
        h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          rows.map((cells) =>
            h(
              "tr",
              {},
              cells.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c))),
            ),
          ),
        ),
      ),
    ),
  );
}

export function figure(id, title, summary, drawing, table, ...extra) {
  return h(
    "figure",
    { class: "chart-card", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title),
    h("p", { class: "summary" }, summary),
    drawing,
    ...extra,
    table,
  );
}

/**
 * Vertical bars, one group per category and one bar per series.
 * series: [{name, values, className}], values may hold null (drawn as nothing).
 */
export function barChart({ label, categories, series, format = String, height = 220, counts = false }) {
  const W = 640;
  const H = height;
  const left = 52;
  const right = 8;
  const top = 12;
  const bottom = series.length > 1 ? 52 : 34;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const values = series.flatMap((s) => s.values.map((v) => v ?? 0));
  const max = niceMax(Math.max(0, ...values));
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": label,
    class: "chart",
    preserveAspectRatio: "xMidYMid meet",
  });
  // Counts get whole-number gridlines only (no "0.5 tickets").
  for (const f of [0, 0.5, 1].filter((f) => !counts || Number.isInteger(max * f))) {
    const y = top + plotH * (1 - f);
    root.append(
      svg("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }),
      svg("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, format(max * f)),
    );
  }
  const slot = plotW / Math.max(1, categories.length);
  const barW = Math.max(1, (slot * 0.8) / series.length);
  const every = Math.max(1, Math.ceil(categories.length / 10));
  categories.forEach((category, i) => {
    series.forEach((s, j) => {
      const v = s.values[i];
      if (v === null || v === undefined) return;
      const h = (plotH * v) / max;
      root.append(
        svg(
          "rect",
          {
            x: left + i * slot + slot * 0.1 + j * barW,
            y: top + plotH - h,
            width: barW,
            height: Math.max(h, v > 0 ? 1 : 0),
            class: `bar ${s.className || ""}`,
          },
          svg("title", {}, `${category}: ${s.name} ${format(v)}`),
        ),
      );
    });
    if (i % every === 0) {
      root.append(
        svg(
          "text",
          { x: left + i * slot + slot / 2, y: top + plotH + 16, class: "axis", "text-anchor": "middle" },
          category,
        ),
      );
    }
  });
  if (series.length > 1) {
    series.forEach((s, j) => {
      const x = left + j * 150;
      root.append(
        svg("rect", { x, y: H - 16, width: 12, height: 12, class: `bar ${s.className || ""}` }),
        svg("text", { x: x + 18, y: H - 6, class: "axis" }, s.name),
      );
    });
  }
  return root;
}

/** Horizontal bars of fractions (0..1), one per row: [{name, value, text}]. */
export function hbarChart({ label, rows }) {
  const W = 640;
  const rowH = 26;
  const left = 150;
  const right = 150;
  const H = Math.max(1, rows.length) * rowH + 8;
  const plotW = W - left - right;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart" });
  rows.forEach((row, i) => {
    const y = 4 + i * rowH;
    const w = plotW * Math.min(1, Math.max(0, row.value));
    root.append(
      svg("text", { x: left - 8, y: y + 16, class: "axis", "text-anchor": "end" }, row.name),
      svg("rect", { x: left, y: y + 3, width: plotW, height: rowH - 8, class: "track" }),
      svg(
        "rect",
        { x: left, y: y + 3, width: Math.max(w, row.value > 0 ? 1 : 0), height: rowH - 8, class: "bar bad" },
        svg("title", {}, `${row.name}: ${row.text}`),
      ),
      svg("text", { x: left + plotW + 8, y: y + 16, class: "axis" }, row.text),
    );
  });
  return root;
}
