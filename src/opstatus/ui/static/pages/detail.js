// One operation: its status, progress, times, error, properties, event history (replayed
// from its event stream, which then goes on live until the operation ends), webhook
// deliveries, its URLs, and cancel for those who may write.

import { FULL_DETAIL, apiVersion, call, canWrite, query, CLASSIC_NAMESPACE } from "../api.js";
import { announce, badge, duration, h, isTerminal, progress, scrolling, setProgress, time } from "../format.js";
import { openStream } from "../stream.js";

function errorList(error) {
  if (!error) return null;
  const inner = error.error && !error.code ? error.error : error; // nested or flat shape
  const items = [
    ["Code", inner.code],
    ["Message", inner.message],
    ["Target", inner.target],
  ].filter(([, v]) => v);
  return h("dl", { class: "error-detail" },
    items.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]),
    inner.details?.length
      ? [h("dt", { text: "Details" }), h("dd", {}, h("ul", {}, inner.details.map((d) => h("li", {}, errorList(d)))))]
      : null);
}

function copyRow(id, label, url) {
  const code = h("code", { class: "url", text: url });
  const button = h("button", {
    id,
    type: "button",
    class: "copy",
    "aria-label": `Copy the ${label}`,
    text: "Copy",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(url);
        announce(`${label} copied.`);
        button.textContent = "Copied";
      } catch {
        getSelection().selectAllChildren(code);
        announce(`${label} selected: press Ctrl+C to copy.`);
      }
    },
  });
  return [h("dt", { text: label }), h("dd", { class: "with-copy" }, code, button)];
}

export function detailPage(main, { who, params }) {
  const [sub, provider, loc, name] = params;
  let gone = false;
  let stop = null;
  let op = null;
  let frame = 0;
  let version = null;
  const base = `/subscriptions/${encodeURIComponent(sub)}/providers/${encodeURIComponent(provider)}/locations/${encodeURIComponent(loc)}/operationsStatus/${encodeURIComponent(name)}`;
  const heading = h("h1", { text: `Operation ${name}` });
  const summary = h("section", { "aria-labelledby": "summary-title" });
  const history = h("tbody");
  const streamState = h("p", { class: "stream-state muted", role: "status" });
  const deliveries = h("section", { "aria-labelledby": "deliveries-title" });
  const historySection = h("section", { "aria-labelledby": "history-title" },
    h("h2", { id: "history-title", text: "Event history" }), streamState,
    scrolling("Event history", h("table", { class: "events" },
      h("caption", { class: "visually-hidden", text: "Events of this operation, oldest first" }),
      h("thead", {}, h("tr", {}, ["Time", "Event", "Status", "Progress"].map((t) => h("th", { scope: "col", text: t })))),
      history)));
  main.append(h("p", { class: "crumbs" }, h("a", { href: `/ui/operations?${query({ sub, provider, location: loc })}`, text: "Operations" })), heading, summary);
  const dialog = h("dialog", { "aria-labelledby": "cancel-title" });

  async function start() {
    try {
      version = await apiVersion(provider);
      op = await call(`${base}?${query({ "api-version": version })}`, { headers: FULL_DETAIL });
    } catch (error) {
      if (!gone) summary.replaceChildren(h("p", { role: "alert", class: "error", text: error.message }));
      return;
    }
    if (gone) return;
    renderSummary();
    main.append(historySection, deliveries, dialog);
    loadDeliveries();
    stop = openStream(`${base}?${query({ "api-version": version })}`, {
      onEvent(event) {
        const doc = event.data;
        history.append(h("tr", {},
          h("td", {}, time(doc.time)),
          h("td", { text: doc.type }),
          h("td", {}, badge(doc.operation.status)),
          h("td", { text: typeof doc.operation.percentComplete === "number" ? `${doc.operation.percentComplete}%` : "—" })));
        op = { ...op, ...doc.operation };
        if (!frame) frame = requestAnimationFrame(() => { frame = 0; renderSummary(); });
        if (isTerminal(doc.operation.status)) loadDeliveries();
      },
      ends: (event) => isTerminal(event.data.operation.status) || ["operation.expired", "operation.deleted"].includes(event.type),
      onState(s, error) {
        streamState.dataset.state = s;
        streamState.textContent = {
          connecting: "Connecting to live updates…",
          live: "Live: new events appear as they happen.",
          reconnecting: "Connection lost; reconnecting…",
          failed: `Live updates unavailable: ${error?.message}`,
          ended: "The operation has ended; no more events will come.",
        }[s];
      },
    });
  }

  function renderSummary() {
    const origin = location.origin;
    const armUrl = `${origin}${op.id}?${query({ "api-version": version })}`;
    const urls = [copyRow("copy-arm", "ARM status URL", armUrl)];
    if (provider.toLowerCase() === CLASSIC_NAMESPACE.toLowerCase()) {
      urls.push(copyRow("copy-classic", "Classic status URL", `${origin}/${sub}/operations/${op.name}`));
    }
    const facts = [
      ["Status", badge(op.status)],
      ["Progress", progress(op.percentComplete, op.status, "Progress")],
      ["Started", time(op.startTime)],
      ["Ended", time(op.endTime)],
      ["Duration", duration(op.startTime, op.endTime)],
      ["Provider", provider],
      ["Location", loc],
      ["Subscription", sub],
      op.kind ? ["Kind", op.kind] : null,
      op.leaseState ? ["Lease", op.leaseState] : null,
      op.leaseExpiresAt ? ["Lease expires", time(op.leaseExpiresAt)] : null,
      op.cancelRequestedAt ? ["Cancel requested", time(op.cancelRequestedAt)] : null,
      op.expiresAt ? ["Kept until", time(op.expiresAt)] : null,
    ].filter(Boolean);
    const parts = [
      h("h2", { id: "summary-title", text: "Status" }),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])),
    ];
    if (canWrite(who, sub) && !isTerminal(op.status) && op.cancelable !== false) {
      parts.push(op.cancelRequestedAt
        ? h("p", { class: "muted", text: "Cancel requested: waiting for the producer to stop." })
        : h("button", { type: "button", class: "danger", id: "cancel", onclick: confirmCancel, text: "Cancel operation…" }));
    }
    if (op.error) parts.push(h("h2", { text: "Error" }), errorList(op.error));
    if (op.properties !== undefined) {
      parts.push(h("h2", { text: "Properties" }),
        h("pre", { class: "json", tabindex: 0, "aria-label": "Properties (JSON)", text: JSON.stringify(op.properties, null, 2) }));
    }
    parts.push(h("h2", { text: "URLs" }), h("dl", { class: "urls" }, urls));
    // Redrawn on every event: the focused control (cancel, copy) keeps the focus.
    const focused = document.activeElement;
    const focusId = summary.contains(focused) ? focused.id : null;
    summary.replaceChildren(...parts);
    if (focusId) document.getElementById(focusId)?.focus();
  }

  function confirmCancel() {
    const yes = h("button", { type: "button", class: "danger", text: "Cancel the operation" });
    const no = h("button", { type: "button", text: "Keep it running" });
    const error = h("p", { class: "error", role: "alert" });
    dialog.replaceChildren(
      h("h2", { id: "cancel-title", text: `Cancel ${op.name}?` }),
      h("p", { text: "The producer is asked to stop the operation; it ends as Canceled once the producer has stopped it." }),
      error,
      h("div", { class: "actions" }, yes, no));
    no.addEventListener("click", () => dialog.close());
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        const after = await call(`${base}/cancel?${query({ "api-version": version })}`, { method: "POST", headers: FULL_DETAIL });
        op = { ...op, ...after };
        dialog.close();
        renderSummary();
        announce("Cancel requested.");
      } catch (failure) {
        error.textContent = failure.message;
        yes.disabled = false;
      }
    });
    dialog.addEventListener("close", () => document.getElementById("cancel")?.focus(), { once: true });
    dialog.showModal();
    no.focus();
  }

  async function loadDeliveries() {
    let found;
    try {
      found = await call(`${base}/notifications?${query({ "api-version": version })}`);
    } catch (error) {
      if (!gone) deliveries.replaceChildren(h("h2", { id: "deliveries-title", text: "Webhook deliveries" }), h("p", { class: "error", text: error.message }));
      return;
    }
    if (gone) return;
    const rows = found.value.map((d) => h("tr", {},
      h("td", { text: d.eventType }),
      h("td", { text: d.endpoint }),
      h("td", { text: d.state }),
      h("td", { text: d.attempts }),
      h("td", { text: d.lastHttpStatus ?? "—" }),
      h("td", { text: d.lastError ?? "" }),
      h("td", {}, time(d.nextAttemptAt))));
    deliveries.replaceChildren(
      h("h2", { id: "deliveries-title", text: "Webhook deliveries" }),
      rows.length
        ? scrolling("Webhook deliveries", h("table", {},
          h("thead", {}, h("tr", {}, ["Event", "Endpoint", "State", "Attempts", "Last HTTP status", "Last error", "Next attempt"].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, rows)))
        : h("p", { class: "muted", text: "No webhook deliveries for this operation." }));
  }

  start();
  return () => {
    gone = true;
    stop?.();
    if (frame) cancelAnimationFrame(frame);
    if (dialog.open) dialog.close();
  };
}
