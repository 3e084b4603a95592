// Drives the demo page in headless Chromium: submit the sample, watch progress move live,
// refresh mid-job, see the job finish and its highlights. Prints what it saw as JSON.
//   node web/tests/page.mjs http://127.0.0.1:8000/ /tmp/page.png
import { launch } from "./browser.mjs";

const [url, screenshot] = process.argv.slice(2);
const browser = await launch();
const report = { page_errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (error) => report.page_errors.push(error.message));
  const statusIs = (wanted, timeout) =>
    page.waitForFunction((s) => document.querySelector("#status")?.textContent === s, wanted, { timeout });

  await page.goto(url);
  await page.fill("#highlight-count", "3");
  await page.click("#submit");
  await page.waitForURL(/\?job=/, { timeout: 120_000 });
  report.job_id = new URL(page.url()).searchParams.get("job");
  await statusIs("running", 120_000);
  const progress = new Set();
  for (let i = 0; i < 200 && progress.size < 3; i++) {
    progress.add(await page.$eval("#overall", (bar) => bar.value));
    await page.waitForTimeout(50);
  }
  report.progress_seen = [...progress].sort();
  report.live_via = await page.textContent("#source");
  report.status_before_refresh = await page.textContent("#status");

  await page.reload();
  // The page signs in again before it shows the job from its URL.
  await page.waitForFunction(() => document.querySelector("#job-id")?.textContent, null, { timeout: 60_000 });
  report.job_id_after_refresh = await page.textContent("#job-id");
  await statusIs("succeeded", 240_000);
  await page.waitForFunction(() => {
    const images = [...document.querySelectorAll("#highlight-list img, #timeline")];
    return images.length > 1 && images.every((image) => image.complete && image.naturalWidth > 0);
  }, null, { timeout: 60_000 });
  report.status_after_refresh = await page.textContent("#status");
  report.cost = await page.textContent("#cost");
  report.stages = await page.$$eval("#stages li", (rows) =>
    rows.map((row) => `${row.dataset.stage}:${row.querySelector(".state").textContent}`));
  // Only what a person can see counts: each item must take up room on the page.
  report.highlights = await page.$$eval("#highlight-list li", (items) =>
    items.filter((i) => i.getBoundingClientRect().height > 20).map((i) => i.textContent));
  report.stage_notes = await page.$$eval("#stages li .note", (notes) => notes.map((n) => n.textContent));
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
