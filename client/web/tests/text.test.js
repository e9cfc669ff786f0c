import { test } from "node:test";
import assert from "node:assert/strict";
import { completions, linkParts, mentions, nickColour, NICK_COLOURS } from "../text.js";

test("a nick's colour is stable, ignores case and stays in range", () => {
  assert.equal(nickColour("Alice"), nickColour("alice"));
  const colours = new Set(["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"].map(nickColour));
  assert.ok([...colours].every((c) => c >= 0 && c < NICK_COLOURS));
  assert.ok(colours.size > 3, "different nicks mostly differ");
});

test("a mention is the nick as a word of its own", () => {
  assert.ok(mentions("hey webby!", "webby"));
  assert.ok(mentions("WEBBY: look", "webby"));
  assert.ok(mentions("ping [w]", "[w]"));
  assert.ok(!mentions("webbyx is here", "webby"));
  assert.ok(!mentions("the_webby", "webby"));
});

test("links are cut out of the text, without trailing punctuation", () => {
  assert.deepEqual(linkParts("see https://example.org/a?b=1. ok"), [
    { text: "see " }, { text: "https://example.org/a?b=1", href: "https://example.org/a?b=1" }, { text: ". ok" }]);
  assert.deepEqual(linkParts("javascript:alert(1)"), [{ text: "javascript:alert(1)" }]);
});

test("completions keep the order given and ignore case", () => {
  assert.deepEqual(completions("al", ["Alice", "bob", "alan"]), ["Alice", "alan"]);
  assert.deepEqual(completions("", ["x"]), []);
});
