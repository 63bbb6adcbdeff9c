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
export async function call(path, { password = "", method = "GET", body, signal, headers: extra } = {}) {
  const headers = { ...extra };
  if (password) headers.Authorization = `Bearer ${password}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, cache: "no-store", credentials: "omit", redirect: "error",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, UNREACHABLE);
  }
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  return response;
}

export async function getJson(path, options) {
  const response = await call(path, options);
  return response.json();
}

async function errorText(response) {
  try {
    const data = await response.json();
    if (data && typeof data.error === "string") return data.error;
    if (data && data.error && typeof data.error.message === "string") return data.error.message;
  } catch {
    // Not JSON: say what the status was.
  }
  return `The hub answered ${response.status} ${response.statusText}`.trim();
}

// Server-sent events from a fetch() body, one onEvent(name, data) per event. Not
// EventSource: that cannot send the room's password in a header.
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      dispatch(block, onEvent);
    }
    if (buffer.length > MAX_EVENT_BYTES) throw new ApiError(0, "The hub sent an event too large to read.");
  }
}

function dispatch(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length) onEvent(name, data.join("\n"));
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
