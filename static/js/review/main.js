// The review workspace: reads the task's JSON data island, picks the editor for the task
// type, wires the player, saving, submitting and the keyboard shortcuts.
//
// Test hook: window.reviewApp = {ready, wavesurfer, state, editor, player, save(), submit()};
// `ready` resolves (and <body data-review-ready="1"> is set) once the waveform is drawn and
// the audio can play.
import { h, clear, fmtTime, num } from "./dom.js";
import { Store } from "./store.js";
import { createPlayer, SPEED_MIN, SPEED_MAX } from "./player.js";
import { TranscriptEditor } from "./transcript.js";
import { TranslationEditor } from "./translation.js";
import { SegmentEditor } from "./segments.js";
import { installShortcuts, renderShortcutList } from "./shortcuts.js";
import { postJSON, NetworkError, answerMessage } from "./api.js";
import { Listening } from "./listening.js";

const data = JSON.parse(document.getElementById("task-data").textContent);
const app = document.getElementById("review-app");
const type = data.task.type;
const editable = Boolean(data.task.editable);
const kind = type === "audio_segmentation" ? "segments" : "sentences";
const $ = (id) => document.getElementById(id);
const ui = {
  status: $("save-status"),
  play: $("play"),
  time: $("time"),
  speed: $("speed"),
  speedOut: $("speed-out"),
  zoom: $("zoom"),
  save: $("save"),
  submit: $("submit"),
  heard: $("heard"),
  decisions: [...document.querySelectorAll("[data-decision]")],
  help: $("shortcuts"),
  helpList: $("shortcuts-list"),
  helpToggle: $("help-toggle"),
  messages: $("messages"),
  editor: $("editor"),
  toast: $("toast"),
  waveform: $("waveform"),
  audio: $("audio"),
  player: $("player"),
};

let resolveReady;
const ready = new Promise((resolve) => {
  resolveReady = resolve;
});

// --- messages, toast -------------------------------------------------------------------

let toastTimer = null;
function toast(text, undo) {
  clear(ui.toast);
  ui.toast.append(h("span", { text }));
  if (undo) {
    ui.toast.append(h("button", { type: "button", class: "small", text: "Undo", title: "Undo (Alt+Z)", onclick: () => { hideToast(); undo(); } }));
  }
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(hideToast, undo ? 8000 : 4000);
}
function hideToast() {
  ui.toast.hidden = true;
  clear(ui.toast);
}

/** A message block at the top of the workspace; same id replaces. */
function showMessage(id, { tone = "info", title, text, list, actions, alert = tone === "error" } = {}) {
  closeMessage(id);
  const block = h("section", { class: `message message-${tone}`, "data-message": id, role: alert ? "alert" : null, "aria-live": alert ? null : "polite" });
  if (title) block.append(h("h2", { text: title }));
  if (text) block.append(h("p", { text }));
  if (list && list.length) block.append(h("ul", {}, list.map((item) => h("li", { text: item }))));
  if (actions) block.append(h("p", { class: "message-actions" }, actions));
  ui.messages.append(block);
  return block;
}
function closeMessage(id) {
  ui.messages.querySelector(`[data-message="${id}"]`)?.remove();
}

// --- player first: its imports, the peaks and the audio load while the editor is built ---

const playerStarted = createPlayer({
  data,
  audio: ui.audio,
  container: ui.waveform,
  vendor: JSON.parse(app.dataset.vendor),
  onError: (text) => showMessage("player-error", { tone: "warn", text }),
});

// --- state and editor --------------------------------------------------------------------

const store = new Store(data, kind);
const source = store.load();
// What of the task's audio has been played: approval of a second review needs all of it.
const review = data.review;
const listening = new Listening({
  start: data.task.window_start,
  end: data.task.window_end,
  intervals: data.listened || [],
  heard: review?.listened || 0,
});
store.extra = () => ({ listened: listening.intervals });
const ctx = {
  store,
  data,
  editable,
  player: null,
  toast,
  announce: (text) => toast(text),
  onProblemsFixed: () => closeMessage("problems"),
};
const Editor = { transcript_correction: TranscriptEditor, translation_review: TranslationEditor, audio_segmentation: SegmentEditor }[type];
const editor = new Editor(ctx);
clear(ui.editor).append(editor.root);
editor.render();

window.reviewApp = {
  ready,
  get wavesurfer() {
    return ctx.player?.ws || null;
  },
  get player() {
    return ctx.player;
  },
  state: store,
  editor,
  data,
  save: () => store.save(),
  submit: (force = false) => submit(force),
  decide: (decision, comment) => submit(false, decision, comment),
  listening,
};

function renderStatus() {
  ui.status.textContent = store.statusText();
  ui.status.dataset.state = store.state;
}
store.addEventListener("status", renderStatus);
renderStatus();

if (!editable) {
  const status = data.task.status.replace(/_/g, " ");
  showMessage("readonly", {
    tone: "muted",
    title: "Read-only",
    text: `This task is ${status}${data.task.status === "in_progress" ? " and held by another reviewer" : ""}: you can listen and read, nothing is saved.`,
  });
  if (store.hadLocalCopy) {
    showMessage("local-kept", { tone: "warn", text: "Edits you made to this task earlier are kept in this browser. Take the task again from your queue to continue them." });
  }
} else if (data.returned) {
  showMessage("returned", {
    tone: "warn",
    title: `Sent back to you by ${data.returned.by || "a second reviewer"}`,
    text: data.returned.comment,
    alert: true,
  });
} else if (source === "local") {
  showMessage("restored", { tone: "info", text: "Restored your latest edits from this browser; they are being saved to the server." });
  setTimeout(() => closeMessage("restored"), 8000);
}

store.addEventListener("blocked", (event) => {
  const { message, reason } = event.detail;
  if (reason === "conflict") {
    showMessage("blocked", {
      tone: "warn",
      title: "Saved from another tab or browser",
      text: message,
      actions: [h("button", { type: "button", class: "primary", text: "Reload this task", onclick: () => window.location.reload() })],
      alert: true,
    });
    return;
  }
  showMessage("blocked", {
    tone: "error",
    title: "This task can no longer be saved",
    text: `${message} Your edits are kept in this browser.`,
    actions: [h("a", { href: data.urls.queue, text: "Back to my queue" })],
  });
});

// --- player --------------------------------------------------------------------------

let lastActivity = Date.now();
for (const name of ["keydown", "input", "pointerdown"]) {
  window.addEventListener(name, () => { lastActivity = Date.now(); }, { passive: true, capture: true });
}

function showTime() {
  const player = ctx.player;
  if (!player) return;
  ui.time.textContent = `${fmtTime(player.now())} / ${fmtTime(player.end)}`;
}

playerStarted
  .then((player) => {
    ctx.player = player;
    const ws = player.ws;
    player.loaded.then(() => {
      editor.attachPlayer();
      showTime();
    });
    let lastTick = 0;
    ws.on("timeupdate", (t) => {
      const nowMs = performance.now();
      if (nowMs - lastTick < 40 && ws.isPlaying()) return;
      lastTick = nowMs;
      showTime();
      const rec = t + player.offset;
      listening.report(rec, ws.isPlaying());
      editor.onTime(rec, ws.isPlaying());
      if (ws.isPlaying()) store.setProgress(t / player.duration);
    });
    ws.on("play", () => {
      ui.play.textContent = "Pause";
      ui.play.setAttribute("aria-pressed", "true");
    });
    ws.on("pause", () => {
      listening.report(0, false);
      ui.play.textContent = "Play";
      ui.play.setAttribute("aria-pressed", "false");
    });
    ws.on("finish", () => {
      ui.play.textContent = "Play";
      store.setProgress(1);
    });
    ws.on("zoom", () => { ui.zoom.value = String(player.zoomLevel()); });
    player.ready.then(() => {
      ui.play.disabled = false;
      document.body.dataset.reviewReady = "1";
      resolveReady(true);
      store.fetchAnalysis();
    });
  })
  .catch((error) => {
    store.fetchAnalysis();
    console.error(error);
    showMessage("player-error", { tone: "error", text: `The player could not start: ${error.message || error}` });
  });

ui.play.addEventListener("click", () => ctx.player?.playPause());
ui.speed.addEventListener("input", () => setSpeed(Number(ui.speed.value)));
ui.zoom.addEventListener("input", () => ctx.player?.setZoom(Number(ui.zoom.value)));
ui.waveform.addEventListener("wheel", (event) => {
  if (!(event.ctrlKey || event.metaKey) || !ctx.player) return;
  event.preventDefault();
  zoomBy(event.deltaY < 0 ? 8 : -8);
}, { passive: false });

function setSpeed(rate) {
  const r = ctx.player ? ctx.player.setRate(rate) : Math.min(SPEED_MAX, Math.max(SPEED_MIN, rate));
  ui.speed.value = String(r);
  ui.speedOut.textContent = `${r.toFixed(2)}×`;
  return r;
}
function zoomBy(delta) {
  if (!ctx.player) return;
  const level = ctx.player.setZoom(ctx.player.zoomLevel() + delta);
  ui.zoom.value = String(level);
}

// Keep rows clear of the sticky player when scrolled into view.
new ResizeObserver(() => {
  document.documentElement.style.setProperty("--player-h", `${ui.player.getBoundingClientRect().height}px`);
}).observe(ui.player);

// --- saving ------------------------------------------------------------------------------

if (editable) {
  ui.save?.addEventListener("click", () => saveNow());
  ui.submit?.addEventListener("click", () => submit(false));
  const flush = () => {
    store.persist();
    if (store.dirty) store.save({ keepalive: true });
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flush();
  });
  window.addEventListener("pagehide", flush);
  window.addEventListener("online", () => store.save());
  window.addEventListener("beforeunload", (event) => {
    // Everything is in localStorage; only warn when even that failed.
    if (store.dirty && store.localFailed && !store.submitted) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
  // The lease: touch every minute while the audio plays or the reviewer is active.
  setInterval(async () => {
    if (store.stopped || store.submitted) return;
    const active = ctx.player?.isPlaying() || Date.now() - lastActivity < 60000;
    if (!active || Date.now() - store.lastServerContact < 45000) return;
    try {
      const answer = await postJSON(data.urls.touch, { listened: listening.intervals });
      store.lastServerContact = Date.now();
      if (answer.ok && answer.data?.lease_expires_at) store.leaseExpiresAt = answer.data.lease_expires_at;
      else if (answer.status === 409) store.block(answer.data?.message);
    } catch {
      /* offline: the autosave's retry says so */
    }
  }, 60000);
  // Another tab with the same task would overwrite this one's copy.
  window.addEventListener("storage", (event) => {
    if (event.key === `review-task:${data.task.id}` && event.newValue) {
      showMessage("other-tab", { tone: "warn", text: "This task is also open in another tab or window. Only one of them can save: the other is stopped and asked to reload. Close one of them." });
    }
  });
}

async function saveNow() {
  if (!store.dirty) {
    toast(store.state === "saved" ? "Everything is saved." : "Nothing to save yet.");
    return;
  }
  const ok = await store.save();
  if (ok) toast("Saved.");
}

// --- submitting ----------------------------------------------------------------------------

let submitting = false;
function setBusy(busy) {
  for (const button of [ui.submit, ...ui.decisions]) if (button) button.disabled = busy;
  if (!busy) showHeard();
}

/** Submit the task, or for a second review send the `decision` (and `comment`). */
async function submit(force, decision = null, comment = null) {
  if (!editable || submitting || store.submitted) return;
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
  store.submitted = true;
  store.stopped = true;
  store.cancelTimer();
  store.clearLocal();
  store.state = "submitted";
  store.emitStatus();
  ctx.player?.pause();
  const parts = [];
  if (result.segments !== undefined) parts.push(`${result.segments} segment${result.segments === 1 ? "" : "s"}`);
  if (result.wer !== null && result.wer !== undefined) parts.push(`WER ${(result.wer * 100).toFixed(1)}% against the machine draft`);
  clear(ui.messages);
  const titles = { reject: "Sent back to the author", approve: "Approved — thank you" };
  const title = answer.already
    ? "Already submitted"
    : titles[decision] || (decision ? "Approved with your changes — thank you" : "Submitted — thank you");
  const said = answer.already ? `${answer.message} ` : parts.length ? `Saved: ${parts.join(", ")}. ` : "";
  showMessage("submitted", {
    tone: "ok",
    title,
    text: `${said}Returning to your queue…`,
    actions: [h("a", { href: data.urls.queue, text: "Back to my queue now" })],
    alert: true,
  });
  app.classList.add("is-submitted");
  const url = new URL(data.urls.queue, window.location.href);
  url.searchParams.set("submitted", "1");
  setTimeout(() => window.location.assign(url.toString()), 1500);
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

// --- second review -------------------------------------------------------------------------

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

// --- shortcuts ---------------------------------------------------------------------------

const actions = {
  playPause: () => ctx.player?.playPause(),
  replay: () => editor.replay(),
  back: () => ctx.player?.skip(-2),
  forward: () => ctx.player?.skip(2),
  prev: () => editor.move(-1),
  next: () => editor.move(1),
  slower: () => toast(`Speed ${setSpeed((ctx.player?.rate ?? Number(ui.speed.value)) - 0.1).toFixed(2)}×`),
  faster: () => toast(`Speed ${setSpeed((ctx.player?.rate ?? Number(ui.speed.value)) + 0.1).toFixed(2)}×`),
  zoomIn: () => zoomBy(10),
  zoomOut: () => zoomBy(-10),
  help: () => toggleHelp(),
};
if (editable) {
  Object.assign(actions, {
    save: () => saveNow(),
    submit: () => submit(false),
    toggleLang: () => editor.toggleLang?.(),
    split: () => editor.split?.(kind === "segments" ? -1 : editor.currentIndex()),
    merge: () => editor.merge?.(editor.currentIndex()),
    insert: () => editor.insert?.(editor.currentIndex()),
    remove: () => editor.remove?.(editor.currentIndex()),
    setStart: () => editor.setTime?.("start", editor.currentIndex()),
    setEnd: () => editor.setTime?.("end", editor.currentIndex()),
    undo: () => editor.undo(),
  });
}
const shortcutList = installShortcuts(type, editable, actions);
if (review) {
  const approveKey = shortcutList.find((s) => s.id === "submit");
  if (approveKey) approveKey.label = "Approve as it is (once you have played the whole task)";
}
renderShortcutList(ui.helpList, shortcutList);
const hint = $("shortcuts-hint");
if (hint && editable && type === "transcript_correction") {
  hint.textContent = "Click a row (not its text) to play it. Click a word chip to switch its language; Enter moves to the next sentence.";
} else if (hint && editable && type === "translation_review") {
  hint.textContent = "Click a row (not its text) to play it. Enter moves to the next translation.";
} else if (hint && editable) {
  hint.textContent = "Click a row to play it. Drag a segment's edges on the waveform; touching segments move together.";
}

function toggleHelp(show) {
  const visible = show ?? ui.help.hidden;
  ui.help.hidden = !visible;
  ui.helpToggle.setAttribute("aria-expanded", String(visible));
  app.classList.toggle("help-hidden", !visible);
  try {
    localStorage.setItem("review-help-hidden", visible ? "0" : "1");
  } catch {
    /* no storage */
  }
}
ui.helpToggle.addEventListener("click", () => toggleHelp());
let helpHidden = false;
try {
  helpHidden = localStorage.getItem("review-help-hidden") === "1";
} catch {
  /* no storage */
}
toggleHelp(!helpHidden);
