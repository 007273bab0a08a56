// Every call to the API: fetch with the tab's bearer token, no cookies. The token lives in
// sessionStorage only (this tab, until it closes or the user signs out); it never goes in
// a URL. A 401 signs the tab out and shows the server's message on the sign-in form.

const TOKEN_KEY = "opstatus.token";
const CLASSIC = "Opstatus.Classic";
export const FULL_DETAIL = { Prefer: "opstatus-detail=full" };

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `The server answered ${status}.`);
    this.status = status;
    this.code = error.code || `HTTP${status}`;
    this.target = error.target;
    this.details = error.details;
  }
}

let unauthorized = () => {};

// What to do when the server refuses the tab's token (app.js: back to sign-in).
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function signedOut(message) {
  session.signOut();
  unauthorized(message);
}

export async function errorOf(response) {
  let error = {};
  try {
    error = (await response.json()).error || {};
  } catch {
    // not the ARM envelope (a proxy's page): the status says enough
  }
  return new ApiError(response.status, error);
}

export function authHeaders(token = session.token) {
  return { Authorization: `Bearer ${token}` };
}

// The JSON of a call; ApiError for any other answer. ``token``: try this one instead of
// the session's (sign-in), and leave the session alone on a 401.
export async function call(url, { method = "GET", headers = {}, token = null, signal } = {}) {
  const response = await fetch(url, {
    method,
    headers: { Accept: "application/json", ...headers, ...authHeaders(token || session.token) },
    credentials: "omit",
    cache: "no-store",
    signal,
  });
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && !token) signedOut(error.message);
    throw error;
  }
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// The registered providers and their api-versions, read from the API's own document
// (/openapi.json, public), so that the dashboard names what this server accepts.
let document_ = null;

async function openapi() {
  document_ ??= fetch("/openapi.json", { credentials: "omit" }).then((r) => {
    if (!r.ok) throw new Error(`/openapi.json answered ${r.status}`);
    return r.json();
  });
  try {
    return await document_;
  } catch (error) {
    document_ = null;
    throw error;
  }
}

const ITEM = /^\/subscriptions\/\{subscriptionId\}\/providers\/([^/{}]+)\/locations\/\{location\}\/operationsStatus\/\{operationId\}$/;

function newest(versions) {
  const sorted = [...versions].sort().reverse();
  return sorted.find((v) => !v.includes("preview")) || sorted[0];
}

// Map namespace → the newest api-version the provider accepts.
export async function providers() {
  const doc = await openapi();
  const found = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    const m = ITEM.exec(path);
    if (!m) continue;
    const param = (item.parameters || []).find((p) => p.name === "api-version");
    if (param?.schema?.enum?.length) found.set(m[1], newest(param.schema.enum));
  }
  return found;
}

export async function apiVersion(namespace) {
  const all = await providers();
  for (const [name, version] of all) {
    if (name.toLowerCase() === namespace.toLowerCase()) return version;
  }
  throw new ApiError(400, { message: `This server has no provider '${namespace}'.` });
}

// opstatus's own api-version: that of its own provider, for the calls of no provider.
export function ownVersion() {
  return apiVersion(CLASSIC);
}

export const CLASSIC_NAMESPACE = CLASSIC;

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  return search.toString();
}

// The collection a list filter names: a subscription, maybe one provider, maybe one location.
export async function collectionPath(sub, provider, location) {
  const base = `/subscriptions/${encodeURIComponent(sub)}`;
  if (!provider) return { path: `${base}/operationsStatus`, version: await ownVersion() };
  let path = `${base}/providers/${encodeURIComponent(provider)}`;
  if (location) path += `/locations/${encodeURIComponent(location)}`;
  return { path: `${path}/operationsStatus`, version: await apiVersion(provider) };
}

// Who the token belongs to, and its roles (GET /principal).
export async function principal(token = null) {
  const version = await ownVersion();
  return call(`/principal?${query({ "api-version": version })}`, { token });
}

const WRITERS = new Set(["contributor", "owner"]);

// Whether the principal's roles allow writes (cancel) in the subscription. The server
// decides for itself on every request; this only hides buttons that would be refused.
export function canWrite(who, sub) {
  const scope = `/subscriptions/${sub}`.toLowerCase();
  return (who?.roles || []).some(
    (r) => WRITERS.has(String(r.role).toLowerCase()) && (r.scope === "/" || r.scope.toLowerCase() === scope),
  );
}

// The subscriptions the roles name (a role on "/" names them all: see the overview).
export function roleSubscriptions(who) {
  const subs = new Set();
  for (const r of who?.roles || []) {
    const m = /^\/subscriptions\/([^/]+)$/i.exec(r.scope);
    if (m) subs.add(m[1].toLowerCase());
  }
  return [...subs];
}
