// Key combinations as people write them ("Ctrl+Space", "Alt+Shift+D", "F1", "Esc") and as
// the browser reports them. Matched on KeyboardEvent.code, so Alt+letter works on macOS
// (where Option+L types "¬") and on any keyboard layout. The server checks the same names
// (ra_app/review/keys.py).

const NAMED_CODES = {
  Esc: ["Escape"], Space: ["Space"], Enter: ["Enter", "NumpadEnter"], Backspace: ["Backspace"],
  Delete: ["Delete"], Home: ["Home"], End: ["End"], PageUp: ["PageUp"], PageDown: ["PageDown"],
  "←": ["ArrowLeft"], "→": ["ArrowRight"], "↑": ["ArrowUp"], "↓": ["ArrowDown"],
  ",": ["Comma"], ".": ["Period"], "=": ["Equal", "NumpadAdd"], "-": ["Minus", "NumpadSubtract"],
  "[": ["BracketLeft"], "]": ["BracketRight"], ";": ["Semicolon"], "'": ["Quote"],
  "/": ["Slash"], "\\": ["Backslash"], "`": ["Backquote"],
};
const NAME_OF_CODE = Object.fromEntries(
  Object.entries(NAMED_CODES).flatMap(([name, codes]) => codes.map((code) => [code, name])),
);

function codesOf(key) {
  if (NAMED_CODES[key]) return NAMED_CODES[key];
  if (/^F\d{1,2}$/.test(key)) return [key];
  if (/^\d$/.test(key)) return [`Digit${key}`, `Numpad${key}`];
  return [`Key${key.toUpperCase()}`];
}

/** A predicate on keydown events for one written combination. */
export function matcher(spec) {
  const parts = spec.split("+");
  const key = parts.pop();
  const ctrl = parts.includes("Ctrl");
  const alt = parts.includes("Alt");
  const shift = parts.includes("Shift");
  const codes = codesOf(key);
  return (e) =>
    (ctrl ? e.ctrlKey || e.metaKey : !e.ctrlKey && !e.metaKey) &&
    alt === e.altKey &&
    shift === e.shiftKey &&
    codes.includes(e.code);
}

/** The written combination of a keydown, or null for a lone modifier. */
export function specOf(e) {
  let key = NAME_OF_CODE[e.code];
  if (!key && /^F\d{1,2}$/.test(e.code)) key = e.code;
  if (!key && /^Key[A-Z]$/.test(e.code)) key = e.code.slice(3);
  if (!key && /^(Digit|Numpad)\d$/.test(e.code)) key = e.code.slice(-1);
  if (!key) return null;
  const mods = [];
  if (e.ctrlKey || e.metaKey) mods.push("Ctrl");
  if (e.altKey) mods.push("Alt");
  if (e.shiftKey) mods.push("Shift");
  return [...mods, key].join("+");
}
