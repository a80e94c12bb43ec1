// Code-switching helpers: words, their vi/en tags (from the server's analysis, with a local
// stand-in between autosaves), the words coloured by language and the diff view.
import { h, clear } from "./dom.js";

const CORE = /[\p{L}\p{N}\p{M}]/u;
const LETTER = /\p{L}/u;
// Letters only Vietnamese spells with, and the five tone marks (decomposed).
const VI_MARKS = /[\u0300\u0301\u0303\u0309\u0323\u0302\u0306\u031b]|[đĐ]/u;

/** Tokens of a text as typed (split on whitespace), with their character offsets. */
export function tokenize(text) {
  const tokens = [];
  const re = /\S+/gu;
  let m;
  while ((m = re.exec(text || ""))) tokens.push({ text: m[0], start: m.index, end: m.index + m[0].length });
  return tokens;
}

/** The word without surrounding punctuation ("(laptop)," -> "laptop"). */
export function wordCore(token) {
  const chars = Array.from(token);
  let a = 0;
  let b = chars.length;
  while (a < b && !CORE.test(chars[a])) a += 1;
  while (b > a && !CORE.test(chars[b - 1])) b -= 1;
  return chars.slice(a, b).join("");
}

/** The key of lang_overrides: lowercased NFC core (the server's word_key). */
export function wordKey(token) {
  return wordCore(token.normalize("NFC")).toLowerCase().normalize("NFC");
}

export function hasVietnameseMarks(text) {
  return VI_MARKS.test((text || "").normalize("NFD"));
}

/** The token under (or just before) a caret position. */
export function tokenAt(text, caret) {
  const tokens = tokenize(text);
  let index = tokens.findIndex((t) => caret >= t.start && caret <= t.end);
  if (index < 0) {
    for (let i = tokens.length - 1; i >= 0; i -= 1) {
      if (tokens[i].end <= caret) {
        index = i;
        break;
      }
    }
  }
  if (index < 0 && tokens.length) index = 0;
  return index < 0 ? null : { ...tokens[index], index };
}

function sameOverrides(a, b) {
  const ka = Object.keys(a || {}).sort();
  const kb = Object.keys(b || {}).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/**
 * The words of a row with their language. `analysed` is the server's answer for this row
 * ({text, overrides, words, english_share}) — used as is when the row still has that text
 * and those overrides; otherwise each word takes the reviewer's override, then the server's
 * tag for the same word, then a cheap local guess, marked `pending` until the next autosave.
 */
export function rowWords(row, analysed) {
  const overrides = row.lang_overrides || {};
  if (analysed && analysed.text === row.text && sameOverrides(analysed.overrides, overrides)) {
    return { words: analysed.words, englishShare: analysed.english_share, pending: false };
  }
  const known = new Map();
  for (const w of analysed?.words || []) if (!w.manual) known.set(wordKey(w.text), w.lang);
  const tokens = tokenize(row.text);
  let pending = false;
  const words = tokens.map((t) => {
    const key = wordKey(t.text);
    if (overrides[key] === "vi" || overrides[key] === "en") return { text: t.text, lang: overrides[key], manual: true };
    if (known.has(key)) return { text: t.text, lang: known.get(key), manual: false };
    pending = true;
    if (!LETTER.test(key)) return { text: t.text, lang: null, manual: false, pending: true };
    if (hasVietnameseMarks(key)) return { text: t.text, lang: "vi", manual: false, pending: true };
    if (/[fjwz]|'|(?<!n)g$|[bdklqrsvx]$/.test(key)) return { text: t.text, lang: "en", manual: false, pending: true };
    return { text: t.text, lang: null, manual: false, pending: true };
  });
  // Words without evidence follow the previous word (the next one at the start), like the server.
  for (let i = 0; i < words.length; i += 1) if (!words[i].lang && i > 0) words[i].lang = words[i - 1].lang;
  let following = "vi";
  for (let i = words.length - 1; i >= 0; i -= 1) {
    words[i].lang = words[i].lang || following;
    following = words[i].lang;
  }
  const counted = words.filter((w) => LETTER.test(w.text));
  const englishShare = counted.length ? counted.filter((w) => w.lang === "en").length / counted.length : 0;
  return { words, englishShare, pending };
}

/** Colour a row's words by language (`result` from rowWords: marked while a local guess) in
 * its `.words` element, and show its English share. `on` = {onPlay}: see renderWords. */
export function showWords(li, text, result, on = {}) {
  const box = li.querySelector(".words");
  renderWords(box, text, result, on);
  box.classList.toggle("pending", result.pending);
  const share = li.querySelector(".share");
  share.textContent = shareLabel(result.englishShare);
  share.dataset.share = String(Math.round(result.englishShare * 100));
  share.classList.toggle("pending", result.pending);
}

/** Switch the language of word `token` in `row.lang_overrides`; returns the new language. */
export function toggleWordLanguage(row, token, currentLang) {
  const key = wordKey(token);
  if (!key) return null;
  const next = currentLang === "en" ? "vi" : "en";
  row.lang_overrides = { ...(row.lang_overrides || {}), [key]: next };
  return next;
}

/**
 * The text with each word in a span coloured by its language (English also underlined, so
 * colour is not the only sign): under a transparent text field, as its backdrop, the field's
 * own words look coloured; in read-only text the spans are the text, and a click on one
 * plays from the word (`onPlay(wordIndex)`). A text field handles its own clicks
 * (pickWord).
 */
export function renderWords(container, text, result, { onPlay = null } = {}) {
  clear(container);
  const tokens = tokenize(text);
  let at = 0;
  tokens.forEach((token, index) => {
    if (token.start > at) container.append(text.slice(at, token.start));
    at = token.end;
    const word = result.words[index] || { text: token.text, lang: null };
    const lang = word.lang || "vi";
    const span = h("span", {
      class: `word lang-${lang}${word.manual ? " manual" : ""}${word.pending ? " pending" : ""}`,
      text: token.text,
      dataset: { lang, key: wordKey(token.text), index: String(index) },
    });
    if (onPlay) {
      span.title = `${lang === "en" ? "English" : "Vietnamese"}${word.manual ? " (set by you)" : ""}: click to play from here`;
      span.addEventListener("click", (event) => {
        event.stopPropagation();
        onPlay(index);
      });
    }
    container.append(span);
  });
  if (at < text.length) container.append(text.slice(at));
  if (!text.length) container.append("\u00a0"); // keeps the backdrop one line high
  return container;
}

/**
 * Alt+click on a word in a text field selects the whole word, ready to be typed over: one
 * click where a caret placed by hand and Ctrl+Shift+→ would take several keys. (Alt+click
 * means nothing to a text field on Windows, Linux or macOS.) `onPlay(wordIndex)`, if given,
 * runs on Ctrl/⌘+click.
 */
export function pickWord(field, onPlay = null) {
  field.addEventListener("click", (event) => {
    const play = (event.ctrlKey || event.metaKey) && onPlay;
    if (!(event.altKey || play)) return;
    const token = tokenAt(field.value, field.selectionStart);
    if (!token) return;
    if (play) onPlay(token.index);
    else field.setSelectionRange(token.start, token.end);
  });
}

export function shareLabel(share) {
  return `EN ${Math.round((share || 0) * 100)}%`;
}

/** The word diff (ops equal/insert/delete/replace) as text with <ins>/<del> marks. */
export function renderDiff(container, diff) {
  clear(container);
  if (!diff || !diff.length) {
    container.append(h("span", { class: "muted", text: "No machine draft to compare with." }));
    return;
  }
  for (const part of diff) {
    if (part.op === "equal") container.append(h("span", { class: "eq", text: part.human || part.machine }));
    if (part.op === "delete" || part.op === "replace") {
      container.append(h("del", { text: part.machine, title: "Machine draft" }));
    }
    if (part.op === "insert" || part.op === "replace") {
      container.append(h("ins", { text: part.human, title: "Your text" }));
    }
    container.append(" ");
  }
}

export function pct(value) {
  return value === null || value === undefined || !Number.isFinite(Number(value))
    ? "–"
    : `${(Number(value) * 100).toFixed(1)}%`;
}
