// The room's chat: a conversation with the room's models, streamed as it is written.
// Each answer says who answered, the time to its first token and its tokens per second.
import { call, readEvents, roomPath } from "./api.js";

const $ = (id) => document.getElementById(id);
const ANY = "*";
const MAX_ANSWER_CHARS = 1_000_000; // Past this, an answer is cut: the tab must stay usable.

export class Chat {
  constructor(room) {
    this.room = room;
    this.history = []; // The messages sent with the next request (the conversation so far).
    this.controller = null; // Set while an answer streams: Stop aborts it.
    this.turns = 0; // Numbers each question; New chat ends the running one for good.
    this.cleared = 0;
    $("chat-form").addEventListener("submit", (event) => { event.preventDefault(); this.send(); });
    $("prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    $("stop").addEventListener("click", () => this.stop());
    $("new-chat").addEventListener("click", () => this.clear());
  }

  // The model picker: any model, one model by name, or one participant. A choice that
  // goes away stays selected (marked) rather than silently becoming another.
  setParticipants(people) {
    const select = $("model");
    const chosen = select.value || ANY;
    const online = people.filter((p) => p.status === "online");
    const options = [option(ANY, "Any model in the room")];
    const models = new Map();
    for (const p of online) models.set(p.model, (models.get(p.model) || 0) + 1);
    if (models.size) {
      options.push(group("Models", [...models].sort().map(([name, count]) =>
        option(`model:${name}`, count > 1 ? `${name} (${count} sharing)` : name))));
    }
    if (online.length) {
      options.push(group("People", online.map((p) => option(p.id, `${p.nickname} · ${p.model}`))));
    }
    const values = new Set(options.flatMap((o) => (o.tagName === "OPTGROUP" ? [...o.children] : [o]).map((x) => x.value)));
    if (!values.has(chosen)) options.push(option(chosen, `${describe(chosen, people)} (not available now)`));
    select.replaceChildren(...options);
    select.value = chosen;
  }

  async send() {
    const prompt = $("prompt");
    const text = prompt.value.trim();
    if (!text || this.controller) return;
    prompt.value = "";
    $("chat-error").hidden = true;
    $("chat-empty").hidden = true;
    this.history.push({ role: "user", content: text });
    const asked = this.addMessage("user", text);
    const reply = this.addMessage("assistant", "");
    reply.classList.add("pending");
    const controller = new AbortController();
    this.controller = controller;
    const number = ++this.turns;
    this.waiting = { id: requestId(), reply };
    this.setBusy(true);
    const turn = { started: performance.now(), first: 0, last: 0, pieces: 0, usage: null,
                   content: "", model: "", who: "", finished: false, unshown: "", frame: 0,
                   reply };
    let failure = null;
    let stopped = false;
    try {
      const response = await call(roomPath(this.room.code, "/v1/chat/completions"), {
        method: "POST", password: this.room.password, signal: controller.signal,
        body: { model: $("model").value || ANY, messages: this.history, stream: true },
        headers: { "X-Request-Id": this.waiting.id },
      });
      this.waiting = null;
      const answerer = this.answerer(response.headers);
      turn.who = answerer ? answerer.nickname : "";
      turn.model = response.headers.get("X-Gambiarra-Model") || (answerer ? answerer.model : "");
      this.label(reply, turn);
      if ((response.headers.get("Content-Type") || "").includes("json")) {
        this.take(turn, reply, await response.json()); // A model that does not stream.
        turn.finished = true;
      } else {
        await readEvents(response, (_name, data) => {
          if (data === "[DONE]") {
            turn.finished = true;
            return true; // The answer's end: what a server sends after it is not the answer.
          }
          this.take(turn, reply, JSON.parse(data));
          return false;
        });
        if (!turn.finished) throw new Error("The answer broke off before its end (the connection closed).");
      }
    } catch (problem) {
      if (problem.name === "AbortError") stopped = true;
      else failure = problem;
    } finally {
      controller.abort(); // Ends the body's reading too, when an event broke off the loop.
      this.controller = null;
      this.waiting = null;
      this.setBusy(false);
      show(turn);
    }
    if (this.cleared === number) return; // New chat ended this turn: nothing of it stays.
    reply.classList.remove("pending");
    if (turn.content) {
      if (!turn.cut) this.history.push({ role: "assistant", content: turn.content });
      if (stopped) reply.classList.add("stopped");
    } else {
      // Nothing came back: undo the turn, and give the prompt back to edit or resend.
      this.history.pop();
      asked.remove();
      reply.remove();
      if (!prompt.value) prompt.value = text;
      $("chat-empty").hidden = this.history.length > 0;
    }
    if (failure) {
      $("chat-error").textContent = failure instanceof SyntaxError
        ? "The model's answer was not in the OpenAI format." : failure.message;
      $("chat-error").hidden = false;
    }
    $("answer-info").textContent = turn.content ? summary(turn, stopped) : stopped ? "Stopped before any answer." : "";
    if (!this.disabledBecause) prompt.focus();
  }

  // One streamed chunk (or a whole answer): its text is shown as it arrives.
  take(turn, reply, chunk) {
    if (chunk && chunk.error) {
      throw new Error(typeof chunk.error === "string" ? chunk.error : chunk.error.message || "The model failed.");
    }
    const choice = chunk && Array.isArray(chunk.choices) ? chunk.choices[0] : null;
    const piece = choice && ((choice.delta && choice.delta.content) || (choice.message && choice.message.content));
    if (typeof piece === "string" && piece) {
      const now = performance.now();
      if (!turn.first) turn.first = now;
      turn.last = now;
      turn.pieces += 1;
      turn.content += piece;
      turn.unshown += piece;
      // Drawn once a frame, each piece added (not the whole answer rewritten per piece):
      // a fast model's long answer must not freeze the tab, Stop included.
      if (!turn.frame) turn.frame = requestAnimationFrame(() => show(turn));
      if (turn.content.length > MAX_ANSWER_CHARS) {
        turn.cut = true;
        throw new Error("The answer is too long to show here, so it was cut off (and is"
                        + " left out of the conversation the models see).");
      }
    }
    if (choice && choice.finish_reason) turn.finished = true;
    if (chunk && chunk.usage) turn.usage = chunk.usage;
    if (!turn.model && chunk && typeof chunk.model === "string") {
      turn.model = chunk.model;
      this.label(reply, turn);
    }
  }

  // The room's queue events name each waiting request by the id it was sent with: the
  // answer still to come says its place in line (the hub is full until a model frees up).
  onQueue(positions) {
    if (!this.waiting || !positions) return;
    const place = positions[this.waiting.id];
    if (typeof place === "number") {
      this.waiting.reply.querySelector(".who").textContent =
        place === 1 ? "Every model is busy: yours is next in line…" : `Every model is busy: number ${place} in line…`;
    }
  }

  answerer(headers) {
    const id = headers.get("X-Gambiarra-Participant");
    if (!id) return null;
    let decoded = id;
    try { decoded = decodeURIComponent(id); } catch { /* Shown as sent. */ }
    const p = this.room.participants.get(decoded);
    return p ? p : { nickname: decoded, model: "" };
  }

  label(reply, turn) {
    reply.querySelector(".who").textContent = [turn.who, turn.model].filter(Boolean).join(" · ") || "The room";
  }

  stop() {
    if (this.controller) this.controller.abort();
  }

  clear() {
    if (this.controller) this.cleared = this.turns;
    this.stop();
    this.history = [];
    $("messages").replaceChildren();
    $("answer-info").textContent = "";
    $("chat-error").hidden = true;
    $("chat-empty").hidden = false;
  }

  disable(reason) {
    this.disabledBecause = reason;
    this.stop();
    $("send").disabled = true;
    $("prompt").disabled = true;
    $("model").disabled = true;
    $("chat-error").textContent = reason;
    $("chat-error").hidden = false;
  }

  setBusy(busy) {
    $("send").hidden = busy;
    $("stop").hidden = !busy;
    $("model").disabled = busy || Boolean(this.disabledBecause);
    if (!busy) $("send").disabled = Boolean(this.disabledBecause);
  }

  addMessage(role, text) {
    const item = document.createElement("li");
    item.className = `message ${role}`;
    if (role === "assistant") {
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = "Waiting for a model…";
      item.append(who);
    }
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(body);
    $("messages").append(item);
    item.scrollIntoView({ block: "nearest" });
    return item;
  }
}

// A name for one request, echoed back in the room's queue events. From getRandomValues:
// crypto.randomUUID needs a secure page (https), which a hub on the LAN is not.
function requestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// The text that arrived since the last frame, added to the answer on screen.
function show(turn) {
  if (turn.frame) cancelAnimationFrame(turn.frame);
  turn.frame = 0;
  if (!turn.unshown) return;
  turn.reply.querySelector(".text").append(turn.unshown);
  turn.unshown = "";
  turn.reply.scrollIntoView({ block: "nearest" });
}

function summary(turn, stopped) {
  const parts = [];
  if (turn.who) parts.push(`Answered by ${turn.who}`);
  parts.push(`first token in ${Math.round(turn.first - turn.started)} ms`);
  const tokens = turn.usage && Number(turn.usage.completion_tokens) > 0 ? Number(turn.usage.completion_tokens) : turn.pieces;
  const seconds = (turn.last - turn.first) / 1000;
  if (tokens > 1 && seconds > 0) {
    // Tokens after the first, over the time they took: the model's speed, not the wait.
    parts.push(`${((tokens - 1) / seconds).toFixed(1)} tokens/s${turn.usage ? "" : " (counted in chunks)"}`);
  }
  if (stopped) parts.push("stopped");
  return parts.join(" · ");
}

function describe(value, people) {
  if (value === ANY) return "Any model";
  if (value.startsWith("model:")) return value.slice(6);
  const p = people.find((x) => x.id === value);
  return p ? `${p.nickname} · ${p.model}` : "A participant who left";
}

function option(value, label) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  return element;
}

function group(label, children) {
  const element = document.createElement("optgroup");
  element.label = label;
  element.append(...children);
  return element;
}
