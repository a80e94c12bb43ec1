// The rows on the waveform. Zoomed in, each row in view (and a margin either side) is a
// region: labelled, coloured, its edges draggable where the editor allows. Zoomed out so far
// that rows would be thinner than MIN_REGION_PX, regions would paint the waveform as a solid
// band (an hour has ~900 sentences) and cost the page seconds of layout while the reviewer
// waits for Play: then the rows are a thin strip of alternating marks along the bottom of
// the waveform, drawn once on a canvas, and only the selected and the playing row are
// regions. Scrolling and zooming move the set of regions along.
import { num } from "./dom.js";

const MIN_REGION_PX = 12;
const MARGIN = 0.5; // of the visible width, either side
const STRIP_PX = 7;
const COLORS = {
  normal: ["rgba(31, 95, 191, 0.10)", "rgba(31, 95, 191, 0.18)"],
  playing: "rgba(255, 183, 0, 0.30)",
  bad: "rgba(179, 38, 30, 0.28)",
  strip: ["#5b7fc0", "#a9bde0"],
};

export class RowRegions {
  /** `editor`: the ListEditor (items, player, selectedId, playingId, isBad, regionResize,
   * regionLabel, onRegionUpdate, indexOfId, select). */
  constructor(editor) {
    this.editor = editor;
    this.byId = new Map();
    this.syncing = false;
    this.scheduled = false;
    this.strip = null;
    this.mode = null; // "regions" or "strip"
  }

  get player() {
    return this.editor.player;
  }

  attach() {
    const { regions, ws } = this.player;
    regions.on("region-update", (region, side) => this.editor.onRegionUpdate(region, side, false));
    regions.on("region-updated", (region, side) => this.editor.onRegionUpdate(region, side, true));
    // A click on a region selects its row; wavesurfer's own click seeks to the spot.
    regions.on("region-clicked", (region) => {
      const index = this.editor.indexOfId(region.id);
      if (index >= 0) this.editor.select(index);
    });
    ws.on("scroll", () => this.schedule());
    ws.on("zoom", () => this.schedule({ redrawStrip: true }));
    this.sync();
  }

  /** The stretch of the recording in view, in player time, and its width in pixels. */
  view() {
    const ws = this.player.ws;
    const px = this.player.pxPerSec();
    const width = ws.getWrapper().parentElement?.clientWidth || ws.getWrapper().clientWidth || 800;
    const start = (ws.getScroll() || 0) / px;
    return { start, end: start + width / px, px, width };
  }

  schedule({ redrawStrip = false } = {}) {
    if (redrawStrip) this.stripStale = true;
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.sync();
    });
  }

  /** The selected or the playing row changed: zoomed out, those are the regions shown. */
  followRows() {
    if (this.mode === "strip") this.schedule();
  }

  /** Bring the regions (and the strip) in line with the rows and the view. */
  sync({ all = false } = {}) {
    if (!this.player) return;
    const { items, selectedId, playingId } = this.editor;
    const view = this.view();
    const margin = (view.end - view.start) * MARGIN;
    const from = view.start - margin;
    const to = view.end + margin;
    const inView = [];
    for (const row of items) {
      const s = this.player.toPlayer(num(row.start) ?? NaN);
      const e = this.player.toPlayer(num(row.end) ?? NaN);
      if (e > from && s < to) inView.push(row);
    }
    const visible = inView.filter((row) => {
      const s = this.player.toPlayer(num(row.start));
      return s < view.end && this.player.toPlayer(num(row.end)) > view.start;
    }).length;
    const mode = visible * MIN_REGION_PX > view.width ? "strip" : "regions";
    const wanted = new Set(mode === "regions" ? inView.map((r) => r._id) : [selectedId, playingId].filter(Boolean));
    if (mode !== this.mode || this.stripStale || all) this.drawStrip(mode);
    this.mode = mode;
    this.syncing = true;
    try {
      for (const [id, region] of this.byId) {
        if (!wanted.has(id) || all) {
          region.remove();
          this.byId.delete(id);
        }
      }
      items.forEach((row, index) => {
        if (!wanted.has(row._id)) return;
        const region = this.byId.get(row._id);
        if (region) this.place(region, row, index);
        else this.add(row, index);
      });
    } finally {
      this.syncing = false;
    }
  }

  add(row, index) {
    const s = num(row.start);
    const e = num(row.end);
    if (s === null || e === null || e <= s) return;
    const region = this.player.regions.addRegion({
      id: row._id,
      start: this.player.toPlayer(s),
      end: this.player.toPlayer(e),
      color: this.colorOf(row, index),
      drag: false,
      resize: this.editor.regionResize,
      content: this.content(row, index),
      minLength: 0.05,
    });
    this.byId.set(row._id, region);
    // For tests and styling: which row a region (and its edge handles) belongs to.
    region.element?.setAttribute("data-row", String(index + 1));
  }

  /** Move a region to its row's times, with its row's number, label and colour. */
  place(region, row, index) {
    const s = num(row.start);
    const e = num(row.end);
    if (s === null || e === null || e <= s) return;
    region.setOptions({
      start: this.player.toPlayer(s),
      end: this.player.toPlayer(e),
      color: this.colorOf(row, index),
      content: this.content(row, index),
    });
    region.element?.setAttribute("data-row", String(index + 1));
  }

  /** One row changed its times: its region (if it has one) and the strip follow. */
  update(row) {
    const region = this.byId.get(row._id);
    const index = this.editor.indexOfId(row._id);
    if (region && index >= 0) {
      this.syncing = true;
      try {
        this.place(region, row, index);
      } finally {
        this.syncing = false;
      }
    }
    this.schedule({ redrawStrip: this.mode === "strip" });
  }

  color(id) {
    const region = this.byId.get(id);
    const index = this.editor.indexOfId(id);
    if (region && index >= 0) region.setOptions({ color: this.colorOf(this.editor.items[index], index) });
  }

  colorOf(row, index) {
    if (this.editor.isBad && this.editor.isBad(row)) return COLORS.bad;
    if (row._id === this.editor.playingId) return COLORS.playing;
    return COLORS.normal[index % 2];
  }

  content(row, index) {
    const label = this.editor.regionLabel ? this.editor.regionLabel(row, index) : String(index + 1);
    const el = document.createElement("div");
    el.textContent = label;
    Object.assign(el.style, {
      font: "11px system-ui, sans-serif",
      padding: "1px 4px",
      color: "#14213d",
      whiteSpace: "nowrap",
      overflow: "hidden",
      textOverflow: "ellipsis",
      pointerEvents: "none",
    });
    return el;
  }

  /** The rows as marks along the bottom of the waveform (strip mode), or nothing. */
  drawStrip(mode) {
    this.stripStale = false;
    const wrapper = this.player.ws.getWrapper();
    if (mode !== "strip") {
      this.strip?.remove();
      this.strip = null;
      return;
    }
    if (!this.strip) {
      this.strip = document.createElement("canvas");
      this.strip.setAttribute("aria-hidden", "true");
      this.strip.dataset.rowStrip = "1";
      Object.assign(this.strip.style, { position: "absolute", left: "0", bottom: "0", height: `${STRIP_PX}px`, pointerEvents: "none", zIndex: "3" });
      wrapper.appendChild(this.strip);
    }
    const width = wrapper.scrollWidth || wrapper.clientWidth;
    // The canvas may hold fewer pixels than it covers (browsers cap a canvas's size): it is
    // drawn at its own scale and stretched over the whole waveform.
    const scale = Math.min(window.devicePixelRatio || 1, 32000 / width);
    this.strip.style.width = `${width}px`;
    this.strip.width = Math.max(1, Math.round(width * scale));
    this.strip.height = Math.round(STRIP_PX * scale);
    const g = this.strip.getContext("2d");
    g.scale(scale, scale);
    const px = width / this.player.duration;
    this.editor.items.forEach((row, index) => {
      const s = this.player.toPlayer(num(row.start) ?? NaN);
      const e = this.player.toPlayer(num(row.end) ?? NaN);
      if (!(e > s)) return;
      g.fillStyle = this.editor.isBad && this.editor.isBad(row) ? "#b3261e" : COLORS.strip[index % 2];
      g.fillRect(s * px, 0, Math.max(1, (e - s) * px), STRIP_PX);
    });
  }
}
