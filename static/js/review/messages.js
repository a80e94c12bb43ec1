// Messages at the top of the workspace and the toast at the bottom: what the page tells the
// reviewer (saved, refused, stale, submitted). One block per id; showing an id replaces it.
import { h, clear } from "./dom.js";

export function createMessages({ container, toastBox, undoKeys }) {
  let toastTimer = null;

  function hideToast() {
    toastBox.hidden = true;
    clear(toastBox);
  }

  function toast(text, undo) {
    clear(toastBox);
    toastBox.append(h("span", { text }));
    if (undo) {
      toastBox.append(h("button", { type: "button", class: "small", text: "Undo", title: undoKeys ? `Undo (${undoKeys})` : "Undo", onclick: () => { hideToast(); undo(); } }));
    }
    toastBox.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(hideToast, undo ? 8000 : 4000);
  }

  /** A message block at the top of the workspace; same id replaces. */
  function showMessage(id, { tone = "info", title, text, list, actions, alert = tone === "error" } = {}) {
    closeMessage(id);
    const block = h("section", { class: `message message-${tone}`, "data-message": id, role: alert ? "alert" : null, "aria-live": alert ? null : "polite" });
    if (title) block.append(h("h2", { text: title }));
    if (text) block.append(h("p", { text }));
    if (list && list.length) block.append(h("ul", {}, list.map((item) => h("li", { text: item }))));
    if (actions) block.append(h("p", { class: "message-actions" }, actions));
    container.append(block);
    return block;
  }

  function closeMessage(id) {
    container.querySelector(`[data-message="${id}"]`)?.remove();
  }

  return { toast, hideToast, showMessage, closeMessage, clear: () => clear(container) };
}
