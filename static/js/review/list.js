// What the three editors share: a list of rows (sentences or segments) with one "current"
// row, click-to-play, the row playing highlighted and kept in view, regions on the waveform
// for the rows, problems shown next to rows, and an undo for structural edits.
//
// Long module: one class, the editors' shared base; its rows and its waveform regions update
// each other on every edit, so they stay together.
import { h, clear, num, whenIdle, FIELD_SIZING } from "./dom.js";
import { alignedWords, wordStart } from "./sentences.js";
import { RowRegions } from "./regions.js";

// Long tasks (a whole hour: ~900 rows) draw the first rows at once and the rest when the
// page is idle, so they never block the player (the waveform's regions: regions.js).
const FIRST_ROWS = 40;
const ROW_BATCH = 25;
const SLICE_MS = 8;

/** The rows drawn so far by id; asking for one not drawn yet draws the rest first. */
class RowMap extends Map {
  constructor(editor) {
    super();
    this.editor = editor;
  }

  get(id) {
    if (!super.has(id)) this.editor?.flushRows();
    return super.get(id);
  }

  /** The row if it is drawn already, without drawing the rest. */
  peek(id) {
    return super.get(id);
  }

  keys() {
    this.editor?.flushRows();
    return super.keys();
  }
}


export class ListEditor {
  constructor(ctx, { noun = "Sentence", regionResize = false, regionLabel = null } = {}) {
    this.ctx = ctx; // {store, data, editable, player (set later), toast, announce}
    this.store = ctx.store;
    this.editable = ctx.editable;
    this.noun = noun;
    this.regionResize = regionResize && ctx.editable;
    this.regionLabel = regionLabel;
    this.rowEls = new RowMap(this);
    this.rowsDrawn = 0;
    this.rowsGen = 0;
    this.selectedId = null;
    this.playingId = null;
    this.undoStack = [];
    this.problems = new Map(); // row _id -> [messages]
    this.lastTyped = 0;
    this.root = h("div", { class: `editor editor-${ctx.data.task.type}` });
    this.listEl = h("ol", { class: "rows", "aria-label": `${noun}s` });
  }

  get items() {
    return this.store.items;
  }

  get player() {
    return this.ctx.player;
  }

  indexOfId(id) {
    return this.items.findIndex((row) => row._id === id);
  }

  /** The row the reviewer is on: the one holding focus, else the selected, else the one playing. */
  currentIndex() {
    const active = document.activeElement;
    const li = active && active.closest ? active.closest("li[data-id]") : null;
    if (li && this.listEl.contains(li)) return this.indexOfId(li.dataset.id);
    for (const id of [this.selectedId, this.playingId]) {
      const i = id ? this.indexOfId(id) : -1;
      if (i >= 0) return i;
    }
    if (this.player) {
      const i = this.indexAtTime(this.player.now());
      if (i >= 0) return i;
    }
    return this.items.length ? 0 : -1;
  }

  indexAtTime(t) {
    let best = -1;
    this.items.forEach((row, i) => {
      const s = num(row.start);
      const e = num(row.end);
      if (s !== null && e !== null && t >= s && t < e && best < 0) best = i;
    });
    return best;
  }

  /** Rows are numbered in the order shown; each re-render rebuilds the list. */
  render() {
    this.rowsGen += 1;
    clear(this.listEl);
    this.rowEls.clear();
    this.rowsDrawn = 0;
    if (!this.items.length) this.listEl.append(this.emptyRow());
    // Without CSS field sizing the textareas are grown by script over all rows: draw them all.
    this.drawRows(FIELD_SIZING ? FIRST_ROWS : this.items.length);
    if (this.rowsDrawn < this.items.length) this.scheduleRows();
    this.afterRender();
    this.syncRegions();
  }

  /** Draw rows up to `end` (exclusive). */
  drawRows(end) {
    const items = this.items;
    const last = Math.min(end, items.length);
    if (this.rowsDrawn >= last) return;
    const fragment = document.createDocumentFragment();
    const drawn = [];
    for (; this.rowsDrawn < last; this.rowsDrawn += 1) {
      const index = this.rowsDrawn;
      const row = items[index];
      const li = this.renderRow(row, index);
      li.dataset.id = row._id;
      li.setAttribute("aria-label", `${this.noun} ${index + 1}`);
      if (row._id === this.selectedId) li.classList.add("selected");
      if (row._id === this.playingId) li.classList.add("playing");
      li.addEventListener("click", (event) => this.onRowClick(event, row._id));
      this.rowEls.set(row._id, li);
      fragment.append(li);
      drawn.push(row._id);
    }
    this.listEl.append(fragment);
    for (const id of drawn) this.showRowProblems(id);
  }

  /** Draw every row not drawn yet (someone needs one of them now). */
  flushRows() {
    if (this.flushing || this.rowsDrawn >= this.items.length) return;
    this.flushing = true;
    try {
      this.drawRows(this.items.length);
    } finally {
      this.flushing = false;
    }
  }

  scheduleRows() {
    const gen = this.rowsGen;
    const step = (deadline) => {
      if (gen !== this.rowsGen) return;
      const stop = performance.now() + SLICE_MS;
      do {
        this.drawRows(this.rowsDrawn + ROW_BATCH);
      } while (this.rowsDrawn < this.items.length && (deadline && !deadline.didTimeout ? deadline.timeRemaining() > 2 : performance.now() < stop));
      if (this.rowsDrawn < this.items.length) whenIdle(step);
    };
    whenIdle(step);
  }

  emptyRow() {
    return h("li", { class: "row empty muted", text: `No ${this.noun.toLowerCase()}s in this part.` });
  }

  afterRender() {}

  onRowClick(event, id) {
    // The row, not its fields or buttons, plays the row.
    if (event.target.closest("input, textarea, button, select, label, a, [contenteditable]")) return;
    const index = this.indexOfId(id);
    if (index < 0) return;
    this.select(index);
    this.playRow(index);
  }

  select(index, { focus = false, play = false } = {}) {
    const row = this.items[index];
    if (!row) return;
    if (this.selectedId && this.rowEls.get(this.selectedId)) this.rowEls.get(this.selectedId).classList.remove("selected");
    this.selectedId = row._id;
    this.regions?.followRows();
    const li = this.rowEls.get(row._id);
    if (li) {
      li.classList.add("selected");
      li.scrollIntoView({ block: "nearest" });
    }
    if (focus) this.focusRow(index);
    if (play) this.playRow(index);
  }

  /** Focus the row's main field (overridden by editors). */
  focusRow(index) {
    const li = this.rowEls.get(this.items[index]?._id);
    li?.querySelector("textarea, input, button")?.focus({ preventScroll: false });
  }

  playRow(index) {
    const row = this.items[index];
    if (!row || !this.player) return;
    const s = num(row.start);
    const e = num(row.end);
    if (s === null) return;
    this.selectedId = row._id;
    this.player.playRange(s, e !== null && e > s ? e : undefined);
  }

  /** A click on a word plays from it: its aligned time, else an estimate from the text. */
  playFromWord(row, index) {
    const found = wordStart(row, index, alignedWords(row, this.ctx.data.word_times));
    if (!found || !this.player) return;
    this.select(this.indexOfId(row._id));
    this.player.playRange(found.at);
  }

  move(delta) {
    if (!this.items.length) return;
    const current = this.currentIndex();
    const index = Math.min(this.items.length - 1, Math.max(0, (current < 0 ? -1 : current) + delta));
    this.select(index, { focus: true, play: true });
  }

  replay() {
    const index = this.currentIndex();
    if (index >= 0) this.playRow(index);
  }

  /** Called as the playhead moves (recording time). */
  onTime(t, playing) {
    const index = this.indexAtTime(t);
    const id = index >= 0 ? this.items[index]._id : null;
    if (id === this.playingId) return;
    const previous = this.playingId;
    const old = previous && this.rowEls.get(previous);
    if (old) old.classList.remove("playing");
    this.playingId = id;
    this.colorRegion(previous);
    this.regions?.followRows();
    const li = id && this.rowEls.get(id);
    if (li) {
      li.classList.add("playing");
      this.colorRegion(id);
      // Keep the row in view while it plays, unless the reviewer is typing elsewhere.
      const typingElsewhere = Date.now() - this.lastTyped < 2500 && !li.contains(document.activeElement);
      if (playing && !typingElsewhere) scrollIntoViewIfNeeded(li);
    }
  }

  // --- the rows on the waveform (regions.js) --------------------------------------------

  attachPlayer() {
    this.regions = new RowRegions(this);
    this.regions.attach();
  }

  /** While regions are being placed, their update events are not edits. */
  get syncing() {
    return Boolean(this.regions?.syncing);
  }

  /** Every region anew: numbers, labels and colours after a structural edit. */
  syncRegions() {
    this.regions?.sync({ all: true });
  }

  /** One row's times changed. */
  updateRegion(row) {
    this.regions?.update(row);
  }

  colorRegion(id) {
    if (id) this.regions?.color(id);
  }

  onRegionUpdate() {}

  // --- undo for split / merge / insert / delete / time changes ---------------------------

  snapshot(label) {
    this.undoStack.push({ label, items: structuredClone(this.items), index: this.currentIndex() });
    if (this.undoStack.length > 50) this.undoStack.shift();
  }

  undo() {
    const last = this.undoStack.pop();
    if (!last) {
      this.ctx.announce("Nothing to undo.");
      return;
    }
    this.store.items = last.items;
    this.store.changed();
    this.forgetGoneProblems();
    this.render();
    if (last.index >= 0 && last.index < this.items.length) this.select(last.index, { focus: true });
    this.ctx.announce(`Undone: ${last.label}.`);
  }

  /** After a structural edit: save, redraw, say what happened with an Undo button. */
  structural(label, focusIndex, focusOpts) {
    this.store.changed();
    this.forgetGoneProblems();
    this.render();
    if (focusIndex !== undefined && focusIndex >= 0) {
      this.select(focusIndex);
      this.focusRow(focusIndex, focusOpts);
    }
    this.ctx.toast(`${label}.`, () => this.undo());
  }

  // --- problems -----------------------------------------------------------------------

  setProblems(byId) {
    this.problems = byId;
    for (const id of this.rowEls.keys()) this.showRowProblems(id);
  }

  /** A problem of a row that is gone (deleted, merged away) is no problem any more. */
  forgetGoneProblems() {
    const ids = new Set(this.items.map((r) => r._id));
    let gone = false;
    for (const id of [...this.problems.keys()]) {
      if (!ids.has(id)) {
        this.problems.delete(id);
        gone = true;
      }
    }
    if (gone && !this.problems.size) this.ctx.onProblemsFixed?.();
  }

  clearProblem(id) {
    if (this.problems.has(id)) {
      this.problems.delete(id);
      this.showRowProblems(id);
      if (!this.problems.size) this.ctx.onProblemsFixed?.();
    }
  }

  showRowProblems(id) {
    const li = this.rowEls.get(id);
    if (!li) return;
    li.querySelector(".problems")?.remove();
    const list = this.problems.get(id);
    li.classList.toggle("has-problem", Boolean(list && list.length));
    if (list && list.length) {
      li.append(h("ul", { class: "problems" }, list.map((m) => h("li", { text: m }))));
    }
  }

  /** Map the server's "Sentence 3 …" / "Segment 3 …" messages (numbered by start) to rows. */
  problemsFromServer(messages) {
    const order = this.items
      .map((row, i) => ({ row, i, s: num(row.start) ?? Infinity }))
      .sort((a, b) => a.s - b.s || a.i - b.i);
    const byId = new Map();
    const general = [];
    const re = new RegExp(`^${this.noun} (\\d+)\\b`);
    for (const message of messages || []) {
      const m = re.exec(message);
      const entry = m ? order[Number(m[1]) - 1] : null;
      if (entry) {
        const list = byId.get(entry.row._id) || [];
        list.push(message);
        byId.set(entry.row._id, list);
      } else general.push(message);
    }
    return { byId, general };
  }
}

function scrollIntoViewIfNeeded(el) {
  const rect = el.getBoundingClientRect();
  const top = document.querySelector(".player")?.getBoundingClientRect().bottom || 0;
  if (rect.top < top + 4 || rect.bottom > window.innerHeight - 4) {
    el.scrollIntoView({ block: "center", behavior: "smooth" });
  }
}
