// The guests' web page: / lists the hub's rooms, /r/CODE opens one. The files live in
// gambiarra_desktop/web/static/ and are served as they are (no build step, no CDN).
import { showRooms } from "./rooms.js";
import { showRoom } from "./room.js";

document.getElementById("hub-address").textContent = location.host;
const match = location.pathname.match(/^\/r\/([A-Za-z0-9]+)$/);
if (match) showRoom(match[1].toUpperCase());
else showRooms();
