// Drives the page in headless Chromium with a recording of speech: upload it as the page's user
// (from here: the local storage emulator answers no browser's CORS preflight), start a job on it
// and open it in the page, see lines heard while it runs, wait for the job to end, then check
// that the transcript follows playback (the line being spoken is marked, and the list scrolls to
// keep it in view), that a line plays from its start when clicked, that searching it finds a
// word and a phrase said (and plays what it found, with the mouse and the keyboard), and that
// each highlight lists what was said in it. Prints what it saw as JSON.
//   node web/tests/transcript.mjs http://127.0.0.1:8000/ speech.wav shot.png WORD
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { callAsUser, launch } from "./browser.mjs";

const [url, recording, screenshot, word] = process.argv.slice(2);
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

// What the page showed under "Heard so far" the first time it showed lines there, and the job's
// status then: caught by an observer in the page, so no moment of it is missed between polls.
const catchHeard = () => {
  window.firstHeard = null;
  new MutationObserver(() => {
    const box = document.querySelector("#heard-box");
    const lines = [...document.querySelectorAll("#heard li")];
    if (window.firstHeard || !box || box.getBoundingClientRect().height === 0 || lines.length === 0) return;
    window.firstHeard = {
      status: document.querySelector("#status").textContent,
      lines: lines.map((line) => ({ start: Number(line.dataset.start), text: line.querySelector(".text").textContent })),
    };
  }).observe(document, { subtree: true, childList: true, attributes: true });
};

const shownLines = (page) => page.$$eval("#transcript li", (lines) => lines
  .filter((line) => line.getBoundingClientRect().height > 0)
  .map((line) => ({
    start: Number(line.dataset.start),
    text: line.querySelector(".text").textContent,
    marked: [...line.querySelectorAll("mark")].map((mark) => mark.textContent),
  })));

// Type into the search box as a person would; what it then shows.
async function search(page, query) {
  await page.fill("#transcript-search", "");
  await page.type("#transcript-search", query);
  return { count: await page.textContent("#transcript-matches"), lines: await shownLines(page) };
}

const playerTime = (page) => page.$eval("#player-box .player", (media) => media.currentTime);

try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (error) => report.page_errors.push(error.message));
  await page.addInitScript(catchHeard);
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
  report.heard_while_running = await page.evaluate(() => window.firstHeard);
  report.heard_shown_after = await page.isVisible("#heard-box");
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

  // Each highlight's lines, as the page lists them and as the job's result has them; the first
  // one found plays from its start.
  const finished = await callAsUser(page, "GET", `/v1/jobs/${job.job_id}`);
  report.highlight_lines = await page.$$eval("#highlight-list > li", (items) => items.map((item) =>
    [...item.querySelectorAll(".lines li")].map((line) => ({
      start: Number(line.dataset.start), text: line.querySelector(".text").textContent,
    }))));
  report.result_highlight_lines = finished.result.highlights.map((h) => h.transcript.map(({ start, text }) => ({ start, text })));
  const saidIn = report.highlight_lines.findIndex((lines) => lines.length > 0);
  if (saidIn >= 0) {
    await page.click(`#highlight-list > li:nth-child(${saidIn + 1}) .lines li:last-child .line`);
    report.after_highlight_line = { start: report.highlight_lines[saidIn].at(-1).start, time: await playerTime(page) };
  }

  // Search: a word said, in capitals; the first line found plays on Enter in the box, the last
  // when clicked. Then a phrase from a line, nothing said, and back to every line.
  report.found_word = await search(page, word.toUpperCase());
  await page.press("#transcript-search", "Enter");
  report.after_enter = { time: await playerTime(page) };
  const found = await page.$$("#transcript li:not([hidden]) .line");
  await found.at(-1).click();
  report.after_found_click = { time: await playerTime(page) };
  await page.focus("#transcript-search");
  await page.press("#transcript-search", "ArrowDown");
  report.focused_after_arrow = await page.evaluate(() => {
    const line = document.activeElement.closest("#transcript li");
    return line ? Number(line.dataset.start) : null;
  });
  const words = report.lines.at(-1).text.split(" ");
  report.phrase = words.slice(0, 2).join(" ");
  report.found_phrase = await search(page, report.phrase.toUpperCase());
  report.found_nothing = await search(page, "xylophone");
  report.found_all = await search(page, "  ");
  await search(page, word);
  await page.$eval("#watch", (section) => section.scrollIntoView());
  await page.locator("#watch").screenshot({ path: screenshot });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
