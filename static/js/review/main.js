// The review workspace: reads the task's JSON data island, picks the editor for the task
// type, wires the player, saving, submitting and the keyboard shortcuts.
//
// Test hook: window.reviewApp = {ready, wavesurfer, state, editor, player, save(), submit()};
// `ready` resolves (and <body data-review-ready="1"> is set) once the waveform is drawn and
// the audio can play.
import { h, clear, fmtTime } from "./dom.js";
import { Store } from "./store.js";
import { createPlayer } from "./player.js";
import { createTransport } from "./transport.js";
import { TranscriptEditor } from "./transcript.js";
import { TranslationEditor } from "./translation.js";
import { SegmentEditor } from "./segments.js";
import { installShortcuts, renderShortcutList, keysOf } from "./shortcuts.js";
import { postJSON } from "./api.js";
import { Listening } from "./listening.js";
import { createMessages } from "./messages.js";
import { createSubmitting } from "./submit.js";
import { createReporting } from "./report.js";

const data = JSON.parse(document.getElementById("task-data").textContent);
const app = document.getElementById("review-app");
const type = data.task.type;
const editable = Boolean(data.task.editable);
const kind = type === "audio_segmentation" ? "segments" : "sentences";
const settings = data.settings; // the reviewer's own (ra_app/review/preferences.py)
const $ = (id) => document.getElementById(id);
const ui = {
  status: $("save-status"),
  play: $("play"),
  loop: $("loop"),
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

const keysFor = (id) => keysOf(settings.shortcuts, id);
const messages = createMessages({ container: ui.messages, toastBox: ui.toast, undoKeys: keysFor("undo") });
const { toast, showMessage, closeMessage } = messages;

let resolveReady;
const ready = new Promise((resolve) => {
  resolveReady = resolve;
});

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
  keysFor,
  onProblemsFixed: () => closeMessage("problems"),
};
const Editor = { transcript_correction: TranscriptEditor, translation_review: TranslationEditor, audio_segmentation: SegmentEditor }[type];
const editor = new Editor(ctx);
clear(ui.editor).append(editor.root);
editor.render();
const transport = createTransport({ ctx, ui, editor, settings, noun: kind === "segments" ? "segment" : "sentence", toast });
if (editable) createReporting({ data, store, listening, messages, button: $("report") });
const { submit } = createSubmitting({ data, app, ui, store, editor, listening, ctx, kind, review, editable, messages });

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
      transport.onTime(rec, ws.isPlaying());
      listening.report(rec, ws.isPlaying());
      editor.onTime(rec, ws.isPlaying());
      if (ws.isPlaying()) store.setProgress(t / player.duration);
    });
    ws.on("play", () => {
      ui.play.textContent = "Pause";
      ui.play.setAttribute("aria-pressed", "true");
    });
    ws.on("pause", () => {
      transport.onPause();
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

// --- shortcuts ---------------------------------------------------------------------------

const actions = {
  ...transport.actions,
  replay: () => editor.replay(),
  prev: () => editor.move(-1),
  next: () => editor.move(1),
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
const shortcutList = installShortcuts(settings.shortcuts, type, editable, actions);
for (const [element, id, what] of [
  [ui.play, "playPause", "Play / pause"],
  [ui.loop, "loop", "Loop the current sentence"],
  [ui.save, "save", "Save now"],
  [ui.speed, ["slower", "faster"], "Speed"],
]) {
  if (!element) continue;
  const keys = Array.isArray(id) ? `${keysOf(shortcutList, id[0])} slower, ${keysOf(shortcutList, id[1])} faster` : keysOf(shortcutList, id);
  element.title = keys ? `${what} (${keys})` : what;
}
const submitKey = shortcutList.find((s) => s.id === "submit");
if (submitKey && review) submitKey.label = "Approve as it is (once you have played the whole task)";
else if (submitKey && settings.after_submit === "queue") submitKey.label = "Submit and go back to the queue";
if (ui.submit && submitKey) ui.submit.title = `${submitKey.label} (${submitKey.keys.join(" or ")})`;
renderShortcutList(ui.helpList, shortcutList);
const hint = $("shortcuts-hint");
if (hint && editable && type === "transcript_correction") {
  hint.textContent = `Click a row's free space to play it. In the text, Ctrl+click a word to play from it, Alt+click to select it (to type over); ${keysFor("toggleLang")} switches the language of the word at the caret. Enter moves to the next sentence.`;
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
