// IRC lines to objects and back, with IRCv3 message tags. No DOM: the page and Node both import it.

const TAG_UNESCAPE = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };
const TAG_ESCAPE = { ";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n" };

export function unescapeTag(value) {
  // A lone trailing backslash is dropped and an unknown escape is the character itself (IRCv3).
  return value.replace(/\\(.?)/gs, (_, ch) => (ch === "" ? "" : TAG_UNESCAPE[ch] ?? ch));
}

export function escapeTag(value) {
  return String(value).replace(/[; \\\r\n]/g, (ch) => TAG_ESCAPE[ch]);
}

/** One line, without its CRLF: {tags, source, nick, command, params}. */
export function parse(line) {
  let rest = line.replace(/[\r\n]+$/, "");
  const tags = {};
  if (rest.startsWith("@")) {
    const space = rest.indexOf(" ");
    const raw = space < 0 ? rest.slice(1) : rest.slice(1, space);
    rest = space < 0 ? "" : rest.slice(space + 1);
    for (const item of raw.split(";")) {
      if (!item) continue;
      const eq = item.indexOf("=");
      const key = eq < 0 ? item : item.slice(0, eq);
      if (key) tags[key] = eq < 0 ? "" : unescapeTag(item.slice(eq + 1));
    }
  }
  rest = rest.replace(/^ +/, "");
  let source = null;
  if (rest.startsWith(":")) {
    const space = rest.indexOf(" ");
    source = space < 0 ? rest.slice(1) : rest.slice(1, space);
    rest = space < 0 ? "" : rest.slice(space + 1).replace(/^ +/, "");
  }
  let trailing = null;
  const colon = rest.startsWith(":") ? 0 : rest.indexOf(" :");
  if (colon >= 0) {
    trailing = rest.slice(colon + (colon === 0 ? 1 : 2));
    rest = rest.slice(0, colon);
  }
  const words = rest.split(" ").filter(Boolean);
  const command = (words.shift() || "").toUpperCase();
  const params = trailing === null ? words : [...words, trailing];
  return { tags, source, nick: nickOf(source), command, params };
}

/** A line to send: the last parameter gets a ':' whenever it needs one. Refuses CR, LF and NUL. */
export function format(command, params = [], tags = null) {
  const parts = [];
  const tagText = tags ? Object.entries(tags).map(([k, v]) => (v === "" || v === true ? k : `${k}=${escapeTag(v)}`)) : [];
  if (tagText.length) parts.push("@" + tagText.join(";"));
  parts.push(command);
  params.forEach((param, i) => {
    const text = String(param);
    if (/[\r\n\0]/.test(text)) throw new Error("A line cannot carry a line break or a NUL.");
    const last = i === params.length - 1;
    if (last && (text === "" || text.includes(" ") || text.startsWith(":"))) parts.push(":" + text);
    else if (!last && (text === "" || text.includes(" ") || text.startsWith(":"))) throw new Error(`bad parameter ${JSON.stringify(text)}`);
    else parts.push(text);
  });
  return parts.join(" ");
}

export function nickOf(source) {
  if (!source) return "";
  const bang = source.indexOf("!");
  return bang < 0 ? source : source.slice(0, bang);
}

export function isChannel(name, chantypes = "#&") {
  return typeof name === "string" && name.length > 1 && chantypes.includes(name[0]);
}

/** hubchat announces CASEMAPPING=ascii; rfc1459 also folds []\~ (used if a server says so). */
export function casefold(text, mapping = "ascii") {
  const lower = String(text).replace(/[A-Z]/g, (ch) => ch.toLowerCase());
  if (mapping === "ascii") return lower;
  const extra = mapping === "strict-rfc1459" ? { "[": "{", "]": "}", "\\": "|" } : { "[": "{", "]": "}", "\\": "|", "~": "^" };
  return lower.replace(/[[\]\\~]/g, (ch) => extra[ch] ?? ch);
}

/** A server-time value in milliseconds since the epoch, or null. */
export function parseTime(value) {
  if (!value || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

export function formatTime(ms) {
  return new Date(ms).toISOString();
}

// Colour (\x03 with digits), bold, italics, underline, strike, monospace, reverse, reset.
const FORMATTING = /\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x1d\x1f\x1e\x11\x16\x0f]/g;

export function stripFormatting(text) {
  return text.replace(FORMATTING, "");
}

/** The CTCP ACTION inside a PRIVMSG, or null. */
export function actionText(text) {
  const m = /^\x01ACTION(?: (.*?))?\x01?$/s.exec(text);
  return m ? m[1] ?? "" : null;
}

/** ISUPPORT PREFIX=(ov)@+ as {modes: "ov", symbols: "@+"}. */
export function parsePrefix(value) {
  const m = /^\(([^)]*)\)(.*)$/.exec(value || "");
  if (!m || m[1].length !== m[2].length) return { modes: "ov", symbols: "@+" };
  return { modes: m[1], symbols: m[2] };
}

/** One word of RPL_NAMREPLY (multi-prefix, maybe userhost-in-names) as {nick, prefixes}. */
export function splitNamesEntry(entry, symbols = "@+") {
  let i = 0;
  while (i < entry.length && symbols.includes(entry[i])) i++;
  return { nick: nickOf(entry.slice(i)), prefixes: entry.slice(0, i) };
}

/**
 * A channel MODE change as a list of {adding, mode, arg}. Which modes take an argument comes
 * from ISUPPORT: prefix modes and CHANMODES lists A and B always, C only when set, D never.
 */
export function parseModes(modestring, args, { prefixModes = "ov", chanmodes = "beI,k,l,imnst" } = {}) {
  const [a = "", b = "", c = ""] = chanmodes.split(",");
  const changes = [];
  let adding = true;
  let next = 0;
  for (const mode of modestring) {
    if (mode === "+" || mode === "-") {
      adding = mode === "+";
      continue;
    }
    const takesArg = prefixModes.includes(mode) || a.includes(mode) || b.includes(mode) || (c.includes(mode) && adding);
    changes.push({ adding, mode, arg: takesArg ? args[next++] ?? null : null });
  }
  return changes;
}

/** SASL PLAIN as AUTHENTICATE payloads: base64 of authzid NUL authcid NUL password, in 400-byte pieces. */
export function saslPlain(account, password) {
  const bytes = new TextEncoder().encode(`${account}\0${account}\0${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const encoded = btoa(binary);
  const pieces = [];
  for (let i = 0; i < encoded.length; i += 400) pieces.push(encoded.slice(i, i + 400));
  if (encoded.length % 400 === 0) pieces.push("+"); // an exact multiple ends with an empty piece
  return pieces;
}
