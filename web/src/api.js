// The admin API: JSON in and out, the bearer token when the server wants one, and errors
// carrying what the page shows (message, retry time, problems with line numbers).

const TOKEN_KEY = "mockbox-admin-token";

export class ApiError extends Error {
  constructor(status, data, retryAfter) {
    super((data && data.message) || `HTTP ${status}`);
    this.status = status;
    this.data = data || {};
    this.retryAfter = retryAfter;
  }
}

let askToken = async () => null;

/** How the page asks the user for a token after a 401 (returns it, or null). */
export function onTokenNeeded(fn) {
  askToken = fn;
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** method, path, JSON body, extra headers → {data, headers}; throws ApiError. */
export async function api(method, path, body, headers = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const sent = { ...headers };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) sent["Authorization"] = `Bearer ${token}`;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    let data = null;
    const text = await response.text();
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { message: text.slice(0, 300) };
    }
    if (response.status === 401 && attempt === 0) {
      const given = await askToken();
      if (given) {
        setToken(given);
        continue;
      }
    }
    if (!response.ok) {
      const header = Number(response.headers.get("Retry-After"));
      const retry = data && Number.isFinite(data.retry_after) ? data.retry_after : header || null;
      throw new ApiError(response.status, data, retry);
    }
    return { data, headers: response.headers };
  }
  throw new ApiError(401, { message: "an admin token is required" }, null);
}

/** "in 3 h 12 min (at 00:00)" for a retry time in seconds. */
export function retryText(seconds) {
  if (!seconds || seconds <= 0) return "";
  const at = new Date(Date.now() + seconds * 1000);
  const clock = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  let span;
  if (seconds < 60) span = `${Math.ceil(seconds)} s`;
  else if (seconds < 3600) span = `${Math.ceil(seconds / 60)} min`;
  else span = `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  return `Retry in ${span} (at ${clock}).`;
}

/** One sentence for any failed call, with the retry time when the server gave one. */
export function describe(error) {
  if (!(error instanceof ApiError)) return `The admin server cannot be reached: ${error.message}`;
  const retry = retryText(error.retryAfter);
  const what =
    error.status === 429 ? "Rate limited" : error.data.error ? error.data.error : `HTTP ${error.status}`;
  return `${what}: ${error.message}${retry ? " " + retry : ""}`;
}
