// "Your jobs": the signed-in user's jobs, newest first, one row each with its status, its bar,
// how long the recording is and when it was started. Rows are updated in place (bars move rather
// than blink); a row opens its job on a click or on Enter, and cancels or retries it from its
// own buttons.

import { ago, clock, element } from "./format.js";

/** @typedef {import("./longrun.js").Job} Job */

const ENDED = new Set(["succeeded", "failed", "cancelled"]);

/**
 * @param {HTMLOListElement} list
 * @param {Job[]} jobs
 * @param {{current: string|null, open: (jobId: string) => void,
 *   cancel: (jobId: string) => void, retry: (jobId: string) => void}} actions
 */
export function renderJobList(list, jobs, actions) {
  const existing = new Map([...list.children].map((row) => [row.dataset.job, row]));
  const rows = jobs.map((job) => {
    const row = existing.get(job.job_id) ?? newRow(job.job_id, actions);
    updateRow(row, job, job.job_id === actions.current);
    return row;
  });
  if (rows.length !== list.children.length || rows.some((row, i) => list.children[i] !== row)) {
    list.replaceChildren(...rows);
  }
}

/** Mark the open job's row (after a job is opened, before the list next changes). */
export function markCurrent(list, jobId) {
  for (const row of list.children) {
    if (row.dataset.job === jobId) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

function newRow(jobId, actions) {
  const row = element("li");
  row.dataset.job = jobId;
  row.tabIndex = 0;
  const head = element("div", "row-head");
  head.append(element("span", "status"), element("span", "pipeline"), element("span", "length"));
  const bar = element("progress");
  bar.max = 1;
  const foot = element("div", "row-foot");
  const cancel = element("button", "cancel", "Cancel");
  const retry = element("button", "retry", "Retry");
  for (const button of [cancel, retry]) button.type = "button";
  foot.append(element("time"), cancel, retry);
  row.append(head, bar, foot);

  row.addEventListener("click", (event) => {
    if (!event.target.closest("button")) actions.open(jobId);
  });
  row.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target === row) actions.open(jobId);
  });
  cancel.addEventListener("click", () => actions.cancel(jobId));
  retry.addEventListener("click", () => actions.retry(jobId));
  return row;
}

function updateRow(row, job, current) {
  if (current) row.setAttribute("aria-current", "true");
  else row.removeAttribute("aria-current");
  const status = row.querySelector(".status");
  status.textContent = job.status;
  status.className = `status ${job.status}`;
  row.querySelector(".pipeline").textContent = job.pipeline;
  const seconds = job.result?.duration_seconds;
  row.querySelector(".length").textContent = seconds ? `${clock(seconds)} recording` : "";
  const bar = row.querySelector("progress");
  bar.value = job.progress;
  bar.setAttribute("aria-label", `${job.pipeline}: ${Math.round(job.progress * 100)}%`);
  const when = row.querySelector("time");
  if (job.created_at) {
    when.dateTime = job.created_at;
    when.textContent = ago(job.created_at);
    when.title = new Date(job.created_at).toLocaleString();
  }
  row.querySelector(".cancel").hidden = ENDED.has(job.status) || job.cancel_requested;
  row.querySelector(".retry").hidden = job.status !== "failed";
  row.setAttribute("aria-label", `${job.pipeline}, ${job.status}, started ${when.textContent}`);
}
