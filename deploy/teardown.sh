#!/usr/bin/env bash
# Delete what setup.sh and deploy.sh made, newest first. Asks first unless --yes. Safe to run
# again: what is already gone is skipped. APIs stay enabled (other things may use them).
#
#   deploy/teardown.sh [--env deploy/env] [--dry-run] [--yes]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
parse_args "[--yes]" "$@"
load_env

P=(--project="$PROJECT_ID")
R=(--project="$PROJECT_ID" --region="$REGION")

confirm() {
  if [ "$DRY_RUN" = 1 ] || [ "$ASSUME_YES" = 1 ]; then
    return 0
  fi
  local answer=""
  printf 'Delete longrun from project %s, with every job, upload and artifact? Type the project id: ' \
    "$PROJECT_ID" >&2
  read -r answer || true
  if [ "$answer" != "$PROJECT_ID" ]; then
    echo "Nothing deleted." >&2
    exit 1
  fi
}

# delete_if_exists DESCRIBE... -- DELETE...: delete when the describe finds it. A dry run
# prints every delete.
delete_if_exists() {
  local describe=()
  while [ "$1" != "--" ]; do
    describe+=("$1")
    shift
  done
  shift
  if [ "$DRY_RUN" = 1 ] || "${describe[@]}" >/dev/null 2>&1; then
    run "$@"
  fi
}

services() {
  note "Cloud Scheduler, Cloud Run, Pub/Sub"
  delete_if_exists gcloud scheduler jobs describe "$SCHEDULER_JOB" --location="$REGION" "${P[@]}" \
    -- gcloud scheduler jobs delete "$SCHEDULER_JOB" --location="$REGION" "${P[@]}" --quiet
  delete_if_exists gcloud run services describe "$API_SERVICE" "${R[@]}" \
    -- gcloud run services delete "$API_SERVICE" "${R[@]}" --quiet
  local subscription topic
  for subscription in "$DEAD_LETTER_SUBSCRIPTION" "$STAGES_SUBSCRIPTION"; do
    delete_if_exists gcloud pubsub subscriptions describe "$subscription" "${P[@]}" \
      -- gcloud pubsub subscriptions delete "$subscription" "${P[@]}" --quiet
  done
  delete_if_exists gcloud run services describe "$PROCESSOR_SERVICE" "${R[@]}" \
    -- gcloud run services delete "$PROCESSOR_SERVICE" "${R[@]}" --quiet
  for topic in "$STAGES_TOPIC" "$DEAD_LETTER_TOPIC"; do
    delete_if_exists gcloud pubsub topics describe "$topic" "${P[@]}" \
      -- gcloud pubsub topics delete "$topic" "${P[@]}" --quiet
  done
}

data() {
  note "metrics, secret, buckets, images, Firestore"
  local file name
  for file in deploy/metrics/*.yaml; do
    name="longrun_$(basename "$file" .yaml | tr - _)"
    delete_if_exists gcloud logging metrics describe "$name" "${P[@]}" \
      -- gcloud logging metrics delete "$name" "${P[@]}" --quiet
  done
  delete_if_exists gcloud secrets describe "$WEBHOOK_SECRET" "${P[@]}" \
    -- gcloud secrets delete "$WEBHOOK_SECRET" "${P[@]}" --quiet
  local name
  for name in "$BUCKET" "$BUILD_BUCKET"; do
    delete_if_exists gcloud storage buckets describe "gs://$name" "${P[@]}" \
      -- gcloud storage rm --recursive "gs://$name" "${P[@]}"
  done
  delete_if_exists gcloud artifacts repositories describe "$REPOSITORY" --location="$REGION" \
    "${P[@]}" \
    -- gcloud artifacts repositories delete "$REPOSITORY" --location="$REGION" "${P[@]}" --quiet
  # Its indexes and TTL policies go with it; the security rules release stays, unused.
  delete_if_exists gcloud firestore databases describe --database='(default)' "${P[@]}" \
    -- gcloud firestore databases delete --database='(default)' "${P[@]}" --quiet
}

accounts() {
  note "project roles, then the service accounts"
  local member role
  # Bindings of a deleted account linger in the project's policy; remove them first.
  for member in "$API_EMAIL:roles/datastore.user" "$PROCESSOR_EMAIL:roles/datastore.user" \
    "$API_EMAIL:roles/cloudtrace.agent" "$PROCESSOR_EMAIL:roles/cloudtrace.agent" \
    "$DEPLOY_EMAIL:roles/run.admin" "$DEPLOY_EMAIL:roles/pubsub.admin" \
    "$DEPLOY_EMAIL:roles/cloudscheduler.admin" "$DEPLOY_EMAIL:roles/logging.logWriter"; do
    role=${member#*:}
    member=${member%%:*}
    if [ "$DRY_RUN" = 1 ] || gcloud projects get-iam-policy "$PROJECT_ID" \
      --flatten=bindings --filter="bindings.role=$role AND bindings.members:serviceAccount:$member" \
      --format='value(bindings.role)' 2>/dev/null | grep -q .; then
      run gcloud projects remove-iam-policy-binding "$PROJECT_ID" \
        --member="serviceAccount:$member" --role="$role" --condition=None --quiet
    fi
  done
  local email
  for email in "$API_EMAIL" "$PROCESSOR_EMAIL" "$PUSH_EMAIL" "$DEPLOY_EMAIL"; do
    delete_if_exists gcloud iam service-accounts describe "$email" "${P[@]}" \
      -- gcloud iam service-accounts delete "$email" "${P[@]}" --quiet
  done
}

confirm
services
data
accounts
note "done"
