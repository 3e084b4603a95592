// Drives the page in headless Chromium with a recording of speech: upload it as the page's user
// (from here: the local storage emulator answers no browser's CORS preflight), start a job on it
// and open it in the page, wait for the job to end, then check that the transcript follows playback (the line being
// spoken is marked, and the list scrolls to keep it in view) and that a line plays from its
// start when clicked. Prints what it saw as JSON.
//   node web/tests/transcript.mjs http://127.0.0.1:8000/ speech.wav shot.png
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { callAsUser, launch } from "./browser.mjs";

const [url, recording, screenshot] = process.argv.slice(2);
const browser = await launch();
const report = { page_errors: [] };

const state = (page) => page.evaluate(() => {
  const media = document.querySelector("#player-box .player");
  const list = document.querySelector("#transcript");
  const lines = [...list.children];
  const marked = lines.findIndex((line) => line.getAttribute("aria-current") === "true");
  const box = list.getBoundingClientRect();
  const line = lines[marked]?.getBoundingClientRect();
  return {
    time: media.currentTime,
    marked,
    marked_in_view: Boolean(line) && line.top >= box.top - 1 && line.bottom <= box.bottom + 1,
    scroll_top: list.scrollTop,
  };
});

try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (error) => report.page_errors.push(error.message));
  await page.goto(url);
  await page.waitForSelector("#jobs-empty:not([hidden])", { timeout: 300_000 }); // signed in
  const bytes = await readFile(recording);
  const ticket = await callAsUser(page, "POST", "/v1/uploads",
    { filename: basename(recording), content_type: "audio/wav", size_bytes: bytes.length });
  const stored = await fetch(ticket.upload_url, { method: "PUT", headers: ticket.headers, body: bytes });
  if (!stored.ok) throw new Error(`upload: ${stored.status}`);
  const input = { source: ticket.upload_id, options: { highlights: 2 } };
  const job = await callAsUser(page, "POST", "/v1/jobs", { pipeline: "media-analysis", input });
  await page.goto(`${url}?job=${job.job_id}`);
  await page.waitForFunction(() => document.querySelector("#status")?.textContent === "succeeded",
    null, { timeout: 600_000 });
  await page.waitForFunction(() => document.querySelector("#transcript li") &&
    document.querySelector("#player-box .player")?.readyState >= 1, null, { timeout: 60_000 });
  report.player = await page.$eval("#player-box .player", (media) => media.tagName.toLowerCase());
  report.transcript_shown = await page.isVisible("#transcript-box");
  report.lines = await page.$$eval("#transcript li", (lines) => lines.map((line) => ({
    start: Number(line.dataset.start),
    time: line.querySelector("time").textContent,
    text: line.querySelector("span").textContent,
  })));
  report.list_height = await page.$eval("#transcript", (list) => ({ client: list.clientHeight, scroll: list.scrollHeight }));

  // Clicking the last line plays from there; the list has scrolled to it.
  const last = report.lines.length - 1;
  const marked = (n) => page.waitForFunction((n) => document.querySelector(`#transcript li:nth-child(${n})`)
    ?.getAttribute("aria-current") === "true", n, { timeout: 10_000 }).catch(() => {});
  await page.click(`#transcript li:nth-child(${last + 1}) .line`);
  await marked(last + 1);
  report.after_last_click = await state(page);
  // Clicking the first line comes back, and playback carries the mark on to the next line.
  await page.click("#transcript li:nth-child(1) .line");
  await marked(1);
  report.after_first_click = await state(page);
  await page.waitForFunction(() => document.querySelector("#transcript li:nth-child(2)")
    ?.getAttribute("aria-current") === "true", null, { timeout: 60_000 });
  report.later = await state(page);
  await page.evaluate(() => document.querySelector("#player-box .player").pause());
  await page.$eval("#watch", (section) => section.scrollIntoView());
  await page.locator("#watch").screenshot({ path: screenshot });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
