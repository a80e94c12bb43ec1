// How much of the task's audio the reviewer has played: the stretches heard, in recording
// seconds. A second reviewer approves only after hearing all of it; the server keeps the
// same measure (ra_app/review/staging.py: coverage) and has the last word.

const GAP_S = 0.5; // playback reports arrive a few hundred milliseconds apart
const JUMP_S = 1.5; // a longer step between two reports is a seek, not listening

export function coverage(intervals, start, end) {
  const length = end - start;
  if (length <= 0) return 1;
  const spans = intervals
    .map(([a, b]) => [Math.max(Number(a), start), Math.min(Number(b), end)])
    .filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b) && b > a)
    .sort((x, y) => x[0] - y[0]);
  const merged = [];
  for (const [a, b] of spans) {
    const last = merged[merged.length - 1];
    if (last && a - last[1] <= GAP_S) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  if (merged.length && merged[0][0] - start <= GAP_S) merged[0][0] = start;
  if (merged.length && end - merged[merged.length - 1][1] <= GAP_S) merged[merged.length - 1][1] = end;
  const covered = merged.reduce((sum, [a, b]) => sum + b - a, 0);
  return Math.max(0, Math.min(1, covered / length));
}

export class Listening extends EventTarget {
  /** start/end: the task's stretch of the recording; heard: the server's fraction so far. */
  constructor({ start, end, intervals = [], heard = 0 }) {
    super();
    this.start = start;
    this.end = end;
    this.heardOnServer = Number(heard) || 0;
    this.spans = Array.isArray(intervals) ? intervals.filter((p) => Array.isArray(p) && p.length === 2) : [];
    this.last = null;
    this.changed = false;
  }

  /** A playback report at recording time `t`; `playing` false ends the current stretch. */
  report(t, playing) {
    if (!playing) {
      this.last = null;
      return;
    }
    if (this.last !== null && t > this.last && t - this.last <= JUMP_S) {
      const top = this.spans[this.spans.length - 1];
      if (top && top[1] === this.last) top[1] = t;
      else this.spans.push([this.last, t]);
      this.changed = true;
      if (this.spans.length > 400) this.compact();
      this.dispatchEvent(new Event("change"));
    }
    this.last = t;
  }

  compact() {
    const merged = [];
    for (const [a, b] of [...this.spans].sort((x, y) => x[0] - y[0])) {
      const last = merged[merged.length - 1];
      if (last && a <= last[1]) last[1] = Math.max(last[1], b);
      else merged.push([a, b]);
    }
    this.spans = merged;
  }

  get intervals() {
    this.compact();
    return this.spans.map(([a, b]) => [Math.round(a * 1000) / 1000, Math.round(b * 1000) / 1000]);
  }

  fraction() {
    return Math.max(this.heardOnServer, coverage(this.spans, this.start, this.end));
  }
}
