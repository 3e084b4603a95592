// A highlight's own clip (the clips stage cuts one per highlight, as an artifact of the job):
// played in a small player under the highlight, and saved with a download link. The player
// reads the clip from a signed link, as the recording's does; the download fetches the clip with
// the user's token, so the saved file keeps the clip's name (a link to another origin would not).

import { element } from "./format.js";
import { artifactLink, artifactUrl } from "./longrun.js";

/** @typedef {import("./longrun.js").Highlight} Highlight */

// The clip starts on a keyframe at or before the highlight's lead-in (pipelines/media/clips.py
// LEAD_SECONDS); playing from the lead-in skips the rest of what came before the highlight.
const LEAD_SECONDS = 1;

/**
 * What a job's recording offers its clips: which job, how to call the API, the clip's content
 * type, and what to do when a clip starts playing (pause the recording).
 * @typedef {{jobId: string, options: object, contentType: (name: string) => string,
 *   onPlay: () => void, onError: (error: Error) => void}} ClipContext
 */

/**
 * The clip's play button (its player opens under it) and download link; none without a clip.
 * @param {Highlight} highlight
 * @param {number} index
 * @param {ClipContext} context
 * @returns {HTMLElement[]}
 */
export function clipControls(highlight, index, context) {
  if (!highlight.clip) return [];
  const box = element("div", "clip");
  const play = element("button", "play-clip", "▶ Play clip");
  play.type = "button";
  play.setAttribute("aria-label", `Play the clip of highlight ${index + 1}`);
  play.addEventListener("click", () => playClip(box, highlight, index, context).catch(context.onError));
  box.append(play, downloadLink(highlight, index, context));
  return [box];
}

async function playClip(box, highlight, index, context) {
  let media = box.querySelector(".clip-player");
  if (!media || media.error) {
    const link = await artifactLink(context.jobId, highlight.clip, context.options);
    media?.remove();
    media = clipPlayer(link, highlight, index, context);
    box.append(media);
  }
  media.currentTime = Math.max(0, highlight.start - (highlight.clip_start ?? 0) - LEAD_SECONDS);
  await media.play().catch(() => {}); // a browser may refuse; the player's controls remain
}

function clipPlayer(link, highlight, index, context) {
  const type = context.contentType(highlight.clip) || link.content_type;
  const media = element(type.startsWith("audio/") ? "audio" : "video", "clip-player");
  Object.assign(media, { controls: true, preload: "auto", playsInline: true, src: link.url });
  media.setAttribute("aria-label", `The clip of highlight ${index + 1}`);
  media.addEventListener("play", context.onPlay);
  return media;
}

// The file is fetched on the first click (not for every highlight shown) and kept for the next.
function downloadLink(highlight, index, context) {
  const link = element("a", "download-clip", "Download clip");
  Object.assign(link, { href: "#", download: highlight.clip });
  link.setAttribute("aria-label", `Download the clip of highlight ${index + 1} (${highlight.clip})`);
  link.addEventListener("click", (event) => {
    if (link.dataset.fetched) return;
    event.preventDefault();
    artifactUrl(context.jobId, highlight.clip, context.options).then((url) => {
      link.href = url;
      link.dataset.fetched = "true";
      link.click();
    }, context.onError);
  });
  return link;
}
