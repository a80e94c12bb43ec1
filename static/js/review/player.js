// The player: wavesurfer.js drawn from the server's peaks over the page's own <audio>
// element (streamed with HTTP Range; wavesurfer never fetches or decodes the audio), with
// zoom, speed and the time display. Times outside this module are recording times; the
// audio file covers only the task's window, so player time = recording time − audio_offset.
import { getJSON } from "./api.js";
import { fmtTime } from "./dom.js";

export const SPEED_MIN = 0.5;
export const SPEED_MAX = 2;
const ZOOM_MAX_PX = 600;

/** Two channels (max, min) over the window, as wavesurfer's `peaks` wants them. */
export function peaksToChannels(answer, duration) {
  const data = answer?.data || [];
  const dt = (answer?.samples_per_peak || 0) / (answer?.sample_rate || 1);
  const pairs = Math.floor(data.length / 2);
  if (!pairs || !(dt > 0)) return null;
  // Lay the peaks on a grid that covers exactly [0, duration) so times line up.
  const count = Math.max(1, Math.round(duration / dt));
  const lead = Math.round((answer.start_s || 0) / dt);
  const max = new Float32Array(count);
  const min = new Float32Array(count);
  for (let i = 0; i < pairs; i += 1) {
    const j = i + lead;
    if (j < 0 || j >= count) continue;
    min[j] = data[2 * i];
    max[j] = data[2 * i + 1];
  }
  return [max, min];
}

export async function createPlayer({ data, audio, container, vendor, onError }) {
  const offset = Number(data.audio_offset) || 0;
  const windowLength = Math.max(0.1, (data.task.window_end ?? data.sample.duration) - (data.task.window_start ?? 0));
  // The imports and the peaks download go out together.
  const modules = Promise.all([
    import(vendor.wavesurfer),
    import(vendor.regions),
    import(vendor.timeline),
    import(vendor.hover),
  ]);
  // Enough points for the container at a generous zoom, within what the server serves.
  const width = Math.max(320, container.clientWidth || 800);
  const maxPoints = Math.min(20000, Math.max(8000, Math.round(width * 12)));
  const peaks = getJSON(`${data.urls.peaks}?max_points=${maxPoints}`).then((answer) => ({ answer }), (error) => ({ error }));
  const [{ default: WaveSurfer }, { default: RegionsPlugin }, { default: TimelinePlugin }, { default: HoverPlugin }] = await modules;

  let channels = null;
  let duration = windowLength;
  const { answer, error } = await peaks;
  if (error) {
    onError?.("The waveform could not be loaded (offline?); the audio still plays.");
  } else if (answer.ok && answer.data) {
    duration = Number(answer.data.duration_s) || windowLength;
    channels = peaksToChannels(answer.data, duration);
  } else {
    onError?.("The waveform could not be loaded; the audio still plays.");
  }
  if (!channels) channels = [new Float32Array(Math.max(2, Math.round(duration * 10)))];

  audio.preservesPitch = true;
  const regions = RegionsPlugin.create();
  const ws = WaveSurfer.create({
    container,
    media: audio,
    peaks: channels,
    duration,
    height: 88,
    normalize: true,
    waveColor: "#8aa4cf",
    progressColor: "#1f5fbf",
    cursorColor: "#d1342f",
    cursorWidth: 2,
    barWidth: 2,
    barGap: 1,
    barRadius: 1,
    minPxPerSec: 0,
    fillParent: true,
    autoScroll: true,
    autoCenter: true,
    dragToSeek: true,
    hideScrollbar: false,
    plugins: [
      regions,
      TimelinePlugin.create({
        height: 16,
        // Labels in recording time (the plugin's timeOffset moves the notches instead).
        formatTimeCallback: (s) => fmtTime(s + offset, 0),
        style: { fontSize: "10px", color: "#5d6675" },
      }),
      HoverPlugin.create({
        lineColor: "#d1342f88",
        labelBackground: "#14213d",
        labelColor: "#fff",
        labelSize: "11px",
        formatTimeCallback: (s) => fmtTime(s + offset, 2),
      }),
    ],
  });

  const drawn = new Promise((resolve) => ws.once("ready", () => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  const canplay = new Promise((resolve) => {
    if (audio.readyState >= 3) resolve();
    else audio.addEventListener("canplay", () => resolve(), { once: true });
  });
  ws.on("error", (error) => onError?.(`Audio: ${error?.message || error}`));
  audio.addEventListener("error", () => onError?.("The audio could not be loaded. Check your connection and reload the page."));

  let fitPx = 0;
  let zoomLevel = 0; // 0..100 on the slider; 0 = whole window fits

  const player = {
    ws,
    regions,
    offset,
    duration,
    /** The waveform is drawn (regions can be added). */
    loaded: drawn,
    /** Drawn and the audio can play. */
    ready: Promise.all([drawn, canplay]).then(() => player),
    /** Current recording time. */
    now: () => ws.getCurrentTime() + offset,
    toPlayer: (t) => t - offset,
    toRecording: (t) => t + offset,
    start: offset,
    end: offset + duration,
    isPlaying: () => ws.isPlaying(),
    seek(recordingTime) {
      const t = Math.min(Math.max(0, recordingTime - offset), duration);
      // wavesurfer keeps a seek for later while the audio is (re)loading, and the 'seeking'
      // event of an earlier seek then drops it: two quick F2s moved 2 s, not 4. The element
      // itself takes any seek once it knows its duration.
      if (audio.readyState >= 1) audio.currentTime = t;
      ws.setTime(t);
    },
    /** Play [start, end) given in recording time. */
    playRange(start, end) {
      const from = Math.min(Math.max(0, start - offset), duration);
      const to = Number.isFinite(end) ? Math.min(duration, end - offset) : undefined;
      return ws.play(from, to !== undefined && to > from ? to : undefined).catch(() => {});
    },
    playPause() {
      return ws.playPause().catch(() => {});
    },
    pause() {
      ws.pause();
    },
    skip(seconds) {
      player.seek(player.now() + seconds);
    },
    rate: 1,
    setRate(rate) {
      const r = Math.min(SPEED_MAX, Math.max(SPEED_MIN, Math.round(rate * 20) / 20));
      player.rate = r;
      ws.setPlaybackRate(r, true);
      audio.preservesPitch = true;
      return r;
    },
    zoomLevel: () => zoomLevel,
    /** level 0..100: 0 fits the window, 100 is ZOOM_MAX_PX px/s. */
    setZoom(level) {
      zoomLevel = Math.min(100, Math.max(0, level));
      fitPx = (container.clientWidth || width) / duration;
      const top = Math.max(fitPx * 1.01, ZOOM_MAX_PX);
      const px = zoomLevel === 0 ? 0 : fitPx * (top / fitPx) ** (zoomLevel / 100);
      try {
        ws.zoom(px);
      } catch {
        /* not loaded yet */
      }
      return zoomLevel;
    },
    pxPerSec() {
      return zoomLevel === 0 ? (container.clientWidth || width) / duration : fitPx * (Math.max(fitPx * 1.01, ZOOM_MAX_PX) / fitPx) ** (zoomLevel / 100);
    },
  };
  return player;
}
