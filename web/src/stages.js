// The job's stages as a list of bars, one per stage, updated in place on every new state of the
// job. Stages that run at the same time are simply several bars moving at once; a stage that
// fanned out into parts shows how many are done of how many (and how many failed), a strip of
// their states, and a small bar for each part running now.

import { element } from "./format.js";

/** @typedef {import("./longrun.js").Stage} Stage */
/** @typedef {import("./longrun.js").StageItems} StageItems */

// Past this many parts running at once, the rest are counted rather than drawn: a long recording
// may have fifty running on as many instances.
const MAX_PART_BARS = 12;
const DONE = new Set(["succeeded", "skipped"]);

/**
 * Show `stages` in `list`, reusing the rows already there (so bars move instead of blinking).
 * @param {HTMLOListElement} list
 * @param {Stage[]} stages
 * @param {string|null} headline the stage the job names as the one to headline
 */
export function renderStages(list, stages, headline) {
  const labels = new Map(stages.map((stage) => [stage.name, stage.label]));
  const rows = stages.map((stage) => {
    const row = rowFor(list, stage.name) ?? newRow(stage, labels);
    updateRow(row, stage, stage.name === headline);
    return row;
  });
  if (rows.some((row, index) => list.children[index] !== row) || list.children.length !== rows.length) {
    list.replaceChildren(...rows);
  }
}

function rowFor(list, name) {
  return [...list.children].find((row) => row.dataset.stage === name);
}

function newRow(stage, labels) {
  const row = element("li");
  row.dataset.stage = stage.name;
  const name = element("span", "label");
  name.append(element("span", "name", stage.label));
  if (stage.needs?.length) {
    const after = stage.needs.map((need) => labels.get(need) ?? need).join(", ");
    name.append(element("small", "needs", `after ${after}`));
  }
  const bar = element("progress");
  bar.max = 1;
  bar.setAttribute("aria-label", stage.label);
  const parts = element("div", "parts");
  parts.hidden = true;
  parts.append(
    element("span", "count"),
    element("span", "failed"),
    partsStrip(),
    element("ol", "part-bars"),
    element("span", "more"),
  );
  parts.querySelector(".part-bars").setAttribute("aria-label", `${stage.label}: parts running now`);
  row.append(name, bar, element("span", "state"), element("span", "note"), parts);
  return row;
}

// Done, failed, running and waiting parts side by side, to scale: a glance at where a fan-out
// stands even with thousands of parts. The counts say the same in words, for screen readers.
function partsStrip() {
  const strip = element("div", "strip");
  strip.setAttribute("aria-hidden", "true");
  for (const kind of ["done", "failed", "running", "waiting"]) strip.append(element("span", kind));
  return strip;
}

function updateRow(row, stage, headline) {
  row.className = `state-${stage.status}${headline ? " headline" : ""}`;
  if (headline) row.setAttribute("aria-current", "step");
  else row.removeAttribute("aria-current");
  row.querySelector("progress").value = DONE.has(stage.status) ? 1 : stage.progress;
  row.querySelector(".state").textContent = stage.status;
  // A fanned-out stage's message only counts its parts, which the parts line shows better.
  const message = stage.items ? null : stage.message;
  row.querySelector(".note").textContent = stage.error ? stage.error.message : message || "";
  updateParts(row.querySelector(".parts"), stage);
}

/** @param {HTMLElement} parts @param {Stage} stage */
function updateParts(parts, stage) {
  const items = stage.items;
  parts.hidden = !items;
  if (!items) return;
  const running = Object.entries(items.running ?? {})
    .map(([number, fraction]) => [Number(number), fraction])
    .sort(([a], [b]) => a - b);
  const reducing = stage.status === "running" && items.done + items.failed >= items.total;
  parts.querySelector(".count").textContent =
    `${items.done}/${items.total} parts` + (reducing ? " · combining" : "");
  parts.querySelector(".failed").textContent = items.failed ? `${items.failed} failed` : "";
  const waiting = Math.max(0, items.total - items.done - items.failed - running.length);
  const widths = { done: items.done, failed: items.failed, running: running.length, waiting };
  for (const [kind, count] of Object.entries(widths)) {
    parts.querySelector(`.strip .${kind}`).style.flexGrow = String(count);
  }
  updatePartBars(parts.querySelector(".part-bars"), running.slice(0, MAX_PART_BARS), items.total);
  const more = running.length - MAX_PART_BARS;
  parts.querySelector(".more").textContent = more > 0 ? `+${more} more running` : "";
}

function updatePartBars(list, running, total) {
  const existing = new Map([...list.children].map((bar) => [Number(bar.dataset.item), bar]));
  const bars = running.map(([number, fraction]) => {
    const item = existing.get(number) ?? newPartBar(number, total);
    item.querySelector("progress").value = fraction;
    return item;
  });
  if (bars.length !== list.children.length || bars.some((bar, i) => list.children[i] !== bar)) {
    list.replaceChildren(...bars);
  }
}

// Parts are numbered from 0 in the job document; people count from 1.
function newPartBar(number, total) {
  const item = element("li");
  item.dataset.item = String(number);
  const bar = element("progress");
  bar.max = 1;
  bar.setAttribute("aria-label", `part ${number + 1} of ${total}`);
  item.append(element("span", "part", `#${number + 1}`), bar);
  return item;
}
