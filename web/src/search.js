// Searching the transcript: the box above it shows only the lines that say what was typed
// (case aside; a phrase as consecutive words; a word found from its start, so "self" finds
// "selfish" but not "itself"), marks it in them and says how many lines it found. Enter plays
// the first line found, the down arrow moves to it; Tab reaches each line found.

import { element } from "./format.js";

/** @typedef {import("./transcript.js").Transcript} Transcript */

/**
 * What finds `query` in a line's text: the text's parts with each find in a <mark>, or null
 * where it is not said; null for a blank query (every line shown, nothing marked).
 * @param {string} query
 * @returns {((text: string) => (Node|string)[]|null)|null}
 */
export function finder(query) {
  const words = query.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return null;
  const escaped = words.map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}'])${escaped.join("\\s+")}`, "giu");
  return (text) => {
    const parts = [];
    let from = 0;
    for (const found of text.matchAll(pattern)) {
      parts.push(text.slice(from, found.index), element("mark", null, found[0]));
      from = found.index + found[0].length;
    }
    return parts.length ? [...parts, text.slice(from)] : null;
  };
}

/**
 * Wire the search box to a transcript. The box outlives the transcript (each job opened gets
 * a new one), so its handlers are replaced, not added to.
 * @param {HTMLInputElement} input
 * @param {HTMLElement} count where the number of lines found is said (a status region)
 * @param {Transcript} transcript
 */
export function searchTranscript(input, count, transcript) {
  input.value = "";
  count.textContent = "";
  input.oninput = () => {
    const find = finder(input.value);
    const shown = transcript.filter(find ?? ((text) => [text]));
    count.textContent = find ? said(shown) : "";
  };
  input.onkeydown = (event) => {
    const first = transcript.shownLines()[0];
    if (!first || !finder(input.value)) return;
    if (event.key === "Enter") first.click();
    else if (event.key === "ArrowDown") first.focus();
    else return;
    event.preventDefault();
  };
}

const said = (lines) => (lines === 0 ? "no line says that" : lines === 1 ? "1 line says that" : `${lines} lines say that`);
