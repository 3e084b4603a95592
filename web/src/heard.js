// While the job runs, the newest transcript lines: the job document's `latest.transcribe`,
// written as each span of the recording is transcribed (the newest few, newest last), shown in
// the order they were said, each playing the recording from its start when clicked. The whole
// transcript replaces them once the job has succeeded; a job that failed or was cancelled keeps
// them, as all there is of what was said.

import { lineItem } from "./lines.js";

/** @typedef {import("./lines.js").Segment} Segment */

export class Heard {
  /**
   * @param {HTMLElement} box hidden while there is nothing to show
   * @param {HTMLOListElement} list
   * @param {import("./lines.js").Seek} seek
   */
  constructor(box, list, seek) {
    Object.assign(this, { box, list, seek });
    this.shown = "";
    this.ended = false;
    box.hidden = true;
    list.replaceChildren();
  }

  /** Show the job's latest lines, if they changed. */
  update(job) {
    // A job that has succeeded (opened after its end, say) shows its whole transcript instead.
    if (job.status === "succeeded") this.end();
    if (this.ended) return;
    /** @type {Segment[]} */
    const lines = (job.latest?.transcribe ?? [])
      .filter((line) => typeof line?.text === "string" && typeof line.start === "number")
      .sort((a, b) => a.start - b.start);
    const shown = JSON.stringify(lines);
    if (shown === this.shown) return;
    this.shown = shown;
    this.list.replaceChildren(...lines.map((line) => lineItem(line, this.seek)));
    this.box.hidden = lines.length === 0;
  }

  /** The whole transcript is here: these lines make way for it. */
  end() {
    this.ended = true;
    this.box.hidden = true;
  }
}
