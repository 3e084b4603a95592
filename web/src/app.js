// The demo page: submit a media-analysis job, watch it live, see its highlights. The job id
// lives in the URL (?job=...), so a refresh comes back to the same job and carries on live.

import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInAnonymously } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import {
  artifactUrl, cancelJob, call, retryJob, submitJob, uploadFile, watchJob,
} from "./longrun.js";

const $ = (id) => document.getElementById(id);
let stopWatching = () => {};

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
  return { firestore, apiBase: config.apiBase, getToken: () => user.getIdToken() };
}

function show(jobId, options) {
  stopWatching();
  $("job").hidden = false;
  $("job-id").textContent = jobId;
  $("cancel").onclick = () => cancelJob(jobId, options).catch(showError);
  $("retry").onclick = () => retryJob(jobId, options).then(() => show(jobId, options), showError);
  stopWatching = watchJob(jobId, (job) => render(job, options), {
    ...options,
    onSource: (source) => ($("source").textContent = `· live via ${source}`),
  });
}

function render(job, options) {
  $("status").textContent = job.status;
  $("status").className = `status ${job.status}`;
  $("message").textContent = job.message;
  $("eta").textContent = job.eta_seconds ? `about ${Math.round(job.eta_seconds)} s left` : "";
  $("cost").textContent = job.cost_usd ? `spent ${usd(job.cost_usd)}` : "";
  $("overall").value = job.progress;
  $("stages").replaceChildren(...job.stages.map(stageRow));
  const ended = ["succeeded", "failed", "cancelled"].includes(job.status);
  $("cancel").hidden = ended;
  $("retry").hidden = job.status !== "failed";
  $("job-error").hidden = !job.error;
  $("job-error").textContent = job.error ? `${job.error.code}: ${job.error.message}` : "";
  if (job.status === "succeeded" && job.result) renderResults(job, options).catch(showError);
}

// Cents once there are some; before that, enough digits to see compute seconds add up.
const usd = (amount) => `$${amount.toFixed(amount >= 0.01 ? 2 : 6)}`;

function stageRow(stage) {
  const row = document.createElement("li");
  row.dataset.stage = stage.name;
  row.className = `state-${stage.status}`;
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = ["succeeded", "skipped"].includes(stage.status) ? 1 : stage.progress;
  const label = Object.assign(document.createElement("span"), { textContent: stage.label });
  const state = Object.assign(document.createElement("span"), { textContent: stage.status });
  state.className = "state";
  const note = Object.assign(document.createElement("span"), {
    textContent: stage.error ? stage.error.message : stage.message || "",
  });
  note.className = "note";
  row.append(label, bar, state, note);
  return row;
}

async function renderResults(job, options) {
  const artifact = (name) => artifactUrl(job.job_id, name, options);
  const thumbnails = await Promise.all(
    job.result.highlights.map((h) => (h.thumbnail ? artifact(h.thumbnail) : null)),
  );
  $("results").hidden = false;
  $("highlight-list").replaceChildren(
    ...job.result.highlights.map((h, index) => {
      const item = document.createElement("li");
      if (thumbnails[index]) {
        item.append(Object.assign(document.createElement("img"), { src: thumbnails[index], width: 240, alt: "" }));
      }
      const text = document.createElement("div");
      text.innerHTML = `<strong></strong><br><small></small>`;
      text.querySelector("strong").textContent = `${h.start.toFixed(1)}–${h.end.toFixed(1)} s · score ${h.score.toFixed(2)}`;
      text.querySelector("small").textContent = h.reasons.join("; ");
      item.append(text);
      return item;
    }),
  );
  $("timeline").src = await artifact(job.result.timeline);
  $("report").href = await artifact(job.result.report);
}

function showError(error) {
  $("form-error").hidden = false;
  $("form-error").textContent = error.message;
}

async function start() {
  const config = await (await fetch("/config.json")).json();
  const options = await connect(config);
  const fromUrl = new URLSearchParams(location.search).get("job");
  if (fromUrl) show(fromUrl, options);

  $("submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("form-error").hidden = true;
    $("submit").disabled = true;
    try {
      const useSample = document.querySelector('input[name="source"]:checked').value === "sample";
      let input;
      if (useSample) {
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
      const job = await submitJob("media-analysis", input, options);
      history.replaceState(null, "", `?job=${job.job_id}`);
      $("results").hidden = true;
      show(job.job_id, options);
    } catch (error) {
      showError(error);
    } finally {
      $("submit").disabled = false;
    }
  });
}

start();
