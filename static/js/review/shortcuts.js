// Keyboard shortcuts. The table (actions and their keys: the reviewer's own or the defaults)
// comes from the server (ra_app/review/keys.py) and drives both the handler and the help
// panel. No binding is a key that edits text, so every shortcut works inside a text field
// and typing there keeps its usual meaning (Ctrl+←/→, Alt+Backspace, …). "?" shows the
// list, outside text fields only.
import { h, clear, isTypingTarget } from "./dom.js";
import { matcher } from "../keys.js";

const REPEATING = new Set(["back", "forward", "slower", "faster", "zoomIn", "zoomOut", "prev", "next"]);
const HELP = { id: "help", keys: ["?"], label: "Show / hide this list (outside text fields)" };

/** The shortcuts that apply to this task, with their labels for its type. */
export function shortcutsFor(table, type, editable) {
  const list = table
    .filter((s) => s.types.includes(type) && (editable || !s.edit))
    .map((s) => ({
      ...s,
      label: type === "audio_segmentation" && s.segment_label ? s.segment_label : s.label,
      matchers: s.keys.map(matcher),
    }));
  list.push({ ...HELP, matchers: [(e) => e.key === "?" && !e.ctrlKey && !e.altKey && !e.metaKey] });
  return list;
}

/** Install the handler; `actions[id](event)` runs for a match. Returns the list in use. */
export function installShortcuts(table, type, editable, actions) {
  const list = shortcutsFor(table, type, editable);
  const onKey = (event) => {
    if (event.isComposing || event.keyCode === 229) return; // an IME (Telex, VNI…) is composing
    for (const s of list) {
      if (!s.matchers.some((m) => m(event))) continue;
      if (s.id === "help" && isTypingTarget(event.target)) return;
      const action = actions[s.id];
      if (!action) return;
      event.preventDefault();
      event.stopPropagation();
      if (!event.repeat || REPEATING.has(s.id)) action(event);
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
  const parts = spec.split("+");
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

/** The keys of an action as the reviewer reads them ("Esc or Ctrl+Space"), from the table
 * or the list in use. */
export function keysOf(table, id) {
  return table.find((s) => s.id === id)?.keys.join(" or ") || "";
}
