// The transcript beside the player: one line per segment (transcript.json's caption lines), the
// line being spoken marked and kept in view as the recording plays; a line plays from its start
// when clicked (each line is a button, so the keyboard reaches it too).

import { clock, element } from "./format.js";

/** @typedef {{start: number, end: number, text: string}} Segment */

export class Transcript {
  /**
   * @param {HTMLOListElement} list a scrolling list
   * @param {{segments: Segment[]}} transcript
   * @param {{seek: (seconds: number, play: boolean) => void}} player
   */
  constructor(list, transcript, player) {
    this.list = list;
    this.segments = transcript.segments;
    this.current = -1;
    list.replaceChildren(...this.segments.map((segment) => {
      const line = element("li");
      line.dataset.start = String(segment.start);
      const button = element("button", "line");
      button.type = "button";
      button.append(element("time", null, clock(segment.start)), element("span", null, segment.text));
      button.addEventListener("click", () => player.seek(segment.start, true));
      line.append(button);
      return line;
    }));
  }

  /** Mark the segment spoken at `seconds` (the last one started, between segments). */
  follow(seconds) {
    let index = -1;
    for (const [i, segment] of this.segments.entries()) {
      if (segment.start > seconds) break;
      index = i;
    }
    if (index === this.current) return;
    this.list.children[this.current]?.removeAttribute("aria-current");
    this.current = index;
    const line = this.list.children[index];
    if (!line) return;
    line.setAttribute("aria-current", "true");
    // Scroll the list only (scrollIntoView would scroll the page under the reader too); the
    // list is positioned, so a line's offsetTop is within it.
    const top = line.offsetTop;
    if (top < this.list.scrollTop || top + line.offsetHeight > this.list.scrollTop + this.list.clientHeight) {
      this.list.scrollTop = top - this.list.clientHeight / 3;
    }
  }
}
