// The / commands, as the terminal client has them (client/core.py's HELP): each one turns
// what was typed into lines for the chat to send. No DOM.

import { escapeTag, format } from "./irc.js";

export const HELP = [
  ["/join #room", "join a room (or switch to it)"],
  ["/part [#room] [reason]", "leave a room (the current one by default)"],
  ["/msg nick [text]", "send a private message; without text, open that conversation"],
  ["/query nick", "open a private conversation"],
  ["/me action", "describe an action: /me waves"],
  ["/nick newname", "change your nickname"],
  ["/topic [text]", "show or set the room's topic"],
  ["/names [#room]", "who is in a room"],
  ["/whois nick", "about someone (and the account they are logged in to)"],
  ["/away [message]", "mark yourself away (no message: back)"],
  ["/list", "list the rooms"],
  ["/search words", "search the server's history"],
  ["/older", "show earlier messages of this conversation (scrolling up does it too)"],
  ["/invite nick [#room]", "invite someone to a room"],
  ["/close", "close this conversation (leaving the room)"],
  ["/quote line", "send a raw IRC line"],
  ["/quit [reason]", "leave the chat"],
  ["/help", "this list"],
];
export const COMMANDS = HELP.map(([spec]) => spec.split(" ")[0]);

function usage(chat, name) {
  const spec = HELP.find(([s]) => s.split(" ")[0] === name)?.[0] ?? name;
  chat.here(`Usage: ${spec}`, "error");
}

const handlers = {
  join(chat, rest) {
    let [name, key] = rest.split(" ").filter(Boolean);
    if (!name) return usage(chat, "/join");
    if (!chat.isChannel(name)) name = `#${name}`;
    const conv = chat.get(name);
    if (conv?.joined) return chat.open(conv.key);
    chat.switchTo = chat.fold(name);
    chat.outbox.push(format("JOIN", key ? [name, key] : [name]));
  },
  part(chat, rest) {
    const words = rest.split(" ");
    const named = words[0] && chat.isChannel(words[0]);
    const channel = named ? words[0] : chat.currentConversation().kind === "channel" ? chat.currentConversation().name : null;
    const reason = named ? words.slice(1).join(" ") : rest;
    if (!channel) return usage(chat, "/part");
    chat.outbox.push(format("PART", reason ? [channel, reason] : [channel]));
  },
  msg(chat, rest) {
    const space = rest.indexOf(" ");
    const target = space < 0 ? rest : rest.slice(0, space);
    const text = space < 0 ? "" : rest.slice(space + 1);
    if (!target) return usage(chat, "/msg");
    if (!text) return chat.isChannel(target) ? handlers.join(chat, target) : chat.open(target);
    chat.say(target, text);
    if (!chat.isChannel(target)) chat.open(target);
  },
  query(chat, rest) {
    handlers.msg(chat, rest);
  },
  me(chat, rest) {
    const conv = chat.currentConversation();
    if (!rest) return usage(chat, "/me");
    if (conv.kind !== "channel" && conv.kind !== "query") return chat.here("Open a room or a conversation first.", "error");
    chat.say(conv.name, rest, true);
  },
  nick(chat, rest) {
    const nick = rest.split(" ")[0];
    if (!nick) return usage(chat, "/nick");
    chat.wantedNick = nick;
    chat.send("NICK", nick);
  },
  topic(chat, rest) {
    const conv = chat.currentConversation();
    if (conv.kind !== "channel") return chat.here("Topics belong to rooms: /join one first.", "error");
    chat.outbox.push(format("TOPIC", rest ? [conv.name, rest] : [conv.name]));
  },
  names(chat, rest) {
    const name = rest.split(" ")[0] || chat.currentConversation().name;
    if (!chat.isChannel(name)) return usage(chat, "/names");
    const conv = chat.get(name);
    if (conv) conv.namesAsked = true;
    chat.send("NAMES", name);
  },
  whois(chat, rest) {
    const nick = rest.split(" ")[0];
    if (!nick) return usage(chat, "/whois");
    chat.send("WHOIS", nick);
  },
  away(chat, rest) {
    chat.outbox.push(format("AWAY", rest ? [rest] : []));
  },
  list(chat) {
    chat.openStatus();
    chat.send("LIST");
  },
  search(chat, rest) {
    if (!rest.trim()) return usage(chat, "/search");
    if (!chat.caps.has("batch") || !chat.offered.has("soju.im/search")) {
      return chat.here("This server does not offer search.", "error");
    }
    if (!chat.caps.has("soju.im/search")) chat.send("CAP", "REQ", "soju.im/search");
    const conv = chat.currentConversation();
    const where = conv.kind === "channel" || conv.kind === "query" ? `;in=${escapeTag(conv.name)}` : "";
    chat.send("SEARCH", `text=${escapeTag(rest.trim())}${where}`);
  },
  older(chat) {
    if (!chat.requestOlder()) chat.here(chat.historyEnabled ? "No earlier messages to load." : "This server keeps no history.");
  },
  invite(chat, rest) {
    const [nick, room = chat.currentConversation().name] = rest.split(" ").filter(Boolean);
    if (!nick || !chat.isChannel(room)) return usage(chat, "/invite");
    chat.send("INVITE", nick, room);
  },
  close(chat) {
    const conv = chat.currentConversation();
    if (conv.kind === "status") return chat.here("The server view stays open.", "error");
    chat.close(conv.key);
  },
  quote(chat, rest) {
    if (!rest) return usage(chat, "/quote");
    if (/[\r\n\0]/.test(rest)) throw new Error("A line cannot carry a line break or a NUL.");
    chat.outbox.push(rest);
  },
  quit(chat, rest) {
    chat.quitting = true;
    chat.send("QUIT", rest || "Leaving");
  },
  help(chat) {
    chat.here("Commands:");
    for (const [spec, what] of HELP) chat.here(`${spec} — ${what}`);
    chat.here("Anything else you type is sent to the current conversation; start it with // to send a leading /.");
  },
};
handlers.raw = handlers.quote;
handlers.j = handlers.join;
handlers.leave = handlers.part;

export function runCommand(chat, text) {
  if (!text.trim()) return;
  if (text.startsWith("/") && !text.startsWith("//")) {
    const space = text.indexOf(" ");
    const name = (space < 0 ? text.slice(1) : text.slice(1, space)).toLowerCase();
    const rest = space < 0 ? "" : text.slice(space + 1).trim();
    const handler = Object.hasOwn(handlers, name) ? handlers[name] : null;
    if (!handler) return chat.here(`Unknown command /${name}. Type /help for the list.`, "error");
    return handler(chat, rest);
  }
  const conv = chat.currentConversation();
  if (conv.kind === "status" || conv.kind === "search") {
    return chat.here("This view is not a conversation: /join a room or /msg someone.", "error");
  }
  if (conv.kind === "channel" && !conv.joined) return chat.here(`You are not in ${conv.name} now.`, "error");
  chat.say(conv.name, text.startsWith("//") ? text.slice(1) : text);
}
