// What splitting and merging do to a sentence's fields, apart from the page: where a split
// falls in the text, which language overrides each half keeps, how two sentences become one.
import { num, round3 } from "./dom.js";
import { tokenize, wordKey } from "./words.js";

function overridesFor(text, overrides) {
  const keys = new Set(tokenize(text).map((t) => wordKey(t.text)));
  return Object.fromEntries(Object.entries(overrides || {}).filter(([k]) => keys.has(k)));
}

// Without a caret inside the text, split at the word boundary nearest the middle.
export function splitOffset(text, caret) {
  if (caret !== null && caret > 0 && caret < text.length) return caret;
  const mid = text.length / 2;
  const spaces = [...text.matchAll(/\s+/g)].map((m) => m.index);
  return spaces.length ? spaces.reduce((a, b) => (Math.abs(b - mid) < Math.abs(a - mid) ? b : a)) : text.length;
}

// The moment the halves meet: the playhead when it is inside the sentence, else the
// point as far into the time span as the caret is into the text.
export function splitTime(row, caret, playhead) {
  const s = num(row.start);
  const e = num(row.end);
  if (s === null || e === null) return null;
  const text = row.text || "";
  const at = playhead !== undefined && playhead > s + 0.05 && playhead < e - 0.05
    ? playhead
    : s + (e - s) * (text.length ? caret / text.length : 0.5);
  return round3(at);
}

// The translation and flags stay with the first half: the reviewer re-translates the second.
export function splitSentence(row, caret, at) {
  const text = row.text || "";
  const left = text.slice(0, caret).trim();
  const right = text.slice(caret).trim();
  const first = { ...row, text: left, end: at ?? row.end, lang_overrides: overridesFor(left, row.lang_overrides) };
  const second = {
    ...row, _id: `${row._id}b${Date.now().toString(36)}`, start: at ?? row.start, text: right,
    translation: "", flags: [], lang_overrides: overridesFor(right, row.lang_overrides),
  };
  return [first, second];
}

export function mergeSentences(a, b) {
  const join = (x, y) => [x, y].map((v) => (v || "").trim()).filter(Boolean).join(" ");
  const starts = [num(a.start), num(b.start)].filter((v) => v !== null);
  const ends = [num(a.end), num(b.end)].filter((v) => v !== null);
  return {
    ...a,
    start: starts.length ? Math.min(...starts) : a.start,
    end: ends.length ? Math.max(...ends) : b.end,
    text: join(a.text, b.text),
    translation: join(a.translation, b.translation),
    flags: [...new Set([...(a.flags || []), ...(b.flags || [])])],
    lang_overrides: { ...(b.lang_overrides || {}), ...(a.lang_overrides || {}) },
  };
}

export function newSentence(start, end) {
  return { _id: `n${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`, start: round3(start), end: round3(end), text: "", translation: "", flags: [], lang_overrides: {} };
}
