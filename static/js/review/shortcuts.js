// Keyboard shortcuts: one table drives both the handler and the help panel. Every shortcut
// but "?" uses Ctrl or Alt, so typing in a field is never hijacked; keys are matched on
// KeyboardEvent.code, so Alt+letter works on macOS (where Option+L types "¬") too.
import { h, clear, isTypingTarget } from "./dom.js";

const ALL = ["transcript_correction", "translation_review", "audio_segmentation"];

/** id, keys (display form), what it does, the task types it applies to, edit-only. */
export const SHORTCUTS = [
  { id: "playPause", keys: ["Ctrl+Space", "Alt+P"], label: "Play / pause", types: ALL },
  { id: "replay", keys: ["Ctrl+R"], label: "Replay the current sentence", types: ALL, seg: "Replay the current segment" },
  { id: "back", keys: ["Ctrl+←"], label: "Back 2 s", types: ALL },
  { id: "forward", keys: ["Ctrl+→"], label: "Forward 2 s", types: ALL },
  { id: "prev", keys: ["Alt+↑"], label: "Previous sentence (plays it)", types: ALL, seg: "Previous segment (plays it)" },
  { id: "next", keys: ["Alt+↓"], label: "Next sentence (plays it)", types: ALL, seg: "Next segment (plays it)" },
  { id: "slower", keys: ["Ctrl+,"], label: "Slower", types: ALL },
  { id: "faster", keys: ["Ctrl+."], label: "Faster", types: ALL },
  { id: "zoomIn", keys: ["Alt+="], label: "Zoom in", types: ALL },
  { id: "zoomOut", keys: ["Alt+-"], label: "Zoom out", types: ALL },
  { id: "save", keys: ["Ctrl+S"], label: "Save now", types: ALL, edit: true },
  { id: "submit", keys: ["Ctrl+Enter"], label: "Submit", types: ALL, edit: true },
  { id: "toggleLang", keys: ["Alt+L"], label: "Switch the language (vi/en) of the word at the caret", types: ["transcript_correction"], edit: true },
  { id: "split", keys: ["Alt+Enter"], label: "Split the sentence at the caret", types: ["transcript_correction", "audio_segmentation"], seg: "Split the segment at the playhead", edit: true },
  { id: "merge", keys: ["Alt+M"], label: "Merge with the next sentence", types: ["transcript_correction", "audio_segmentation"], seg: "Merge with the next segment", edit: true },
  { id: "insert", keys: ["Alt+I"], label: "Insert a sentence after", types: ["transcript_correction"], edit: true },
  { id: "remove", keys: ["Alt+Backspace"], label: "Delete the sentence", types: ["transcript_correction", "audio_segmentation"], seg: "Delete the segment", edit: true },
  { id: "setStart", keys: ["Alt+["], label: "Set start to the playhead", types: ["transcript_correction", "audio_segmentation"], edit: true },
  { id: "setEnd", keys: ["Alt+]"], label: "Set end to the playhead", types: ["transcript_correction", "audio_segmentation"], edit: true },
  { id: "undo", keys: ["Alt+Z"], label: "Undo the last split, merge, insert, delete, time change or cleared flag", types: ALL, edit: true },
  { id: "help", keys: ["?"], label: "Show / hide this list (outside text fields)", types: ALL },
];

const CODES = {
  Space: ["Space"], "←": ["ArrowLeft"], "→": ["ArrowRight"], "↑": ["ArrowUp"], "↓": ["ArrowDown"],
  ",": ["Comma"], ".": ["Period"], "=": ["Equal", "NumpadAdd"], "-": ["Minus", "NumpadSubtract"],
  Enter: ["Enter", "NumpadEnter"], Backspace: ["Backspace"], "[": ["BracketLeft"], "]": ["BracketRight"],
};

function matcher(spec) {
  if (spec === "?") return (e) => e.key === "?" && !e.ctrlKey && !e.altKey && !e.metaKey;
  const parts = spec.split("+");
  const key = parts.pop() || "+";
  const ctrl = parts.includes("Ctrl");
  const alt = parts.includes("Alt");
  const codes = CODES[key] || [`Key${key.toUpperCase()}`];
  return (e) =>
    (ctrl ? e.ctrlKey || e.metaKey : !e.ctrlKey && !e.metaKey) &&
    alt === e.altKey &&
    !e.shiftKey &&
    codes.includes(e.code);
}

export function shortcutsFor(type, editable) {
  return SHORTCUTS.filter((s) => s.types.includes(type) && (editable || !s.edit)).map((s) => ({
    ...s,
    label: type === "audio_segmentation" && s.seg ? s.seg : s.label,
    matchers: s.keys.map(matcher),
  }));
}

/** Install the handler; `actions[id]()` runs for a match. Returns the list in use. */
export function installShortcuts(type, editable, actions) {
  const list = shortcutsFor(type, editable);
  const onKey = (event) => {
    if (event.isComposing || event.keyCode === 229) return; // an IME (Telex, VNI…) is composing
    for (const s of list) {
      if (!s.matchers.some((m) => m(event))) continue;
      if (s.id === "help" && isTypingTarget(event.target)) return;
      const action = actions[s.id];
      if (!action) return;
      event.preventDefault();
      event.stopPropagation();
      if (!event.repeat || ["back", "forward", "slower", "faster", "zoomIn", "zoomOut", "prev", "next"].includes(s.id)) action(event);
      return;
    }
  };
  window.addEventListener("keydown", onKey, true);
  // A focused button would otherwise "click" on the Space of Ctrl+Space.
  window.addEventListener("keyup", (event) => {
    if (event.code === "Space" && (event.ctrlKey || event.metaKey)) event.preventDefault();
  }, true);
  return list;
}

function kbd(spec) {
  if (spec === "?") return [h("kbd", { text: "?" })];
  const parts = spec.split("+");
  if (spec.endsWith("+")) parts.splice(-2, 2, "+");
  const out = [];
  parts.forEach((p, i) => {
    if (i) out.push("+");
    out.push(h("kbd", { text: p }));
  });
  return out;
}

/** The help panel's list. */
export function renderShortcutList(container, list) {
  clear(container);
  const dl = h("dl", { class: "keys" });
  for (const s of list) {
    const keys = [];
    s.keys.forEach((k, i) => {
      if (i) keys.push(" or ");
      keys.push(...kbd(k));
    });
    dl.append(h("dt", {}, keys), h("dd", { text: s.label }));
  }
  container.append(dl);
  return container;
}
