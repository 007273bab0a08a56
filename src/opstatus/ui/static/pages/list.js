// The list: a filter (kept in the URL's query string, so that it can be shared), one page
// of operations at a time (keyset paging through the API's nextLink), and their statuses
// and progress kept live by the subscription's event stream.

import { FULL_DETAIL, call, collectionPath, providers, query, roleSubscriptions } from "../api.js";
import { STATUSES, announce, badge, detailHref, duration, h, parseId, progress, scrolling, setProgress, time } from "../format.js";
import { openStream } from "../stream.js";

const ORDERS = [
  ["startTime desc", "Started, newest first"],
  ["startTime asc", "Started, oldest first"],
  ["endTime desc", "Ended, newest first"],
  ["endTime asc", "Ended, oldest first"],
];
const SIZES = ["10", "25", "50", "100", "500", "1000"];

// The filter as the URL holds it.
export function filterOf(q) {
  return {
    sub: q.get("sub") || "",
    provider: q.get("provider") || "",
    location: q.get("location") || "",
    status: (q.get("status") || "").split(",").filter(Boolean),
    after: q.get("after") || "",
    before: q.get("before") || "",
    prefix: q.get("prefix") || "",
    order: q.get("order") || "startTime desc",
    size: q.get("size") || "50",
  };
}

function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function isoOf(local) {
  return local ? new Date(local).toISOString() : "";
}

function field(id, label, control) {
  return h("div", { class: "field" }, h("label", { for: id, text: label }), control);
}

function filterForm(filter, subs, namespaces, apply) {
  const sub = h("input", { id: "f-sub", name: "sub", value: filter.sub, required: true, list: "f-subs", autocomplete: "off", size: 40 });
  const subList = h("datalist", { id: "f-subs" }, subs.map((s) => h("option", { value: s })));
  const provider = h("select", { id: "f-provider", name: "provider" },
    h("option", { value: "", text: "All providers" }),
    namespaces.map((n) => h("option", { value: n, text: n, selected: n.toLowerCase() === filter.provider.toLowerCase() })));
  const loc = h("input", { id: "f-location", name: "location", value: filter.location, autocomplete: "off", size: 12 });
  const statuses = h("fieldset", { class: "statuses" }, h("legend", { text: "Status" }),
    STATUSES.map((s) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "status", value: s, checked: filter.status.includes(s) }), ` ${s}`)));
  const after = h("input", { id: "f-after", type: "datetime-local", value: localInput(filter.after) });
  const before = h("input", { id: "f-before", type: "datetime-local", value: localInput(filter.before) });
  const prefix = h("input", { id: "f-prefix", name: "prefix", value: filter.prefix, autocomplete: "off", size: 16 });
  const order = h("select", { id: "f-order", name: "order" },
    ORDERS.map(([value, text]) => h("option", { value, text, selected: value === filter.order })));
  const size = h("select", { id: "f-size", name: "size" },
    SIZES.map((value) => h("option", { value, text: value, selected: value === filter.size })));
  const form = h("form", { class: "filter", "aria-label": "Filter" },
    field("f-sub", "Subscription", sub), subList,
    field("f-provider", "Provider", provider),
    field("f-location", "Location", loc),
    statuses,
    field("f-after", "Started after", after),
    field("f-before", "Started before", before),
    field("f-prefix", "Id starts with", prefix),
    field("f-order", "Sort by", order),
    field("f-size", "Per page", size),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Apply" })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply({
      sub: sub.value.trim(),
      provider: provider.value,
      location: provider.value ? loc.value.trim() : "",
      status: [...form.querySelectorAll("input[name=status]:checked")].map((c) => c.value).join(","),
      after: isoOf(after.value),
      before: isoOf(before.value),
      prefix: prefix.value.trim(),
      order: order.value,
      size: size.value,
    });
  });
  return form;
}

function row(op) {
  const p = parseId(op.id) || {};
  const href = detailHref(op.id);
  const tr = h("tr", { "data-id": op.id.toLowerCase() },
    h("th", { scope: "row" }, href ? h("a", { href, text: op.name }) : op.name),
    h("td", { class: "status" }, badge(op.status)),
    h("td", { class: "pct-cell", "data-percent": op.percentComplete ?? "" }, progress(op.percentComplete, op.status, `Progress of ${op.name}`)),
    h("td", { text: p.provider || "" }),
    h("td", { text: p.location || "" }),
    h("td", {}, time(op.startTime)),
    h("td", { class: "end" }, time(op.endTime)),
    h("td", { class: "dur", text: duration(op.startTime, op.endTime) }));
  return tr;
}

// A nextLink is absolute (from --public-url, maybe another host name): ask this origin.
function sameOrigin(link) {
  const url = new URL(link, location.href);
  return url.pathname + url.search;
}

export function applyChange(tr, op) {
  const status = tr.querySelector(".status");
  if (status.textContent !== op.status) status.replaceChildren(badge(op.status));
  const cell = tr.querySelector(".pct-cell");
  setProgress(cell, op.percentComplete, op.status);
  cell.dataset.percent = op.percentComplete ?? "";
  if (op.endTime) tr.querySelector(".end").replaceChildren(time(op.endTime));
  tr.querySelector(".dur").textContent = duration(op.startTime, op.endTime);
}

export function listPage(main, { who, query: q, navigate }) {
  const filter = filterOf(q);
  let stopStream = null;
  let gone = false;
  const known = roleSubscriptions(who);
  if (!filter.sub && known.length) filter.sub = known[0];
  const results = h("section", { "aria-labelledby": "results-title" });
  const state = h("p", { class: "stream-state muted", role: "status" });
  main.append(h("h1", { text: "Operations" }), results);

  providers().then((found) => {
    if (gone) return;
    const form = filterForm(filter, known, [...found.keys()], (next) => {
      navigate(`/ui/operations?${query(next)}`);
    });
    main.insertBefore(form, results);
    if (filter.sub) load(null);
    else results.replaceChildren(h("p", { id: "results-title", text: "Name a subscription to list its operations." }));
  }, (error) => results.replaceChildren(h("p", { role: "alert", text: error.message })));

  const pages = []; // the links of the pages before this one, for "Previous"
  let current = null;
  let rows = new Map();
  let pending = new Map();
  let frame = 0;
  let outside = 0;

  function flush() {
    frame = 0;
    for (const [key, op] of pending) {
      const tr = rows.get(key);
      if (tr) applyChange(tr, op);
    }
    pending = new Map();
  }

  function listen() {
    stopStream?.();
    const p = new URLSearchParams();
    if (filter.provider) p.set("provider", filter.provider);
    if (filter.provider && filter.location) p.set("location", filter.location);
    const url = `/subscriptions/${encodeURIComponent(filter.sub)}/operationsStatusEvents${p.size ? "?" + p : ""}`;
    const notice = h("button", { type: "button", class: "link", hidden: true, onclick: () => load(current) });
    state.after(notice);
    stopStream = openStream(url, {
      onEvent(event) {
        const op = event.data.operation;
        if (!op) return;
        const key = op.id.toLowerCase();
        if (rows.has(key)) {
          pending.set(key, op);
          if (!frame) frame = requestAnimationFrame(flush);
        } else if (event.type === "operation.created") {
          outside += 1;
          notice.textContent = `${outside} new operation${outside === 1 ? "" : "s"} since this page loaded: reload`;
          notice.hidden = false;
        }
      },
      onState(s, error) {
        state.textContent = {
          connecting: "Connecting to live updates…",
          live: "Live: statuses update as they change.",
          reconnecting: "Connection lost; reconnecting…",
          failed: `Live updates unavailable: ${error?.message}`,
          ended: "Live updates ended.",
        }[s];
        state.dataset.state = s;
      },
    });
  }

  async function load(link) {
    results.setAttribute("aria-busy", "true");
    let url = link;
    try {
      if (!url) {
        const { path, version } = await collectionPath(filter.sub, filter.provider, filter.location);
        const params = {
          "api-version": version,
          status: filter.status.join(","),
          startedAfter: filter.after,
          startedBefore: filter.before,
          idPrefix: filter.prefix,
          orderby: filter.order,
          maxpagesize: filter.size,
        };
        url = `${path}?${query(params)}`;
      }
      const page = await call(url, { headers: FULL_DETAIL });
      if (gone) return;
      current = url;
      show(page);
      listen();
    } catch (error) {
      if (gone) return;
      results.replaceChildren(h("h2", { id: "results-title", text: "Results" }), h("p", { role: "alert", class: "error", text: error.message }));
    } finally {
      results.removeAttribute("aria-busy");
    }
  }

  function show(page) {
    rows = new Map();
    pending = new Map();
    outside = 0;
    const body = h("tbody");
    for (const op of page.value) {
      const tr = row(op);
      rows.set(op.id.toLowerCase(), tr);
      body.append(tr);
    }
    const table = h("table", { class: "ops" },
      h("caption", { text: `${page.value.length} operation${page.value.length === 1 ? "" : "s"} on page ${pages.length + 1}` }),
      h("thead", {}, h("tr", {}, ["Operation", "Status", "Progress", "Provider", "Location", "Started", "Ended", "Duration"].map((t) => h("th", { scope: "col", text: t })))),
      body);
    const nav = h("nav", { class: "pager", "aria-label": "Pages of results" });
    if (pages.length) {
      nav.append(h("button", { type: "button", onclick: () => { load(pages.pop()); }, text: "Previous page" }));
    }
    if (page.nextLink) {
      nav.append(h("button", { type: "button", onclick: () => { pages.push(current); load(sameOrigin(page.nextLink)); }, text: "Next page" }));
    }
    results.replaceChildren(h("h2", { id: "results-title", text: "Results" }), state,
      page.value.length ? scrolling("Operations", table) : h("p", { text: "No operation matches this filter." }), nav);
    announce(`${page.value.length} operations listed, page ${pages.length + 1}.`);
  }

  return () => {
    gone = true;
    stopStream?.();
    if (frame) cancelAnimationFrame(frame);
  };
}
