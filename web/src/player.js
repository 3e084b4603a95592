// Watching the recording: a video (or audio) player for the job's stored copy of its source, as
// soon as the fetch stage has stored it, and once the job has succeeded the timeline of what was
// found under it, the highlights (with what was said in each) and the searchable transcript;
// while the job runs, the lines heard so far. Everything that seeks goes through one `seek`, so
// the timeline, the highlights and every transcript line all move the one player.
//
// The player reads the recording from a signed link (a media element cannot send the token),
// with range requests, so it starts at once and seeks anywhere without downloading it all.

import { clock, element } from "./format.js";
import { clipControls } from "./clips.js";
import { Heard } from "./heard.js";
import { lineList } from "./lines.js";
import { artifactJson, artifactLink, artifactUrl } from "./longrun.js";
import { searchTranscript } from "./search.js";
import { Timeline } from "./timeline.js";
import { Transcript } from "./transcript.js";

/** @typedef {import("./longrun.js").Job} Job */

const SOURCE = /^source\./;
// A link lives download_url_seconds (15 min by default); a player that fails after this long
// fetches a fresh one and carries on where it was.
const RELINK_AFTER_MS = 60_000;

/**
 * The parts of the page it fills: `section` (hidden until there is something to watch),
 * `playerBox`, `timeline`, `legend`, `heardBox`, `heard`, `results`, `highlights`,
 * `noHighlights`, `transcriptBox`, `transcript`, `search`, `matches`, `report`, `picture`.
 * @typedef {Object<string, HTMLElement>} Parts
 */

export class Recording {
  /**
   * @param {Parts} parts
   * @param {string} jobId
   * @param {object} options the API options (apiBase, getToken)
   * @param {(error: Error) => void} onError
   */
  constructor(parts, jobId, options, onError) {
    Object.assign(this, { parts, jobId, options, onError });
    this.media = null;
    this.transcript = null;
    this.closed = false;
    this.started = { source: false, results: false };
    this.timeline = new Timeline(parts.timeline, parts.legend, this);
    this.heard = new Heard(parts.heardBox, parts.heard, (seconds, play) => this.seek(seconds, play));
    parts.section.hidden = true;
    parts.legend.hidden = true;
    parts.results.hidden = true;
    parts.transcriptBox.hidden = true;
    parts.playerBox.replaceChildren();
  }

  /** Show what the job has so far: called with every new state of it. */
  update(job) {
    this.heard.update(job);
    const source = Object.keys(job.artifacts ?? {}).find((name) => SOURCE.test(name));
    if (source && !this.started.source) {
      this.started.source = true;
      this.play(source, job.artifacts[source].content_type).catch(this.onError);
    }
    if (job.status === "succeeded" && job.result?.highlights && !this.started.results) {
      this.started.results = true;
      this.showResults(job).catch(this.onError);
    }
  }

  /** Move the player to `seconds`, and play from there if `play`. */
  seek(seconds, play) {
    if (!this.media) return;
    this.media.currentTime = seconds;
    this.moved(); // at once: on a slow link the seek itself may take a while to finish
    if (play) this.media.play().catch(() => {}); // a browser may refuse; the controls remain
  }

  /** Stop playing and let go of the recording (another job is being opened). */
  close() {
    this.closed = true;
    if (!this.media) return;
    this.media.pause();
    this.media.removeAttribute("src");
    this.media.load();
  }

  async play(name, contentType) {
    const link = await artifactLink(this.jobId, name, this.options);
    if (this.closed) return;
    const media = element(contentType.startsWith("audio/") ? "audio" : "video", "player");
    Object.assign(media, { controls: true, preload: "metadata", playsInline: true, src: link.url });
    media.setAttribute("aria-label", "The recording");
    let linkedAt = Date.now();
    media.addEventListener("loadedmetadata", () => this.timeline.setDuration(media.duration));
    media.addEventListener("timeupdate", () => this.moved());
    media.addEventListener("play", () => this.pauseClips());
    media.addEventListener("seeked", () => this.moved());
    media.addEventListener("error", () => {
      if (Date.now() - linkedAt < RELINK_AFTER_MS) return;
      const at = media.currentTime;
      linkedAt = Date.now();
      artifactLink(this.jobId, name, this.options).then((fresh) => {
        media.src = fresh.url;
        media.currentTime = at;
      }, this.onError);
    });
    this.media = media;
    this.parts.playerBox.replaceChildren(media);
    this.parts.section.hidden = false;
  }

  pauseClips() {
    for (const clip of this.parts.highlights.querySelectorAll(".clip-player")) clip.pause();
  }

  moved() {
    const now = this.media.currentTime;
    this.timeline.moveTo(now);
    this.transcript?.follow(now);
  }

  async showResults(job) {
    const { result } = job;
    const [report, picture, thumbnails] = await Promise.all([
      artifactJson(this.jobId, result.report, this.options),
      this.url(result.timeline),
      Promise.all(result.highlights.map((h) => (h.thumbnail ? this.url(h.thumbnail) : null))),
    ]);
    if (this.closed) return;
    this.timeline.draw(report);
    this.parts.highlights.replaceChildren(
      ...result.highlights.map((h, index) => this.highlight(job, h, index, thumbnails[index])),
    );
    this.parts.noHighlights.hidden = result.highlights.length > 0;
    const json = new Blob([JSON.stringify(report, null, 2)], { type: "application/json" });
    this.parts.report.href = URL.createObjectURL(json);
    this.parts.picture.href = picture;
    this.parts.results.hidden = false;
    this.parts.section.hidden = false;
    if (job.artifacts["transcript.json"]) {
      const transcript = await artifactJson(this.jobId, "transcript.json", this.options);
      if (this.closed) return;
      this.transcript = new Transcript(this.parts.transcript, transcript, this);
      searchTranscript(this.parts.search, this.parts.matches, this.transcript);
      this.parts.transcriptBox.hidden = transcript.segments.length === 0;
      this.heard.end();
      if (this.media) this.transcript.follow(this.media.currentTime);
    }
  }

  // The clips play beside the recording, never over it.
  clipContext(job) {
    return {
      jobId: this.jobId,
      options: this.options,
      contentType: (name) => job.artifacts[name]?.content_type,
      onPlay: () => this.media?.pause(),
      onError: this.onError,
    };
  }

  url(name) {
    return artifactUrl(this.jobId, name, this.options);
  }

  // One highlight: a button that plays it in the recording (its thumbnail, its times, its score
  // and why), the lines said in it (each plays from its start), then its clip's player and
  // download link.
  highlight(job, h, index, thumbnail) {
    const item = element("li");
    const button = element("button", "seek");
    button.type = "button";
    if (thumbnail) button.append(Object.assign(element("img"), { src: thumbnail, width: 240, alt: "" }));
    const text = element("span", "about");
    text.append(
      element("strong", null, `${clock(h.start)}–${clock(h.end)} · score ${h.score.toFixed(2)}`),
      element("small", null, h.reasons.join("; ")),
    );
    button.append(text);
    button.setAttribute("aria-label", `Play highlight ${index + 1}, from ${clock(h.start)}`);
    button.addEventListener("click", () => this.seek(h.start, true));
    const said = h.transcript?.length
      ? [lineList(h.transcript, `What was said in highlight ${index + 1}`, (s, play) => this.seek(s, play))]
      : [];
    item.append(button, ...said, ...clipControls(h, index, this.clipContext(job)));
    return item;
  }
}
