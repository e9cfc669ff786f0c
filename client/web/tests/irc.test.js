import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actionText, casefold, escapeTag, format, isChannel, parse, parseModes, parsePrefix, parseTime, saslPlain,
  splitNamesEntry, stripFormatting, unescapeTag,
} from "../irc.js";

test("a line with tags, a source, middle and trailing parameters", () => {
  const msg = parse("@time=2026-12-01T12:05:35.523Z;msgid=ab-1;+draft/reply=x :alice!~a@host PRIVMSG #room :hello there");
  assert.deepEqual(msg.tags, { time: "2026-12-01T12:05:35.523Z", msgid: "ab-1", "+draft/reply": "x" });
  assert.equal(msg.source, "alice!~a@host");
  assert.equal(msg.nick, "alice");
  assert.equal(msg.command, "PRIVMSG");
  assert.deepEqual(msg.params, ["#room", "hello there"]);
});

test("a trailing parameter without a colon, an empty trailing one, and no source", () => {
  assert.deepEqual(parse(":srv PRIVMSG #room hello").params, ["#room", "hello"]);
  assert.deepEqual(parse("TOPIC #room :").params, ["#room", ""]);
  const ping = parse("PING :abc def");
  assert.equal(ping.source, null);
  assert.deepEqual(ping.params, ["abc def"]);
  assert.deepEqual(parse(":srv   CAP  *  LS  :a b\r\n").params, ["*", "LS", "a b"]);
  assert.equal(parse("ping x").command, "PING");
});

test("tag values are unescaped, a valueless tag is empty, a trailing backslash is dropped", () => {
  const msg = parse("@a=one\\stwo\\:three\\\\\\n;b;c=x\\ :s CMD");
  assert.deepEqual(msg.tags, { a: "one two;three\\\n", b: "", c: "x" });
  assert.equal(unescapeTag("\\q"), "q");
});

test("escaping and unescaping a tag value round-trips", () => {
  for (const value of ["plain", "a b;c\\d\r\ne", "", ";;  \\\\"]) assert.equal(unescapeTag(escapeTag(value)), value);
});

test("format adds the colon only where it is needed and refuses line breaks", () => {
  assert.equal(format("PRIVMSG", ["#room", "hi"]), "PRIVMSG #room hi");
  assert.equal(format("PRIVMSG", ["#room", "hi there"]), "PRIVMSG #room :hi there");
  assert.equal(format("PRIVMSG", ["#room", ":)"]), "PRIVMSG #room ::)");
  assert.equal(format("AWAY", [""]), "AWAY :");
  assert.equal(format("PRIVMSG", ["#r", "x y"], { label: "w1", "+draft/typing": "active now" }),
    "@label=w1;+draft/typing=active\\snow PRIVMSG #r :x y");
  assert.throws(() => format("PRIVMSG", ["#r", "two\nlines"]));
  assert.throws(() => format("PRIVMSG", ["a b", "x"]));
});

test("what format writes, parse reads back", () => {
  const line = format("PRIVMSG", ["#room", "a:b :c  d"], { label: "x;y" });
  const msg = parse(line);
  assert.deepEqual(msg.params, ["#room", "a:b :c  d"]);
  assert.equal(msg.tags.label, "x;y");
});

test("channels, case folding, server time", () => {
  assert.ok(isChannel("#room"));
  assert.ok(!isChannel("#"));
  assert.ok(!isChannel("alice"));
  assert.ok(isChannel("&local", "#&"));
  assert.equal(casefold("Nick[1]"), "nick[1]");
  assert.equal(casefold("Nick[1]", "rfc1459"), "nick{1}");
  assert.equal(parseTime("2026-12-01T12:05:35.523Z"), Date.UTC(2026, 11, 1, 12, 5, 35, 523));
  assert.equal(parseTime("yesterday"), null);
  assert.equal(parseTime(undefined), null);
});

test("formatting codes are stripped; ACTION is recognised", () => {
  assert.equal(stripFormatting("\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f"), "bold red italic");
  assert.equal(actionText("\x01ACTION waves\x01"), "waves");
  assert.equal(actionText("\x01ACTION waves"), "waves");
  assert.equal(actionText("hello"), null);
});

test("NAMES entries with multi-prefix and userhost-in-names", () => {
  const { symbols } = parsePrefix("(qaohv)~&@%+");
  assert.deepEqual(splitNamesEntry("@+bob", symbols), { nick: "bob", prefixes: "@+" });
  assert.deepEqual(splitNamesEntry("~carol!c@h", symbols), { nick: "carol", prefixes: "~" });
  assert.deepEqual(splitNamesEntry("dave", symbols), { nick: "dave", prefixes: "" });
  assert.deepEqual(parsePrefix("nonsense"), { modes: "ov", symbols: "@+" });
});

test("MODE parameters follow PREFIX and CHANMODES", () => {
  const changes = parseModes("+ovl-k+b", ["alice", "bob", "10", "secret", "*!*@bad"], { prefixModes: "ov", chanmodes: "beI,k,l,imnst" });
  assert.deepEqual(changes, [
    { adding: true, mode: "o", arg: "alice" },
    { adding: true, mode: "v", arg: "bob" },
    { adding: true, mode: "l", arg: "10" },
    { adding: false, mode: "k", arg: "secret" },
    { adding: true, mode: "b", arg: "*!*@bad" },
  ]);
  assert.deepEqual(parseModes("-l+m", []), [{ adding: false, mode: "l", arg: null }, { adding: true, mode: "m", arg: null }]);
});

test("SASL PLAIN is base64 of account NUL account NUL password, in 400-byte pieces", () => {
  assert.deepEqual(saslPlain("alice", "pässword"), [Buffer.from("alice\0alice\0pässword").toString("base64")]);
  const long = saslPlain("a", "x".repeat(300 - 4)); // 300 bytes of payload: exactly 400 of base64
  assert.equal(long.length, 2);
  assert.equal(long[0].length, 400);
  assert.equal(long[1], "+");
});
