// longrun in the browser: watch a job live with the least code, whatever the page can reach.
//
//   import { watchJob } from "./longrun.js";
//   const stop = watchJob(jobId, (job) => render(job), { firestore: db, apiBase: "" });
//
// watchJob listens to the job document with Firestore's onSnapshot; when Firestore is not
// available (no SDK instance, or the listener fails) it reads the API's Server-Sent Events
// stream, and when that fails too it polls GET /v1/jobs/{id} with its ETag. It stops by itself
// once the job ends, and returns a function that stops it sooner. Every API call carries the
// Firebase ID token `getToken()` gives (the API refuses calls without one), so the SSE stream is
// read with fetch (fetch-event-source) rather than EventSource, which cannot send headers.

import { fetchEventSource } from "@microsoft/fetch-event-source";
import {
  collection, doc, limit as atMost, onSnapshot, orderBy, query, where,
} from "firebase/firestore";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const DEFAULT_POLL_SECONDS = 2;

/**
 * @typedef {{name: string, label: string, weight: number, needs: string[]|null,
 *   status: string, progress: number, message: string|null, attempts: number,
 *   error: JobError|null, items: StageItems|null}} Stage
 *   `needs`: the stages it waits for (null: the one before it); several stages may be
 *   `running` at once. `items` is set once the stage fans out.
 * @typedef {{total: number, done: number, failed: number,
 *   running: Object<string, number>}} StageItems
 *   A stage split into `total` items, each run on its own; `running` maps the numbers of the
 *   items running now ("0", "1", ...) to their own progress 0..1, and `failed` counts those
 *   failed for good.
 * @typedef {{code: string, message: string, retryable: boolean, stage: string|null}} JobError
 * @typedef {{job_id: string, pipeline: string, status: string, stage: string|null,
 *   progress: number, message: string, eta_seconds: number|null, stages: Stage[],
 *   result: object|null, artifacts: Object<string, {uri: string, size_bytes: number,
 *   content_type: string}>, error: JobError|null, cancel_requested: boolean,
 *   latest: Object<string, any[]>, version: number}} Job
 *   `stage` names the stage to headline and `message` says what it does ("... (and 2 more)"
 *   while others run beside it). `latest` holds, per stage, the newest entries it showed as it
 *   ran: under `transcribe`, the newest transcript lines ({start, end, text}), newest last.
 * @typedef {{firestore?: import("firebase/firestore").Firestore|null, apiBase?: string,
 *   getToken?: () => Promise<string|null>, onSource?: (source: string) => void}} WatchOptions
 * @typedef {WatchOptions & {uid?: string|null, limit?: number}} ListOptions
 *   `uid`: the signed-in user's id (Firestore's rules let a user list only jobs whose `owner`
 *   it is, so the query must say so); `limit`: how many of the newest jobs (20).
 * @typedef {{start: number, end: number, score: number, reasons: string[],
 *   thumbnail: string|null, clip: string|null, clip_start?: number,
 *   transcript?: {start: number, end: number, text: string}[]}} Highlight
 *   One of a finished media job's `result.highlights`: `thumbnail` and `clip` name artifacts
 *   (null where none was cut); the clip starts `clip_start` seconds into the recording, so the
 *   highlight begins `start - clip_start` seconds into the clip; `transcript` holds the caption
 *   lines said in it, if the recording was transcribed.
 * @typedef {{url: string, content_type: string, size_bytes: number,
 *   expires_in_seconds: number}} ArtifactLink
 *   A signed URL readable without a token (a video element's `src`), ranges included.
 */

const LIST_POLL_SECONDS = 5;

/**
 * Call `onUpdate(job)` with every new state of the job until it ends.
 * @param {string} jobId
 * @param {(job: Job) => void} onUpdate
 * @param {WatchOptions} [options]
 * @returns {() => void} stops watching
 */
export function watchJob(jobId, onUpdate, options = {}) {
  const { firestore = null, apiBase = "", getToken = async () => null, onSource = () => {} } =
    options;
  let stopped = false;
  let stopCurrent = () => {};
  let lastVersion = -1;

  const stop = () => {
    stopped = true;
    stopCurrent();
  };
  const deliver = (job) => {
    if (stopped || job.version <= lastVersion) return;
    lastVersion = job.version;
    onUpdate(job);
    if (TERMINAL.has(job.status)) stop();
  };

  const poll = () => {
    onSource("polling");
    let etag = null;
    let timer = null;
    stopCurrent = () => clearTimeout(timer);
    const once = async () => {
      let wait = DEFAULT_POLL_SECONDS;
      try {
        const headers = await authHeaders(getToken);
        if (etag) headers["If-None-Match"] = etag;
        const response = await fetch(`${apiBase}/v1/jobs/${jobId}`, { headers });
        wait = Number(response.headers.get("Retry-After")) || wait;
        if (response.ok) {
          etag = response.headers.get("ETag");
          deliver(await response.json());
        }
      } catch {
        // A network blip: try again at the next turn.
      }
      if (!stopped) timer = setTimeout(once, wait * 1000);
    };
    once();
  };

  const stream = () => {
    onSource("sse");
    const controller = new AbortController();
    stopCurrent = () => controller.abort();
    let fellBack = false;
    const fallBack = () => {
      if (fellBack || stopped) return;
      fellBack = true;
      controller.abort();
      poll();
    };
    authHeaders(getToken)
      .then((headers) =>
        fetchEventSource(`${apiBase}/v1/jobs/${jobId}/events`, {
          headers,
          signal: controller.signal,
          openWhenHidden: true,
          async onopen(response) {
            if (!response.ok) throw new Error(`events: ${response.status}`);
          },
          onmessage(event) {
            if (event.event === "job") deliver(JSON.parse(event.data));
          },
          // The server ends the stream after the terminal event; any other end or error means
          // the stream is not working here: poll instead (rethrowing stops the library's retries).
          onclose() {
            if (!stopped) throw new Error("events: stream ended early");
          },
          onerror(error) {
            throw error;
          },
        }),
      )
      .catch(fallBack);
  };

  if (firestore) {
    onSource("firestore");
    const onData = (snapshot) => {
      if (snapshot.exists()) deliver(plain(snapshot.data()));
    };
    stopCurrent = listen(doc(firestore, "jobs", jobId), onData, () => !stopped && stream());
  } else {
    stream();
  }
  return stop;
}

/**
 * Call `onUpdate(jobs, more)` with the user's newest jobs (newest first) on every change to any
 * of them, until stopped; `more` says whether older jobs are left out. Listens with Firestore
 * when it can (a query on `owner`, ordered by `created_at`: the composite index
 * deploy/firestore.indexes.json lists), else polls GET /v1/jobs. Expired jobs are left out, as
 * the API leaves them out.
 * @param {(jobs: Job[], more: boolean) => void} onUpdate
 * @param {ListOptions} [options]
 * @returns {() => void} stops watching
 */
export function watchJobs(onUpdate, options = {}) {
  const { firestore = null, uid = null, limit = 20, onSource = () => {} } = options;
  let stopped = false;
  let stopCurrent = () => {};
  const deliver = (jobs, more) => {
    if (!stopped) onUpdate(jobs.filter((job) => !expired(job)), more);
  };

  const poll = () => {
    onSource("polling");
    let timer = null;
    stopCurrent = () => clearTimeout(timer);
    const once = async () => {
      try {
        const page = await call("GET", `/v1/jobs?limit=${limit}`, undefined, options);
        deliver(page.jobs, page.next_cursor !== null);
      } catch {
        // A network blip: try again at the next turn.
      }
      if (!stopped) timer = setTimeout(once, LIST_POLL_SECONDS * 1000);
    };
    once();
  };

  if (firestore && uid) {
    onSource("firestore");
    // One more than asked for tells whether there are more.
    const newest = query(
      collection(firestore, "jobs"),
      where("owner", "==", uid),
      orderBy("created_at", "desc"),
      atMost(limit + 1),
    );
    const onData = (snapshot) => {
      const jobs = snapshot.docs.map((found) => plain(found.data()));
      deliver(jobs.slice(0, limit), jobs.length > limit);
    };
    stopCurrent = listen(newest, onData, () => !stopped && poll());
  } else {
    poll();
  }
  return () => {
    stopped = true;
    stopCurrent();
  };
}

// Listen with Firestore; a refused listener (rules, no connection) hands over to `fallBack`.
function listen(target, onData, fallBack) {
  const unsubscribe = onSnapshot(target, onData, () => {
    unsubscribe();
    fallBack();
  });
  return unsubscribe;
}

const expired = (job) => Boolean(job.expire_at) && Date.parse(job.expire_at) <= Date.now();

/**
 * Start a job; resolves to the queued job (its `job_id` is what watchJob takes).
 * @param {string} pipeline
 * @param {object} input
 * @param {{apiBase?: string, getToken?: () => Promise<string|null>}} [options]
 * @returns {Promise<Job>}
 */
export async function submitJob(pipeline, input, options = {}) {
  return call("POST", "/v1/jobs", { pipeline, input }, options);
}

/** Cancel a job. @returns {Promise<Job>} */
export async function cancelJob(jobId, options = {}) {
  return call("POST", `/v1/jobs/${jobId}/cancel`, undefined, options);
}

/** Retry a failed job from its first stage that did not succeed. @returns {Promise<Job>} */
export async function retryJob(jobId, options = {}) {
  return call("POST", `/v1/jobs/${jobId}/retry`, undefined, options);
}

/**
 * Fetch an artifact (with the caller's token) as an object URL for an <img> or a link.
 * @returns {Promise<string>}
 */
export async function artifactUrl(jobId, name, options = {}) {
  return URL.createObjectURL(await (await readArtifact(jobId, name, options)).blob());
}

/**
 * A signed link to an artifact, for what cannot send a token: `video.src = link.url`.
 * @returns {Promise<ArtifactLink>}
 */
export async function artifactLink(jobId, name, options = {}) {
  return call("GET", `/v1/jobs/${jobId}/artifacts/${encodeURIComponent(name)}/link`, undefined, options);
}

/**
 * An artifact holding JSON (a report, a transcript), parsed.
 * @returns {Promise<any>}
 */
export async function artifactJson(jobId, name, options = {}) {
  return (await readArtifact(jobId, name, options)).json();
}

async function readArtifact(jobId, name, { apiBase = "", getToken = async () => null } = {}) {
  const response = await fetch(`${apiBase}/v1/jobs/${jobId}/artifacts/${encodeURIComponent(name)}`, {
    headers: await authHeaders(getToken),
  });
  if (!response.ok) throw new Error(`artifact ${name}: ${response.status}`);
  return response;
}

/**
 * Upload a File straight to Cloud Storage; resolves to the upload id to use as a job's source.
 * @param {File} file
 * @returns {Promise<string>}
 */
export async function uploadFile(file, options = {}) {
  const type = file.type || "application/octet-stream";
  const ticket = await call(
    "POST",
    "/v1/uploads",
    { filename: file.name, content_type: type, size_bytes: file.size },
    options,
  );
  const response = await fetch(ticket.upload_url, {
    method: "PUT",
    headers: ticket.headers,
    body: file,
  });
  if (!response.ok) throw new Error(`upload failed: ${response.status}`);
  return ticket.upload_id;
}

export async function call(method, path, body, { apiBase = "", getToken = async () => null } = {}) {
  const headers = await authHeaders(getToken);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${apiBase}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json();
  if (!response.ok) {
    const error = new Error(payload.detail || response.statusText);
    error.problem = payload;
    throw error;
  }
  return payload;
}

async function authHeaders(getToken) {
  const token = await getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// Firestore hands back Timestamps; the API sends ISO strings. Clients see one shape.
function plain(value) {
  if (value && typeof value.toDate === "function") return value.toDate().toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}
