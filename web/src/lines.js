// A transcript line as the page shows it: its time and text in a button that plays the
// recording from the line's start. The transcript, each highlight and the lines heard while the
// job runs all list their lines this way.

import { clock, element } from "./format.js";

/** @typedef {{start: number, end: number, text: string}} Segment */
/** @typedef {(seconds: number, play: boolean) => void} Seek */

/**
 * One line, as a list item holding its button.
 * @param {Segment} segment
 * @param {Seek} seek
 */
export function lineItem(segment, seek) {
  const item = element("li");
  item.dataset.start = String(segment.start);
  const button = element("button", "line");
  button.type = "button";
  button.append(element("time", null, clock(segment.start)), element("span", "text", segment.text));
  button.addEventListener("click", () => seek(segment.start, true));
  item.append(button);
  return item;
}

/**
 * Lines in a list of their own (class `lines`), named for assistive technology by `label`.
 * @param {Segment[]} segments
 * @param {string} label
 * @param {Seek} seek
 */
export function lineList(segments, label, seek) {
  const list = element("ol", "lines");
  list.setAttribute("aria-label", label);
  list.append(...segments.map((segment) => lineItem(segment, seek)));
  return list;
}
