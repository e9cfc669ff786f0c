// The page: the login prompt, then the chat wired to its connection, renderer and notifications.
// `/?nick=NAME&channel=%23room` skips the prompt, so an invitation is a link.

import { Chat } from "./state.js";
import { Connection, socketUrl } from "./connection.js";
import { Renderer } from "./render.js";
import { COMMANDS } from "./commands.js";
import { completions } from "./text.js";

const $ = (id) => document.getElementById(id);
const NICK = /^[A-Za-z[\]\\`^{}|_][A-Za-z0-9[\]\\`^{}|_-]{0,29}$/;
const NARROW = window.matchMedia("(max-width: 700px)");

function showLogin(message = "") {
  const params = new URLSearchParams(location.search);
  $("login").hidden = false;
  $("login-nick").value = params.get("nick") || localStorage.getItem("hubchat.nick") || "";
  $("login-channel").value = params.get("channel") || localStorage.getItem("hubchat.channel") || "#lobby";
  $("login-user").value = localStorage.getItem("hubchat.account") || "";
  $("login-account").open = Boolean($("login-user").value);
  const error = $("login-error");
  error.hidden = !message;
  error.textContent = message;
  $(params.get("nick") ? "login-submit" : "login-nick").focus();
}

function askNotificationPermission() {
  // Browsers only ask from a user gesture: the join button, or the sidebar's button.
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().finally(updateNotifyButton);
  }
}

function updateNotifyButton() {
  $("notify-button").hidden = !("Notification" in window) || Notification.permission !== "default";
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const nick = $("login-nick").value.trim();
  let channel = $("login-channel").value.trim();
  if (!NICK.test(nick)) {
    return showLogin("Nicknames use letters, digits and -[]\\`^{}|_, and don't start with a digit or a dash.");
  }
  if (channel && !channel.startsWith("#")) channel = `#${channel}`;
  const account = $("login-user").value.trim();
  const password = $("login-password").value;
  localStorage.setItem("hubchat.nick", nick);
  localStorage.setItem("hubchat.channel", channel);
  localStorage.setItem("hubchat.account", password ? account : "");
  askNotificationPermission();
  start({ nick, channel, account, password });
});

function start({ nick, channel, account = "", password = "" }) {
  $("login").hidden = true;
  $("app").hidden = false;
  const chat = new Chat({ nick, channels: channel ? [channel] : [], account: account || nick, password });
  const renderer = new Renderer(chat);
  let pending = false;

  // Many lines arrive in a burst (a history page, a join): draw once per frame.
  const update = () => {
    for (const line of chat.takeOutbox()) connection.send(line);
    for (const alert of chat.takeAlerts()) notify(alert);
    if (chat.quitting) connection.stop();
    if (!pending) {
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        renderer.render();
      });
    }
  };

  const banner = (text) => {
    $("banner").hidden = !text;
    $("banner").textContent = text || "";
  };

  const connection = new Connection(socketUrl(location), {
    onOpen() {
      banner("");
      chat.connectionOpened();
      update();
    },
    onLine(line) {
      const wasRegistered = chat.registered;
      chat.receive(line);
      if (!wasRegistered && chat.registered) connection.healthy();
      update();
    },
    onClose(event) {
      chat.connectionClosed(chat.quitting ? "You left the chat." : `Disconnected${event.reason ? `: ${event.reason}` : ""}.`);
      update();
    },
    onWait(delay) {
      banner(`Not connected. Trying again in ${Math.ceil(delay / 1000)}s… (click to retry now)`);
    },
  });
  $("banner").addEventListener("click", () => connection.retryNow());
  window.addEventListener("online", () => connection.retryNow());

  function notify({ conversation, nick: from, text }) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const n = new Notification(`${from} in ${conversation}`, { body: text, tag: conversation, icon: "icon.svg" });
    n.onclick = () => {
      window.focus();
      chat.open(conversation);
      update();
      n.close();
    };
  }

  function openConversation(key) {
    chat.open(key);
    document.body.classList.remove("drawer-open", "members-open");
    update();
    if (!NARROW.matches) $("input").focus();
  }

  $("conversations").addEventListener("click", (event) => {
    const close = event.target.closest("[data-close]");
    if (close) {
      chat.close(close.dataset.close);
      return update();
    }
    const button = event.target.closest("[data-key]");
    if (button) openConversation(button.dataset.key);
  });

  $("member-list").addEventListener("click", (event) => {
    const member = event.target.closest("[data-nick]");
    if (member && member.dataset.nick !== chat.nick) openConversation(member.dataset.nick);
  });

  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("join-input").value.trim();
    if (!name) return;
    $("join-input").value = "";
    chat.input(`/join ${name}`);
    document.body.classList.remove("drawer-open");
    update();
  });

  // Typed lines: Up and Down walk through what was sent, Tab completes nicks and commands.
  const typed = [];
  let walk = 0;
  let cycle = null;
  $("compose").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("input");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    typed.push(text);
    walk = typed.length;
    chat.input(text);
    update();
  });

  $("input").addEventListener("keydown", (event) => {
    const input = event.target;
    if (event.key === "Tab") {
      event.preventDefault();
      if (!cycle) {
        const upto = input.value.slice(0, input.selectionStart);
        const start = upto.search(/\S*$/);
        const word = upto.slice(start);
        const conv = chat.currentConversation();
        const pool = word.startsWith("/") ? COMMANDS : [...conv.members.keys(), ...(conv.kind === "query" ? [conv.name] : [])];
        cycle = { start, end: upto.length, found: completions(word, pool), index: -1, rest: input.value.slice(upto.length) };
      }
      if (!cycle.found.length) return;
      cycle.index = (cycle.index + 1) % cycle.found.length;
      const pick = cycle.found[cycle.index];
      const suffix = cycle.start === 0 && !pick.startsWith("/") ? ": " : " ";
      const head = input.value.slice(0, cycle.start) + pick + suffix;
      input.value = head + cycle.rest;
      input.setSelectionRange(head.length, head.length);
      return;
    }
    cycle = null;
    if (event.key === "ArrowUp" && walk > 0 && (input.value === "" || input.value === typed[walk])) {
      event.preventDefault();
      input.value = typed[--walk];
    } else if (event.key === "ArrowDown" && walk < typed.length && input.value === typed[walk]) {
      event.preventDefault();
      walk++;
      input.value = typed[walk] ?? "";
    } else if (event.key === "PageUp" && $("messages").scrollTop === 0) {
      chat.requestOlder();
      update();
    }
  });

  // Scrolled to the top: the page before (CHATHISTORY BEFORE).
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop < 60 && chat.requestOlder()) update();
  }, { passive: true });
  $("older-button").addEventListener("click", () => {
    if (chat.requestOlder()) update();
  });

  $("menu-button").addEventListener("click", () => document.body.classList.toggle("drawer-open"));
  $("members-button").addEventListener("click", () => document.body.classList.toggle("members-open"));
  $("scrim").addEventListener("click", () => document.body.classList.remove("drawer-open", "members-open"));
  $("notify-button").addEventListener("click", askNotificationPermission);
  $("invite-button").addEventListener("click", async () => {
    const conv = chat.currentConversation();
    const link = `${location.origin}/?channel=${encodeURIComponent(conv.name)}`;
    try {
      await navigator.clipboard.writeText(link);
      chat.here(`Invitation link copied: ${link}`);
    } catch {
      chat.here(`Invitation link: ${link}`);
    }
    update();
  });

  document.addEventListener("visibilitychange", () => {
    chat.setFocused(!document.hidden);
    update();
  });
  chat.setFocused(!document.hidden);
  updateNotifyButton();
  window.hubchat = { chat, connection }; // for the console (and the browser test's diagnostics)
  connection.connect();
  update();
  if (!NARROW.matches) $("input").focus();
}

const params = new URLSearchParams(location.search);
const nick = params.get("nick");
if (nick && NICK.test(nick)) {
  start({ nick, channel: params.get("channel") || "" });
} else {
  showLogin(nick ? `“${nick}” can't be a nickname; pick another.` : "");
}
