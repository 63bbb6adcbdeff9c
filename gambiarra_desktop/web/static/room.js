// One room (the page at /r/CODE): its password if it has one, its live participants (from
// the room's server-sent events), the chat, and the Connect snippets.
import { ApiError, call, getJson, passwords, readEvents, roomPath } from "./api.js";
import { Chat } from "./chat.js";
import { renderSnippets } from "./snippets.js";

const $ = (id) => document.getElementById(id);
const REFRESH_AFTER_MS = 250; // Events come in bursts (a request, then its answer): one read.
const RECONNECT_MS = [1000, 2000, 5000, 10000, 30000];
const SILENCE_MS = 45000; // Three of the hub's 15 s heartbeats.

export async function showRoom(code) {
  $("room-page").hidden = false;
  $("room-code").textContent = code;
  $("password-room").value = `room ${code}`; // Lets a password manager tell rooms apart.
  const room = { code, password: passwords.get(code), participants: new Map(), chat: null,
                 refreshTimer: 0, gone: false };
  const info = await findRoom(code);
  if (!info) return;
  room.hasPassword = Boolean(info.hasPassword);
  $("room-name").textContent = info.name;
  document.title = `${info.name} · Gambiarra`;
  $("room-lock").hidden = !room.hasPassword;
  renderSnippets($("snippets"), `${location.origin}${roomPath(code, "/v1")}`, room.hasPassword);
  $("password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    tryPassword(room, $("password").value);
  });
  if (room.hasPassword && !room.password) askPassword("");
  else await enter(room);
}

async function findRoom(code) {
  try {
    const { rooms } = await getJson("/rooms");
    const info = (Array.isArray(rooms) ? rooms : []).find((r) => r.code === code);
    if (!info) showRoomError(`There is no room ${code} on this hub. It may have been deleted, or the code mistyped.`);
    return info;
  } catch (problem) {
    showRoomError(problem.message);
    return null;
  }
}

function showRoomError(message) {
  $("room-error").textContent = message;
  $("room-error").hidden = !message;
}

function askPassword(message) {
  $("room-body").hidden = true;
  $("password-form").hidden = false;
  $("password-error").textContent = message;
  $("password-error").hidden = !message;
  $("password").value = "";
  $("password").focus();
}

async function tryPassword(room, candidate) {
  if (!candidate) return;
  $("password-submit").disabled = true;
  try {
    const listing = await getJson(roomPath(room.code, "/participants"), { password: candidate });
    room.password = candidate;
    passwords.set(room.code, candidate);
    $("password-form").hidden = true;
    start(room, listing);
  } catch (problem) {
    askPassword(problem.message);
  } finally {
    $("password-submit").disabled = false;
  }
}

async function enter(room) {
  try {
    start(room, await getJson(roomPath(room.code, "/participants"), { password: room.password }));
  } catch (problem) {
    if (problem instanceof ApiError && problem.status === 401) {
      passwords.forget(room.code);
      askPassword(room.password ? "The password this tab kept no longer opens the room." : "");
    } else {
      showRoomError(problem.message);
    }
  }
}

function start(room, listing) {
  showRoomError("");
  $("room-body").hidden = false;
  room.chat = new Chat(room);
  showParticipants(room, listing);
  followEvents(room);
  $("prompt").focus();
}

// One read at a time, and one more after it when asked meanwhile: an older answer that
// arrives late never overwrites a newer one.
async function refreshParticipants(room) {
  if (room.reading) {
    room.readAgain = true;
    return;
  }
  room.reading = true;
  try {
    do {
      room.readAgain = false;
      try {
        showParticipants(room, await getJson(roomPath(room.code, "/participants"),
                                             { password: room.password }));
      } catch (problem) {
        if (problem instanceof ApiError && problem.status === 404) { roomGone(room); return; }
        $("events-state").textContent = `Could not read the participants: ${problem.message}`;
      }
    } while (room.readAgain);
  } finally {
    room.reading = false;
  }
}

// At most one read per REFRESH_AFTER_MS however busy the room: a burst of events (a
// request, then its answer) is one read, and a steady stream of them never starves it.
function scheduleRefresh(room) {
  if (room.refreshTimer) return;
  room.refreshTimer = setTimeout(() => {
    room.refreshTimer = 0;
    refreshParticipants(room);
  }, REFRESH_AFTER_MS);
}

function showParticipants(room, listing) {
  const people = Array.isArray(listing.participants) ? listing.participants : [];
  room.participants = new Map(people.map((p) => [p.id, p]));
  const online = people.filter((p) => p.status === "online");
  $("participant-count").textContent = people.length ? `${online.length} of ${people.length} online` : "";
  $("participants-empty").hidden = people.length > 0;
  people.sort((a, b) => (a.status === "online" ? 0 : 1) - (b.status === "online" ? 0 : 1)
    || String(a.nickname).localeCompare(String(b.nickname)));
  $("participants").replaceChildren(...people.map(participantItem));
  showQueue(listing.queue && listing.queue.waiting);
  room.chat.setParticipants(people);
}

function participantItem(p) {
  const item = document.createElement("li");
  const state = p.loading ? "loading" : p.status;
  item.className = state === "online" ? "online" : state === "loading" ? "loading" : "offline";
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.setAttribute("aria-hidden", "true");
  const name = document.createElement("span");
  name.className = "nickname";
  name.textContent = p.nickname;
  const detail = document.createElement("span");
  detail.className = "detail";
  const busy = p.metrics && p.metrics.inFlight ? ` · answering ${p.metrics.inFlight}` : "";
  const shown = { online: "online", loading: "loading its model", offline: "offline" }[item.className];
  detail.textContent = `${p.model} · ${shown}${busy}`;
  item.append(dot, name, detail);
  return item;
}

function showQueue(waiting) {
  const count = Number(waiting) || 0;
  $("queue").textContent = count ? `${count} ${count === 1 ? "request waits" : "requests wait"} for a free model` : "";
}

function roomGone(room) {
  room.gone = true;
  room.chat.disable("This room was deleted.");
  showRoomError("This room was deleted. Its page stays open so nothing you wrote is lost.");
}

// The room's events, read while the tab is visible, reconnecting after a drop. A hidden
// tab lets its stream go: a browser keeps only six connections to one hub, and six
// forgotten tabs holding theirs would leave none for a chat.
async function followEvents(room) {
  let caughtUp = true;
  for (let attempt = 0; !room.gone; attempt += 1) {
    if (document.hidden) {
      await visible();
      caughtUp = false;
      attempt = 0;
    }
    const controller = new AbortController();
    const hide = () => { if (document.hidden) controller.abort(); };
    document.addEventListener("visibilitychange", hide);
    const watchdog = new Watchdog(controller);
    try {
      const response = await call(roomPath(room.code, "/events"),
                                  { password: room.password, signal: controller.signal });
      $("events-state").textContent = "";
      if (!caughtUp || attempt > 0) refreshParticipants(room); // What happened meanwhile.
      caughtUp = true;
      attempt = 0;
      await readEvents(response, (name, data) => {
        onEvent(room, name, data);
        return false;
      }, () => watchdog.feed());
    } catch (problem) {
      if (problem instanceof ApiError && problem.status === 404) { roomGone(room); return; }
      if (problem instanceof ApiError && problem.status === 401) {
        passwords.forget(room.code);
        room.chat.disable("The room's password changed: reload the page to enter the new one.");
        return;
      }
    } finally {
      watchdog.stop();
      document.removeEventListener("visibilitychange", hide);
    }
    if (document.hidden) continue; // Let go on purpose: back when the tab is seen again.
    const wait = RECONNECT_MS[Math.min(attempt, RECONNECT_MS.length - 1)];
    $("events-state").textContent = `Live updates lost; reconnecting in ${wait / 1000} s…`;
    await new Promise((resolve) => { setTimeout(resolve, wait); });
  }
}

function visible() {
  return new Promise((resolve) => {
    const seen = () => {
      if (document.hidden) return;
      document.removeEventListener("visibilitychange", seen);
      resolve();
    };
    document.addEventListener("visibilitychange", seen);
  });
}

// The hub writes a heartbeat after 15 s of silence; a stream silent for much longer is a
// connection that died without closing (a laptop asleep, Wi-Fi gone): drop it and dial.
class Watchdog {
  constructor(controller) {
    this.controller = controller;
    this.feed();
  }

  feed() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.controller.abort(), SILENCE_MS);
  }

  stop() {
    clearTimeout(this.timer);
  }
}

function onEvent(room, name, data) {
  if (name === "room:deleted") { roomGone(room); return; }
  if (name === "queue:changed" || name === "llm:queued") {
    let queue = null;
    try { queue = JSON.parse(data); } catch { return; } // Not JSON: not ours.
    if (name === "queue:changed") {
      showQueue(queue.waiting);
      room.chat.onQueue(queue.positions);
    } else if (queue.requestId) {
      room.chat.onQueue({ [queue.requestId]: queue.position });
    }
    return;
  }
  if (name.startsWith("participant:") || name.startsWith("llm:")) scheduleRefresh(room);
}
