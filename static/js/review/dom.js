// Tiny DOM helpers. Data is only ever put into the page as textContent or form values,
// never as HTML, so a transcript containing "<script>" shows as text.

/**
 * h("button", {class: "x", text: "Play", onclick: fn, "aria-label": "…"}, child, …)
 * Attribute keys: class, text (textContent), dataset (object), style (object),
 * on<event> (listener), value/checked/disabled/readOnly/... (properties), others setAttribute.
 * Children: nodes, strings (as text nodes), arrays, null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (PROPS.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

const PROPS = new Set([
  "value", "checked", "disabled", "readOnly", "hidden", "type", "min", "max", "step",
  "rows", "placeholder", "spellcheck", "tabIndex", "htmlFor", "id", "title", "name",
]);

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** 75.25 -> "1:15.3"; 3725.2 -> "1:02:05.2" */
export function fmtTime(seconds, digits = 1) {
  if (!Number.isFinite(seconds)) return "–";
  const sign = seconds < 0 ? "-" : "";
  let s = Math.abs(seconds);
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  s -= minutes * 60;
  let sec = s.toFixed(digits);
  if (Number(sec) >= 60) sec = (59.99).toFixed(digits); // rounding guard
  const [whole, frac] = sec.split(".");
  const ss = whole.padStart(2, "0") + (frac !== undefined ? "." + frac : "");
  return hours
    ? `${sign}${hours}:${String(minutes).padStart(2, "0")}:${ss}`
    : `${sign}${minutes}:${ss}`;
}

/** Local wall-clock time "12:03:04". */
export function fmtClock(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Server timestamps: ISO with or without an offset (naive ones are UTC). */
export function parseServerTime(value) {
  if (!value) return null;
  const hasZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(value);
  const date = new Date(hasZone ? value : value + "Z");
  return Number.isNaN(date.getTime()) ? null : date;
}

export function round3(n) {
  return Math.round(n * 1000) / 1000;
}

/** A number from a form value, or null. */
export function num(value) {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value !== "string" || value.trim() === "") return null;
  const n = Number(value.replace(",", "."));
  return Number.isFinite(n) ? n : null;
}

/** A time as people type it: "73.5", "1:13.5" or "1:02:03.5" (a comma for the point too);
 * null if it is none. */
export function parseTime(value) {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  const parts = String(value ?? "").trim().replace(",", ".").split(":");
  if (parts.length > 3 || parts.some((p) => !/^(\d+(\.\d*)?|\.\d+)$/.test(p))) return null;
  return parts.reduce((total, p) => total * 60 + Number(p), 0);
}

/** A time field's text: m:ss.cc, as the player's clock writes times (or what was typed,
 * while it is no time). */
export function fieldTime(value) {
  const seconds = parseTime(value);
  return seconds === null ? String(value ?? "") : fmtTime(seconds, 2);
}

let counter = 0;
export function uid(prefix = "r") {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter.toString(36)}`;
}

/** Chromium sizes textareas to their text itself (CSS `field-sizing: content`, review.css). */
export const FIELD_SIZING = typeof CSS !== "undefined" && Boolean(CSS.supports?.("field-sizing", "content"));

/** Grow a textarea to fit its text (one line minimum). */
export function autoGrow(textarea) {
  if (FIELD_SIZING) return; // CSS does it, without forcing a layout
  textarea.style.height = "auto";
  textarea.style.height = `${textarea.scrollHeight + 2}px`;
}

/** autoGrow for many textareas with two layouts instead of one per field. */
export function autoGrowAll(textareas) {
  if (FIELD_SIZING) return;
  const list = [...textareas];
  for (const ta of list) ta.style.height = "auto";
  const heights = list.map((ta) => ta.scrollHeight);
  list.forEach((ta, i) => {
    ta.style.height = `${heights[i] + 2}px`;
  });
}

/** Run fn(deadline) when the page is idle (or soon, where requestIdleCallback is missing). */
export function whenIdle(fn, timeout = 200) {
  if (typeof requestIdleCallback === "function") return requestIdleCallback(fn, { timeout });
  return setTimeout(() => fn({ didTimeout: true, timeRemaining: () => 8 }), 16);
}

export function isTypingTarget(el) {
  if (!el) return false;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || el.isContentEditable) return true;
  if (tag === "INPUT") return !["button", "submit", "checkbox", "radio", "range"].includes(el.type);
  return false;
}
