// IRC over WebSocket (IRCv3: subprotocol text.ircv3.net, one line per text frame, no CRLF),
// reconnecting with backoff when the connection drops.

export const SUBPROTOCOLS = ["text.ircv3.net"];
const STEADY_MS = 30000; // a connection that lived this long resets the backoff

/**
 * The wait before reconnect attempt number `attempt` (0 first): doubling from 1s to at most 30s,
 * with the upper half random, so that clients dropped together by a restart do not all return
 * in the same instant.
 */
export function backoff(attempt, { base = 1000, max = 30000, random = Math.random } = {}) {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** The WebSocket address of the page's own server (ws:, or wss: when the page is https:). */
export function socketUrl(location) {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/`;
}

export class Connection {
  constructor(url, { onOpen, onLine, onClose, onWait, WebSocketImpl = globalThis.WebSocket, timers = globalThis } = {}) {
    Object.assign(this, { url, onOpen, onLine, onClose, onWait, WebSocketImpl, timers });
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.openedAt = 0;
    this.decoder = new TextDecoder();
  }

  connect() {
    this.timers.clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped || this.socket) return;
    const socket = new this.WebSocketImpl(this.url, SUBPROTOCOLS);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      this.openedAt = Date.now();
      this.onOpen?.();
    };
    socket.onmessage = (event) => {
      const text = typeof event.data === "string" ? event.data : this.decoder.decode(event.data);
      // One line per frame, but a lenient server might still end it with CRLF or pack two.
      for (const line of text.split(/\r?\n/)) if (line) this.onLine?.(line);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.openedAt && Date.now() - this.openedAt > STEADY_MS) this.attempt = 0;
      this.openedAt = 0;
      this.onClose?.(event);
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.stopped || this.timer) return;
    const delay = backoff(this.attempt++);
    this.onWait?.(delay);
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  /** Registration went through: the next drop starts the backoff over. */
  healthy() {
    this.attempt = 0;
  }

  /** Try now instead of waiting (the browser says it is back online, the user clicked). */
  retryNow() {
    if (!this.socket && !this.stopped) this.connect();
  }

  send(line) {
    if (this.socket?.readyState === 1) {
      this.socket.send(line);
      return true;
    }
    return false;
  }

  get open() {
    return this.socket?.readyState === 1;
  }

  /** For good (the user quit): no reconnect. */
  stop() {
    this.stopped = true;
    this.timers.clearTimeout(this.timer);
    this.socket?.close(1000);
  }
}
