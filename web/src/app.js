// The page: submit a media-analysis job (or a diagnostic run whose steps go side by side, split
// into parts), watch it live, watch the recording with what was found in it, and come back to
// any of your jobs from the list beside. The open job's id lives in the URL (?job=...), so a
// refresh (or the back button) comes back to the same job and carries on live.

import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInAnonymously } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import { markCurrent, renderJobList } from "./joblist.js";
import { cancelJob, call, retryJob, submitJob, uploadFile, watchJob, watchJobs } from "./longrun.js";
import { Recording } from "./player.js";
import { renderStages } from "./stages.js";

const $ = (id) => document.getElementById(id);
const JOBS_PER_PAGE = 10;
let stopWatching = () => {};
let recording = null;
let openJob = null;

// The page signs in as an anonymous Firebase user (kept across refreshes by the SDK), so the
// API and Firestore both know whose jobs these are. Locally, both talk to the emulators.
async function connect(config) {
  const app = initializeApp(config.firebase);
  const auth = getAuth(app);
  if (config.authEmulator) connectAuthEmulator(auth, config.authEmulator, { disableWarnings: true });
  await auth.authStateReady();
  const user = auth.currentUser ?? (await signInAnonymously(auth)).user;
  const firestore = getFirestore(app);
  if (config.firestoreEmulator) {
    const [host, port] = config.firestoreEmulator.split(":");
    connectFirestoreEmulator(firestore, host, Number(port));
  }
  return {
    firestore, apiBase: config.apiBase, uid: user.uid, getToken: () => user.getIdToken(),
  };
}

function show(jobId, options) {
  stopWatching();
  recording?.close();
  openJob = jobId;
  $("job").hidden = false;
  $("job-id").textContent = jobId;
  $("stages").replaceChildren();
  $("cancel").onclick = () => cancelJob(jobId, options).catch(showError);
  $("retry").onclick = () => retry(jobId, options);
  recording = new Recording(watchParts(), jobId, options, showError);
  stopWatching = watchJob(jobId, (job) => render(job), {
    ...options,
    onSource: (source) => ($("source").textContent = `· live via ${source}`),
  });
  markCurrent($("job-list"), jobId);
}

const watchParts = () => ({
  section: $("watch"), playerBox: $("player-box"), timeline: $("timeline"), legend: $("legend"),
  heardBox: $("heard-box"), heard: $("heard"),
  results: $("results"), highlights: $("highlight-list"), noHighlights: $("no-highlights"),
  transcriptBox: $("transcript-box"), transcript: $("transcript"), search: $("transcript-search"),
  matches: $("transcript-matches"), report: $("report"), picture: $("timeline-picture"),
});

// Open a job: it goes in the URL (a new history entry, so Back returns to the one before).
function open(jobId, options) {
  if (jobId !== openJob) history.pushState(null, "", `?job=${jobId}`);
  show(jobId, options);
  $("job").scrollIntoView({ block: "start" });
}

function retry(jobId, options) {
  retryJob(jobId, options).then(() => jobId === openJob && show(jobId, options), showError);
}

// The list follows the user's jobs live; "Show older jobs" widens it by a page each time.
function listJobs(options) {
  let shown = JOBS_PER_PAGE;
  let latest = [];
  let stop = () => {};
  const actions = {
    open: (jobId) => open(jobId, options),
    cancel: (jobId) => cancelJob(jobId, options).catch(showError),
    retry: (jobId) => retry(jobId, options),
  };
  const draw = () => {
    renderJobList($("job-list"), latest, { ...actions, current: openJob });
    $("jobs-empty").hidden = latest.length > 0;
  };
  const follow = () => {
    stop();
    stop = watchJobs((jobs, more) => {
      latest = jobs;
      $("more-jobs").hidden = !more;
      draw();
    }, { ...options, limit: shown });
  };
  $("more-jobs").addEventListener("click", () => {
    shown += JOBS_PER_PAGE;
    follow();
  });
  setInterval(draw, 30_000); // "2 min ago" moves on even when no job changes
  follow();
}

function render(job) {
  $("status").textContent = job.status;
  $("status").className = `status ${job.status}`;
  $("message").textContent = job.message;
  $("eta").textContent = job.eta_seconds ? `about ${Math.round(job.eta_seconds)} s left` : "";
  $("cost").textContent = job.cost_usd ? `spent ${usd(job.cost_usd)}` : "";
  $("overall").value = job.progress;
  renderStages($("stages"), job.stages, job.status === "running" ? job.stage : null);
  const ended = ["succeeded", "failed", "cancelled"].includes(job.status);
  $("cancel").hidden = ended;
  $("retry").hidden = job.status !== "failed";
  $("job-error").hidden = !job.error;
  $("job-error").textContent = job.error ? `${job.error.code}: ${job.error.message}` : "";
  recording.update(job);
}

// Cents once there are some; before that, enough digits to see compute seconds add up.
const usd = (amount) => `$${amount.toFixed(amount >= 0.01 ? 2 : 6)}`;

function showError(error) {
  $("form-error").hidden = false;
  $("form-error").textContent = error.message;
}

const chosen = (name) => document.querySelector(`input[name="${name}"]:checked`).value;

async function mediaInput(options) {
  let input;
  if (chosen("source") === "sample") {
    input = await call("POST", "/v1/uploads/sample", undefined, options);
  } else {
    const file = $("file").files[0];
    if (!file) throw new Error("Choose a file first.");
    input = { source: await uploadFile(file, options) };
  }
  input.options = {
    highlights: Number($("highlight-count").value),
    thumbnail_width: Number($("thumbnail-width").value),
  };
  // The sample is generated noise and tones, no speech: there is nothing to transcribe.
  if (chosen("source") === "sample") input.options.transcribe = false;
  return input;
}

// The diagnostic pipeline hashes generated bytes and waits: a part's time is spread over 20
// units (so its own bar moves in steps of 5%), each hashing a little (16 KiB) and waiting the rest.
const UNITS_PER_PART = 20;

function diagnosticInput() {
  const seconds = Number($("diag-seconds").value);
  return {
    stages: Number($("diag-steps").value),
    items: Number($("diag-parts").value),
    parallel: $("diag-parallel").checked,
    work_units: UNITS_PER_PART,
    unit_seconds: seconds / UNITS_PER_PART,
    unit_kib: 16,
  };
}

// Only the chosen pipeline's fields show; the others are disabled too, so they are out of the
// tab order and their values cannot hold up the form's validation.
function showPipelineFields() {
  const diagnostic = chosen("pipeline") === "diagnostic";
  for (const [id, off] of [["media-fields", diagnostic], ["diagnostic-fields", !diagnostic]]) {
    $(id).hidden = off;
    $(id).disabled = off;
  }
}

// The form answers at once; what needs the sign-in (a submit, the job in the URL) waits for it.
function start() {
  const signedIn = fetch("/config.json")
    .then((response) => response.json())
    .then(connect);
  const jobInUrl = () => new URLSearchParams(location.search).get("job");
  signedIn.then((options) => {
    listJobs(options);
    if (jobInUrl()) show(jobInUrl(), options);
    addEventListener("popstate", () => jobInUrl() && show(jobInUrl(), options));
  }, showError);

  for (const radio of document.querySelectorAll('input[name="pipeline"]')) {
    radio.addEventListener("change", showPipelineFields);
  }
  showPipelineFields();

  $("submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("form-error").hidden = true;
    $("submit").disabled = true;
    try {
      const options = await signedIn;
      const pipeline = chosen("pipeline");
      const input = pipeline === "diagnostic" ? diagnosticInput() : await mediaInput(options);
      const job = await submitJob(pipeline, input, options);
      history.pushState(null, "", `?job=${job.job_id}`);
      show(job.job_id, options);
    } catch (error) {
      showError(error);
    } finally {
      $("submit").disabled = false;
    }
  });
}

start();
