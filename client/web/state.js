// The chat's state and what changes it: server lines in, lines to send out. No DOM and no
// socket: the page feeds it (app.js) and draws it (render.js), and Node tests it with strings.
//
// Every conversation keeps its lines sorted by time, so history that arrives late (the latest
// lines on join, older pages when scrolling up) falls into place among live lines, and a line
// seen twice (live, then again in history) is kept once, by msgid. Lines from history carry
// `history: true` so the renderer can set them apart.

import {
  actionText, casefold, format, isChannel, parse, parseModes, parsePrefix, parseTime, saslPlain,
  splitNamesEntry, stripFormatting,
} from "./irc.js";
import { mentions } from "./text.js";
import { runCommand } from "./commands.js";

export const STATUS = "*status";
export const SEARCH = "*search";
export const HISTORY_LINES = 50;
// In the order asked for, each only if offered (sasl only with an account to log in to).
export const WANTED_CAPS = [
  "batch", "server-time", "message-tags", "draft/chathistory", "echo-message", "labeled-response",
  "multi-prefix", "away-notify", "sasl",
];
const MAX_LINES = 5000; // per conversation: a tab left open for weeks stays small
const HISTORY_BATCH = "chathistory";
const SEARCH_BATCHES = new Set(["soju.im/search", "search"]);

let nextId = 1;

function conversation(key, name, kind) {
  return {
    key, name, kind, topic: "", members: new Map(), joined: false, lines: [], unread: 0, mentions: 0,
    version: 0, seen: new Set(), history: { pending: null, done: false, fetched: false },
  };
}

export class Chat {
  constructor({ nick, channels = [], account = "", password = "", now = () => Date.now() }) {
    this.nick = nick;
    this.wantedNick = nick;
    this.now = now;
    this.credentials = account && password ? { account, password } : null;
    this.autojoin = channels.filter(Boolean); // rejoined after every reconnect
    this.switchTo = this.autojoin.length ? casefold(this.autojoin[0]) : null; // shown once joined
    this.conversations = new Map();
    this.current = STATUS;
    this.focused = true; // the page is visible: lines in the current conversation are read
    this.outbox = [];
    this.alerts = []; // mentions for the page to notify about
    this.quitting = false;
    this.version = 0; // bumps on any change the sidebar shows
    this.labels = 0;
    this.resetConnection();
    this.add(STATUS, "server", "status");
  }

  resetConnection() {
    this.registered = false;
    this.offered = new Map();
    this.caps = new Set();
    this.isupport = new Map();
    this.batches = new Map();
    this.negotiating = false;
    this.account = "";
    this.connected = false;
    for (const conv of this.conversations?.values() ?? []) {
      conv.joined = false;
      conv.members = new Map();
      conv.history.pending = null;
      conv.history.fetched = false;
    }
  }

  // --- the connection -------------------------------------------------------------------
  /** A new connection opened: what to send first (registration waits for CAP END). */
  connectionOpened() {
    this.resetConnection();
    this.connected = true;
    this.negotiating = true;
    this.nick = this.wantedNick;
    this.send("CAP", "LS", "302");
    this.send("NICK", this.nick);
    this.send("USER", "web", "0", "*", "hubchat web client");
    this.touch();
  }

  connectionClosed(reason) {
    if (this.connected || this.registered) {
      this.info(STATUS, reason || "Disconnected.", "error");
      for (const conv of this.conversations.values()) {
        if (conv.joined) this.line(conv, { kind: "error", text: "Disconnected; reconnecting…" });
      }
    }
    this.resetConnection();
    this.touch();
  }

  takeOutbox() {
    const lines = this.outbox;
    this.outbox = [];
    return lines;
  }

  takeAlerts() {
    const alerts = this.alerts;
    this.alerts = [];
    return alerts;
  }

  send(command, ...params) {
    this.outbox.push(format(command, params));
  }

  get historyEnabled() {
    return this.caps.has("draft/chathistory") && this.caps.has("batch");
  }

  get historyLimit() {
    const most = parseInt(this.isupport.get("CHATHISTORY") || "0", 10);
    return most > 0 ? Math.min(most, HISTORY_LINES) : HISTORY_LINES;
  }

  fold(name) {
    return casefold(name, this.isupport.get("CASEMAPPING") || "ascii");
  }

  chantypes() {
    return this.isupport.get("CHANTYPES") || "#&";
  }

  isChannel(name) {
    return isChannel(name, this.chantypes());
  }

  prefix() {
    return parsePrefix(this.isupport.get("PREFIX"));
  }

  // --- conversations --------------------------------------------------------------------
  get(name) {
    if (name === STATUS || name === SEARCH) return this.conversations.get(name);
    return this.conversations.get(this.fold(name));
  }

  add(name, shown = name, kind = this.isChannel(name) ? "channel" : "query") {
    const key = name === STATUS || name === SEARCH ? name : this.fold(name);
    let conv = this.conversations.get(key);
    if (!conv) {
      conv = conversation(key, shown, kind);
      this.conversations.set(key, conv);
      this.touch();
    }
    return conv;
  }

  list() {
    const order = { status: 0, channel: 1, query: 2, search: 3 };
    return [...this.conversations.values()].sort(
      (a, b) => order[a.kind] - order[b.kind] || a.key.localeCompare(b.key));
  }

  currentConversation() {
    return this.conversations.get(this.current) || this.conversations.get(STATUS);
  }

  open(name) {
    const conv = this.get(name) || (name !== STATUS && name !== SEARCH ? this.openQuery(name) : null);
    if (!conv) return;
    this.current = conv.key;
    this.markRead(conv);
    if (conv.kind === "query") this.fetchLatest(conv);
  }

  openStatus() {
    this.open(STATUS);
  }

  openQuery(nick) {
    const conv = this.add(nick, nick, "query");
    this.fetchLatest(conv);
    return conv;
  }

  close(name) {
    const conv = this.get(name);
    if (!conv || conv.kind === "status") return;
    if (conv.kind === "channel" && conv.joined) this.send("PART", conv.name);
    this.conversations.delete(conv.key);
    this.autojoin = this.autojoin.filter((c) => this.fold(c) !== conv.key);
    if (this.current === conv.key) this.current = this.list().find((c) => c.kind === "channel")?.key ?? STATUS;
    this.touch();
  }

  markRead(conv) {
    if (conv.unread || conv.mentions) {
      conv.unread = 0;
      conv.mentions = 0;
      this.touch();
    }
  }

  setFocused(focused) {
    this.focused = focused;
    if (focused) this.markRead(this.currentConversation());
  }

  /** Lines from index `i` on changed: the renderer redraws from there (only appends are cheap). */
  changed(conv, i) {
    conv.dirtyFrom = Math.min(conv.dirtyFrom ?? Infinity, i);
  }

  touch(conv = null) {
    this.version++;
    if (conv) conv.version++;
  }

  /** Put a line in its place by time (after lines of the same time); false if already there. */
  line(conv, fields) {
    const line = { id: nextId++, time: this.now(), raw: null, nick: "", own: false, history: false, ...fields };
    if (line.msgid) {
      if (conv.seen.has(line.msgid)) return false;
      conv.seen.add(line.msgid);
    }
    let i = conv.lines.length;
    while (i > 0 && conv.lines[i - 1].time > line.time) i--;
    conv.lines.splice(i, 0, line);
    this.changed(conv, i);
    if (conv.lines.length > MAX_LINES) {
      conv.lines.splice(0, conv.lines.length - MAX_LINES);
      conv.history.done = false; // what was cut can be asked for again
      this.changed(conv, 0);
    }
    const readable = ["message", "action", "notice"].includes(line.kind);
    if (readable && !line.own && !line.history && (conv.key !== this.current || !this.focused)) {
      conv.unread++;
      if (line.mention) conv.mentions++;
    }
    if (readable && line.mention && !line.history && !line.own && (conv.key !== this.current || !this.focused)) {
      this.alerts.push({ conversation: conv.name, nick: line.nick, text: line.text });
    }
    this.touch(conv);
    return true;
  }

  info(name, text, kind = "info") {
    const conv = this.get(name) || this.conversations.get(STATUS);
    this.line(conv, { kind, text });
  }

  /** Where replies to what the user did go: the conversation they are looking at. */
  here(text, kind = "info") {
    this.line(this.currentConversation(), { kind, text });
  }

  // --- history --------------------------------------------------------------------------
  fetchLatest(conv) {
    if (!this.historyEnabled || conv.history.pending || conv.history.fetched) return;
    conv.history.fetched = true;
    conv.history.pending = "latest";
    this.send("CHATHISTORY", "LATEST", conv.name, "*", String(this.historyLimit));
  }

  /** Earlier lines than the oldest shown (scrolled to the top). */
  requestOlder(name = this.current) {
    const conv = this.get(name);
    if (!conv || (conv.kind !== "channel" && conv.kind !== "query")) return false;
    if (!this.historyEnabled || conv.history.pending || conv.history.done) return false;
    const oldest = conv.lines.find((l) => l.raw);
    if (!oldest) {
      conv.history.pending = "older";
      this.send("CHATHISTORY", "LATEST", conv.name, "*", String(this.historyLimit));
      return true;
    }
    conv.history.pending = "older";
    conv.history.oldest = oldest.id;
    const byMsgid = (this.isupport.get("MSGREFTYPES") || "").split(",").includes("msgid") && oldest.msgid;
    const ref = byMsgid ? `msgid=${oldest.msgid}` : `timestamp=${oldest.raw}`;
    this.send("CHATHISTORY", "BEFORE", conv.name, ref, String(this.historyLimit));
    this.touch(conv);
    return true;
  }

  historyBatch(batch) {
    const target = batch.params[0];
    if (!target) return;
    const conv = this.get(target) || this.add(target, target);
    const asked = conv.history.pending;
    conv.history.pending = null;
    let added = 0;
    for (const msg of batch.lines) {
      if (msg.command !== "PRIVMSG" && msg.command !== "NOTICE") continue;
      const fields = this.messageFields(msg);
      if (fields && this.line(conv, { ...fields, history: true })) added++;
    }
    if (batch.lines.length < this.historyLimit) {
      conv.history.done = true; // a short page is the start of the conversation
    } else if (asked === "older" && added === 0) {
      this.requestOlder(conv.key); // a page of lines shown already (live): look further back
    }
    this.touch(conv);
  }

  // --- input ----------------------------------------------------------------------------
  /** A line the user typed: a /command or a message to the current conversation. */
  input(text) {
    try {
      runCommand(this, text.replace(/[\r\n]+$/, ""));
    } catch (error) {
      this.here(error.message, "error");
    }
  }

  say(target, text, action = false) {
    const conv = this.isChannel(target) ? this.get(target) || this.add(target) : this.get(target) || this.openQuery(target);
    const body = action ? `\x01ACTION ${text}\x01` : text;
    const echoes = this.caps.has("echo-message");
    const tags = echoes && this.caps.has("labeled-response") ? { label: `w${++this.labels}` } : null;
    this.outbox.push(format("PRIVMSG", [conv.name, body], tags));
    // With echo-message the server's copy (its time, its msgid) replaces ours when it arrives.
    this.line(conv, { kind: action ? "action" : "message", nick: this.nick, text, own: true, pending: echoes ? tags?.label ?? true : false });
  }

  // --- server lines ---------------------------------------------------------------------
  receive(text) {
    const msg = typeof text === "string" ? parse(text) : text;
    const ref = msg.tags.batch;
    const batch = ref && this.batches.get(ref);
    if (batch && batch.collect && msg.command !== "BATCH") {
      batch.lines.push(msg);
      return;
    }
    if (batch?.label && !msg.tags.label) msg.tags.label = batch.label;
    if (msg.tags.label && (/^[45]\d\d$/.test(msg.command) || msg.command === "FAIL")) this.refused(msg.tags.label);
    const handler = this[`on${msg.command}`];
    if (handler) handler.call(this, msg);
    else if (/^[45]\d\d$/.test(msg.command)) this.here(numericText(msg), "error");
  }

  onPING(msg) {
    this.send("PONG", msg.params[0] ?? "");
  }

  onERROR(msg) {
    this.info(STATUS, `The server closed the connection: ${msg.params[0] ?? ""}`, "error");
  }

  onCAP(msg) {
    const sub = (msg.params[1] || "").toUpperCase();
    const names = (msg.params[msg.params.length - 1] || "").split(" ").filter(Boolean);
    if (sub === "LS" || sub === "NEW") {
      for (const item of names) {
        const eq = item.indexOf("=");
        this.offered.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? "" : item.slice(eq + 1));
      }
      if (sub === "LS" && msg.params[2] === "*") return; // more lines follow
      const wanted = WANTED_CAPS.filter((c) => this.offered.has(c) && !this.caps.has(c) && (c !== "sasl" || this.credentials));
      if (sub === "LS" && this.credentials && !this.offered.has("sasl")) {
        this.info(STATUS, "This server does not offer logging in; carrying on without an account.", "error");
      }
      if (wanted.length) this.send("CAP", "REQ", wanted.join(" "));
      else if (sub === "LS") this.endNegotiation();
    } else if (sub === "ACK") {
      for (const name of names) {
        if (name.startsWith("-")) this.caps.delete(name.slice(1));
        else this.caps.add(name);
      }
      if (this.caps.has("sasl") && this.credentials && !this.account && this.negotiating) this.send("AUTHENTICATE", "PLAIN");
      else this.endNegotiation();
    } else if (sub === "NAK") {
      this.endNegotiation();
    } else if (sub === "DEL") {
      for (const name of names) {
        this.offered.delete(name);
        this.caps.delete(name);
      }
    }
  }

  endNegotiation() {
    if (this.negotiating) {
      this.negotiating = false;
      this.send("CAP", "END");
    }
  }

  onAUTHENTICATE(msg) {
    if (msg.params[0] === "+" && this.credentials) {
      for (const piece of saslPlain(this.credentials.account, this.credentials.password)) this.send("AUTHENTICATE", piece);
    }
  }

  on900(msg) {
    this.account = msg.params[2] || "";
    this.info(STATUS, `You are logged in as ${this.account}.`);
    this.touch();
  }

  on903() {
    this.endNegotiation();
  }

  loginFailed(text) {
    this.info(STATUS, `${text}; carrying on without logging in.`, "error");
    this.credentials = null; // not tried again on reconnect
    this.endNegotiation();
  }

  on904() { this.loginFailed("Login failed: the account or the password is wrong"); }
  on902() { this.loginFailed("Login failed: you cannot log in with this nickname now"); }
  on905() { this.loginFailed("Login failed: the login was too long for the server"); }
  on906() { this.loginFailed("Login failed: the login was cancelled"); }
  on908() {}

  on001(msg) {
    this.registered = true;
    this.nick = msg.params[0];
    this.info(STATUS, `Connected as ${this.nick}.`);
    const rooms = [...new Set([...this.autojoin,
      ...[...this.conversations.values()].filter((c) => c.kind === "channel").map((c) => c.name)])];
    if (rooms.length) this.send("JOIN", rooms.join(","));
    for (const conv of this.conversations.values()) {
      if (conv.kind === "query" && conv.key === this.current) this.fetchLatest(conv);
    }
    this.touch();
  }

  on005(msg) {
    for (const token of msg.params.slice(1, -1)) {
      if (token.startsWith("-")) this.isupport.delete(token.slice(1).toUpperCase());
      else {
        const eq = token.indexOf("=");
        this.isupport.set((eq < 0 ? token : token.slice(0, eq)).toUpperCase(), eq < 0 ? "" : token.slice(eq + 1));
      }
    }
  }

  on433(msg) {
    if (this.registered) return this.here(numericText(msg), "error");
    // Taken while connecting (often our own ghost after a reconnect): try another.
    this.nick = this.nick.length < 28 ? `${this.nick}_` : `${this.nick.slice(0, 24)}${Math.floor(Math.random() * 1000)}`;
    this.send("NICK", this.nick);
  }

  on432(msg) {
    this.on433(msg);
  }

  on372(msg) { this.info(STATUS, msg.params[1] ?? ""); }
  on375() {}
  on376() {}
  on422() {}
  on002(msg) { this.info(STATUS, msg.params[1] ?? ""); }
  on251(msg) { this.info(STATUS, msg.params[msg.params.length - 1]); }

  onBATCH(msg) {
    const head = msg.params[0] || "";
    const ref = head.slice(1);
    if (head.startsWith("+")) {
      const kind = msg.params[1] || "";
      const collect = kind === HISTORY_BATCH || SEARCH_BATCHES.has(kind);
      this.batches.set(ref, { kind, params: msg.params.slice(2), collect, lines: [], label: msg.tags.label });
    } else if (head.startsWith("-")) {
      const batch = this.batches.get(ref);
      this.batches.delete(ref);
      if (batch?.kind === HISTORY_BATCH) this.historyBatch(batch);
      else if (batch && SEARCH_BATCHES.has(batch.kind)) this.searchBatch(batch);
    }
  }

  searchBatch(batch) {
    const conv = this.add(SEARCH, "search results", "search");
    conv.lines = [];
    conv.seen = new Set();
    this.changed(conv, 0);
    for (const msg of batch.lines) {
      const fields = this.messageFields(msg);
      if (fields) this.line(conv, { ...fields, text: `${msg.params[0]}: ${fields.text}`, history: true, mention: false });
    }
    if (!conv.lines.length) this.line(conv, { kind: "info", text: "No messages match." });
    this.current = SEARCH;
    this.touch(conv);
  }

  /** A PRIVMSG or NOTICE as line fields (and where it belongs), or null for CTCP we do not show. */
  messageFields(msg) {
    if (msg.params.length < 2) return null;
    let [target, text] = msg.params;
    let kind = msg.command === "NOTICE" ? "notice" : "message";
    const action = actionText(text);
    if (action !== null && kind === "message") {
      kind = "action";
      text = action;
    } else if (text.startsWith("\x01")) {
      return null; // CTCP queries (VERSION, PING...) are not conversation
    }
    const own = this.fold(msg.nick) === this.fold(this.nick);
    const time = parseTime(msg.tags.time);
    const toChannel = this.isChannel(target.replace(/^[~&@%+]+/, ""));
    const where = toChannel ? target.replace(/^[~&@%+]+(?=[#&])/, "") : own ? target : msg.nick;
    text = stripFormatting(text);
    return {
      where, kind, text, nick: msg.nick, own, msgid: msg.tags.msgid, raw: time ? msg.tags.time : null,
      time: time ?? this.now(), mention: !own && (!toChannel || mentions(text, this.nick)),
    };
  }

  onPRIVMSG(msg) {
    const fields = this.messageFields(msg);
    if (!fields) return;
    if (!msg.source?.includes("!") && !this.isChannel(fields.where)) {
      return this.info(STATUS, fields.text, "notice"); // from the server itself
    }
    if (fields.kind === "notice" && !this.isChannel(fields.where) && !this.get(fields.where)) {
      return this.line(this.currentConversation(), { ...fields, text: `-${fields.nick}- ${fields.text}` });
    }
    const conv = this.get(fields.where) || (this.isChannel(fields.where) ? this.add(fields.where) : this.openQuery(fields.where));
    if (fields.own && this.confirm(conv, fields, msg.tags.label)) return;
    this.line(conv, fields);
  }

  onNOTICE(msg) {
    this.onPRIVMSG(msg);
  }

  /** The server's echo of a line we showed when sent: it takes the server's time and msgid. */
  confirm(conv, fields, label) {
    const i = conv.lines.findIndex((l) => l.pending && (label ? l.pending === label
      : l.kind === fields.kind && l.text === fields.text));
    if (i < 0) return false;
    const [line] = conv.lines.splice(i, 1);
    this.changed(conv, i);
    if (fields.msgid && conv.seen.has(fields.msgid)) return true; // history brought it first
    this.line(conv, { ...line, ...fields, id: line.id, pending: false, mention: false });
    return true;
  }

  /** The server refused a labelled line we showed as sent: say so on the line itself. */
  refused(label) {
    for (const conv of this.conversations.values()) {
      const i = conv.lines.findIndex((l) => l.pending === label);
      if (i < 0) continue;
      conv.lines[i] = { ...conv.lines[i], pending: false, failed: true };
      this.changed(conv, i);
      this.touch(conv);
    }
  }

  onJOIN(msg) {
    const name = msg.params[0];
    if (this.fold(msg.nick) === this.fold(this.nick)) {
      const conv = this.add(name, name, "channel");
      conv.name = name;
      conv.joined = true;
      conv.members = new Map();
      if (!this.autojoin.some((c) => this.fold(c) === conv.key)) this.autojoin.push(name);
      // A room the user asked for is shown; rejoining after a reconnect changes nothing.
      if (this.current === STATUS || this.switchTo === conv.key) {
        this.current = conv.key;
        this.switchTo = null;
      }
      conv.history.fetched = false; // each join: what was said meanwhile
      this.fetchLatest(conv);
      this.line(conv, { kind: "join", nick: msg.nick, text: `You joined ${name}` });
      return;
    }
    const conv = this.get(name);
    if (!conv) return;
    conv.members.set(msg.nick, conv.members.get(msg.nick) || "");
    this.line(conv, { kind: "join", nick: msg.nick, text: `${msg.nick} joined` });
  }

  left(conv) {
    conv.joined = false;
    conv.members = new Map();
    this.autojoin = this.autojoin.filter((c) => this.fold(c) !== conv.key);
  }

  onPART(msg) {
    const conv = this.get(msg.params[0]);
    if (!conv) return;
    const reason = msg.params[1] ? ` (${msg.params[1]})` : "";
    if (this.fold(msg.nick) === this.fold(this.nick)) {
      this.left(conv);
      this.line(conv, { kind: "part", nick: msg.nick, text: `You left ${conv.name}${reason}` });
      return;
    }
    conv.members.delete(msg.nick);
    this.line(conv, { kind: "part", nick: msg.nick, text: `${msg.nick} left${reason}` });
  }

  onKICK(msg) {
    const [name, victim, why] = msg.params;
    const conv = this.get(name);
    if (!conv) return;
    const reason = why ? ` (${why})` : "";
    if (this.fold(victim) === this.fold(this.nick)) {
      this.left(conv);
      this.line(conv, { kind: "part", nick: msg.nick, text: `${msg.nick} removed you from ${conv.name}${reason}` });
      return;
    }
    this.removeMember(conv, victim);
    this.line(conv, { kind: "part", nick: victim, text: `${msg.nick} removed ${victim}${reason}` });
  }

  removeMember(conv, nick) {
    for (const known of conv.members.keys()) {
      if (this.fold(known) === this.fold(nick)) conv.members.delete(known);
    }
  }

  onQUIT(msg) {
    const reason = msg.params[0] ? ` (${msg.params[0]})` : "";
    for (const conv of this.conversations.values()) {
      const there = conv.kind === "channel" ? conv.members.has(msg.nick) : conv.key === this.fold(msg.nick);
      if (!there) continue;
      conv.members.delete(msg.nick);
      this.line(conv, { kind: "quit", nick: msg.nick, text: `${msg.nick} left the chat${reason}` });
    }
  }

  onNICK(msg) {
    const [old, now] = [msg.nick, msg.params[0]];
    const mine = this.fold(old) === this.fold(this.nick);
    if (mine) {
      this.nick = now;
      this.wantedNick = now;
      this.info(STATUS, `You are now known as ${now}`);
    }
    for (const conv of [...this.conversations.values()]) {
      if (conv.kind === "channel" && conv.members.has(old)) {
        const prefixes = conv.members.get(old);
        conv.members.delete(old);
        conv.members.set(now, prefixes);
        this.line(conv, { kind: "nick", nick: now, text: mine ? `You are now known as ${now}` : `${old} is now known as ${now}` });
      } else if (conv.kind === "query" && conv.key === this.fold(old)) {
        this.conversations.delete(conv.key);
        conv.key = this.fold(now);
        conv.name = now;
        this.conversations.set(conv.key, conv);
        if (this.current === this.fold(old)) this.current = conv.key;
        this.line(conv, { kind: "nick", nick: now, text: `${old} is now known as ${now}` });
      }
    }
    this.touch();
  }

  onMODE(msg) {
    const [target, modestring = "", ...args] = msg.params;
    const conv = this.isChannel(target) && this.get(target);
    if (!conv) return;
    const { modes, symbols } = this.prefix();
    const changes = parseModes(modestring, args, { prefixModes: modes, chanmodes: this.isupport.get("CHANMODES") });
    for (const { adding, mode, arg } of changes) {
      const at = modes.indexOf(mode);
      if (at < 0 || !arg) continue;
      const nick = [...conv.members.keys()].find((n) => this.fold(n) === this.fold(arg));
      if (!nick) continue;
      const symbol = symbols[at];
      const had = conv.members.get(nick).replace(symbol, "");
      const next = adding ? had + symbol : had;
      conv.members.set(nick, [...symbols].filter((s) => next.includes(s)).join(""));
    }
    this.line(conv, { kind: "mode", nick: msg.nick, text: `${msg.nick} set mode ${msg.params.slice(1).join(" ")}` });
  }

  onTOPIC(msg) {
    const conv = this.get(msg.params[0]);
    if (!conv) return;
    conv.topic = msg.params[1] ?? "";
    this.line(conv, { kind: "topic", nick: msg.nick, text: `${msg.nick} set the topic: ${conv.topic}` });
  }

  on332(msg) {
    const conv = this.get(msg.params[1]);
    if (conv) {
      conv.topic = msg.params[2] ?? "";
      this.touch(conv);
    }
  }

  on331(msg) {
    const conv = this.get(msg.params[1]);
    if (conv) this.line(conv, { kind: "topic", text: "No topic is set." });
  }

  on353(msg) {
    const conv = this.get(msg.params[2]);
    if (!conv) return;
    conv.names ??= new Map();
    const { symbols } = this.prefix();
    for (const entry of (msg.params[3] || "").split(" ").filter(Boolean)) {
      const { nick, prefixes } = splitNamesEntry(entry, symbols);
      conv.names.set(nick, prefixes);
    }
  }

  on366(msg) {
    const conv = this.get(msg.params[1]);
    if (!conv) return;
    conv.members = conv.names ?? new Map();
    delete conv.names;
    if (conv.namesAsked) {
      conv.namesAsked = false;
      const listed = sortedMembers(conv, this.prefix().symbols).map(([n, p]) => p.slice(0, 1) + n).join(", ");
      this.line(conv, { kind: "info", text: `People in ${conv.name} (${conv.members.size}): ${listed}` });
    }
    this.touch(conv);
  }

  // Replies about people and rooms go where the user asked.
  on311(msg) { this.here(`${msg.params[1]} is ${msg.params[2]}@${msg.params[3]} (${msg.params[5] ?? ""})`); }
  on312(msg) { this.here(`${msg.params[1]} is on ${msg.params[2]}`); }
  on319(msg) { this.here(`${msg.params[1]} is in ${msg.params[2]}`); }
  on317(msg) { this.here(`${msg.params[1]} has been idle ${msg.params[2]}s`); }
  on330(msg) { this.here(`${msg.params[1]} is logged in as ${msg.params[2]}`); }
  on301(msg) { this.here(`${msg.params[1]} is away: ${msg.params[2] ?? ""}`); }
  on318() {}
  on305() { this.here("You are no longer marked as away."); }
  on306() { this.here("You are now marked as away."); }
  on321() {}
  on322(msg) { this.info(STATUS, `${msg.params[1]} (${msg.params[2]} people)${msg.params[3] ? ": " + msg.params[3] : ""}`); }
  on323() { this.info(STATUS, "End of the room list."); }
  on341(msg) { this.here(`Invited ${msg.params[1]} to ${msg.params[2]}.`); }

  onINVITE(msg) {
    this.info(STATUS, `${msg.nick} invites you to ${msg.params[1]} (type /join ${msg.params[1]})`);
  }

  onAWAY() {}

  onFAIL(msg) {
    const [command, code] = msg.params;
    if (command === "CHATHISTORY") {
      const target = msg.params[3];
      const conv = target && this.get(target);
      if (conv) conv.history.pending = null;
    }
    this.here(`${command} failed: ${msg.params[msg.params.length - 1] || code}`, "error");
  }
}

/** Members by rank (the PREFIX order: @ before +), then by name. */
export function sortedMembers(conv, symbols = "@+") {
  const rank = (p) => (p ? symbols.indexOf(p[0]) : symbols.length);
  return [...conv.members.entries()].sort(([a, pa], [b, pb]) => rank(pa) - rank(pb) || a.toLowerCase().localeCompare(b.toLowerCase()));
}

const FRIENDLY = {
  401: "There is nobody called {0} here.",
  403: "There is no room called {0}.",
  404: "You can't send to {0} (join it first).",
  442: "You are not in {0}.",
  433: "The nickname {0} is taken; pick another.",
  432: "{0} can't be a nickname.",
  482: "Only the room's operators can do that in {0}.",
  421: "This server does not support {0}.",
};

export function numericText(msg) {
  const template = FRIENDLY[msg.command];
  if (template && msg.params.length > 2) return template.replace("{0}", msg.params[1]);
  return msg.params[msg.params.length - 1] ?? msg.command;
}
