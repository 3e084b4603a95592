// The timeline under the player: loudness, scene cuts and chat rate over the whole recording,
// the highlights shaded across them, and a playhead. Clicking a highlight plays it; clicking
// anywhere else (or the arrow keys, on the focused timeline) moves the player there.
//
// It is an SVG stretched to the page's width: one unit across is a thousandth of the recording.

import { clock } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const LOUDNESS = [2, 46]; // top and bottom of each band, in units of the 100 high picture
const CUTS = [50, 62];
const CHAT = [66, 98];
const FLOOR_LUFS = -60;
const STEP_SECONDS = 5;
// Tick steps to choose from, in seconds: the first giving at most MAX_TICKS ticks wins.
const TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
const MAX_TICKS = 8;

/** @typedef {{start: number, end: number, score: number, reasons: string[]}} Highlight */

const shape = (tag, attributes) => {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
};

export class Timeline {
  /**
   * @param {HTMLElement} box the element to draw in (it becomes a slider)
   * @param {HTMLElement} legend holds a `.key.NAME` per band (loudness, cut, chat, span)
   * @param {{seek: (seconds: number, play: boolean) => void}} player
   */
  constructor(box, legend, player) {
    this.box = box;
    this.legend = legend;
    this.player = player;
    this.duration = 0;
    this.now = 0;
    this.svg = shape("svg", { viewBox: `0 0 ${WIDTH} 100`, preserveAspectRatio: "none" });
    this.bands = shape("g", {});
    this.spans = shape("g", { class: "spans" });
    this.playhead = shape("line", { class: "playhead", y1: 0, y2: 100, "vector-effect": "non-scaling-stroke" });
    this.svg.append(this.bands, this.spans, this.playhead);
    this.ticks = document.createElement("div");
    this.ticks.className = "ticks";
    this.ticks.setAttribute("aria-hidden", "true");
    box.replaceChildren(this.svg, this.ticks);
    box.tabIndex = 0;
    box.setAttribute("role", "slider");
    box.setAttribute("aria-valuemin", "0");
    box.addEventListener("click", (event) => this.clicked(event));
    box.addEventListener("keydown", (event) => this.key(event));
  }

  /** The recording's length, once known (from the report, or from the player's metadata). */
  setDuration(seconds) {
    if (!(seconds > 0) || seconds === this.duration) return;
    this.duration = seconds;
    this.box.setAttribute("aria-valuemax", String(Math.round(seconds)));
    const step = TICK_STEPS.find((each) => seconds / each <= MAX_TICKS) ?? TICK_STEPS.at(-1);
    const labels = [];
    for (let at = 0; at <= seconds; at += step) {
      const label = Object.assign(document.createElement("span"), { textContent: clock(at) });
      label.style.left = `${(at / seconds) * 100}%`;
      if (at / seconds > 0.95) label.className = "end"; // kept inside the box
      labels.push(label);
    }
    this.ticks.replaceChildren(...labels);
    this.moveTo(this.now);
  }

  /** Draw what the analyses found (report.json's audio, scenes, chat and highlights). */
  draw(report) {
    this.setDuration(report.media?.duration_seconds);
    const bands = [];
    if (report.audio) {
      const { momentary_lufs: levels, window_seconds: step } = report.audio;
      const share = (lufs) => Math.min(1, Math.max(0, (lufs - FLOOR_LUFS) / -FLOOR_LUFS));
      // Sound alone (no cuts, no chat) takes the whole height.
      const room = report.scenes || report.chat ? LOUDNESS : [LOUDNESS[0], CHAT[1]];
      bands.push(this.area(levels, step, share, room, "loudness"));
    }
    if (report.scenes) {
      for (const cut of report.scenes.cuts) {
        const x = this.x(cut);
        bands.push(shape("line", {
          class: "cut", x1: x, x2: x, y1: CUTS[0], y2: CUTS[1], "vector-effect": "non-scaling-stroke",
        }));
      }
    }
    if (report.chat) {
      const { rate_per_window: rates, window_seconds: step } = report.chat;
      const most = rates.reduce((a, b) => Math.max(a, b), 1e-9);
      bands.push(this.area(rates, step, (rate) => rate / most, CHAT, "chat"));
    }
    this.bands.replaceChildren(...bands);
    this.spans.replaceChildren(...(report.highlights ?? []).map((h, index) => this.span(h, index)));
    // Only what was drawn is explained: an audio file has no cuts, a stream without chat no rate.
    const drawn = {
      loudness: report.audio, cut: report.scenes?.cuts.length, chat: report.chat, span: report.highlights?.length,
    };
    for (const [name, shown] of Object.entries(drawn)) {
      this.legend.querySelector(`.key.${name}`).hidden = !shown;
    }
    this.legend.hidden = false;
  }

  /** Move the playhead (the player's timeupdate). */
  moveTo(seconds) {
    this.now = seconds;
    const x = this.duration ? this.x(seconds) : 0;
    this.playhead.setAttribute("x1", String(x));
    this.playhead.setAttribute("x2", String(x));
    this.box.setAttribute("aria-valuenow", String(Math.round(seconds)));
    this.box.setAttribute("aria-valuetext", `${clock(seconds)} of ${clock(this.duration)}`);
  }

  x(seconds) {
    return (Math.min(Math.max(seconds, 0), this.duration) / this.duration) * WIDTH;
  }

  // A filled band: one value per window of `step` seconds, at most one point per unit across.
  area(values, step, share, [top, bottom], className) {
    const every = Math.max(1, Math.ceil(values.length / WIDTH));
    const points = [];
    for (let i = 0; i < values.length; i += every) {
      const peak = Math.max(...values.slice(i, i + every));
      points.push(`${this.x(i * step).toFixed(1)},${(bottom - share(peak) * (bottom - top)).toFixed(1)}`);
    }
    const end = this.x(values.length * step).toFixed(1);
    return shape("polygon", {
      class: className, points: `0,${bottom} ${points.join(" ")} ${end},${bottom}`,
    });
  }

  span(highlight, index) {
    const x = this.x(highlight.start);
    const rect = shape("rect", {
      class: "span", x, y: 0, height: 100, width: Math.max(2, this.x(highlight.end) - x),
    });
    rect.dataset.start = String(highlight.start);
    rect.dataset.index = String(index);
    const title = shape("title", {});
    title.textContent = `Highlight ${index + 1}: ${clock(highlight.start)}–${clock(highlight.end)}`;
    rect.append(title);
    return rect;
  }

  clicked(event) {
    if (!this.duration) return;
    const span = event.target.closest?.("rect.span");
    if (span) {
      this.player.seek(Number(span.dataset.start), true);
      return;
    }
    const box = this.svg.getBoundingClientRect();
    const share = (event.clientX - box.left) / box.width;
    this.player.seek(Math.min(Math.max(share, 0), 1) * this.duration, false);
  }

  key(event) {
    const moves = {
      ArrowLeft: -STEP_SECONDS, ArrowRight: STEP_SECONDS, PageDown: -6 * STEP_SECONDS, PageUp: 6 * STEP_SECONDS,
    };
    let to = null;
    if (event.key in moves) to = this.now + moves[event.key];
    else if (event.key === "Home") to = 0;
    else if (event.key === "End") to = this.duration;
    if (to === null || !this.duration) return;
    event.preventDefault();
    this.player.seek(Math.min(Math.max(to, 0), this.duration), false);
  }
}
