// translation_review: each source sentence (read-only) beside its Vietnamese translation in
// an editable field, with its own play button and the pipeline's flags, each clearable.
// Submit sends every row of the window with its translation and the flags still standing.
import { h, num, autoGrow, autoGrowAll, fmtTime } from "./dom.js";
import { ListEditor } from "./list.js";
import { pickWord, rowWords, showWords } from "./words.js";
import { flagText } from "./sentences.js";

export class TranslationEditor extends ListEditor {
  constructor(ctx) {
    super(ctx, { noun: "Sentence" });
    const flagged = this.items.filter((r) => r.flags?.length).length;
    this.root.append(
      h("p", { class: "hint muted" },
        `Correct the Vietnamese translation of each sentence. ${flagged ? `${flagged} sentence${flagged > 1 ? "s have" : " has"} flags from the pipeline: fix the translation, then clear the flag.` : ""}`),
      h("div", { class: "pair-head", "aria-hidden": "true" }, h("span", { text: "Source (transcript)" }), h("span", { text: "Vietnamese translation" })),
      this.listEl,
    );
    // The server's word tags arrive after the page is drawn: recolour the drawn rows' words.
    this.store.addEventListener("analysis", () => {
      this.items.forEach((row, index) => {
        const li = this.rowEls.peek(row._id);
        if (li) showWords(li, row.text || "", rowWords(row, this.store.analysis.get(row._id)), this.wordHandlers(row));
      });
    });
  }

  renderRow(row, index) {
    const n = index + 1;
    const li = h("li", { class: "row pair" });
    const play = () => {
      const i = this.indexOfId(row._id);
      this.select(i);
      this.playRow(i);
    };
    li.append(h("div", { class: "row-head" },
      h("span", { class: "num", text: n, "aria-hidden": "true" }),
      h("button", { type: "button", class: "icon play-row", "aria-label": "Play sentence", title: "Play sentence", text: "▶", onclick: play }),
      h("span", { class: "times", text: `${fmtTime(num(row.start), 2)} – ${fmtTime(num(row.end), 2)}` }),
      h("span", { class: "share", title: "Share of English words in the source" })));
    const source = h("div", { class: "source" },
      h("p", { class: "words source-text", lang: "vi", "aria-label": `Sentence ${n} source` }));
    let target;
    if (this.editable) {
      target = h("textarea", { class: "translation", rows: 1, lang: "vi", value: row.translation || "", "aria-label": `Sentence ${n} translation`, spellcheck: false });
      target.addEventListener("input", () => {
        if (/[\r\n]/.test(target.value)) {
          const caret = target.selectionStart;
          target.value = target.value.replace(/[\r\n]+/g, " ");
          target.setSelectionRange(caret, caret);
        }
        row.translation = target.value;
        this.lastTyped = Date.now();
        autoGrow(target);
        this.clearProblem(row._id);
        this.store.changed();
      });
      target.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          const i = this.indexOfId(row._id);
          if (i + 1 < this.items.length) this.select(i + 1, { focus: true });
        }
      });
      target.addEventListener("focus", () => this.select(this.indexOfId(row._id)));
      pickWord(target); // Alt+click selects a word to type over
    } else {
      target = h("p", { class: "translation-ro", lang: "vi", text: row.translation || "—" });
    }
    li.append(h("div", { class: "pair-body" }, source, h("div", { class: "target" }, target)));
    li.append(this.renderFlags(row));
    showWords(li, row.text || "", rowWords(row, this.store.analysis.get(row._id)), this.wordHandlers(row));
    return li;
  }

  wordHandlers(row) {
    return { onPlay: (index) => this.playFromWord(row, index) };
  }

  renderFlags(row) {
    const box = h("div", { class: "flags" });
    for (const flag of row.flags || []) {
      const label = flagText(flag, this.ctx.data.flag_words);
      const id = `flag-${row._id}-${box.children.length}`;
      box.append(h("span", { class: "flag", dataset: { flag } },
        h("span", { id, class: "flag-text", text: label }),
        this.editable
          ? h("button", { type: "button", class: "small", text: "Clear flag", "aria-describedby": id, title: `Clear “${label}”`, onclick: () => this.clearFlag(row, flag) })
          : null));
    }
    return box;
  }

  clearFlag(row, flag) {
    const index = this.indexOfId(row._id);
    this.snapshot(`clear a flag of sentence ${index + 1}`);
    row.flags = (row.flags || []).filter((f) => f !== flag);
    this.store.changed();
    const li = this.rowEls.get(row._id);
    li?.querySelector(".flags")?.replaceWith(this.renderFlags(row));
    li?.querySelector("textarea.translation")?.focus();
    this.ctx.toast(`Flag “${flagText(flag, this.ctx.data.flag_words)}” cleared.`, () => this.undo());
  }

  afterRender() {
    requestAnimationFrame(() => autoGrowAll(this.listEl.querySelectorAll("textarea.translation")));
  }

  focusRow(index) {
    const ta = this.rowEls.get(this.items[index]?._id)?.querySelector("textarea.translation");
    if (!ta) return super.focusRow(index);
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
  }

  validate() {
    const problems = new Map();
    this.items.forEach((row, i) => {
      if (!(row.translation || "").trim()) problems.set(row._id, [`Sentence ${i + 1} has no translation.`]);
    });
    return problems;
  }
}
