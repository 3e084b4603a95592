// The demo page: submit a media-analysis job, watch it live, see its highlights. The job id
// lives in the URL (?job=...), so a refresh comes back to the same job and carries on live.

import { initializeApp } from "firebase/app";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import { cancelJob, retryJob, submitJob, uploadFile, watchJob } from "./longrun.js";

const $ = (id) => document.getElementById(id);
let stopWatching = () => {};

async function firestoreFrom(config) {
  if (!config.firebase?.projectId) return null;
  const db = getFirestore(initializeApp(config.firebase));
  if (config.firestoreEmulator) {
    const [host, port] = config.firestoreEmulator.split(":");
    // The emulator trusts this token; a deployed page signs in with Firebase Auth instead.
    connectFirestoreEmulator(db, host, Number(port), { mockUserToken: { user_id: config.user } });
  }
  return db;
}

function show(jobId, options) {
  stopWatching();
  $("job").hidden = false;
  $("job-id").textContent = jobId;
  $("cancel").onclick = () => cancelJob(jobId).catch(showError);
  $("retry").onclick = () => retryJob(jobId).then(() => show(jobId, options), showError);
  stopWatching = watchJob(jobId, (job) => render(job), {
    ...options,
    onSource: (source) => ($("source").textContent = `· live via ${source}`),
  });
}

function render(job) {
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
  if (job.status === "succeeded" && job.result) renderResults(job);
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

function renderResults(job) {
  const artifact = (name) => `/v1/jobs/${job.job_id}/artifacts/${name}`;
  $("results").hidden = false;
  $("highlight-list").replaceChildren(
    ...job.result.highlights.map((h) => {
      const item = document.createElement("li");
      if (h.thumbnail) {
        item.append(Object.assign(document.createElement("img"), { src: artifact(h.thumbnail), width: 240, alt: "" }));
      }
      const text = document.createElement("div");
      text.innerHTML = `<strong></strong><br><small></small>`;
      text.querySelector("strong").textContent = `${h.start.toFixed(1)}–${h.end.toFixed(1)} s · score ${h.score.toFixed(2)}`;
      text.querySelector("small").textContent = h.reasons.join("; ");
      item.append(text);
      return item;
    }),
  );
  $("timeline").src = artifact(job.result.timeline);
  $("report").href = artifact(job.result.report);
}

function showError(error) {
  $("form-error").hidden = false;
  $("form-error").textContent = error.message;
}

async function start() {
  const config = await (await fetch("/config.json")).json();
  const options = { firestore: await firestoreFrom(config), apiBase: config.apiBase };
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
        input = await (await fetch("/v1/uploads/sample", { method: "POST" })).json();
      } else {
        const file = $("file").files[0];
        if (!file) throw new Error("Choose a file first.");
        input = { source: await uploadFile(file) };
      }
      input.options = {
        highlights: Number($("highlight-count").value),
        thumbnail_width: Number($("thumbnail-width").value),
      };
      const job = await submitJob("media-analysis", input);
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
