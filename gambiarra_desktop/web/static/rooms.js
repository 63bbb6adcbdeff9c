// The hub's rooms (the page at /): a card per room, refreshed while the tab is visible.
import { getJson } from "./api.js";

const REFRESH_MS = 10000;

export function showRooms() {
  document.getElementById("rooms-page").hidden = false;
  document.title = "Rooms · Gambiarra";
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
}

let reading = false; // One read at a time: a slow hub does not pile them up.

async function refresh() {
  if (reading) return;
  reading = true;
  const error = document.getElementById("rooms-error");
  try {
    const { rooms } = await getJson("/rooms");
    error.hidden = true;
    render(Array.isArray(rooms) ? rooms : []);
  } catch (problem) {
    error.textContent = problem.message;
    error.hidden = false;
  } finally {
    reading = false;
  }
}

function render(rooms) {
  rooms.sort((a, b) => (b.createdAt || 0) - (a.createdAt || 0));
  document.getElementById("rooms-empty").hidden = rooms.length > 0;
  document.getElementById("rooms").replaceChildren(...rooms.map((room) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.className = "card";
    link.href = `/r/${encodeURIComponent(room.code)}`;
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = room.name;
    const meta = document.createElement("div");
    meta.className = "meta";
    const people = Number(room.participantCount) || 0;
    meta.textContent = `${room.code} · ${people} ${people === 1 ? "participant" : "participants"}`
      + (room.hasPassword ? " · password" : "");
    link.append(name, meta);
    item.append(link);
    return item;
  }));
}
