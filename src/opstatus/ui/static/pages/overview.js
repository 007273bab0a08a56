// The overview: counts by status per subscription, provider and location; the operations
// running now; recent failures; stalled ones (lease lapsed). The subscriptions' event
// streams keep it current: running operations' progress at once, the counts and lists
// re-read at most every few seconds.

import { FULL_DETAIL, call, ownVersion, query } from "../api.js";
import { STATUSES, badge, detailHref, duration, h, parseId, progress, scrolling, setProgress, time } from "../format.js";
import { openStream } from "../stream.js";

const SHOWN = 10; // operations per section
const MAX_SUBSCRIPTIONS = 10; // subscriptions whose lists and streams the overview reads
const REFRESH_MS = 3000;

function countsTable(doc) {
  const body = h("tbody");
  for (const s of doc.subscriptions) {
    const subLink = h("a", { href: `/ui/operations?${query({ sub: s.subscriptionId })}`, text: s.subscriptionId });
    body.append(h("tr", { class: "sub-row" },
      h("th", { scope: "row", colspan: 3 }, subLink),
      STATUSES.map((st) => h("td", { class: "num", text: s.counts[st] ?? 0 })),
      h("td", { class: "num", text: s.total })));
    for (const g of s.groups) {
      const href = `/ui/operations?${query({ sub: s.subscriptionId, provider: g.namespace, location: g.location })}`;
      body.append(h("tr", {},
        h("td", {}, h("span", { class: "visually-hidden", text: `${s.subscriptionId}, ` })),
        h("td", {}, h("a", { href, text: g.namespace })),
        h("td", { text: g.location }),
        STATUSES.map((st) => h("td", { class: "num", text: g.counts[st] ?? 0 })),
        h("td", { class: "num", text: g.total })));
    }
  }
  return h("table", { class: "counts" },
    h("caption", { class: "visually-hidden", text: "Live operations by status" }),
    h("thead", {}, h("tr", {},
      ["Subscription", "Provider", "Location", ...STATUSES, "Total"].map((t) => h("th", { scope: "col", text: t })))),
    body);
}

function opTable(label, ops, columns) {
  const rows = ops.map((op) => {
    const p = parseId(op.id) || {};
    const href = detailHref(op.id);
    return h("tr", { "data-id": op.id.toLowerCase() },
      h("th", { scope: "row" }, href ? h("a", { href, text: op.name }) : op.name),
      h("td", { class: "status" }, badge(op.status)),
      columns.includes("progress") ? h("td", { class: "pct-cell" }, progress(op.percentComplete, op.status, `Progress of ${op.name}`)) : null,
      columns.includes("error") ? h("td", { text: (op.error?.code || op.error?.error?.code) ?? "" }) : null,
      h("td", { text: `${p.provider} · ${p.location}` }),
      h("td", {}, time(op.startTime)),
      h("td", { text: duration(op.startTime, op.endTime) }));
  });
  const heads = ["Operation", "Status", columns.includes("progress") ? "Progress" : null,
    columns.includes("error") ? "Error" : null, "Provider · location", "Started", "Duration"].filter(Boolean);
  return scrolling(label, h("table", {},
    h("caption", { class: "visually-hidden", text: label }),
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows)));
}

export function overviewPage(main) {
  let gone = false;
  const streams = [];
  let timer = 0;
  const counts = h("section", { "aria-labelledby": "counts-title" }, h("h2", { id: "counts-title", text: "Operations by status" }));
  const running = h("section", { "aria-labelledby": "running-title" });
  const failures = h("section", { "aria-labelledby": "failures-title" });
  const stalled = h("section", { "aria-labelledby": "stalled-title" });
  const state = h("p", { class: "stream-state muted", role: "status" });
  main.append(h("h1", { text: "Overview" }), state, counts, running, stalled, failures);
  let subs = [];
  let version = null;

  async function section(el, id, title, filter, columns) {
    const lists = await Promise.all(subs.map((sub) =>
      call(`/subscriptions/${encodeURIComponent(sub)}/operationsStatus?${query({ "api-version": version, maxpagesize: SHOWN, ...filter })}`, { headers: FULL_DETAIL })));
    const key = filter.orderby.startsWith("endTime") ? "endTime" : "startTime";
    const ops = lists.flatMap((l) => l.value).sort((a, b) => String(b[key]).localeCompare(String(a[key]))).slice(0, SHOWN);
    if (gone) return;
    el.replaceChildren(h("h2", { id, text: title }),
      ops.length ? opTable(title, ops, columns) : h("p", { class: "muted", text: "None." }));
  }

  async function refresh() {
    timer = 0;
    try {
      version ??= await ownVersion();
      const doc = await call(`/operationsStatusCounts?${query({ "api-version": version })}`);
      if (gone) return;
      subs = doc.subscriptions.map((s) => s.subscriptionId).slice(0, MAX_SUBSCRIPTIONS);
      counts.replaceChildren(h("h2", { id: "counts-title", text: "Operations by status" }),
        doc.subscriptions.length ? scrolling("Operations by status", countsTable(doc)) : h("p", { class: "muted", text: "No operations yet." }));
      await Promise.all([
        section(running, "running-title", "Running now", { status: "InProgress", orderby: "startTime desc" }, ["progress"]),
        section(stalled, "stalled-title", "Stalled (lease lapsed)", { stalled: "true", orderby: "startTime asc" }, ["progress"]),
        section(failures, "failures-title", "Recent failures", { status: "Failed", orderby: "endTime desc" }, ["error"]),
      ]);
      if (!streams.length) listen();
    } catch (error) {
      if (!gone) counts.replaceChildren(h("h2", { id: "counts-title", text: "Operations by status" }), h("p", { role: "alert", class: "error", text: error.message }));
    }
  }

  function listen() {
    for (const sub of subs) {
      streams.push(openStream(`/subscriptions/${encodeURIComponent(sub)}/operationsStatusEvents`, {
        onEvent(event) {
          const op = event.data.operation;
          const tr = op && running.querySelector(`tr[data-id="${CSS.escape(op.id.toLowerCase())}"]`);
          if (tr) {
            setProgress(tr.querySelector(".pct-cell"), op.percentComplete, op.status);
            if (tr.querySelector(".status").textContent !== op.status) tr.querySelector(".status").replaceChildren(badge(op.status));
          }
          if (!timer) timer = setTimeout(refresh, REFRESH_MS);
        },
        onState(s) {
          state.dataset.state = s;
          state.textContent = s === "live" ? "Live." : s === "reconnecting" ? "Connection lost; reconnecting…" : "";
        },
      }));
    }
  }

  refresh();
  return () => {
    gone = true;
    clearTimeout(timer);
    for (const stop of streams) stop();
  };
}
