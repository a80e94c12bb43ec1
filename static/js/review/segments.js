// audio_segmentation: the training segments as regions on the waveform. Drag a boundary
// (neighbouring segments that touch move together), split at the playhead, merge with the
// next. Each segment shows its length against the [segment_min, segment_max] rule and the
// transcript/translation of the sentences whose midpoint lies inside it, live while dragging.
import { h, num, round3, fmtTime, fieldTime, parseTime } from "./dom.js";
import { ListEditor } from "./list.js";

const TOUCH = 0.001; // boundaries closer than this are shared
const MIN_GAP = 0.1; // a segment never shrinks below this while dragging a shared boundary

export class SegmentEditor extends ListEditor {
  constructor(ctx) {
    super(ctx, {
      noun: "Segment",
      regionResize: true,
      regionLabel: (row, i) => {
        const check = this.check(row);
        return `${i + 1} · ${check.length.toFixed(1)} s${check.ok ? "" : " ⚠"}`;
      },
    });
    this.min = Number(ctx.data.rules?.segment_min ?? 10);
    this.max = Number(ctx.data.rules?.segment_max ?? 30);
    this.sentences = (ctx.data.sentences || []).map((s) => ({ ...s, mid: (Number(s.start) + Number(s.end)) / 2 }));
    this.windowStart = Number(ctx.data.task.window_start) || 0;
    this.windowEnd = Number(ctx.data.task.window_end ?? ctx.data.sample.duration);
    this.items.sort((a, b) => Number(a.start) - Number(b.start));
    this.countEl = h("span", { class: "rule-count" });
    this.root.append(
      h("p", { class: "rule" },
        h("strong", { text: `Segments must be ${this.min}–${this.max} s long` }),
        ctx.editable
          ? " (a single sentence longer than the maximum may stay whole). Drag the edges on the waveform, split at the playhead, or merge with the next. "
          : " (a single sentence longer than the maximum may stay whole). ",
        this.countEl),
      this.listEl,
    );
    if (this.editable) {
      this.root.append(h("p", { class: "list-foot" },
        h("button", { type: "button", class: "small", text: "Add segment at playhead", onclick: () => this.addAtPlayhead() })));
    }
  }

  /** A new segment from the playhead to the next segment (or the end of the part). */
  addAtPlayhead() {
    const t = round3(this.player ? this.player.now() : this.windowStart);
    const inside = this.indexAtTime(t);
    if (inside >= 0) {
      this.ctx.announce(`The playhead is inside segment ${inside + 1}: split it there instead (${this.ctx.keysFor("split")}).`);
      return;
    }
    const index = this.items.filter((r) => (num(r.start) ?? -Infinity) <= t).length;
    const next = this.items[index];
    const end = round3(Math.min(next ? num(next.start) : this.windowEnd, this.windowEnd, t + this.max));
    if (end - t < MIN_GAP) {
      this.ctx.announce("There is no room for a segment at the playhead.");
      return;
    }
    this.snapshot("add a segment");
    this.store.items.splice(index, 0, { _id: `g${Date.now().toString(36)}`, start: t, end, text: "", translation: "", too_long: false });
    this.structural(`Segment ${index + 1} added`, index);
  }

  /** The sentences a segment holds: those whose midpoint lies in [start, end). */
  inside(row) {
    const s = num(row.start);
    const e = num(row.end);
    if (s === null || e === null) return [];
    return this.sentences.filter((x) => s <= x.mid && x.mid < e);
  }

  check(row) {
    const s = num(row.start);
    const e = num(row.end);
    const length = s !== null && e !== null ? e - s : NaN;
    const held = this.inside(row);
    const tooLong = held.length === 1 && Number(held[0].end) - Number(held[0].start) > this.max;
    let problem = null;
    if (!Number.isFinite(length)) problem = "start or end is not a number";
    else if (length <= 0) problem = "ends before it starts";
    else if (length < this.min) problem = `too short: ${length.toFixed(1)} s (minimum ${this.min} s)`;
    else if (length > this.max && !tooLong) problem = `too long: ${length.toFixed(1)} s (maximum ${this.max} s)`;
    return { length: Number.isFinite(length) ? length : 0, held, tooLong, ok: !problem, problem };
  }

  isBad(row) {
    return !this.check(row).ok;
  }

  renderRow(row, index) {
    const n = index + 1;
    const li = h("li", { class: "row segment" });
    const play = () => {
      const i = this.indexOfId(row._id);
      this.select(i);
      this.playRow(i);
    };
    const head = h("div", { class: "row-head" },
      h("span", { class: "num", text: n, "aria-hidden": "true" }),
      h("button", { type: "button", class: "icon play-row", "aria-label": "Play segment", title: "Play segment", text: "▶", onclick: play }));
    if (this.editable) {
      head.append(this.timeInput(row, "start", n), h("span", { class: "dash", text: "–" }), this.timeInput(row, "end", n));
    } else {
      head.append(h("span", { class: "times", text: `${fmtTime(num(row.start), 2)} – ${fmtTime(num(row.end), 2)}` }));
    }
    head.append(h("span", { class: "len seg-len" }), h("span", { class: "rule-flag" }));
    if (this.editable) {
      const act = (label, aria, id, fn) => h("button", { type: "button", class: "small", text: label, "aria-label": aria, title: `${aria} (${this.ctx.keysFor(id)})`, onclick: () => fn(this.indexOfId(row._id)) });
      head.append(h("span", { class: "actions" },
        act("Split at playhead", "Split at playhead", "split", (i) => this.split(i)),
        act("Merge with next", "Merge with next", "merge", (i) => this.merge(i)),
        act("Delete", "Delete segment", "remove", (i) => this.remove(i))));
    }
    li.append(head,
      h("p", { class: "seg-text", lang: "vi" }),
      h("p", { class: "seg-translation muted", lang: "vi" }));
    this.fill(li, row);
    return li;
  }

  /** Length, rule flag and the text of the sentences inside: cheap, run on every drag step. */
  fill(li, row) {
    const check = this.check(row);
    li.classList.toggle("bad", !check.ok);
    li.classList.toggle("too-long-ok", check.ok && check.tooLong);
    const len = li.querySelector(".seg-len");
    len.textContent = `${check.length.toFixed(1)} s`;
    len.dataset.length = check.length.toFixed(3);
    const flag = li.querySelector(".rule-flag");
    flag.textContent = check.ok ? (check.tooLong ? "one long sentence: allowed" : "") : `⚠ ${check.problem}`;
    row.text = check.held.map((x) => x.text).join(" ");
    row.translation = check.held.map((x) => x.translation).filter(Boolean).join(" ");
    row.too_long = check.tooLong;
    li.querySelector(".seg-text").textContent = row.text || "(no sentence has its middle in this segment)";
    li.querySelector(".seg-translation").textContent = row.translation;
  }

  afterRender() {
    const bad = this.items.filter((r) => this.isBad(r)).length;
    this.countEl.textContent = bad ? `${bad} of ${this.items.length} segments break the rule.` : (this.items.length === 1 ? "The segment follows the rule." : `All ${this.items.length} segments follow the rule.`);
    this.countEl.classList.toggle("bad", bad > 0);
  }

  refreshRow(row) {
    const li = this.rowEls.get(row._id);
    if (li) {
      this.fill(li, row);
      const s = li.querySelector("input.start");
      const e = li.querySelector("input.end");
      if (s && document.activeElement !== s) s.value = fieldTime(row.start);
      if (e && document.activeElement !== e) e.value = fieldTime(row.end);
    }
    this.afterRender();
  }

  timeInput(row, side, n) {
    const input = h("input", {
      type: "text", inputmode: "decimal", autocomplete: "off", class: `time ${side}`, value: fieldTime(row[side]),
      "aria-label": `Segment ${n} ${side}`, title: `${side === "start" ? "Start" : "End"} in the recording, m:ss.cc (seconds work too)`,
    });
    input.addEventListener("change", () => {
      const value = parseTime(input.value);
      if (value === null) {
        input.setAttribute("aria-invalid", "true");
        return;
      }
      input.setAttribute("aria-invalid", "false");
      this.snapshot(`edit the ${side} of segment ${this.indexOfId(row._id) + 1}`);
      this.moveBoundary(this.indexOfId(row._id), side, round3(value));
      input.value = fieldTime(row[side]);
    });
    input.addEventListener("focus", () => this.select(this.indexOfId(row._id)));
    return input;
  }

  /**
   * Move one edge of segment `index` to `t` (recording time). A neighbour that shared the
   * boundary moves with it; nothing may overlap its neighbour.
   */
  moveBoundary(index, side, t, { linked = null, commit = true } = {}) {
    const row = this.items[index];
    if (!row) return;
    const prev = this.items[index - 1];
    const next = this.items[index + 1];
    const s = num(row.start);
    const e = num(row.end);
    if (side === "end") {
      const shares = linked ?? Boolean(next && e !== null && Math.abs(num(next.start) - e) < TOUCH);
      let value = Math.max(t, (s ?? t) + MIN_GAP);
      if (next) value = Math.min(value, shares ? num(next.end) - MIN_GAP : num(next.start));
      value = Math.min(value, this.windowEnd);
      row.end = round3(value);
      if (next && shares) next.start = row.end;
    } else {
      const shares = linked ?? Boolean(prev && s !== null && Math.abs(num(prev.end) - s) < TOUCH);
      let value = Math.min(t, (e ?? t) - MIN_GAP);
      if (prev) value = Math.max(value, shares ? num(prev.start) + MIN_GAP : num(prev.end));
      value = Math.max(value, this.windowStart);
      row.start = round3(value);
      if (prev && shares) prev.end = row.start;
    }
    // A shared edge moves the neighbour too: its old complaint no longer holds either.
    for (const r of [prev, row, next]) if (r) {
      this.refreshRow(r);
      if (this.player) this.updateRegion(r);
      this.clearProblem(r._id);
    }
    if (commit) this.store.changed();
  }

  onRegionUpdate(region, side, done) {
    if (this.syncing || this.adjusting) return;
    const index = this.indexOfId(region.id);
    const row = this.items[index];
    if (!row) return;
    if (!this.drag || this.drag.id !== region.id) {
      // First step of a drag: does this edge touch the neighbour's? Decide once per drag.
      const prev = this.items[index - 1];
      const next = this.items[index + 1];
      this.snapshot(`move the edges of segment ${index + 1}`);
      this.drag = {
        id: region.id,
        linkedStart: Boolean(prev && Math.abs(num(prev.end) - num(row.start)) < TOUCH),
        linkedEnd: Boolean(next && Math.abs(num(next.start) - num(row.end)) < TOUCH),
      };
    }
    const edge = side || (Math.abs(this.player.toRecording(region.start) - num(row.start)) > TOUCH ? "start" : "end");
    const t = this.player.toRecording(edge === "start" ? region.start : region.end);
    this.adjusting = true;
    try {
      this.moveBoundary(index, edge, t, {
        linked: edge === "start" ? this.drag.linkedStart : this.drag.linkedEnd,
        commit: done,
      });
    } finally {
      this.adjusting = false;
    }
    if (done) {
      this.drag = null;
      this.select(index);
      this.syncRegions(); // labels and colours of every region
    }
  }

  split(index = -1) {
    if (!this.player) return;
    const t = round3(this.player.now());
    let i = index >= 0 ? index : this.indexAtTime(t);
    const row = this.items[i];
    if (!row || !(t > num(row.start) + MIN_GAP && t < num(row.end) - MIN_GAP)) {
      i = this.indexAtTime(t);
    }
    const target = this.items[i];
    if (!target || !(t > num(target.start) + MIN_GAP && t < num(target.end) - MIN_GAP)) {
      this.ctx.announce("Move the playhead inside a segment to split it there.");
      return;
    }
    this.snapshot(`split segment ${i + 1}`);
    const second = { ...target, _id: `${target._id}b${Date.now().toString(36)}`, start: t };
    target.end = t;
    this.store.items.splice(i + 1, 0, second);
    this.structural(`Segment ${i + 1} split at ${fmtTime(t, 2)}`, i + 1);
  }

  merge(index = this.currentIndex()) {
    const a = this.items[index];
    const b = this.items[index + 1];
    if (!a || !b) {
      this.ctx.announce("There is no next segment to merge with.");
      return;
    }
    this.snapshot(`merge segments ${index + 1} and ${index + 2}`);
    a.end = b.end;
    this.store.items.splice(index + 1, 1);
    this.structural(`Segments ${index + 1} and ${index + 2} merged`, index);
  }

  remove(index = this.currentIndex()) {
    if (!this.items[index]) return;
    this.snapshot(`delete segment ${index + 1}`);
    this.store.items.splice(index, 1);
    this.structural(`Segment ${index + 1} deleted`, Math.min(index, this.items.length - 1));
  }

  setTime(side, index = this.currentIndex()) {
    if (!this.player || !this.items[index]) return;
    this.snapshot(`set the ${side} of segment ${index + 1}`);
    this.moveBoundary(index, side, this.player.now());
    this.syncRegions();
  }

  focusRow(index) {
    this.rowEls.get(this.items[index]?._id)?.querySelector(".play-row")?.focus();
  }

  validate() {
    const problems = new Map();
    this.items.forEach((row, i) => {
      const check = this.check(row);
      const list = [];
      if (!check.ok) list.push(`Segment ${i + 1} is ${check.problem}.`);
      const prev = this.items[i - 1];
      if (prev && num(row.start) < num(prev.end) - TOUCH) list.push(`Segment ${i + 1} overlaps the one before it.`);
      if (num(row.start) < this.windowStart || num(row.start) >= this.windowEnd) list.push(`Segment ${i + 1} starts outside this task's part.`);
      if (list.length) problems.set(row._id, list);
    });
    if (!this.items.length) problems.set("_none", ["There are no segments."]);
    return problems;
  }
}
