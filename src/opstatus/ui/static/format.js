// Small DOM and formatting helpers shared by the pages. Text always goes in as text
// (textContent), never as HTML, so nothing an operation carries can become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const TERMINAL = new Set(["Succeeded", "Failed", "Canceled"]);
export const STATUSES = ["InProgress", "Succeeded", "Failed", "Canceled"];

export function isTerminal(status) {
  return TERMINAL.has(status);
}

function utcText(date) {
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
}

// A moment in the browser's time zone; its UTC form on hover (and in datetime).
export function time(iso) {
  if (!iso) return h("span", { class: "muted", text: "—" });
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", { text: iso });
  return h("time", { datetime: iso, title: utcText(date), text: date.toLocaleString() });
}

export function duration(start, end) {
  if (!start) return "—";
  const ms = (end ? new Date(end) : new Date()) - new Date(start);
  if (!(ms >= 0)) return "—";
  const s = Math.round(ms / 1000);
  const parts = [];
  if (s >= 86400) parts.push(`${Math.floor(s / 86400)}d`);
  if (s >= 3600) parts.push(`${Math.floor((s % 86400) / 3600)}h`);
  if (s >= 60) parts.push(`${Math.floor((s % 3600) / 60)}m`);
  parts.push(`${s % 60}s`);
  return parts.join(" ") + (end ? "" : " so far");
}

export function badge(status) {
  return h("span", { class: `badge s-${String(status).toLowerCase()}`, text: status });
}

// A progress bar with its value as text beside it (the text is what screen readers and
// narrow screens rely on); a finished operation shows 100% only if it succeeded.
export function progress(percent, status, label) {
  const value = status === "Succeeded" ? 100 : percent;
  const known = typeof value === "number";
  const text = known ? `${Math.round(value)}%` : "—";
  // Without a value the bar is hidden, not "indeterminate": nothing is said to be moving.
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: 100, value: known ? value : null, "aria-label": label, hidden: !known, text }),
    h("span", { class: "pct", text }),
  );
}

export function setProgress(cell, percent, status) {
  const value = status === "Succeeded" ? 100 : percent;
  const bar = cell.querySelector("progress");
  const text = typeof value === "number" ? `${Math.round(value)}%` : "—";
  if (bar) {
    if (typeof value === "number") bar.value = value;
    else bar.removeAttribute("value");
    bar.hidden = typeof value !== "number";
    bar.textContent = text;
  }
  const pct = cell.querySelector(".pct");
  if (pct) pct.textContent = text;
}

// The parts of an operation's ARM id (its status path).
const ID = /^\/subscriptions\/([^/]+)\/providers\/([^/]+)\/locations\/([^/]+)\/operationsStatus\/([^/]+)$/i;

export function parseId(id) {
  const m = ID.exec(id || "");
  return m ? { sub: m[1], provider: m[2], location: m[3], name: m[4] } : null;
}

export function detailHref(id) {
  const p = parseId(id);
  if (!p) return null;
  return `/ui/operations/${[p.sub, p.provider, p.location, p.name].map(encodeURIComponent).join("/")}`;
}

// A table in a region that scrolls sideways on a narrow screen, reachable by keyboard.
export function scrolling(label, table) {
  return h("div", { class: "scroll", role: "region", "aria-label": label, tabindex: 0 }, table);
}

export function announce(text) {
  const el = document.getElementById("announce");
  el.textContent = "";
  // A new text node after a tick, so that the same message twice is read twice.
  setTimeout(() => (el.textContent = text), 50);
}
