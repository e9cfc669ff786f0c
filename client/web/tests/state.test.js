import { test } from "node:test";
import assert from "node:assert/strict";
import { Chat, SEARCH, STATUS, sortedMembers } from "../state.js";
import { parse } from "../irc.js";

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const iso = (ms) => new Date(ms).toISOString();
const LS = ":srv CAP * LS :batch server-time message-tags draft/chathistory echo-message labeled-response multi-prefix sasl=PLAIN soju.im/search";

/** A chat through registration, with every capability it asks for acknowledged. */
function registered({ nick = "webby", channels = ["#room"], ...rest } = {}) {
  let clock = T0;
  const chat = new Chat({ nick, channels, now: () => clock, ...rest });
  chat.tick = (ms) => (clock += ms);
  chat.connectionOpened();
  chat.receive(LS);
  const req = chat.takeOutbox().find((l) => l.startsWith("CAP REQ"));
  chat.receive(`:srv CAP ${nick} ACK :${parse(req).params[1]}`);
  chat.receive(`:srv 001 ${nick} :Welcome`);
  chat.receive(":srv 005 webby PREFIX=(ov)@+ CHANMODES=beI,k,l,imnst CHATHISTORY=100 MSGREFTYPES=timestamp,msgid :are supported");
  chat.takeOutbox();
  return chat;
}

function joined(channel = "#room", names = "@webby") {
  const chat = registered({ channels: [channel] });
  chat.receive(`:webby!~w@h JOIN ${channel}`);
  chat.receive(`:srv 353 webby = ${channel} :${names}`);
  chat.receive(`:srv 366 webby ${channel} :End of /NAMES list.`);
  return chat;
}

const texts = (conv) => conv.lines.map((l) => l.text);

test("connecting: CAP LS 302, NICK, USER; only offered capabilities are asked for; CAP END after the ACK", () => {
  const chat = new Chat({ nick: "webby" });
  chat.connectionOpened();
  assert.deepEqual(chat.takeOutbox(), ["CAP LS 302", "NICK webby", "USER web 0 * :hubchat web client"]);
  chat.receive(":srv CAP * LS * :batch server-time");
  assert.deepEqual(chat.takeOutbox(), [], "a continued LS waits for its last line");
  chat.receive(":srv CAP * LS :echo-message draft/chathistory sasl=PLAIN");
  assert.deepEqual(chat.takeOutbox(), ["CAP REQ :batch server-time draft/chathistory echo-message"], "no sasl without an account");
  chat.receive(":srv CAP * ACK :batch server-time draft/chathistory echo-message");
  assert.deepEqual(chat.takeOutbox(), ["CAP END"]);
  assert.ok(chat.historyEnabled);
});

test("a server that offers nothing wanted gets CAP END at once", () => {
  const chat = new Chat({ nick: "webby" });
  chat.connectionOpened();
  chat.takeOutbox();
  chat.receive(":srv CAP * LS :cap-notify");
  assert.deepEqual(chat.takeOutbox(), ["CAP END"]);
});

test("an account logs in with SASL PLAIN before CAP END", () => {
  const chat = new Chat({ nick: "webby", account: "webby", password: "hunter2" });
  chat.connectionOpened();
  chat.takeOutbox();
  chat.receive(LS);
  assert.match(chat.takeOutbox()[0], /^CAP REQ :.*\bsasl\b/);
  chat.receive(":srv CAP * ACK :batch sasl");
  assert.deepEqual(chat.takeOutbox(), ["AUTHENTICATE PLAIN"]);
  chat.receive("AUTHENTICATE +");
  assert.deepEqual(chat.takeOutbox(), [`AUTHENTICATE ${Buffer.from("webby\0webby\0hunter2").toString("base64")}`]);
  chat.receive(":srv 900 webby webby!~w@h webby :You are now logged in as webby");
  chat.receive(":srv 903 webby :SASL authentication successful");
  assert.deepEqual(chat.takeOutbox(), ["CAP END"]);
  assert.equal(chat.account, "webby");
});

test("a failed login says so, carries on without an account, and is not retried", () => {
  const chat = new Chat({ nick: "webby", account: "webby", password: "wrong" });
  chat.connectionOpened();
  chat.receive(LS);
  chat.receive(":srv CAP * ACK :sasl");
  chat.receive("AUTHENTICATE +");
  chat.takeOutbox();
  chat.receive(":srv 904 webby :SASL authentication failed");
  assert.deepEqual(chat.takeOutbox(), ["CAP END"]);
  assert.match(texts(chat.get(STATUS)).at(-1), /Login failed/);
  assert.equal(chat.credentials, null);
});

test("a nick taken while connecting is retried with an underscore", () => {
  const chat = new Chat({ nick: "webby" });
  chat.connectionOpened();
  chat.takeOutbox();
  chat.receive(":srv 433 * webby :Nickname is already in use");
  assert.deepEqual(chat.takeOutbox(), ["NICK webby_"]);
});

test("registration joins the rooms asked for; the join shows the room and asks for its history", () => {
  const chat = registered({ channels: ["#room"] });
  const fresh = new Chat({ nick: "webby", channels: ["#room"] });
  fresh.connectionOpened();
  fresh.receive(":srv CAP * LS :batch");
  fresh.receive(":srv CAP * ACK :batch");
  fresh.takeOutbox();
  fresh.receive(":srv 001 webby :Welcome");
  assert.deepEqual(fresh.takeOutbox(), ["JOIN #room"]);
  chat.receive(":webby!~w@h JOIN #room");
  assert.equal(chat.current, "#room");
  assert.deepEqual(chat.takeOutbox(), ["CHATHISTORY LATEST #room * 50"]);
});

test("the member list follows NAMES (multi-prefix), JOIN, PART, QUIT, NICK, MODE and KICK", () => {
  const chat = joined("#room", "@webby @+alice +bob carol");
  const conv = chat.get("#room");
  const members = () => sortedMembers(conv).map(([n, p]) => p + n);
  assert.deepEqual(members(), ["@+alice", "@webby", "+bob", "carol"]);
  chat.receive(":dave!~d@h JOIN #room");
  chat.receive(":carol!~c@h PART #room :bye");
  chat.receive(":webby!~w@h MODE #room +v-o+l dave alice 10");
  assert.deepEqual(members(), ["@webby", "+alice", "+bob", "+dave"]);
  chat.receive(":bob!~b@h NICK robert");
  chat.receive(":webby!~w@h KICK #room dave :no");
  chat.receive(":alice!~a@h QUIT :gone");
  assert.deepEqual(members(), ["@webby", "+robert"]);
  assert.deepEqual(texts(conv).slice(-6), [
    "dave joined", "carol left (bye)", "webby set mode +v-o+l dave alice 10", "bob is now known as robert",
    "webby removed dave (no)", "alice left the chat (gone)"]);
  chat.receive(":webby!~w@h MODE #room -v robert");
  assert.deepEqual(members(), ["@webby", "robert"]);
});

test("being kicked or parting leaves the room and stops rejoining it", () => {
  const chat = joined();
  chat.receive(":op!~o@h KICK #room webby :out");
  assert.equal(chat.get("#room").joined, false);
  assert.deepEqual(chat.autojoin, []);
});

test("lines elsewhere count as unread, mentions and private lines as mentions, and alert", () => {
  const chat = joined();
  chat.takeOutbox();
  chat.receive(":alice!~a@h JOIN #other");
  chat.receive(":webby!~w@h JOIN #other");
  chat.open("#room");
  chat.receive(":alice!~a@h PRIVMSG #other :just chatting");
  chat.receive(":alice!~a@h PRIVMSG #other :hey webby, look");
  chat.receive(":alice!~a@h PRIVMSG #other :webbyx is someone else");
  const other = chat.get("#other");
  assert.equal(other.unread, 3);
  assert.equal(other.mentions, 1);
  chat.receive(":alice!~a@h PRIVMSG webby :psst");
  const query = chat.get("alice");
  assert.equal(query.kind, "query");
  assert.equal(query.mentions, 1);
  assert.deepEqual(chat.takeAlerts().map((a) => `${a.conversation}:${a.text}`), ["#other:hey webby, look", "alice:psst"]);
  chat.open("alice");
  assert.equal(query.unread, 0);
  assert.deepEqual(chat.takeOutbox(), ["CHATHISTORY LATEST #other * 50", "CHATHISTORY LATEST alice * 50"]);
  chat.receive(":alice!~a@h PRIVMSG #room :read as it comes");
  assert.equal(chat.get("#room").unread, 1, "not the conversation on screen");
  chat.open("#room");
  chat.setFocused(false);
  chat.receive(":alice!~a@h PRIVMSG #room :while away");
  assert.equal(chat.get("#room").unread, 1, "the page hidden: the current one counts too");
  chat.setFocused(true);
  assert.equal(chat.get("#room").unread, 0);
});

test("an own line is shown when sent and confirmed by its labelled echo", () => {
  const chat = joined();
  chat.takeOutbox();
  chat.input("hello everyone");
  assert.deepEqual(chat.takeOutbox(), ["@label=w1 PRIVMSG #room :hello everyone"]);
  const conv = chat.get("#room");
  assert.equal(conv.lines.at(-1).pending, "w1");
  chat.receive(`@label=w1;time=${iso(T0 + 5)};msgid=m1 :webby!~w@h PRIVMSG #room :hello everyone`);
  const line = conv.lines.at(-1);
  assert.equal(line.pending, false);
  assert.equal(line.msgid, "m1");
  assert.equal(line.time, T0 + 5);
  assert.equal(texts(conv).filter((t) => t === "hello everyone").length, 1);
});

test("history on join lands before live lines, with its own times, once even if also seen live", () => {
  const chat = joined();
  chat.takeOutbox();
  chat.tick(60000);
  const conv = chat.get("#room");
  chat.receive(`@time=${iso(T0 + 60000)};msgid=live1 :alice!~a@h PRIVMSG #room :live line`);
  chat.receive(":srv BATCH +h1 chathistory #room");
  chat.receive(`@batch=h1;time=${iso(T0 - 2000)};msgid=old1 :alice!~a@h PRIVMSG #room :first old`);
  chat.receive(`@batch=h1;time=${iso(T0 - 1000)};msgid=old2 :bob!~b@h PRIVMSG #room :\x01ACTION waves\x01`);
  chat.receive(`@batch=h1;time=${iso(T0 + 60000)};msgid=live1 :alice!~a@h PRIVMSG #room :live line`);
  assert.ok(!texts(conv).includes("first old"), "a batch is read when it ends");
  chat.receive(":srv BATCH -h1");
  const messages = conv.lines.filter((l) => ["message", "action"].includes(l.kind));
  assert.deepEqual(messages.map((l) => [l.text, l.history, l.time]), [
    ["first old", true, T0 - 2000], ["waves", true, T0 - 1000], ["live line", false, T0 + 60000]]);
  assert.equal(messages[1].kind, "action");
  assert.equal(conv.unread, 0, "history is never unread");
  assert.equal(conv.history.done, true, "a short page is the whole history");
});

test("scrolling up asks for the page before the oldest line, by msgid, and stops at the start", () => {
  const chat = joined();
  chat.takeOutbox();
  const conv = chat.get("#room");
  chat.receive(":srv BATCH +h1 chathistory #room");
  for (let i = 0; i < 50; i++) {
    chat.receive(`@batch=h1;time=${iso(T0 - 100000 + i)};msgid=p${i} :alice!~a@h PRIVMSG #room :line ${i}`);
  }
  chat.receive(":srv BATCH -h1");
  assert.equal(conv.history.done, false);
  assert.ok(chat.requestOlder("#room"));
  assert.deepEqual(chat.takeOutbox(), ["CHATHISTORY BEFORE #room msgid=p0 50"]);
  assert.ok(!chat.requestOlder("#room"), "one request at a time");
  chat.receive(":srv BATCH +h2 chathistory #room");
  chat.receive(`@batch=h2;time=${iso(T0 - 200000)};msgid=q0 :carol!~c@h PRIVMSG #room :the very first`);
  chat.receive(":srv BATCH -h2");
  assert.equal(conv.lines.find((l) => l.kind === "message").text, "the very first");
  assert.equal(conv.history.done, true);
  assert.ok(!chat.requestOlder("#room"));
});

test("without msgid references the page before is asked by the oldest line's server time", () => {
  const chat = joined();
  chat.receive(":srv 005 webby MSGREFTYPES=timestamp :are supported");
  chat.receive(":srv BATCH +h1 chathistory #room");
  for (let i = 0; i < 50; i++) chat.receive(`@batch=h1;time=${iso(T0 + 1 + i)} :alice!~a@h PRIVMSG #room :line ${i}`);
  chat.receive(":srv BATCH -h1");
  chat.takeOutbox();
  chat.requestOlder("#room");
  assert.deepEqual(chat.takeOutbox(), [`CHATHISTORY BEFORE #room timestamp=${iso(T0 + 1)} 50`]);
});

test("commands: /join /part /msg /me /nick /topic /names /whois /away /quit and unknown ones", () => {
  const chat = joined();
  chat.takeOutbox();
  const sent = (text) => {
    chat.input(text);
    return chat.takeOutbox();
  };
  assert.deepEqual(sent("/join other"), ["JOIN #other"]);
  assert.deepEqual(sent("/part"), ["PART #room"]);
  assert.deepEqual(sent("/part #room see you"), ["PART #room :see you"]);
  assert.deepEqual(sent("/me waves"), ["@label=w1 PRIVMSG #room :\x01ACTION waves\x01"]);
  assert.deepEqual(sent("/nick webster"), ["NICK webster"]);
  assert.deepEqual(sent("/topic new topic"), ["TOPIC #room :new topic"]);
  assert.deepEqual(sent("/topic"), ["TOPIC #room"]);
  assert.deepEqual(sent("/names"), ["NAMES #room"]);
  assert.deepEqual(sent("/whois alice"), ["WHOIS alice"]);
  assert.deepEqual(sent("/away lunch"), ["AWAY lunch"]);
  assert.deepEqual(sent("/away"), ["AWAY"]);
  assert.deepEqual(sent("//slash at the start"), ["@label=w2 PRIVMSG #room :/slash at the start"]);
  assert.deepEqual(sent("/msg alice hi there"), ["CHATHISTORY LATEST alice * 50", "@label=w3 PRIVMSG alice :hi there"]);
  assert.equal(chat.current, "alice");
  assert.deepEqual(sent("/query bob"), ["CHATHISTORY LATEST bob * 50"]);
  assert.equal(chat.current, "bob");
  assert.deepEqual(sent("/frobnicate"), []);
  assert.match(texts(chat.currentConversation()).at(-1), /Unknown command \/frobnicate/);
  assert.deepEqual(sent("/quit bye"), ["QUIT bye"]);
  assert.ok(chat.quitting);
});

test("/names shows who is there when the reply ends", () => {
  const chat = joined();
  chat.input("/names");
  chat.receive(":srv 353 webby = #room :@webby +alice bob");
  chat.receive(":srv 366 webby #room :End of /NAMES list.");
  assert.equal(texts(chat.get("#room")).at(-1), "People in #room (3): @webby, +alice, bob");
});

test("/search results fill their own view", () => {
  const chat = joined();
  chat.takeOutbox();
  chat.input("/search hello world");
  assert.deepEqual(chat.takeOutbox(), ["CAP REQ soju.im/search", "SEARCH text=hello\\sworld;in=#room"]);
  chat.receive(":srv BATCH +s1 soju.im/search");
  chat.receive(`@batch=s1;time=${iso(T0 - 5000)};msgid=z :alice!~a@h PRIVMSG #room :hello world`);
  chat.receive(":srv BATCH -s1");
  assert.equal(chat.current, SEARCH);
  assert.deepEqual(texts(chat.get(SEARCH)), ["#room: hello world"]);
});

test("a reconnect forgets the connection's state and rejoins the rooms", () => {
  const chat = joined();
  chat.receive(":webby!~w@h JOIN #second");
  chat.connectionClosed("Disconnected.");
  assert.equal(chat.get("#room").joined, false);
  assert.equal(chat.get("#room").members.size, 0);
  assert.equal(chat.caps.size, 0);
  chat.connectionOpened();
  chat.receive(":srv CAP * LS :batch");
  chat.receive(":srv CAP * ACK :batch");
  chat.takeOutbox();
  chat.receive(":srv 001 webby :Welcome");
  assert.deepEqual(chat.takeOutbox(), ["JOIN #room,#second"]);
});

test("a private conversation follows the other person's nick change", () => {
  const chat = joined();
  chat.receive(":alice!~a@h PRIVMSG webby :hi");
  chat.open("alice");
  chat.receive(":alice!~a@h NICK alicia");
  assert.equal(chat.get("alice"), undefined);
  assert.equal(chat.get("alicia").name, "alicia");
  assert.equal(chat.current, "alicia");
});

test("server notices go to the server view; CTCP requests are not shown", () => {
  const chat = joined();
  chat.receive(":srv NOTICE webby :*** maintenance at noon");
  assert.equal(texts(chat.get(STATUS)).at(-1), "*** maintenance at noon");
  const before = chat.conversations.size;
  chat.receive(":alice!~a@h PRIVMSG webby :\x01VERSION\x01");
  assert.equal(chat.conversations.size, before);
});

test("PING is answered", () => {
  const chat = joined();
  chat.takeOutbox();
  chat.receive("PING :token");
  assert.deepEqual(chat.takeOutbox(), ["PONG token"]);
});

test("a labelled line the server refuses is marked as not sent", () => {
  const chat = joined();
  chat.input("into the void");
  chat.receive("@label=w1 :srv 404 webby #room :Cannot send to channel");
  const lines = chat.get("#room").lines;
  const line = lines.find((l) => l.text === "into the void");
  assert.equal(lines.at(-1).text, "You can't send to #room (join it first).");
  assert.equal(line.pending, false);
  assert.equal(line.failed, true);
});

test("the renderer is told from which line a conversation changed", () => {
  const chat = joined();
  const conv = chat.get("#room");
  conv.dirtyFrom = null;
  chat.receive(`@time=${iso(T0 + 10)};msgid=x :alice!~a@h PRIVMSG #room :appended`);
  assert.equal(conv.dirtyFrom, conv.lines.length - 1);
  chat.receive(":srv BATCH +h chathistory #room");
  chat.receive(`@batch=h;time=${iso(T0 - 10)};msgid=y :alice!~a@h PRIVMSG #room :older`);
  chat.receive(":srv BATCH -h");
  assert.equal(conv.dirtyFrom, 0);
});
