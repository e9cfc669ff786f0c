// How things read on screen, as pure functions (no DOM), so Node can test them.

export const NICK_COLOURS = 16; // style.css has .nc0 ... .nc15

/** The same nick gets the same colour in every view and on every visit. */
export function nickColour(nick) {
  let hash = 0;
  for (const ch of nick.toLowerCase()) hash = (Math.imul(hash, 31) + ch.codePointAt(0)) | 0;
  return Math.abs(hash) % NICK_COLOURS;
}

const pad = (n) => String(n).padStart(2, "0");

export function clockText(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function dayText(ms, now = Date.now()) {
  const d = new Date(ms);
  const today = new Date(now);
  const yesterday = new Date(now - 86400000);
  const same = (a, b) => a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  if (same(d, today)) return "Today";
  if (same(d, yesterday)) return "Yesterday";
  return d.toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

export function sameDay(a, b) {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

const NICK_CHARS = "A-Za-z0-9\\-\\[\\]\\\\`^{}|_";

/** Whether a line says our nick as a word of its own (not inside a longer nick). */
export function mentions(text, nick) {
  if (!nick) return false;
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^${NICK_CHARS}])${escaped}($|[^${NICK_CHARS}])`, "i").test(text);
}

/** Text cut into plain parts and http(s) links, for the renderer to make <a> elements of. */
export function linkParts(text) {
  const parts = [];
  const url = /\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]'"]/g;
  let last = 0;
  for (const m of text.matchAll(url)) {
    if (m.index > last) parts.push({ text: text.slice(last, m.index) });
    parts.push({ text: m[0], href: m[0] });
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

/** Tab completion: the candidates starting with `word`, ignoring case, in the order given. */
export function completions(word, candidates) {
  const lower = word.toLowerCase();
  return word ? candidates.filter((c) => c.toLowerCase().startsWith(lower)) : [];
}
