import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection, backoff, socketUrl } from "../connection.js";

test("the backoff doubles from 1s to at most 30s, in the upper half of each step", () => {
  const low = (n) => backoff(n, { random: () => 0 });
  const high = (n) => backoff(n, { random: () => 1 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50].map(high), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.deepEqual([0, 1, 5].map(low), [500, 1000, 15000]);
});

test("the socket address is the page's own, wss for https", () => {
  assert.equal(socketUrl({ protocol: "http:", host: "127.0.0.1:8080" }), "ws://127.0.0.1:8080/");
  assert.equal(socketUrl({ protocol: "https:", host: "chat.example" }), "wss://chat.example/");
});

/** A WebSocket stand-in and timers that run when told: the reconnect logic without a network. */
function harness() {
  const sockets = [];
  class FakeSocket {
    constructor(url, protocols) {
      Object.assign(this, { url, protocols, readyState: 0, sent: [] });
      sockets.push(this);
    }
    send(data) { this.sent.push(data); }
    close() { this.readyState = 3; this.onclose?.({ code: 1000 }); }
    open() { this.readyState = 1; this.onopen?.(); }
    drop() { this.readyState = 3; this.onclose?.({ code: 1006 }); }
  }
  const timers = { queue: [], setTimeout(fn, ms) { this.queue.push({ fn, ms }); return this.queue.length; }, clearTimeout() {} };
  return { sockets, timers, FakeSocket };
}

test("a dropped connection reconnects after a growing wait; registering resets it; stop() ends it", () => {
  const { sockets, timers, FakeSocket } = harness();
  const lines = [];
  const waits = [];
  const conn = new Connection("ws://x/", { WebSocketImpl: FakeSocket, timers, onLine: (l) => lines.push(l), onWait: (ms) => waits.push(ms) });
  conn.connect();
  assert.deepEqual(sockets[0].protocols, ["text.ircv3.net"]);
  sockets[0].open();
  assert.ok(conn.send("NICK a"));
  sockets[0].onmessage({ data: "PING :1" });
  sockets[0].onmessage({ data: new TextEncoder().encode("PING :2\r\n").buffer });
  assert.deepEqual(lines, ["PING :1", "PING :2"]);
  sockets[0].drop();
  assert.equal(timers.queue.length, 1);
  timers.queue.shift().fn();
  sockets[1].drop(); // refused: the wait grows
  timers.queue.shift().fn();
  sockets[2].open();
  conn.healthy();
  sockets[2].drop();
  assert.equal(waits.length, 3);
  assert.ok(waits[1] > waits[0] / 2 && waits[1] >= 1000, "the second wait is from the doubled range");
  assert.ok(waits[2] <= 1000, "after registering, the backoff starts over");
  timers.queue.shift().fn();
  conn.stop();
  assert.equal(timers.queue.length, 0, "no reconnect after stop()");
  assert.ok(!conn.send("x"));
});
