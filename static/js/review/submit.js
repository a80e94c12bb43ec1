// Submitting a task, and a second reviewer's decision on one: the checks before sending,
// what each answer means (submitted, already submitted, stale, not heard, refused), and
// listen-before-approve.
import { h, fmtTime, num } from "./dom.js";
import { postJSON, NetworkError, answerMessage } from "./api.js";

/** `env`: what the page built (data, app, ui, store, editor, listening, ctx, kind, review,
 * editable) and its messages (showMessage, closeMessage, toast, clear). */
export function createSubmitting(env) {
  const { data, app, ui, store, editor, listening, ctx, kind, review, editable, messages } = env;
  const { showMessage, closeMessage, toast } = messages;
  const $ = (id) => document.getElementById(id);

  let submitting = false;
  function setBusy(busy) {
    for (const button of [ui.submit, ...ui.decisions]) if (button) button.disabled = busy;
    if (!busy) showHeard();
  }

  /** Submit the task, or for a second review send the `decision` (and `comment`). */
  async function submit(force, decision = null, comment = null) {
    if (!editable || submitting || store.submitted) return;
    if (store.blockedBy === "conflict") {
      store.block(store.message, "conflict"); // the newer draft is another tab's: show why again
      return;
    }
    if (review && !decision) decision = "approve";
    if (decision && decision !== "reject" && !heardAll()) {
      showMessage("not-heard", { tone: "warn", alert: true, text: notHeardText() });
      return;
    }
    closeMessage("problems");
    closeMessage("not-heard");
    const problems = decision === "reject" ? new Map() : editor.validate();
    if (problems.size) {
      editor.setProblems(problems);
      const list = [...problems.values()].flat();
      showMessage("problems", {
        tone: "error",
        title: "Not submitted yet",
        text: kind === "segments" ? `Every segment must be ${data.rules.segment_min}–${data.rules.segment_max} s long (unless it is a single long sentence). Fix these first:` : "Fix these first:",
        list,
      });
      const firstId = [...problems.keys()][0];
      const index = editor.indexOfId(firstId);
      if (index >= 0) editor.select(index, { focus: true });
      return;
    }
    submitting = true;
    setBusy(true);
    store.cancelTimer();
    const previousState = store.state;
    store.state = "submitting";
    store.emitStatus();
    try {
      // An autosave on its way changes the draft this submit builds on: let it land first.
      if (store.saving) await store.saving;
      const body = { ...store.payload(), ...(force ? { force: true } : {}) };
      delete body.progress;
      if (decision) Object.assign(body, { decision, comment });
      const answer = await postJSON(decision ? data.urls.decide : data.urls.submit, body);
      if (answer.ok && answer.data && !answer.data.error) return submitted(answer.data);
      store.state = store.dirty || previousState === "submitting" ? "dirty" : previousState;
      store.emitStatus();
      const error = answer.data?.error;
      if (answer.status === 409 && error === "already_submitted") return submitted({ ...answer.data, decision, already: true });
      if (answer.status === 409 && error === "stale") showStale(answer.data, decision);
      else if (answer.status === 409 && error === "draft_conflict") store.block(answer.data.message, "conflict");
      else if (answer.status === 409 && (error === "noteditable" || error === "lease_lost")) store.block(answer.data.message);
      else if (answer.status === 409 && error === "notheard") {
        listening.heardOnServer = Number(answer.data.listened) || 0;
        showMessage("not-heard", { tone: "warn", alert: true, text: answer.data.message });
      }
      else if (answer.status === 422 && error === "invalid") showServerProblems(answer.data);
      else showMessage("problems", { tone: "error", title: "Not submitted", text: `${answerMessage(answer.ok ? { status: 401, redirected: true } : answer)} Your work is kept in this browser.` });
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      store.state = "offline";
      store.emitStatus();
      showMessage("problems", { tone: "error", title: "Not submitted", text: "The server could not be reached. Your work is kept in this browser; try again when you are back online." });
    } finally {
      submitting = false;
      if (!store.submitted) {
        setBusy(false);
        if (store.dirty) store.schedule();
      }
    }
  }

  function submitted(answer) {
    const decision = answer.decision;
    const result = decision ? {} : answer; // a decision's agreement figures are for admins
    store.finish();
    ctx.player?.pause();
    const parts = [];
    if (result.segments !== undefined) parts.push(`${result.segments} segment${result.segments === 1 ? "" : "s"}`);
    if (result.transcript_version) parts.push(`transcript version ${result.transcript_version}`);
    if (result.translation_version) parts.push(`translation version ${result.translation_version}`);
    if (result.wer !== null && result.wer !== undefined) parts.push(`WER ${(result.wer * 100).toFixed(1)}% against the machine draft`);
    messages.clear();
    const titles = { reject: "Sent back to the author", approve: "Approved — thank you" };
    const title = answer.already
      ? "Already submitted"
      : titles[decision] || (decision ? "Approved with your changes — thank you" : "Submitted — thank you");
    const said = answer.already ? `${answer.message} ` : parts.length ? `Saved: ${parts.join(", ")}. ` : "";
    // The server has already claimed the next task (or chosen the queue): go there at once.
    const next = answer.next_url && !answer.already ? answer.next_url : null;
    const queue = new URL(data.urls.queue, window.location.href);
    queue.searchParams.set("submitted", "1");
    const goingToQueue = !next || new URL(next, window.location.href).pathname === queue.pathname;
    showMessage("submitted", {
      tone: "ok",
      title,
      text: `${said}${goingToQueue ? "Returning to your queue…" : "Opening your next task…"}`,
      actions: [h("a", { href: queue.toString(), text: "Back to my queue now" })],
      alert: true,
    });
    app.classList.add("is-submitted");
    setTimeout(() => window.location.assign(next || queue.toString()), goingToQueue ? 600 : 300);
  }

  function showServerProblems(answer) {
    const { byId, general } = editor.problemsFromServer(answer.problems || []);
    editor.setProblems(byId);
    showMessage("problems", { tone: "error", title: "Not submitted", text: answer.message, list: answer.problems || general });
    const firstId = [...byId.keys()][0];
    if (firstId) editor.select(editor.indexOfId(firstId), { focus: true });
  }

  function rowsList(rows, other) {
    return h("ol", { class: "compare-rows" }, rows.map((row, i) => {
      const differs = !other[i] || other[i].text !== row.text || (other[i].translation || "") !== (row.translation || "");
      return h("li", { class: differs ? "differs" : "" },
        h("span", { class: "times", text: `${fmtTime(num(row.start), 2)}–${fmtTime(num(row.end), 2)}` }),
        " ",
        h("span", { class: "compare-text", lang: "vi", text: row.text }),
        row.translation ? h("span", { class: "compare-translation", lang: "vi", text: row.translation }) : null);
    }));
  }

  function showStale(answer, decision) {
    const current = answer.current || [];
    const mine = store.items;
    const block = showMessage("stale", {
      tone: "warn",
      title: "Someone else changed this part",
      text: answer.message,
      alert: true,
      actions: [
        h("button", { type: "button", class: "primary", text: decision ? "Approve mine anyway" : "Submit mine anyway", onclick: () => { closeMessage("stale"); submit(true, decision); } }),
        " ",
        h("button", { type: "button", text: "Keep editing", onclick: () => closeMessage("stale") }),
      ],
    });
    block.insertBefore(h("div", { class: "compare" },
      h("div", {}, h("h3", { text: "Current version" }), rowsList(current, mine)),
      h("div", {}, h("h3", { text: "Yours" }), rowsList(mine, current))), block.querySelector(".message-actions"));
    block.scrollIntoView({ block: "nearest" });
  }

    // --- second review ---------------------------------------------------------------------

  const required = review?.required ?? 1;
  function heardAll() {
    return listening.fraction() >= required;
  }
  function heardPercent() {
    return Math.floor(listening.fraction() * 100);
  }
  function notHeardText() {
    return `Play the whole task before approving: you have heard ${heardPercent()}% of it. Rejecting needs no full listen.`;
  }
  let heardShown = -1;
  function showHeard() {
    if (!review || !ui.heard) return;
    const complete = heardAll();
    ui.heard.textContent = complete ? "Heard all ✓" : `Heard ${heardPercent()}%`;
    ui.heard.classList.toggle("is-complete", complete);
    for (const button of ui.decisions) {
      if (button.dataset.decision === "reject") continue;
      button.disabled = !complete || submitting;
      button.title = complete ? "" : notHeardText();
    }
    const approve = $("approve");
    if (approve) approve.textContent = complete ? "Approve" : `Approve (play it all first: ${heardPercent()}% heard)`;
    heardShown = heardPercent();
  }

  function askRejectComment() {
    const box = h("textarea", { class: "reject-comment", "aria-label": "What the author should fix", placeholder: "What should the author fix?" });
    const send = h("button", {
      type: "button",
      class: "primary",
      text: "Send back to the author",
      onclick: () => {
        const comment = box.value.trim();
        if (!comment) {
          box.focus();
          toast("Say what to fix: a rejection needs a comment.");
          return;
        }
        closeMessage("reject");
        submit(false, "reject", comment);
      },
    });
    const block = showMessage("reject", {
      tone: "warn",
      title: "Reject and send back",
      text: "The author gets the task back with your comment and the text as they submitted it.",
      actions: [send, " ", h("button", { type: "button", text: "Cancel", onclick: () => closeMessage("reject") })],
    });
    block.insertBefore(box, block.querySelector(".message-actions"));
    box.focus();
  }

  if (review && editable) {
    for (const button of ui.decisions) {
      button.addEventListener("click", () => {
        if (button.dataset.decision === "reject") askRejectComment();
        else submit(false, button.dataset.decision);
      });
    }
    listening.addEventListener("change", () => {
      if (heardPercent() !== heardShown || heardAll()) showHeard();
    });
    // Tell the server what has been heard while it plays, so approval is possible at once.
    setInterval(async () => {
      if (!listening.changed || store.submitted || store.stopped) return;
      listening.changed = false;
      try {
        const answer = await postJSON(data.urls.touch, { listened: listening.intervals });
        if (answer.ok && answer.data) listening.heardOnServer = Number(answer.data.listened) || listening.heardOnServer;
      } catch {
        listening.changed = true; // offline: try again
      }
    }, 10000);
    showHeard();
  }

  return { submit };
}
