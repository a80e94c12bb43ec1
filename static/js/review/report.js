// Skip or report: give the task back with a reason (someone else takes it), or report the
// audio unusable (no speech, music, wrong language, too noisy): the recording leaves the
// queues and the exports until an admin reverses the report. Either way the page moves on
// to the next task, as after a submit.
import { h } from "./dom.js";
import { postJSON, NetworkError, answerMessage } from "./api.js";

/** `env`: data, store, listening, messages ({showMessage, closeMessage}), button. */
export function createReporting({ data, store, listening, messages, button }) {
  const { showMessage, closeMessage } = messages;
  let sending = false;

  async function send(body) {
    if (sending || store.submitted) return;
    sending = true;
    try {
      if (store.saving) await store.saving;
      const answer = await postJSON(data.urls.report, { ...body, draft_version: store.draftVersion, listened: listening.intervals });
      if (answer.ok && answer.data && !answer.data.error) {
        store.finish();
        closeMessage("report");
        showMessage("submitted", { tone: "ok", title: body.kind === "skip" ? "Given back" : "Reported unusable", text: answer.data.message, alert: true });
        setTimeout(() => window.location.assign(answer.data.next_url || data.urls.queue), 300);
        return;
      }
      if (answer.status === 409 && answer.data?.error === "already_submitted") {
        store.block(answer.data.message);
        return;
      }
      showMessage("report-problem", { tone: "error", title: "Not sent", text: answer.data?.message || answerMessage(answer) });
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      showMessage("report-problem", { tone: "error", title: "Not sent", text: "The server could not be reached; try again when you are back online." });
    } finally {
      sending = false;
    }
  }

  function open() {
    const why = h("textarea", { class: "report-reason", rows: 2, "aria-label": "Why you give it back", placeholder: "Why? (for the admins: an accent I cannot follow, a topic I do not know…)" });
    const giveBack = h("button", {
      type: "button",
      text: "Give it back",
      onclick: () => {
        if (!why.value.trim()) {
          why.focus();
          showMessage("report-problem", { tone: "warn", text: "Say why you give it back." });
          return;
        }
        send({ kind: "skip", reason: why.value.trim() });
      },
    });
    const reasons = Object.entries(data.unusable_reasons).map(([code, label]) =>
      h("label", { class: "inline" }, h("input", { type: "radio", name: "unusable-reason", value: code }), ` ${label}`));
    const note = h("input", { type: "text", class: "report-comment", "aria-label": "A note for the admins (optional)", placeholder: "A note for the admins (optional)" });
    const unusable = h("button", {
      type: "button",
      class: "danger",
      text: "Report the audio unusable",
      onclick: () => {
        const chosen = document.querySelector('input[name="unusable-reason"]:checked');
        if (!chosen) {
          reasons[0].querySelector("input").focus();
          showMessage("report-problem", { tone: "warn", text: "Choose why the audio is unusable." });
          return;
        }
        send({ kind: "unusable", reason: chosen.value, comment: note.value.trim() || null });
      },
    });
    const block = showMessage("report", {
      tone: "warn",
      title: "Skip or report this task",
      actions: [h("button", { type: "button", text: "Cancel", onclick: () => closeMessage("report") })],
    });
    block.insertBefore(h("div", { class: "report-choices" },
      h("fieldset", {}, h("legend", { text: "Give it back: someone else takes it, with your draft" }), why, giveBack),
      h("fieldset", {}, h("legend", { text: "The audio is unusable: it leaves every queue and export" }), h("div", { class: "reasons" }, reasons), note, unusable)),
    block.querySelector(".message-actions"));
    why.focus();
  }

  button?.addEventListener("click", open);
  return { open };
}
