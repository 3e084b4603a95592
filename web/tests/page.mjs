// Drives the page in headless Chromium as a person would: submit the sample, watch it live (in
// the job's own view and in "Your jobs"), refresh mid-job, see the job finish, play the
// recording from a highlight, from a point on the timeline and with the timeline's keys, play a
// highlight's own clip and save it; then come back to the page, open the job from the list with
// the keyboard, and cancel and retry jobs from their rows; finally look at it all on a phone.
// Prints what it saw as JSON.
//   node web/tests/page.mjs http://127.0.0.1:8000/ desktop.png phone.png
import { readFile } from "node:fs/promises";
import { callAsUser, launch, userToken } from "./browser.mjs";

const [url, desktopShot, phoneShot] = process.argv.slice(2);
const PHONE = { width: 390, height: 844 };
const browser = await launch();
const report = { page_errors: [] };

const submitAsUser = async (page, input) =>
  (await callAsUser(page, "POST", "/v1/jobs", { pipeline: "diagnostic", input })).job_id;

const video = (page) => page.evaluate(() => {
  const media = document.querySelector("#player-box .player");
  return media && { time: media.currentTime, duration: media.duration, ready: media.readyState, paused: media.paused };
});

try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (error) => report.page_errors.push(error.message));
  const statusIs = (wanted, timeout) =>
    page.waitForFunction((s) => document.querySelector("#status")?.textContent === s, wanted, { timeout });
  const rowStatus = (jobId) => page.evaluate(
    (id) => document.querySelector(`#job-list li[data-job="${id}"] .status`)?.textContent ?? null, jobId);

  await page.goto(url);
  // Signed in once "Your jobs" has answered (a first sign-in may be slow on a loaded machine).
  await page.waitForSelector("#jobs-empty:not([hidden])", { timeout: 300_000 });
  await page.fill("#highlight-count", "3");
  await page.click("#submit");
  await page.waitForURL(/\?job=/, { timeout: 120_000 });
  report.job_id = new URL(page.url()).searchParams.get("job");
  await statusIs("running", 120_000);
  const progress = new Set();
  const rowProgress = new Set();
  for (let i = 0; i < 200 && (progress.size < 3 || rowProgress.size < 3); i++) {
    progress.add(await page.$eval("#overall", (bar) => bar.value));
    rowProgress.add(await page.evaluate(
      (id) => document.querySelector(`#job-list li[data-job="${id}"] progress`)?.value ?? null, report.job_id));
    await page.waitForTimeout(50);
  }
  report.progress_seen = [...progress].sort();
  report.row_progress_seen = [...rowProgress].filter((value) => value !== null).sort();
  report.live_via = await page.textContent("#source");
  report.row_status_while_running = await rowStatus(report.job_id);
  // The recording plays as soon as it is stored, while the analyses still run.
  await page.waitForSelector("#player-box .player", { timeout: 120_000 });
  report.status_when_player_came = await page.textContent("#status");
  report.status_before_refresh = await page.textContent("#status");

  await page.reload();
  // The page signs in again before it shows the job from its URL.
  await page.waitForFunction(() => document.querySelector("#job-id")?.textContent, null, { timeout: 60_000 });
  report.job_id_after_refresh = await page.textContent("#job-id");
  await statusIs("succeeded", 240_000);
  await page.waitForFunction(() => {
    const images = [...document.querySelectorAll("#highlight-list img")];
    const media = document.querySelector("#player-box .player");
    return images.length > 0 && images.every((image) => image.complete && image.naturalWidth > 0) &&
      media?.readyState >= 1 && document.querySelector("#results:not([hidden]) #highlight-list > li");
  }, null, { timeout: 60_000 });
  report.status_after_refresh = await page.textContent("#status");
  report.row_status_after = await rowStatus(report.job_id);
  report.row_length = await page.textContent(`#job-list li[data-job="${report.job_id}"] .length`);
  report.cost = await page.textContent("#cost");
  report.stages = await page.$$eval("#stages li", (rows) =>
    rows.map((row) => `${row.dataset.stage}:${row.querySelector(".state").textContent}`));
  // Only what a person can see counts: each item must take up room on the page.
  report.highlights = await page.$$eval("#highlight-list > li", (items) =>
    items.filter((i) => i.getBoundingClientRect().height > 20).map((i) => i.textContent));
  report.stage_notes = await page.$$eval("#stages li .note", (notes) => notes.map((n) => n.textContent));
  report.timeline = await page.evaluate(() => ({
    spans: [...document.querySelectorAll("#timeline rect.span")].map((rect) => Number(rect.dataset.start)),
    cuts: document.querySelectorAll("#timeline line.cut").length,
    bands: [...document.querySelectorAll("#timeline polygon")].map((band) => band.getAttribute("class")),
    ticks: [...document.querySelectorAll("#timeline .ticks span")].map((tick) => tick.textContent),
  }));
  report.video_before = await video(page);

  // A highlight plays from its start.
  const second = report.timeline.spans[1];
  await page.click("#highlight-list > li:nth-child(2) .seek");
  await page.waitForFunction((start) => document.querySelector("#player-box .player").currentTime >= start,
    second, { timeout: 10_000 });
  report.after_highlight = { start: second, ...(await video(page)) };
  // A point on the timeline outside the highlights moves the player there.
  const point = await page.evaluate(() => {
    const svg = document.querySelector("#timeline svg").getBoundingClientRect();
    const spans = [...document.querySelectorAll("#timeline rect.span")].map((rect) => rect.getBoundingClientRect());
    const share = [0.05, 0.35, 0.65, 0.95].find((s) => {
      const x = svg.left + s * svg.width;
      return spans.every((span) => x < span.left - 4 || x > span.right + 4);
    });
    return { share, x: svg.left + share * svg.width, y: svg.top + svg.height / 2 };
  });
  // Paused, so the time stays where it is put.
  await page.evaluate(() => document.querySelector("#player-box .player").pause());
  await page.mouse.click(point.x, point.y);
  await page.waitForTimeout(300);
  report.after_timeline_click = { share: point.share, ...(await video(page)) };
  // The timeline is a slider for the keyboard: End, then one step back.
  await page.focus("#timeline");
  await page.keyboard.press("End");
  await page.keyboard.press("ArrowLeft");
  await page.waitForTimeout(300);
  report.after_keys = { ...(await video(page)), valuetext: await page.getAttribute("#timeline", "aria-valuetext") };
  // The second highlight's own clip: played with the keyboard alone, then saved.
  const job = await callAsUser(page, "GET", `/v1/jobs/${report.job_id}`);
  const clipped = job.result.highlights[1];
  const clipItem = "#highlight-list > li:nth-child(2)";
  // The recording plays on until the clip starts.
  report.recording_was_playing = await page.evaluate(async () => {
    const media = document.querySelector("#player-box .player");
    await media.play().catch(() => {});
    return !media.paused;
  });
  await page.focus(`${clipItem} .play-clip`);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`${clipItem} .clip-player`, { timeout: 60_000 });
  report.clip_from = await page.$eval(`${clipItem} .clip-player`, (media) => media.currentTime);
  // It starts a second before the highlight (or at the clip's start), and must play on from there.
  const leadIn = Math.max(0, clipped.start - clipped.clip_start - 1);
  await page.waitForFunction(({ selector, from }) => {
    const media = document.querySelector(selector);
    return media.ended || media.currentTime > from + 0.5;
  }, { selector: `${clipItem} .clip-player`, from: leadIn }, { timeout: 60_000 });
  report.clip_played = await page.$eval(`${clipItem} .clip-player`, (media) => ({
    tag: media.tagName.toLowerCase(), time: media.currentTime, ended: media.ended,
    duration: media.duration, width: media.videoWidth ?? 0,
    recording_paused: document.querySelector("#player-box .player").paused,
  }));
  report.clip = { name: clipped.clip, start: clipped.start, clip_start: clipped.clip_start,
    end: clipped.end, size_bytes: job.artifacts[clipped.clip].size_bytes };
  await page.$eval(`${clipItem} .clip-player`, (media) => media.pause());
  await page.focus(`${clipItem} .download-clip`);
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 60_000 }), page.keyboard.press("Enter")]);
  const saved = await readFile(await download.path());
  report.clip_download = { name: download.suggestedFilename(), size_bytes: saved.length,
    box: saved.subarray(4, 8).toString("latin1") };
  const stored = await fetch(new URL(`/v1/jobs/${report.job_id}/artifacts/${clipped.clip}`, page.url()),
    { headers: { Authorization: `Bearer ${await userToken(page)}` } });
  report.clip_download.same_bytes = Buffer.from(await stored.arrayBuffer()).equals(saved);
  // The docs' picture: the player on the second highlight, its clip open under it.
  await page.evaluate((start) => { document.querySelector("#player-box .player").currentTime = start + 1; }, second);
  await page.waitForTimeout(500);
  await page.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
  await page.screenshot({ path: desktopShot, fullPage: true });

  // Back to the page later: the job is in the list; Tab reaches its row, Enter opens it.
  await page.goto(url);
  await page.waitForSelector(`#job-list li[data-job="${report.job_id}"]`, { timeout: 60_000 });
  report.job_shown_before_opening = await page.isVisible("#job");
  await page.focus("#submit");
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(() => document.activeElement?.dataset?.job)) break;
  }
  report.focused_row = await page.evaluate(() => document.activeElement?.dataset?.job ?? null);
  report.focus_outline = await page.evaluate(() => {
    const style = getComputedStyle(document.activeElement);
    return `${style.outlineStyle} ${style.outlineWidth}`;
  });
  await page.keyboard.press("Enter");
  await statusIs("succeeded", 60_000);
  await page.waitForSelector("#highlight-list .seek", { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector("#player-box .player")?.readyState >= 1, null, { timeout: 60_000 });
  report.opened_from_list = {
    url_job: new URL(page.url()).searchParams.get("job"),
    job_id: await page.textContent("#job-id"),
    highlights: await page.$$eval("#highlight-list > li", (items) => items.length),
    current_row: await page.getAttribute(`#job-list li[data-job="${report.job_id}"]`, "aria-current"),
  };

  // Cancel a running job and retry a failed one, each from its row in the list.
  const long = await submitAsUser(page, { stages: 1, work_units: 60, unit_seconds: 1 });
  const failing = await submitAsUser(page, { stages: 1, fail_stage: 1, fail_mode: "permanent", fail_attempts: 1 });
  const rowButton = (id, name) => `#job-list li[data-job="${id}"] button.${name}`;
  await page.waitForFunction((id) => ["queued", "running"].includes(
    document.querySelector(`#job-list li[data-job="${id}"] .status`)?.textContent), long, { timeout: 60_000 });
  await page.click(rowButton(long, "cancel"));
  await page.waitForFunction((id) => document.querySelector(`#job-list li[data-job="${id}"] .status`)?.textContent === "cancelled",
    long, { timeout: 60_000 });
  report.cancelled_row = { status: await rowStatus(long), cancel_shown: await page.isVisible(rowButton(long, "cancel")) };
  await page.waitForSelector(rowButton(failing, "retry"), { state: "visible", timeout: 120_000 });
  report.failed_row = await rowStatus(failing);
  await page.click(rowButton(failing, "retry"));
  await page.waitForFunction((id) => document.querySelector(`#job-list li[data-job="${id}"] .status`)?.textContent === "succeeded",
    failing, { timeout: 120_000 });
  report.retried_row = { status: await rowStatus(failing), retry_shown: await page.isVisible(rowButton(failing, "retry")) };
  report.rows = await page.$$eval("#job-list li", (rows) => rows.map((row) => row.dataset.job));
  report.newest_first = [failing, long, report.job_id];
  // The open job stayed open while the others came and went.
  report.still_open = await page.textContent("#job-id");

  // A phone: nothing runs off the side; the player and the timeline take the width.
  await page.setViewportSize(PHONE);
  await page.reload();
  await page.waitForSelector("#highlight-list .seek", { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector("#player-box .player")?.readyState >= 1, null, { timeout: 60_000 });
  report.phone = await page.evaluate(() => ({
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    player_width: document.querySelector("#player-box .player").getBoundingClientRect().width,
    timeline_width: document.querySelector("#timeline").getBoundingClientRect().width,
    rows_width: [...document.querySelectorAll("#job-list li")].map((row) => row.getBoundingClientRect().width),
  }));
  await page.screenshot({ path: phoneShot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
