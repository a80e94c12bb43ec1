// transcript_correction: fix the code-switched transcript sentence by sentence (text, start,
// end), split and merge sentences, insert a missed one, delete a false one. Translations,
// flags and language overrides travel with the sentences through split and merge.
//
// Long module: one class, the transcript editor; its row drawing, its words and its
// structural edits all work on the same rows and the same caret, so they stay together
// (what a split or merge does to a sentence's fields is in sentences.js).
import { h, num, round3, autoGrow, autoGrowAll, fmtTime, fieldTime, parseTime } from "./dom.js";
import { ListEditor } from "./list.js";
import { alignedWords, flagText, mergeSentences, newSentence, splitOffset, splitSentence, splitTime } from "./sentences.js";
import { pickWord, rowWords, showWords, toggleWordLanguage, tokenAt, wordKey, renderDiff, pct } from "./words.js";

function readFlag(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export class TranscriptEditor extends ListEditor {
  constructor(ctx) {
    super(ctx, { noun: "Sentence", regionResize: true });
    this.data = ctx.data;
    this.estimated = new Set(); // rows whose split time was estimated from the text
    this.caretRowId = null; // the row whose text field had the focus last
    const window = ctx.data.task;
    this.windowStart = Number(window.window_start) || 0;
    this.windowEnd = Number(window.window_end ?? ctx.data.sample.duration);
    this.summary = this.buildSummary();
    this.root.append(this.summary, this.listEl);
    if (this.editable) {
      this.root.append(
        h("p", { class: "list-foot" },
          h("button", { type: "button", class: "small", text: "Add sentence at playhead", onclick: () => this.insertAtPlayhead() })),
      );
    }
    this.store.addEventListener("analysis", () => this.refreshAnalysis());
  }

  // --- summary: WER/CER and the diff against the machine draft ---------------------------

  buildSummary() {
    this.scoreEl = h("span", { class: "scores" });
    this.diffEl = h("div", { class: "diff", "aria-label": "Word changes against the machine draft" });
    const details = h("details", { class: "summary card-lite", open: readFlag("review-diff-closed") !== "1" },
      h("summary", {}, h("strong", { text: "Changes vs machine draft" }), " ", this.scoreEl),
      h("p", { class: "muted small", text: "Struck-through words are the machine's, underlined ones yours. Updated with each autosave." }),
      this.diffEl);
    details.addEventListener("toggle", () => {
      try {
        localStorage.setItem("review-diff-closed", details.open ? "0" : "1");
      } catch {
        /* no storage */
      }
    });
    this.refreshSummary();
    return details;
  }

  refreshSummary() {
    const { wer, cer, diff } = this.store;
    this.scoreEl.textContent = `WER ${pct(wer)} · CER ${pct(cer)}`;
    this.scoreEl.dataset.wer = wer ?? "";
    this.scoreEl.dataset.cer = cer ?? "";
    renderDiff(this.diffEl, diff);
  }

  refreshAnalysis() {
    this.refreshSummary();
    this.items.forEach((row) => this.refreshWords(row));
  }

  // --- rows -----------------------------------------------------------------------------

  renderRow(row, index) {
    const n = index + 1;
    const li = h("li", { class: "row sentence" });
    const head = h("div", { class: "row-head" },
      h("span", { class: "num", text: n, "aria-hidden": "true" }),
      h("button", { type: "button", class: "icon play-row", "aria-label": "Play sentence", title: `Play sentence (click the row, or ${this.ctx.keysFor("replay")})`, text: "▶", onclick: () => { this.select(this.indexOfId(row._id)); this.playRow(this.indexOfId(row._id)); } }));
    if (this.editable) {
      head.append(this.timeInput(row, "start", n), h("span", { class: "dash", text: "–" }), this.timeInput(row, "end", n));
    } else {
      head.append(h("span", { class: "times", text: `${fmtTime(num(row.start), 2)} – ${fmtTime(num(row.end), 2)}` }));
    }
    head.append(h("span", { class: "len", text: this.lengthText(row) }), h("span", { class: "share", title: "Share of English words" }));
    if (this.editable) {
      const act = (label, aria, id, fn) => h("button", { type: "button", class: "small", text: label, "aria-label": aria, title: `${aria} (${this.ctx.keysFor(id)})`, onclick: () => fn(this.indexOfId(row._id)) });
      head.append(h("span", { class: "actions" },
        act("Split", "Split at the caret", "split", (i) => this.split(i)),
        act("Merge", "Merge with next", "merge", (i) => this.merge(i)),
        act("Insert", "Insert sentence after", "insert", (i) => this.insert(i)),
        act("Delete", "Delete sentence", "remove", (i) => this.remove(i))));
    }
    li.append(head);
    if (this.editable) {
      const ta = h("textarea", {
        class: "text", rows: 1, spellcheck: false, value: row.text,
        "aria-label": `Sentence ${n} text`, lang: "vi",
      });
      ta.addEventListener("input", () => this.onText(row, ta));
      ta.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey && !event.isComposing) {
          event.preventDefault(); // one sentence per field: Enter goes to the next one
          const i = this.indexOfId(row._id);
          if (i + 1 < this.items.length) this.select(i + 1, { focus: true });
        }
      });
      ta.addEventListener("focus", () => {
        this.caretRowId = row._id;
        this.select(this.indexOfId(row._id));
      });
      // Ctrl/⌘+click plays from the word clicked, Alt+click selects it to type over; a
      // plain click only places the caret, as in any text field.
      pickWord(ta, (index) => this.playFromWord(row, index));
      // The words, coloured by language, drawn under the field's transparent text.
      li.append(h("div", { class: "text-wrap" }, h("div", { class: "words backdrop", "aria-hidden": "true", lang: "vi" }), ta));
    } else {
      li.append(h("p", { class: "words text-ro", lang: "vi" }));
    }
    if (row.translation) li.append(h("p", { class: "translation-ro", lang: "vi" }, h("span", { class: "label", text: "Translation: " }), row.translation));
    if (row.flags?.length) li.append(h("p", { class: "flags-ro" }, row.flags.map((f) => h("span", { class: "flag", dataset: { flag: f }, text: flagText(f, this.data.flag_words) }))));
    this.fillWords(li, row, n);
    return li;
  }

  timeInput(row, side, n) {
    const input = h("input", {
      type: "text", inputmode: "decimal", autocomplete: "off", class: `time ${side}`, value: fieldTime(row[side]),
      "aria-label": `Sentence ${n} ${side}`, title: `${side === "start" ? "Start" : "End"} in the recording, m:ss.cc (seconds work too; ${this.ctx.keysFor(side === "start" ? "setStart" : "setEnd")} sets it to the playhead)`,
    });
    if (this.estimated.has(row._id)) {
      input.classList.add("estimate");
      input.title = `Estimated from the text when the sentence was split: check it by ear. ${input.title}`;
    }
    // A typed change is one undo step: the state before the first keystroke since focus.
    let snapped = false;
    input.addEventListener("focus", () => { snapped = false; });
    input.addEventListener("input", () => {
      if (!snapped) {
        this.snapshot(`edit the ${side} of sentence ${this.indexOfId(row._id) + 1}`);
        snapped = true;
      }
      this.estimated.delete(row._id);
      input.classList.remove("estimate");
      const value = parseTime(input.value);
      row[side] = value === null ? input.value : round3(value);
      input.setAttribute("aria-invalid", value === null ? "true" : "false");
      this.afterTimeEdit(row);
    });
    input.addEventListener("change", () => {
      input.value = fieldTime(row[side]);
      this.resortIfNeeded(row, input);
    });
    input.addEventListener("focus", () => this.select(this.indexOfId(row._id)));
    return input;
  }

  afterTimeEdit(row) {
    this.store.changed();
    this.clearProblem(row._id);
    const li = this.rowEls.get(row._id);
    if (li) li.querySelector(".len").textContent = this.lengthText(row);
    if (this.player) this.updateRegion(row);
  }

  /** Keep the list in time order (the server numbers sentences by start). */
  resortIfNeeded(row, input) {
    const starts = this.items.map((r) => num(r.start) ?? Infinity);
    if (starts.every((s, i) => i === 0 || starts[i - 1] <= s)) return;
    const side = input.classList.contains("start") ? "start" : "end";
    this.store.items.sort((a, b) => (num(a.start) ?? Infinity) - (num(b.start) ?? Infinity));
    this.store.changed();
    this.render();
    const i = this.indexOfId(row._id);
    this.rowEls.get(row._id)?.querySelector(`input.${side}`)?.focus();
    this.ctx.announce(`Sentence moved to position ${i + 1} (sentences are kept in time order).`);
  }

  lengthText(row) {
    const s = num(row.start);
    const e = num(row.end);
    return s !== null && e !== null ? `${(e - s).toFixed(1)} s` : "";
  }

  onText(row, ta) {
    if (/[\r\n]/.test(ta.value)) {
      const caret = ta.selectionStart;
      ta.value = ta.value.replace(/[\r\n]+/g, " ");
      ta.setSelectionRange(caret, caret);
    }
    row.text = ta.value;
    this.lastTyped = Date.now();
    autoGrow(ta);
    this.clearProblem(row._id);
    this.store.changed();
    this.refreshWords(row);
  }

  fillWords(li, row, n) {
    const result = rowWords(row, this.store.analysis.get(row._id));
    // Read-only text: its words are what a click lands on (a field handles its own clicks).
    showWords(li, row.text || "", result, this.editable ? {} : { onPlay: (index) => this.playFromWord(row, index) });
    return result;
  }

  refreshWords(row) {
    const li = this.rowEls.peek(row._id); // rows not drawn yet are drawn with the latest words
    if (li) this.fillWords(li, row, this.indexOfId(row._id) + 1);
  }

  afterRender() {
    requestAnimationFrame(() => autoGrowAll(this.listEl.querySelectorAll("textarea.text")));
  }

  focusRow(index, { caret = "end" } = {}) {
    const li = this.rowEls.get(this.items[index]?._id);
    const ta = li?.querySelector("textarea.text");
    if (!ta) return super.focusRow(index);
    ta.focus();
    const pos = caret === "start" ? 0 : ta.value.length;
    ta.setSelectionRange(pos, pos);
  }

  // --- language of a word --------------------------------------------------------------

  /** Alt+L: the word at the caret of the focused text field. */
  toggleLang() {
    const ta = document.activeElement;
    const li = ta?.closest?.("li[data-id]");
    if (!ta || ta.tagName !== "TEXTAREA" || !li || !this.listEl.contains(li)) {
      this.ctx.announce("Put the caret on a word in a sentence to switch its language.");
      return;
    }
    const index = this.indexOfId(li.dataset.id);
    const row = this.items[index];
    const token = tokenAt(ta.value, ta.selectionStart);
    if (!token) return;
    const words = rowWords(row, this.store.analysis.get(row._id)).words;
    const current = words[token.index]?.lang || "vi";
    const lang = toggleWordLanguage(row, token.text, current);
    if (!lang) return;
    this.store.changed();
    this.refreshWords(row);
    this.ctx.announce(`“${wordKey(token.text)}” marked ${lang === "en" ? "English" : "Vietnamese"}.`);
  }

  // --- structure -------------------------------------------------------------------------

  /** The caret in the row's text: where it is, or where it was when the field last had
   * the focus (a click on the Split button takes the focus, not the caret). */
  caretIn(index) {
    const row = this.items[index];
    const ta = this.rowEls.peek(row?._id)?.querySelector("textarea.text");
    if (!ta) return null;
    return document.activeElement === ta || this.caretRowId === row._id ? ta.selectionStart : null;
  }

  split(index = this.currentIndex()) {
    const row = this.items[index];
    if (!row) return;
    const caret = splitOffset(row.text || "", this.caretIn(index));
    const { at, source } = splitTime(row, caret, this.player?.now(), alignedWords(row, this.data.word_times));
    this.snapshot(`split sentence ${index + 1}`);
    const halves = splitSentence(row, caret, at);
    this.store.items.splice(index, 1, ...halves);
    if (source === "estimate") halves.forEach((half) => this.estimated.add(half._id));
    this.structural(`Sentence ${index + 1} split in two`, index + 1, { caret: "start" });
    const how = { words: "between the aligned words", playhead: "at the playhead", estimate: "estimated from the text: check it by ear" }[source];
    this.ctx.announce(`Sentence ${index + 1} split at ${fmtTime(at, 2)} (${how}).`);
  }

  merge(index = this.currentIndex()) {
    const a = this.items[index];
    const b = this.items[index + 1];
    if (!a || !b) {
      this.ctx.announce("There is no next sentence to merge with.");
      return;
    }
    this.snapshot(`merge sentences ${index + 1} and ${index + 2}`);
    const caret = (a.text || "").trim().length;
    const merged = mergeSentences(a, b);
    this.store.items.splice(index, 2, merged);
    this.structural(`Sentences ${index + 1} and ${index + 2} merged`, index);
    const ta = this.rowEls.get(merged._id)?.querySelector("textarea.text");
    if (ta) ta.setSelectionRange(caret, caret);
  }

  insert(index = this.currentIndex()) {
    const prev = this.items[index];
    const next = this.items[index + 1];
    let start = prev ? num(prev.end) ?? this.windowStart : this.windowStart;
    const t = this.player?.now();
    const limit = next ? num(next.start) : null;
    if (t !== undefined && t > start && (limit === null || t < limit)) start = t;
    let end = limit !== null ? limit : Math.min(start + 2, this.windowEnd);
    if (end - start < 0.3) end = start + Math.min(2, Math.max(0.3, this.windowEnd - start));
    if (end > this.windowEnd) end = Math.max(start + 0.1, this.windowEnd);
    this.snapshot(`insert a sentence after ${index + 1}`);
    this.store.items.splice(index + 1, 0, newSentence(start, end));
    this.structural(`Sentence inserted after sentence ${index + 1}`, index + 1);
  }

  insertAtPlayhead() {
    const t = this.player ? this.player.now() : this.windowStart;
    const index = this.items.filter((r) => (num(r.start) ?? -Infinity) <= t).length;
    const next = this.items[index];
    const end = Math.min(next ? num(next.start) ?? t + 2 : t + 2, this.windowEnd);
    this.snapshot("add a sentence");
    this.store.items.splice(index, 0, newSentence(t, end > t + 0.1 ? end : t + 1));
    this.structural(`Sentence ${index + 1} added`, index);
  }

  remove(index = this.currentIndex()) {
    const row = this.items[index];
    if (!row) return;
    this.snapshot(`delete sentence ${index + 1}`);
    this.store.items.splice(index, 1);
    this.structural(`Sentence ${index + 1} deleted`, Math.min(index, this.items.length - 1));
  }

  setTime(side, index = this.currentIndex()) {
    const row = this.items[index];
    if (!row || !this.player) return;
    this.snapshot(`set the ${side} of sentence ${index + 1}`);
    row[side] = round3(this.player.now());
    const input = this.rowEls.get(row._id)?.querySelector(`input.${side}`);
    if (input) input.value = fieldTime(row[side]);
    this.afterTimeEdit(row);
    this.ctx.announce(`Sentence ${index + 1} ${side} set to ${fmtTime(row[side], 2)}.`);
  }

  onRegionUpdate(region, side, done) {
    if (this.syncing) return;
    const index = this.indexOfId(region.id);
    const row = this.items[index];
    if (!row) return;
    if (!this.dragging) {
      this.dragging = true;
      this.snapshot(`move the edges of sentence ${index + 1}`);
    }
    row.start = round3(this.player.toRecording(region.start));
    row.end = round3(this.player.toRecording(region.end));
    const li = this.rowEls.get(row._id);
    if (li) {
      li.querySelector("input.start").value = fieldTime(row.start);
      li.querySelector("input.end").value = fieldTime(row.end);
      li.querySelector(".len").textContent = this.lengthText(row);
    }
    if (done) {
      this.dragging = false;
      this.store.changed();
      this.clearProblem(row._id);
      this.select(index);
    }
  }

  // --- checks before submit (the server checks the same) -----------------------------------

  validate() {
    const problems = new Map();
    const duration = Number(this.ctx.data.sample.duration) || Infinity;
    const add = (row, message) => problems.set(row._id, [...(problems.get(row._id) || []), message]);
    this.items.forEach((row, i) => {
      const n = i + 1;
      const s = num(row.start);
      const e = num(row.end);
      if (!(row.text || "").trim()) add(row, `Sentence ${n} is empty: type its text or delete it.`);
      if (s === null) add(row, `Sentence ${n}: start is not a number.`);
      if (e === null) add(row, `Sentence ${n}: end is not a number.`);
      if (s !== null && e !== null && e <= s) add(row, `Sentence ${n} ends before it starts.`);
      if (s !== null && (s < 0 || (e !== null && e > duration + 0.05))) add(row, `Sentence ${n} runs outside the recording.`);
      if (s !== null && (s < this.windowStart || s >= this.windowEnd)) {
        add(row, `Sentence ${n} starts at ${s.toFixed(2)} s, outside this task's part (${this.windowStart.toFixed(1)}–${this.windowEnd.toFixed(1)} s).`);
      }
    });
    return problems;
  }
}
