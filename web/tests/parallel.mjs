// Drives the demo page in headless Chromium through a diagnostic run whose middle steps run side
// by side, each split into parts: chosen and started with the keyboard alone, watched live,
// refreshed mid-job on a phone-sized screen, watched to the end. Every state the stage list is
// drawn in is recorded inside the page as it happens; what that shows is printed as JSON.
//   node web/tests/parallel.mjs http://127.0.0.1:8000/ desktop.png phone.png
import { launch } from "./browser.mjs";

const [url, desktopShot, phoneShot] = process.argv.slice(2);
const PHONE = { width: 390, height: 844 };

// Runs in the page before its own code, on every load: a snapshot of the stage rows after each
// change the page makes to the job section.
function recordStages() {
  window.__states = [];
  const snapshot = () => ({
    status: document.querySelector("#status").textContent,
    stages: [...document.querySelectorAll("#stages > li")].map((row) => ({
      name: row.dataset.stage,
      state: row.querySelector(".state").textContent,
      progress: row.querySelector(":scope > progress").value,
      headline: row.getAttribute("aria-current") === "step",
      parts: row.querySelector(".parts").hidden ? null : row.querySelector(".count").textContent,
      part_bars: [...row.querySelectorAll(".part-bars progress")].map((bar) => bar.value),
    })),
  });
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(() => {
      const state = snapshot();
      const last = window.__states.at(-1);
      if (JSON.stringify(last) !== JSON.stringify(state)) window.__states.push(state);
    }).observe(document.querySelector("#job"), {
      subtree: true, childList: true, characterData: true, attributes: true,
    });
  });
}

const stageNames = (states) => [...new Set(states.flatMap(({ stages }) => stages.map((s) => s.name)))];

// Pairs of stages that were both running and whose bars both moved while they were.
function movedTogether(states) {
  const names = stageNames(states);
  const pairs = [];
  for (const [i, a] of names.entries()) {
    for (const b of names.slice(i + 1)) {
      let seen = null;
      for (const { stages } of states) {
        const [sa, sb] = [a, b].map((name) => stages.find((stage) => stage.name === name));
        if (sa?.state !== "running" || sb?.state !== "running") {
          seen = null;
          continue;
        }
        seen ??= { [a]: new Set(), [b]: new Set() };
        seen[a].add(sa.progress);
        seen[b].add(sb.progress);
        if (seen[a].size > 1 && seen[b].size > 1) {
          pairs.push(`${a}+${b}`);
          break;
        }
      }
    }
  }
  return pairs;
}

const summary = (states) => ({
  moved_together: movedTogether(states),
  most_running_at_once: Math.max(0, ...states.map(
    ({ stages }) => stages.filter((stage) => stage.state === "running").length)),
  headlines_while_several_ran: [...new Set(states
    .filter(({ stages }) => stages.filter((stage) => stage.state === "running").length > 1)
    .map(({ stages }) => stages.filter((stage) => stage.headline).length))],
  parts_seen: Object.fromEntries(stageNames(states).map((name) => [name, [...new Set(
    states.map(({ stages }) => stages.find((stage) => stage.name === name)?.parts).filter(Boolean),
  )]])),
  part_bar_values: [...new Set(states.flatMap(({ stages }) => stages.flatMap((s) => s.part_bars)))],
  statuses: [...new Set(states.map((state) => state.status))],
});

const browser = await launch();
const report = { page_errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (error) => report.page_errors.push(error.message));
  await page.addInitScript(recordStages);
  await page.goto(url);

  // The keyboard alone: arrow to the diagnostic run, tab through its fields, Enter to start.
  const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.value);
  await page.focus('input[name="pipeline"]:checked');
  await page.keyboard.press("ArrowDown");
  report.diagnostic_fields_shown = await page.isVisible("#diagnostic-fields");
  report.media_fields_shown = await page.isVisible("#media-fields");
  report.focus_path = [await focused()];
  for (const key of ["Tab", "Tab", "Tab"]) {
    await page.keyboard.press(key);
    report.focus_path.push(await focused());
  }
  await page.keyboard.press("Control+A");
  await page.keyboard.type("2");
  for (const key of ["Tab", "Tab"]) {
    await page.keyboard.press(key);
    report.focus_path.push(await focused());
  }
  await page.keyboard.press("Enter");
  await page.waitForURL(/\?job=/, { timeout: 120_000 });
  report.job_id = new URL(page.url()).searchParams.get("job");

  // The moment two stages run at once, both under way, with parts running: the docs' picture.
  await page.waitForFunction(() => {
    const running = [...document.querySelectorAll("#stages > li.state-running > progress")];
    return running.filter((bar) => bar.value > 0).length > 1 &&
      document.querySelector("#stages .part-bars li");
  }, null, { timeout: 240_000, polling: 100 });
  await page.screenshot({ path: desktopShot, fullPage: true });
  report.live_via = await page.textContent("#source");
  report.status_before_refresh = await page.textContent("#status");
  report.before_refresh = summary(await page.evaluate(() => window.__states));

  // A phone, refreshed mid-job: the same job comes back and carries on live.
  await page.setViewportSize(PHONE);
  await page.reload();
  await page.waitForFunction(() => document.querySelector("#job-id")?.textContent, null, { timeout: 60_000 });
  report.job_id_after_refresh = await page.textContent("#job-id");
  await page.waitForFunction(() => document.querySelector("#stages > li.state-running .parts:not([hidden])"),
    null, { timeout: 60_000, polling: 100 });
  report.phone = await page.evaluate(() => ({
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    bar_widths: [...document.querySelectorAll("#stages > li > progress")].map((bar) => bar.getBoundingClientRect().width),
  }));
  await page.screenshot({ path: phoneShot, fullPage: true });
  await page.waitForFunction(() => document.querySelector("#status")?.textContent === "succeeded",
    null, { timeout: 240_000 });
  report.after_refresh = summary(await page.evaluate(() => window.__states));
  report.final = await page.$$eval("#stages > li", (rows) => rows.map((row) => ({
    name: row.dataset.stage,
    state: row.querySelector(".state").textContent,
    parts: row.querySelector(".count").textContent,
    part_bars: row.querySelectorAll(".part-bars li").length,
  })));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
