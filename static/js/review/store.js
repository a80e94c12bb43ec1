// The reviewer's working copy: kept in localStorage on every edit (a reload, a crash or a
// server restart loses nothing), autosaved to the server as a draft every few seconds while
// it changes and when the page is hidden, and the status line that says where it stands.
//
// Long module: one class; the local copy, the autosave and the status line read and write
// the same state on every edit, so they stay together.
import { getJSON, postJSON, NetworkError, answerMessage } from "./api.js";
import { fmtClock, parseServerTime, uid } from "./dom.js";

const AUTOSAVE_MS = 3000;
const KEEPALIVE_LIMIT = 60000; // browsers cap keepalive bodies at 64 KiB
const SENTENCE_KEYS = ["start", "end", "text", "translation", "flags", "lang_overrides"];
const SEGMENT_KEYS = ["start", "end", "text", "translation", "too_long"];

export function storageKey(taskId) {
  return `review-task:${taskId}`;
}

function readLocal(taskId) {
  try {
    const raw = localStorage.getItem(storageKey(taskId));
    const copy = raw ? JSON.parse(raw) : null;
    return copy && Array.isArray(copy.items) ? copy : null;
  } catch {
    return null;
  }
}

function withIds(rows, prefix) {
  return (rows || []).map((row) => ({ ...row, _id: uid(prefix) }));
}

export function normaliseSentence(row) {
  return {
    start: row.start,
    end: row.end,
    text: String(row.text ?? ""),
    translation: String(row.translation ?? ""),
    flags: Array.isArray(row.flags) ? row.flags.filter((f) => typeof f === "string") : [],
    lang_overrides: row.lang_overrides && typeof row.lang_overrides === "object" ? { ...row.lang_overrides } : {},
  };
}

export class Store extends EventTarget {
  /** kind: "sentences" (text tasks) or "segments". */
  constructor(data, kind) {
    super();
    this.data = data;
    this.kind = kind;
    this.taskId = data.task.id;
    this.editable = Boolean(data.task.editable);
    this.items = [];
    this.analysis = new Map(); // row _id -> {text, overrides, words, english_share}
    this.diff = null;
    this.wer = null;
    this.cer = null;
    this.opened = null; // {ids, snapshot}: the rows the server's first analysis is about
    this.version = 0;
    this.savedVersion = 0;
    this.serverSavedAt = data.draft_saved_at || null;
    // The server's draft this copy builds on: a save from an older one is refused (another
    // tab or browser saved since), so two copies never overwrite each other unseen.
    this.draftVersion = Number(data.draft_version) || 0;
    this.leaseExpiresAt = data.task.lease_expires_at || null;
    this.progress = Number(data.draft?.progress) || 0;
    this.source = "base";
    this.state = this.editable ? "clean" : "readonly";
    this.message = "";
    this.saving = null;
    this.timer = null;
    this.retryMs = 0;
    this.stopped = !this.editable;
    this.localFailed = false;
    this.lastServerContact = Date.now();
    this.hadLocalCopy = false;
  }

  get rows() {
    return this.items;
  }

  /** The working rows under their contract name (undefined for the other kind). */
  get sentences() {
    return this.kind === "sentences" ? this.items : undefined;
  }

  get segments() {
    return this.kind === "segments" ? this.items : undefined;
  }

  get dirty() {
    return this.version !== this.savedVersion;
  }

  /** Pick the newest of: this browser's copy, the server draft, the task's base rows. */
  load() {
    const { data, kind } = this;
    const prefix = kind === "segments" ? "g" : "s";
    const base = kind === "segments" ? data.segments || [] : data.sentences || [];
    const serverDraft = data.draft && Array.isArray(data.draft[kind]) ? data.draft[kind] : null;
    // What the server analysed (task_data analyses the draft's sentences, else the base rows).
    const shown = kind === "sentences" ? (data.draft?.sentences || data.sentences || []) : [];
    const local = readLocal(this.taskId);
    this.hadLocalCopy = Boolean(local && local.dirty);
    let chosen = serverDraft || base;
    this.source = serverDraft ? "draft" : "base";
    if (this.editable && local && local.kind === kind) {
      const localAt = Date.parse(local.editedAt || "") || 0;
      const draftAt = parseServerTime(data.draft_saved_at)?.getTime() || 0;
      // Same draft as when this copy last synced? (Compare instants: the server writes
      // "…+00:00" after a save but may read back a naive UTC time.)
      const serverUnchanged = (parseServerTime(local.serverSavedAt)?.getTime() || 0) === draftAt;
      if (local.dirty && (serverUnchanged || !serverDraft || localAt > draftAt)) {
        chosen = local.items;
        this.source = "local";
      }
      if (this.source === "local") this.progress = Math.max(this.progress, Number(local.progress) || 0);
    }
    const normalise = kind === "segments" ? (r) => ({ ...r }) : normaliseSentence;
    this.items = withIds(chosen.map(normalise), prefix);
    // The server analyses `shown` (fetchAnalysis); each row's entry is valid for that text.
    this.opened = {
      ids: this.items.map((row) => row._id),
      snapshot: shown.map((row) => ({ text: row.text, overrides: row.lang_overrides || {} })),
    };
    if (this.source === "local") {
      this.version = 1; // unsaved to the server: send it soon
      this.state = "dirty";
      this.persist();
      this.schedule(500);
    } else if (this.editable) {
      this.state = this.source === "draft" ? "saved" : "clean";
    }
    this.emitStatus();
    return this.source;
  }

  /** Call after every edit. */
  changed() {
    if (!this.editable || this.submitted) return;
    this.version += 1;
    this.editedAt = new Date().toISOString();
    this.persist();
    if (this.state !== "offline" && this.state !== "blocked") this.state = "dirty";
    this.emitStatus();
    this.schedule(AUTOSAVE_MS);
    this.dispatchEvent(new Event("change"));
  }

  setProgress(value) {
    if (value > this.progress + 0.01) {
      this.progress = Math.min(1, value);
    }
  }

  clean(row) {
    const keys = this.kind === "segments" ? SEGMENT_KEYS : SENTENCE_KEYS;
    const out = {};
    for (const key of keys) if (key in row) out[key] = row[key];
    return out;
  }

  /** The draft as sent; `extra()` (set by the page) adds what is not rows, e.g. listening. */
  payload() {
    return {
      [this.kind]: this.items.map((row) => this.clean(row)),
      progress: Math.round(this.progress * 1000) / 1000,
      draft_version: this.draftVersion,
      ...(this.extra ? this.extra() : {}),
    };
  }

  persist() {
    if (!this.editable || this.submitted) return;
    try {
      localStorage.setItem(
        storageKey(this.taskId),
        JSON.stringify({
          v: 1,
          taskId: this.taskId,
          kind: this.kind,
          items: this.items.map((row) => this.clean(row)),
          editedAt: this.editedAt || new Date().toISOString(),
          serverSavedAt: this.serverSavedAt,
          dirty: this.dirty,
          progress: this.progress,
        }),
      );
      this.localFailed = false;
    } catch {
      this.localFailed = true; // storage full or disabled: the server draft is the only copy
    }
  }

  /** The task is done here (submitted, decided, given back, reported): nothing more is
   * saved, and this browser's copy goes. */
  finish() {
    this.submitted = true;
    this.stopped = true;
    this.cancelTimer();
    this.clearLocal();
    this.state = "submitted";
    this.emitStatus();
  }

  clearLocal() {
    try {
      localStorage.removeItem(storageKey(this.taskId));
    } catch {
      /* nothing to clear */
    }
  }

  schedule(delay = AUTOSAVE_MS) {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.save();
    }, delay);
  }

  cancelTimer() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Send the draft now if it changed. `keepalive` for page hide (survives unload). */
  async save({ keepalive = false } = {}) {
    if (this.stopped || this.submitted || !this.dirty) return true;
    if (this.saving) {
      if (!keepalive) {
        await this.saving;
        return this.save();
      }
    }
    this.cancelTimer();
    const version = this.version;
    const ids = this.items.map((row) => row._id);
    const snapshot = this.items.map((row) => ({ text: row.text, overrides: { ...(row.lang_overrides || {}) } }));
    const body = this.payload();
    const useKeepalive = keepalive && JSON.stringify(body).length < KEEPALIVE_LIMIT;
    const run = (async () => {
      try {
        const answer = await postJSON(this.data.urls.draft, body, { keepalive: useKeepalive });
        this.lastServerContact = Date.now();
        if (answer.ok && answer.data && answer.data.saved_at) {
          this.retryMs = 0;
          this.savedVersion = Math.max(this.savedVersion, version);
          this.serverSavedAt = answer.data.saved_at;
          this.draftVersion = Number(answer.data.draft_version) || this.draftVersion;
          this.lastSaved = parseServerTime(answer.data.saved_at) || new Date();
          if (answer.data.lease_expires_at) this.leaseExpiresAt = answer.data.lease_expires_at;
          this.applyAnalysis(answer.data.analysis, ids, snapshot);
          this.state = this.dirty ? "dirty" : "saved";
          this.persist();
          this.emitStatus();
          if (this.dirty) this.schedule(AUTOSAVE_MS);
          return true;
        }
        const refusal = answer.status === 409 ? answer.data?.error : null;
        if (refusal === "draft_conflict") {
          this.block(answer.data.message, "conflict");
          return false;
        }
        if (refusal) {
          this.block(answer.data.message);
          return false;
        }
        this.state = "error";
        this.message = answer.ok ? answerMessage({ status: 401, redirected: true }) : answerMessage(answer);
        this.emitStatus();
        this.retryLater();
        return false;
      } catch (error) {
        if (!(error instanceof NetworkError)) throw error;
        this.state = "offline";
        this.emitStatus();
        this.retryLater();
        return false;
      }
    })();
    this.saving = run;
    try {
      return await run;
    } finally {
      if (this.saving === run) this.saving = null;
    }
  }

  retryLater() {
    this.retryMs = Math.min(30000, this.retryMs ? this.retryMs * 2 : 5000);
    this.schedule(this.retryMs);
  }

  /** The server will not take drafts any more (task submitted, lease lost, not yours), or
   * not this copy's (`reason` "conflict": another tab or browser saved a newer draft). */
  block(message, reason = "blocked") {
    this.state = "blocked";
    this.blockedBy = reason;
    this.message = message || "This task can no longer be edited.";
    this.stopped = true;
    this.cancelTimer();
    this.persist();
    this.emitStatus();
    this.dispatchEvent(new CustomEvent("blocked", { detail: { message: this.message, reason } }));
  }

  /** The server's analysis of the rows the page opened with: asked for once the page is
   * ready, because an hour's word tags and scores take longer than drawing the page. */
  async fetchAnalysis() {
    if (this.kind !== "sentences" || !this.data.urls.analysis || !this.opened) return;
    try {
      const answer = await getJSON(this.data.urls.analysis);
      if (answer.ok && answer.data) this.applyAnalysis(answer.data, this.opened.ids, this.opened.snapshot);
    } catch {
      /* offline: the next autosave brings the analysis */
    }
  }

  applyAnalysis(analysis, ids, snapshot) {
    if (!analysis) return;
    (analysis.sentences || []).forEach((entry, i) => {
      if (!ids[i] || !snapshot[i]) return;
      this.analysis.set(ids[i], {
        text: snapshot[i].text,
        overrides: snapshot[i].overrides,
        words: entry.words || [],
        english_share: entry.english_share || 0,
      });
    });
    if ("diff" in analysis) this.diff = analysis.diff;
    if ("wer" in analysis) this.wer = analysis.wer;
    if ("cer" in analysis) this.cer = analysis.cer;
    this.dispatchEvent(new Event("analysis"));
  }

  statusText() {
    switch (this.state) {
      case "readonly":
        return "Read-only";
      case "clean":
        return "No changes yet";
      case "saved":
        return `Saved ${fmtClock(this.lastSaved || parseServerTime(this.serverSavedAt) || new Date())}`;
      case "dirty":
        return this.localFailed ? "Unsaved changes (this browser could not keep a copy)" : "Unsaved changes";
      case "saving":
        return "Saving…";
      case "offline":
        return "Offline — kept in this browser";
      case "error":
        return `Not saved: ${this.message} — kept in this browser`;
      case "blocked":
        return this.blockedBy === "conflict"
          ? "Not saved: another tab or browser saved this task"
          : `Not saved: ${this.message}`;
      case "submitting":
        return "Submitting…";
      case "submitted":
        return "Submitted";
      default:
        return "";
    }
  }

  emitStatus() {
    this.dispatchEvent(new Event("status"));
  }
}
