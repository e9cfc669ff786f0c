// Drawing the chat's state into the page. Text always goes in as textContent (never as HTML),
// so nothing a user sends can become markup; colours are classes, as the CSP allows no inline styles.

import { sortedMembers } from "./state.js";
import { clockText, dayText, linkParts, nickColour, sameDay } from "./text.js";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function nickEl(nick, prefix = "") {
  const node = el("span", `nick nc${nickColour(nick)}`, prefix + nick);
  node.dataset.nick = nick;
  return node;
}

function textWithLinks(text) {
  const span = el("span", "text");
  for (const part of linkParts(text)) {
    if (!part.href) {
      span.append(part.text);
      continue;
    }
    const a = el("a", "", part.text);
    a.href = part.href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    span.append(a);
  }
  return span;
}

function lineEl(line) {
  const li = el("li", `line ${line.kind}${line.history ? " history" : ""}${line.own ? " own" : ""}` +
    `${line.mention ? " mention" : ""}${line.pending ? " pending" : ""}${line.failed ? " failed" : ""}`);
  li.dataset.id = line.id;
  if (line.msgid) li.dataset.msgid = line.msgid;
  const time = el("time", "time", clockText(line.time));
  time.dateTime = new Date(line.time).toISOString();
  time.title = new Date(line.time).toLocaleString();
  li.append(time);
  if (line.kind === "message" || line.kind === "notice") {
    li.append(nickEl(line.nick), textWithLinks(line.text));
  } else if (line.kind === "action") {
    const body = el("span", "body", "* ");
    body.append(nickEl(line.nick), " ", textWithLinks(line.text));
    li.append(body);
  } else {
    li.append(textWithLinks(line.text));
  }
  return li;
}

/** Lines from index `start` on, with a heading at each new day and around the history. */
function appendLines(fragment, lines, start) {
  let previous = lines[start - 1] ?? null;
  for (const line of lines.slice(start)) {
    if (!previous || !sameDay(previous.time, line.time)) fragment.append(el("li", "day", dayText(line.time)));
    if (line.history && !previous?.history) fragment.append(el("li", "separator", "earlier messages"));
    if (previous?.history && !line.history) fragment.append(el("li", "separator", "now"));
    fragment.append(lineEl(line));
    previous = line;
  }
}

export class Renderer {
  constructor(chat) {
    this.chat = chat;
    this.drawn = { key: null, version: -1 };
    this.drawnCount = 0; // lines of the drawn conversation in the page
    this.sidebarVersion = -1;
  }

  render() {
    const chat = this.chat;
    const conv = chat.currentConversation();
    if (this.sidebarVersion !== chat.version || this.drawn.key !== conv.key) {
      this.sidebarVersion = chat.version;
      this.sidebar(conv);
      this.header(conv);
      this.members(conv);
    }
    if (this.drawn.key !== conv.key || this.drawn.version !== conv.version) {
      this.header(conv);
      this.members(conv);
      this.messages(conv, this.drawn.key === conv.key);
      this.drawn = { key: conv.key, version: conv.version };
    }
  }

  sidebar(current) {
    const chat = this.chat;
    const list = $("conversations");
    list.replaceChildren();
    let unread = 0;
    for (const conv of chat.list()) {
      const li = el("li", `conversation ${conv.kind}${conv.key === current.key ? " current" : ""}` +
        `${conv.kind === "channel" && !conv.joined ? " away" : ""}`);
      li.dataset.key = conv.key;
      const button = el("button", "conversation-button");
      button.type = "button";
      button.dataset.key = conv.key;
      button.append(el("span", "name", conv.kind === "query" ? `@ ${conv.name}` : conv.name));
      if (conv.mentions) button.append(el("span", "badge mention-count", String(conv.mentions)));
      else if (conv.unread) button.append(el("span", "badge unread-count", String(conv.unread)));
      if (conv.key === current.key) button.setAttribute("aria-current", "true");
      li.append(button);
      if (conv.kind === "query" || conv.kind === "search") {
        const close = el("button", "close-button", "×");
        close.type = "button";
        close.title = `Close ${conv.name}`;
        close.dataset.close = conv.key;
        li.append(close);
      }
      list.append(li);
      unread += conv.mentions;
    }
    $("me-nick").textContent = chat.nick;
    $("me-account").textContent = chat.account ? `(${chat.account})` : "";
    $("status-dot").className = `dot ${chat.registered ? "online" : "offline"}`;
    $("status-dot").title = chat.registered ? "connected" : "not connected";
    const badge = $("menu-badge");
    badge.hidden = unread === 0;
    badge.textContent = String(unread);
    document.title = unread ? `(${unread}) hubchat` : "hubchat";
  }

  header(conv) {
    $("conv-name").textContent = conv.name;
    $("conv-topic").textContent = conv.kind === "channel" ? conv.topic : conv.kind === "query" ? "private conversation" : "";
    $("invite-button").hidden = conv.kind !== "channel";
    $("members-button").hidden = conv.kind !== "channel";
    $("member-count").textContent = conv.kind === "channel" ? String(conv.members.size) : "";
    const input = $("input");
    input.placeholder = conv.kind === "channel" || conv.kind === "query" ? `Message ${conv.name}` : "Type /join #room or /help";
    const older = $("older-button");
    const pageable = (conv.kind === "channel" || conv.kind === "query") && this.chat.historyEnabled;
    older.hidden = !pageable || conv.history.done;
    older.disabled = Boolean(conv.history.pending);
    older.textContent = conv.history.pending === "older" ? "Loading…" : "Load earlier messages";
  }

  members(conv) {
    const list = $("member-list");
    list.replaceChildren();
    if (conv.kind !== "channel") return;
    const { symbols } = this.chat.prefix();
    for (const [nick, prefixes] of sortedMembers(conv, symbols)) {
      const li = el("li", "member");
      const shown = prefixes.slice(0, 1);
      li.append(el("span", "prefix", shown || "\u00a0"), nickEl(nick));
      li.dataset.nick = nick;
      li.dataset.prefixes = prefixes;
      list.append(li);
    }
  }

  /**
   * The lines of a conversation. When more arrive in the one on screen, the view follows the
   * bottom if the reader was there, and otherwise keeps the line at the top of the view where
   * it was (so a page of older lines added above does not make the text jump).
   */
  messages(conv, same) {
    const box = $("messages");
    const list = $("lines");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const from = conv.dirtyFrom ?? conv.lines.length;
    conv.dirtyFrom = null;
    if (same && from >= this.drawnCount) {
      // Only new lines at the end (the usual case): add them, keep the rest of the page.
      const fragment = document.createDocumentFragment();
      appendLines(fragment, conv.lines, this.drawnCount);
      this.drawnCount = conv.lines.length;
      list.append(fragment);
      if (atBottom) box.scrollTop = box.scrollHeight;
      return;
    }
    let anchor = null;
    if (same && !atBottom) {
      for (const child of list.children) {
        if (child.offsetTop + child.offsetHeight > box.scrollTop) {
          anchor = { id: child.dataset.id, offset: child.offsetTop - box.scrollTop };
          break;
        }
      }
    }
    const fragment = document.createDocumentFragment();
    appendLines(fragment, conv.lines, 0);
    this.drawnCount = conv.lines.length;
    if (conv.history.done && conv.lines.some((l) => l.history)) {
      fragment.prepend(el("li", "separator start", "the start of the conversation"));
    }
    list.replaceChildren(fragment);
    if (!same || atBottom || !anchor) {
      box.scrollTop = box.scrollHeight;
    } else {
      const node = list.querySelector(`[data-id="${anchor.id}"]`);
      if (node) box.scrollTop = node.offsetTop - anchor.offset;
    }
  }
}
