// What splitting and merging do to a sentence's fields, apart from the page: where a split
// falls in the text, which language overrides each half keeps, how two sentences become one.
import { num, round3 } from "./dom.js";
import { tokenize, wordKey } from "./words.js";

function overridesFor(text, overrides) {
  const keys = new Set(tokenize(text).map((t) => wordKey(t.text)));
  return Object.fromEntries(Object.entries(overrides || {}).filter(([k]) => keys.has(k)));
}

// Without a caret inside the text, split at the word boundary nearest the middle. A caret
// right before the punctuation that ends a word ("ổn|, pin") splits after it: the comma
// stays with its clause.
export function splitOffset(text, caret) {
  if (caret !== null && caret > 0 && caret < text.length) {
    if (/\s/u.test(text[caret - 1])) return caret; // before a word (or an opening quote)
    let at = caret;
    while (at < text.length && /[,.;:!?…)\]"”’]/u.test(text[at])) at += 1;
    // Punctuation that ends the text stays there: a split needs words on both sides.
    return text.slice(at).trim() ? at : caret;
  }
  const mid = text.length / 2;
  const spaces = [...text.matchAll(/\s+/g)].map((m) => m.index);
  return spaces.length ? spaces.reduce((a, b) => (Math.abs(b - mid) < Math.abs(a - mid) ? b : a)) : text.length;
}

/** The aligned words of `row` ([[word, start, end], …]): those of the page's word times
 * that lie inside its span, when its words are exactly those (so a sentence split or
 * merged without retyping keeps them); else null. */
export function alignedWords(row, wordTimes) {
  const s = num(row.start);
  const e = num(row.end);
  if (s === null || e === null || !wordTimes?.length) return null;
  const inside = wordTimes.flatMap((w) => w.words).filter(([, a, b]) => a >= s - 0.001 && b <= e + 0.001);
  const tokens = tokenize(row.text).map((t) => t.text.normalize("NFC"));
  const same = tokens.length > 0 && tokens.length === inside.length && tokens.every((t, i) => t === String(inside[i][0]).normalize("NFC"));
  return same ? inside : null;
}

/** The time word `index` of the row starts: from the aligned words (`exact`), else as far
 * into the sentence's span as the word is into its text (an estimate). */
export function wordStart(row, index, words) {
  if (words && words[index]) return { at: words[index][1], exact: true };
  const s = num(row.start);
  const e = num(row.end);
  const text = row.text || "";
  const token = tokenize(text)[index];
  if (s === null || e === null || !token) return null;
  return { at: round3(s + (e - s) * (text.length ? token.start / text.length : 0)), exact: false };
}

/**
 * The moment the halves of a split meet, and where it came from (`source`): the gap
 * between the aligned words on either side of the caret ("words"), else the playhead when
 * it is inside the sentence ("playhead"), else the point as far into the time span as the
 * caret is into the text ("estimate").
 */
export function splitTime(row, caret, playhead, words = null) {
  const s = num(row.start);
  const e = num(row.end);
  if (s === null || e === null) return { at: null, source: "estimate" };
  const text = row.text || "";
  if (words) {
    const before = tokenize(text).filter((t) => t.end <= caret).length;
    if (before > 0 && before < words.length) {
      return { at: round3((words[before - 1][2] + words[before][1]) / 2), source: "words" };
    }
  }
  if (playhead !== undefined && playhead !== null && playhead > s + 0.05 && playhead < e - 0.05) {
    return { at: round3(playhead), source: "playhead" };
  }
  return { at: round3(s + (e - s) * (text.length ? caret / text.length : 0.5)), source: "estimate" };
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

/** A pipeline flag in words ("english_untranslated: meeting" -> "English left untranslated:
 * meeting"), from the server's table (ra_app/core/flags.py). */
export function flagText(flag, words) {
  const [kind, ...rest] = String(flag).split(":");
  const detail = rest.join(":").trim();
  const name = words?.[kind.trim()] || kind.trim().replace(/_/g, " ");
  return detail ? `${name}: ${detail}` : name;
}
