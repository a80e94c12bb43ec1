// The transport, as transcription players have it: play/pause that rewinds a little on
// resume, loop the current sentence, speed and zoom. Bound to the player once it exists
// (`ctx.player`); every function is a no-op before that.
import { SPEED_MIN, SPEED_MAX } from "./player.js";
import { num } from "./dom.js";

/** `env`: ctx (with .player once it starts), ui (play, loop, speed, speedOut, zoom,
 * waveform), editor, settings ({rewind_s}), noun ("sentence" or "segment"), toast. */
export function createTransport({ ctx, ui, editor, settings, noun, toast }) {
  // Resuming where playback was paused goes back `rewind_s` first: the words that were cut
  // off are heard again. A seek in between (a row click, F1/F2) cancels it.
  let pausedAt = null;
  function playPause() {
    const player = ctx.player;
    if (!player) return;
    if (player.isPlaying()) {
      player.pause();
      onPause(); // now, not when the media's event comes: a quick resume must see it
      return;
    }
    const t = player.ws.getCurrentTime();
    if (pausedAt !== null && Math.abs(t - pausedAt) < 0.05 && settings.rewind_s > 0) {
      player.seek(Math.max(player.start, player.now() - settings.rewind_s));
    }
    player.playPause();
  }

  // Loop: the current sentence (the one selected, else the one current when the loop was
  // switched on) plays again from its start whenever the playhead reaches its end.
  let looping = false;
  let loopId = null;
  function loopRow() {
    const id = editor.selectedId || loopId;
    return editor.items.find((r) => r._id === id) || null;
  }
  function toggleLoop() {
    looping = !looping;
    ui.loop.setAttribute("aria-pressed", String(looping));
    if (!looping) {
      toast("Loop off.");
      return;
    }
    const index = editor.currentIndex();
    const row = editor.items[index];
    loopId = row?._id || null;
    if (row && num(row.start) !== null) {
      editor.select(index);
      ctx.player?.playRange(num(row.start));
    }
    toast(`Loop on: ${noun} ${index + 1} repeats until you switch it off.`);
  }

  /** Called as the playhead moves (recording time). */
  function onTime(t, playing) {
    if (!looping || !playing) return;
    const row = loopRow();
    const start = num(row?.start);
    const end = num(row?.end);
    if (start === null || end === null || end <= start) return; // a time being typed
    if (t >= end - 0.03 || t < start - 0.5) ctx.player.seek(start);
  }
  function onPause() {
    pausedAt = ctx.player?.ws.getCurrentTime() ?? null;
  }

  function setSpeed(rate) {
    const r = ctx.player ? ctx.player.setRate(rate) : Math.min(SPEED_MAX, Math.max(SPEED_MIN, rate));
    ui.speed.value = String(r);
    ui.speedOut.textContent = `${r.toFixed(2)}×`;
    return r;
  }
  const speedBy = (delta) => toast(`Speed ${setSpeed((ctx.player?.rate ?? Number(ui.speed.value)) + delta).toFixed(2)}×`);
  function zoomBy(delta) {
    if (!ctx.player) return;
    const level = ctx.player.setZoom(ctx.player.zoomLevel() + delta);
    ui.zoom.value = String(level);
  }

  ui.play.addEventListener("click", () => playPause());
  ui.loop.addEventListener("click", () => toggleLoop());
  ui.speed.addEventListener("input", () => setSpeed(Number(ui.speed.value)));
  ui.zoom.addEventListener("input", () => ctx.player?.setZoom(Number(ui.zoom.value)));
  ui.waveform.addEventListener("wheel", (event) => {
    if (!(event.ctrlKey || event.metaKey) || !ctx.player) return;
    event.preventDefault();
    zoomBy(event.deltaY < 0 ? 8 : -8);
  }, { passive: false });

  return {
    onTime,
    onPause,
    /** The shortcuts' actions. */
    actions: {
      playPause,
      loop: toggleLoop,
      back: () => ctx.player?.skip(-2),
      forward: () => ctx.player?.skip(2),
      slower: () => speedBy(-0.1),
      faster: () => speedBy(0.1),
      zoomIn: () => zoomBy(10),
      zoomOut: () => zoomBy(-10),
    },
  };
}
