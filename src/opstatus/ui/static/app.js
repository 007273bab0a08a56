// The dashboard's entry: sign-in, the header (who you are), and the routes. Pages are
// /ui/ (overview), /ui/operations?filter (list), /ui/operations/{sub}/{provider}/{location}/{id}
// (detail); the history API moves between them without reloading.

import { onUnauthorized, principal, session } from "./api.js";
import { h } from "./format.js";
import { detailPage } from "./pages/detail.js";
import { listPage } from "./pages/list.js";
import { overviewPage } from "./pages/overview.js";
import { signInPage } from "./pages/signin.js";

const ROUTES = [
  [/^\/ui\/?$/, "overview", overviewPage],
  [/^\/ui\/operations\/?$/, "list", listPage],
  [/^\/ui\/operations\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)$/, "detail", detailPage],
];

let leave = null; // stops the current page's streams
let who = null;
let shown = null; // the path and query of the page on screen
let rendering = 0;

export function navigate(url, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"](null, "", url);
  render();
}

function showWho(principalDoc) {
  const el = document.getElementById("who");
  const nav = document.getElementById("nav");
  if (!principalDoc) {
    el.hidden = true;
    nav.hidden = true;
    el.replaceChildren();
    return;
  }
  const roles = principalDoc.roles.map((r) => `${r.role} on ${r.scope}`).join(", ") || "no roles";
  el.replaceChildren(
    h("span", { class: "name", text: principalDoc.name }),
    h("span", { class: "roles", text: roles }),
    h("button", { type: "button", class: "link", onclick: signOut, text: "Sign out" }),
  );
  el.hidden = false;
  nav.hidden = false;
}

function signOut() {
  session.signOut();
  who = null;
  render();
}

function markCurrent(name) {
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function render(message = null) {
  const turn = ++rendering;
  leave?.();
  leave = null;
  const main = document.getElementById("main");
  if (!session.token) {
    who = null;
    showWho(null);
    markCurrent(null);
    document.title = "Sign in · opstatus";
    main.replaceChildren(signInPage(message, async (token, whoDoc) => {
      session.signIn(token);
      who = whoDoc;
      await render();
    }));
    return;
  }
  if (!who) {
    try {
      who = await principal();
    } catch (error) {
      if (turn !== rendering) return;
      if (!session.token) return; // the 401 has already shown the sign-in
      main.replaceChildren(h("p", { role: "alert", text: `Cannot read who you are: ${error.message}` }));
      return;
    }
    if (turn !== rendering) return;
  }
  showWho(who);
  shown = location.pathname + location.search;
  const path = location.pathname;
  for (const [pattern, name, page] of ROUTES) {
    const m = pattern.exec(path);
    if (!m) continue;
    markCurrent(name);
    main.replaceChildren();
    leave = page(main, {
      who,
      params: m.slice(1).map(decodeURIComponent),
      query: new URLSearchParams(location.search),
      navigate,
    });
    const heading = main.querySelector("h1");
    if (heading) document.title = `${heading.textContent} · opstatus`;
    return;
  }
  markCurrent(null);
  main.replaceChildren(
    h("h1", { text: "Not found" }),
    h("p", {}, "No page of the dashboard has this address. ", h("a", { href: "/ui/", text: "Overview" })),
  );
}

onUnauthorized((message) => {
  who = null;
  render(message || "The server refused the token.");
});

// Links within the dashboard move with the history API; modified clicks open as usual.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || link.target) return;
  if (link.getAttribute("href").startsWith("#")) return; // the skip link: the browser's own
  const url = new URL(link.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
  document.getElementById("main").focus();
});

// Back and forward; a change of the fragment alone (the skip link) is no new page.
window.addEventListener("popstate", () => {
  if (location.pathname + location.search !== shown) render();
});
render();
