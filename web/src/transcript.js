// The transcript beside the player: one line per segment (transcript.json's caption lines), the
// line being spoken marked and kept in view as the recording plays; a line plays from its start
// when clicked (each line is a button, so the keyboard reaches it too). A search shows only the
// lines it finds (search.js).

import { lineItem } from "./lines.js";

/** @typedef {import("./lines.js").Segment} Segment */

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
    list.replaceChildren(...this.segments.map((segment) => lineItem(segment, (s, p) => player.seek(s, p))));
  }

  /**
   * Show only the lines `find` finds, with what it found marked (`find` gives the text's parts,
   * or null where it finds nothing); how many lines are shown.
   * @param {(text: string) => (Node|string)[]|null} find
   */
  filter(find) {
    let shown = 0;
    for (const [i, segment] of this.segments.entries()) {
      const line = this.list.children[i];
      const parts = find(segment.text);
      line.hidden = parts === null;
      line.querySelector(".text").replaceChildren(...(parts ?? [segment.text]));
      if (parts) shown += 1;
    }
    this.list.scrollTop = 0;
    this.keepInView();
    return shown;
  }

  /** The buttons of the lines shown, first to last. */
  shownLines() {
    return [...this.list.children].filter((line) => !line.hidden).map((line) => line.querySelector(".line"));
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
    this.list.children[index]?.setAttribute("aria-current", "true");
    this.keepInView();
  }

  keepInView() {
    const line = this.list.children[this.current];
    if (!line || line.hidden) return; // searched away: nothing to keep in view
    // Scroll the list only (scrollIntoView would scroll the page under the reader too); the
    // list is positioned, so a line's offsetTop is within it.
    const top = line.offsetTop;
    if (top < this.list.scrollTop || top + line.offsetHeight > this.list.scrollTop + this.list.clientHeight) {
      this.list.scrollTop = top - this.list.clientHeight / 3;
    }
  }
}
