// The hub's public API, as this page uses it. Every call goes to the hub that served the
// page (relative paths; the Content-Security-Policy allows no other origin), and a room's
// password goes only in the Authorization header: never in a URL, a log or another host.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const UNREACHABLE = "The hub cannot be reached. Is it still running, and are you on its network?";
const MAX_EVENT_BYTES = 1024 * 1024; // One server-sent event larger than this is not ours.

// fetch() with the room's password, turning the hub's {"error": "..."} answers into ApiError.
export async function call(path, { password = "", method = "GET", body, signal, headers: extra,
                                   timeoutMs = 0 } = {}) {
  const headers = { ...extra };
  if (password) headers.Authorization = `Bearer ${password}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const limit = timeoutMs ? timeLimit(signal, timeoutMs) : null;
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal: limit ? limit.signal : signal, cache: "no-store",
      credentials: "omit", redirect: "error",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    return limit ? await limit.settle(response) : response;
  } catch (error) {
    if (limit && limit.expired) throw new ApiError(0, `The hub did not answer within ${timeoutMs / 1000} s.`);
    if (error.name === "AbortError" || error instanceof ApiError) throw error;
    throw new ApiError(0, UNREACHABLE);
  } finally {
    if (limit) limit.done();
  }
}

// A short call's answer, as JSON, within 15 s: a hub that hangs is said, not waited on.
export async function getJson(path, options) {
  const response = await call(path, { timeoutMs: SHORT_CALL_MS, ...options });
  return response.json();
}

const SHORT_CALL_MS = 15000;

// An abort signal that fires after ms, or when the caller's own signal does; settle()
// reads the whole body within the same time.
function timeLimit(outer, ms) {
  const controller = new AbortController();
  const limit = { signal: controller.signal, expired: false };
  const timer = setTimeout(() => { limit.expired = true; controller.abort(); }, ms);
  const forward = () => controller.abort();
  if (outer) outer.addEventListener("abort", forward, { once: true });
  limit.settle = async (response) => new Response(await response.arrayBuffer(), response);
  limit.done = () => {
    clearTimeout(timer);
    if (outer) outer.removeEventListener("abort", forward);
  };
  return limit;
}

async function errorText(response) {
  try {
    const data = await response.json();
    if (data && typeof data.error === "string") return data.error;
    if (data && data.error && typeof data.error.message === "string") return data.error.message;
  } catch {
    // Not JSON: say what the status was.
  }
  return `The request failed: ${response.status} ${response.statusText}`.trim();
}

// Server-sent events from a fetch() body, one onEvent(name, data) per event; onEvent
// returning true ends the reading there; onRead() hears of every read, comments (the
// hub's heartbeats) included. Not EventSource: that cannot send the room's password in a
// header.
export async function readEvents(response, onEvent, onRead = null) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const boundary = /\r?\n\r?\n/g;
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    if (onRead) onRead();
    // Search only what came since the last look (and the 3 characters before it, where a
    // blank line may have been cut in two): a slow trickle stays linear.
    boundary.lastIndex = Math.max(0, buffer.length - 3);
    buffer += value;
    let match;
    while ((match = boundary.exec(buffer)) !== null) {
      const block = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      boundary.lastIndex = 0;
      if (dispatch(block, onEvent) === true) {
        reader.cancel().catch(() => {});
        return;
      }
    }
    // Only what is left, an event still incomplete, is held; one read may bring many.
    if (buffer.length > MAX_EVENT_BYTES) {
      reader.cancel().catch(() => {});
      throw new ApiError(0, "The stream sent an event too large to read.");
    }
  }
}

function dispatch(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return data.length ? onEvent(name, data.join("\n")) : false;
}

// The room's password for this tab only (sessionStorage): gone when the tab closes.
export const passwords = {
  get(code) {
    try { return sessionStorage.getItem(`room-password:${code}`) || ""; } catch { return ""; }
  },
  set(code, password) {
    try { sessionStorage.setItem(`room-password:${code}`, password); } catch { /* Private mode: kept in memory only. */ }
  },
  forget(code) {
    try { sessionStorage.removeItem(`room-password:${code}`); } catch { /* Nothing kept. */ }
  },
};

export function roomPath(code, rest = "") {
  return `/rooms/${encodeURIComponent(code)}${rest}`;
}
