// rooms.js — the rooms the page holds on its one connection (PROTOCOL §9):
// the list (one button per room, the active one aria-current, an unread
// count, a leave button), each room's own log, resume state (last seq,
// epoch, ids seen) and online count. The first room is the one of the query
// string (the Room field); it is never left from here. Rendering is text
// only: every server string goes through textContent.
import { getLang, t } from "./strings.js";

export const MAX_ROOMS = 16;    // limits.max_rooms_per_connection's default
export const ROOM_NAME = /^[A-Za-z0-9_-]{1,32}$/;
const SEEN_MAX = 2_000;         // message ids remembered for dropping duplicates, per room
const LOG_MAX = 1_000;          // log lines kept, per room

const rooms = [];               // rooms[0]: the home room (query string)
let active = null;
let el = null;                  // { list, log, title, online, message }
let hooks = { leave() {}, switched() {}, deleteMessage() {} };
// Who this connection is (from `system`): its own identified messages, and
// every message for a moderator's token, get a delete button. The server
// checks the grant anyway; this only decides what to offer.
let self = { user: null, moderator: false };

/** Sets who the connection is, for the delete buttons of later messages. */
export function setSelf(who) { self = who; }

class Room {
  constructor(name) {
    this.name = name;
    this.state = "joining";     // joining | joined | gone
    this.everJoined = false;    // a history was received once: a refused join is a lost room
    this.reason = null;         // why it is gone: forbidden, kicked, not_joined, unavailable, …
    this.lastSeq = null;
    this.epoch = null;
    this.sentEpoch = null;      // the epoch sent with this connection's join
    this.historySeen = false;
    this.seen = new Set();
    this.unread = 0;
    this.online = null;
    this.scroll = null;         // { top, atBottom } while not shown
    this.lines = document.createElement("div");
    this.lines.className = "lines";
    this.build();
  }

  build() {
    this.item = document.createElement("li");
    this.item.className = "room";
    this.tab = document.createElement("button");
    this.tab.type = "button";
    this.tab.className = "room-tab";
    this.tab.dataset.room = this.name;
    const name = document.createElement("span");
    name.className = "room-name";
    name.textContent = this.name;
    this.mark = document.createElement("span");
    this.mark.className = "room-mark";
    this.markText = document.createElement("span");
    this.markText.className = "visually-hidden";
    this.markIcon = document.createElement("span");
    this.markIcon.setAttribute("aria-hidden", "true");
    this.mark.append(this.markIcon, this.markText);
    this.badge = document.createElement("span");
    this.badge.className = "unread";
    this.badge.setAttribute("aria-hidden", "true");
    this.badgeText = document.createElement("span");
    this.badgeText.className = "visually-hidden unread-text";
    this.tab.append(name, this.mark, this.badge, this.badgeText);
    this.tab.addEventListener("click", () => setActive(this, true));
    this.leaveButton = document.createElement("button");
    this.leaveButton.type = "button";
    this.leaveButton.className = "room-leave";
    this.leaveButton.textContent = "×";
    this.leaveButton.addEventListener("click", () => userLeaves(this));
    this.item.append(this.tab, this.leaveButton);
  }
}

export function initRooms(elements, callbacks) {
  el = elements;
  hooks = { ...hooks, ...callbacks };
  el.list.addEventListener("keydown", onListKey);
}

export function all() { return rooms; }
export function home() { return rooms[0] ?? null; }
export function activeRoom() { return active; }
export function find(name) { return rooms.find((r) => r.name === name) ?? null; }

/** The home room becomes `name`: an old home is dropped, an extra room of that name moves first. */
export function setHome(name) {
  if (rooms[0]?.name === name) return rooms[0];
  if (rooms[0]) removeRoom(rooms[0]);
  let room = find(name);
  if (room) rooms.splice(rooms.indexOf(room), 1);
  else room = new Room(name);
  rooms.unshift(room);
  el.list.prepend(room.item);
  if (!active || active !== room) setActive(room, false);
  render(room);
  return room;
}

/** A room the user adds (or joins again after losing it): it becomes the active one. */
export function addRoom(name) {
  let room = find(name);
  if (!room) {
    room = new Room(name);
    rooms.push(room);
    el.list.append(room.item);
  } else {
    room.state = "joining";
    room.reason = null;
  }
  setActive(room, false);
  render(room);
  return room;
}

/** Takes a room off the page (left, or a first join refused). */
export function removeRoom(room) {
  const at = rooms.indexOf(room);
  if (at < 0) return;
  rooms.splice(at, 1);
  room.item.remove();
  if (active === room) {
    active = null;
    const next = rooms[Math.max(0, at - 1)];
    if (next) setActive(next, false);
    else { el.log.replaceChildren(); hooks.switched(null); }
  }
}

function userLeaves(room) {
  if (room === rooms[0]) return;
  const hadFocus = room.item.contains(document.activeElement);
  removeRoom(room);
  hooks.leave(room);
  if (hadFocus) active?.tab.focus();
}

/** Shows `room`'s log; its unread count goes back to zero. */
export function setActive(room, byUser) {
  if (active && active !== room) {
    const log = el.log;
    active.scroll = { top: log.scrollTop, atBottom: log.scrollHeight - log.scrollTop - log.clientHeight < 40 };
  }
  const changed = active !== room;
  active = room;
  room.unread = 0;
  if (changed) {
    el.log.replaceChildren(room.lines);
    const s = room.scroll;
    el.log.scrollTop = !s || s.atBottom ? el.log.scrollHeight : s.top;
  }
  for (const r of rooms) render(r);
  renderActive();
  if (changed || byUser) hooks.switched(room);
}

export function markJoining(room) {
  if (room.state === "gone") return;
  room.state = "joining";
  render(room);
}

export function markJoined(room) {
  room.state = "joined";
  room.everJoined = true;
  room.reason = null;
  render(room);
}

/** The room is held no more: `reason` says why (a `gone_…` string says it in its log). */
export function markGone(room, reason) {
  room.state = "gone";
  room.reason = reason;
  room.online = null;
  logLine(room, t(`gone_${reason}`), "error");
  render(room);
  if (room === active) renderActive();
}

export function setOnline(room, online) {
  room.online = online;
  if (room === active) renderActive();
}

export function clearOnline() {
  for (const r of rooms) r.online = null;
  renderActive();
}

function render(room) {
  const { tab, item } = room;
  const isActive = room === active;
  item.dataset.state = room.state;
  if (isActive) tab.setAttribute("aria-current", "true");
  else tab.removeAttribute("aria-current");
  const gone = room.state === "gone";
  const joining = room.state === "joining";
  room.mark.hidden = !gone && !joining;
  room.mark.dataset.kind = gone ? "gone" : "joining";
  room.markIcon.textContent = gone ? "⊘" : joining ? "…" : "";
  const mark = room.reason === "forbidden" || room.reason === "kicked" ? room.reason : "other";
  room.markText.textContent = gone ? `, ${t(`mark_${mark}`)}` : joining ? `, ${t("joining")}` : "";
  room.mark.title = gone ? t(`gone_${room.reason}`) : "";
  room.badge.hidden = room.unread === 0;
  room.badge.textContent = room.unread > 99 ? "99+" : String(room.unread);
  room.badgeText.textContent = room.unread > 0 ? `, ${t("unread", room.unread)}` : "";
  room.leaveButton.hidden = room === rooms[0];
  room.leaveButton.setAttribute("aria-label", t("leaveRoom", room.name));
  room.leaveButton.title = t("leaveRoom", room.name);
}

function renderActive() {
  const room = active;
  el.title.textContent = room ? t("messagesIn", room.name) : t("messages");
  el.message.placeholder = room && rooms.length > 1 ? t("messageTo", room.name) : "";
  const n = room?.online;
  el.online.hidden = !Number.isInteger(n);
  if (Number.isInteger(n)) { el.online.dataset.count = n; el.online.textContent = t("online", n); }
}

/** After a language switch. */
export function renderAll() {
  for (const r of rooms) render(r);
  renderActive();
}

// Left/Right (and Up/Down, Home, End) move between the rooms' buttons; Delete leaves one.
function onListKey(ev) {
  const tabs = rooms.map((r) => r.tab);
  const at = tabs.indexOf(ev.target);
  if (at < 0) return;
  const go = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: tabs.length - 1 }[ev.key];
  if (go !== undefined) {
    ev.preventDefault();
    tabs[(go + tabs.length) % tabs.length].focus();
  } else if (ev.key === "Delete" && at > 0) {
    ev.preventDefault();
    userLeaves(rooms[at]);
  }
}

// ---- the logs: text only, never HTML ----------------------------------------

export function logLine(room, text, kind = "system") {
  const line = document.createElement("p");
  line.className = `line ${kind}`;
  line.textContent = text;
  append(room, line);
  return line;
}

/** A line about the connection: in every room's log. */
export function logAll(text, kind = "system") {
  for (const r of rooms) logLine(r, text, kind);
}

function logMessage(room, m) {
  const line = document.createElement("p");
  line.className = "line message";
  if (m.id) line.dataset.id = m.id;
  const time = document.createElement("time");
  const when = new Date(m.sentAt);
  if (!Number.isNaN(when.getTime())) {
    time.dateTime = m.sentAt;
    time.textContent = when.toLocaleTimeString(getLang(), { hour: "2-digit", minute: "2-digit" });
  }
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = String(m.from ?? "?");
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = String(m.text ?? "");
  line.append(time, from);
  // An identified sender (PROTOCOL §8) gets a mark a guest cannot take by
  // choosing the same name; guests' messages look as they always did.
  if (typeof m.user === "string" && m.user) {
    line.dataset.user = m.user;
    line.append(identifiedBadge(m.user));
  }
  line.append(text);
  if (m.id && (self.moderator || (self.user && m.user === self.user))) {
    const del = document.createElement("button");
    del.type = "button";
    del.className = "msg-delete";
    del.textContent = "×";
    del.title = t("deleteMessage");
    del.setAttribute("aria-label", t("deleteMessage"));
    del.addEventListener("click", () => hooks.deleteMessage(room, m.id));
    line.append(del);
  }
  append(room, line);
}

/** A `deleted` event: the message's line says it was deleted, in place. */
export function removeMessage(room, id) {
  for (const line of room.lines.querySelectorAll(".line.message[data-id]")) {
    if (line.dataset.id !== id) continue;
    line.classList.add("deleted");
    const text = line.querySelector(".text");
    if (text) text.textContent = t("deletedNote");
    line.querySelector(".msg-delete")?.remove();
  }
}

/** A `members` answer, shown under the log for the room it is about. */
export function showMembers(room, data) {
  const list = Array.isArray(data.members) ? data.members : [];
  const online = Number.isInteger(data.online) ? data.online : list.length;
  el.members.hidden = false;
  el.membersTitle.textContent = t("membersTitle", room.name, online);
  el.membersList.replaceChildren(...list.map((m) => {
    const item = document.createElement("li");
    item.textContent = String(m.name ?? m.user ?? "?");
    if (typeof m.user === "string" && m.user) item.append(" ", identifiedBadge(m.user));
    return item;
  }));
  // A user with several connections is one entry, so online minus entries
  // is not the number of guests: say how to read the list instead.
  const notes = [t("membersGuests")];
  if (data.truncated === true) notes.unshift(t("membersTruncated"));
  el.membersNote.textContent = notes.join(" ");
}

function identifiedBadge(user) {
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.title = t("identified", user);
  const mark = document.createElement("span");
  mark.setAttribute("aria-hidden", "true");
  mark.textContent = "✓";
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = t("identified", user);
  badge.append(mark, label);
  return badge;
}

function logDivider(room, text) {
  logLine(room, text, "divider").setAttribute("role", "separator");
}

function append(room, node) {
  const shown = room === active;
  const log = el.log;
  const atBottom = shown && log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  room.lines.append(node);
  while (room.lines.childElementCount > LOG_MAX) room.lines.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// ---- messages and resume, per room ------------------------------------------

/** Renders `m` in `room` unless it is a duplicate (by id or seq); true when new. */
export function acceptMessage(room, m) {
  if (!m || typeof m !== "object") return false;
  if (m.id && room.seen.has(m.id)) return false;
  if (Number.isInteger(m.seq) && room.lastSeq !== null && m.seq <= room.lastSeq) return false;
  if (m.id) {
    room.seen.add(m.id);
    if (room.seen.size > SEEN_MAX) room.seen.delete(room.seen.values().next().value);
  }
  if (Number.isInteger(m.seq)) room.lastSeq = room.lastSeq === null ? m.seq : Math.max(room.lastSeq, m.seq);
  logMessage(room, m);
  if (room !== active) {
    room.unread += 1;
    render(room);
  }
  return true;
}

export function acceptHistory(room, data) {
  const messages = Array.isArray(data.messages) ? data.messages : [];
  const newEpoch = typeof data.epoch === "string" ? data.epoch : null;
  if (room.sentEpoch !== null && newEpoch !== null && newEpoch !== room.sentEpoch) {
    // The server lost this room's history (restart, flush): seq starts again.
    // What is on screen stays above the divider; the new history goes below,
    // minus any message whose id is already on screen.
    room.lastSeq = null;
    room.seen.clear();
    for (const line of room.lines.querySelectorAll(".line.message[data-id]")) room.seen.add(line.dataset.id);
    logDivider(room, t("historyReset"));
  }
  if (newEpoch !== null) room.epoch = newEpoch;
  let shown = 0;
  for (const m of messages) if (acceptMessage(room, m)) shown += 1;
  if (!room.historySeen) logLine(room, t("loaded", shown));
  else if (shown > 0) logLine(room, t("resumed", shown));
  room.historySeen = true;
  markJoined(room);
}

/** `since` and `epoch` for joining `room` again; remembers the epoch sent. */
export function resumeFrom(room) {
  room.sentEpoch = null;
  if (room.lastSeq === null) return {};
  room.sentEpoch = room.epoch;
  return room.epoch === null ? { since: room.lastSeq } : { since: room.lastSeq, epoch: room.epoch };
}
