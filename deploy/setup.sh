#!/usr/bin/env bash
# One-time project setup for longrun (safe to run again: every step checks before it creates,
# and settings that can drift are re-applied). Then build the image and run deploy/deploy.sh.
#
#   deploy/setup.sh [--env deploy/env] [--dry-run]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
parse_args "" "$@"
load_env

P=(--project="$PROJECT_ID")
# The collection groups whose documents carry `expire_at` (Firestore deletes them after it).
TTL_GROUPS=(jobs runs uploads idempotency_keys quota_slots)

apis() {
  note "APIs"
  run gcloud services enable "${P[@]}" \
    run.googleapis.com pubsub.googleapis.com firestore.googleapis.com \
    firebaserules.googleapis.com storage.googleapis.com artifactregistry.googleapis.com \
    cloudbuild.googleapis.com cloudscheduler.googleapis.com secretmanager.googleapis.com \
    iamcredentials.googleapis.com logging.googleapis.com monitoring.googleapis.com \
    cloudtrace.googleapis.com
  if [ "$TRANSCRIPTION_ENGINE" = google ]; then
    run gcloud services enable "${P[@]}" speech.googleapis.com
  fi
  # Pub/Sub's service agent must exist before it can be granted the dead-letter roles.
  run gcloud beta services identity create --service=pubsub.googleapis.com "${P[@]}"
}

service_accounts() {
  note "service accounts"
  local account
  for account in "$API_ACCOUNT" "$PROCESSOR_ACCOUNT" "$PUSH_ACCOUNT" "$DEPLOY_ACCOUNT"; do
    exists gcloud iam service-accounts describe "$account@$PROJECT_ID.iam.gserviceaccount.com" \
      "${P[@]}" ||
      run gcloud iam service-accounts create "$account" "${P[@]}" --display-name="$account"
  done
}

project_role() { # MEMBER_EMAIL ROLE
  run gcloud projects add-iam-policy-binding "$PROJECT_ID" \
    --member="serviceAccount:$1" --role="$2" --condition=None --quiet
}

account_role() { # ON_ACCOUNT_EMAIL MEMBER_EMAIL ROLE
  run gcloud iam service-accounts add-iam-policy-binding "$1" "${P[@]}" \
    --member="serviceAccount:$2" --role="$3" --quiet
}

roles() {
  note "roles: the API and the processor"
  project_role "$API_EMAIL" roles/datastore.user
  # verify_id_token(check_revoked=True) looks the user up in Firebase Auth.
  project_role "$API_EMAIL" roles/firebaseauth.viewer
  project_role "$PROCESSOR_EMAIL" roles/datastore.user
  # The google transcription engine recognises each piece of speech with BatchRecognize (it may
  # not cancel operations: the engine lets a refused cancel pass).
  if [ "$TRANSCRIPTION_ENGINE" = google ]; then
    project_role "$PROCESSOR_EMAIL" roles/speech.client
  fi
  project_role "$API_EMAIL" roles/cloudtrace.agent
  project_role "$PROCESSOR_EMAIL" roles/cloudtrace.agent
  # Download URLs are signed with signBlob as the API's own account (no key file exists).
  account_role "$API_EMAIL" "$API_EMAIL" roles/iam.serviceAccountTokenCreator
  note "roles: the deploy account (Cloud Build runs deploy.sh as it)"
  project_role "$DEPLOY_EMAIL" roles/run.admin
  project_role "$DEPLOY_EMAIL" roles/pubsub.admin
  project_role "$DEPLOY_EMAIL" roles/cloudscheduler.admin
  project_role "$DEPLOY_EMAIL" roles/logging.logWriter
  local account
  for account in "$API_EMAIL" "$PROCESSOR_EMAIL" "$PUSH_EMAIL"; do
    account_role "$account" "$DEPLOY_EMAIL" roles/iam.serviceAccountUser
  done
  # Projects made before April 2021 need this for Pub/Sub to mint the push OIDC tokens.
  account_role "$PUSH_EMAIL" "service-$(project_number)@gcp-sa-pubsub.iam.gserviceaccount.com" \
    roles/iam.serviceAccountTokenCreator
}

artifact_registry() {
  note "Artifact Registry"
  exists gcloud artifacts repositories describe "$REPOSITORY" "${P[@]}" --location="$REGION" ||
    run gcloud artifacts repositories create "$REPOSITORY" "${P[@]}" --location="$REGION" \
      --repository-format=docker --description="longrun images"
  run gcloud artifacts repositories add-iam-policy-binding "$REPOSITORY" "${P[@]}" \
    --location="$REGION" --member="serviceAccount:$DEPLOY_EMAIL" \
    --role=roles/artifactregistry.writer --quiet
}

firestore_database() {
  note "Firestore (Native mode)"
  exists gcloud firestore databases describe --database='(default)' "${P[@]}" ||
    run gcloud firestore databases create --database='(default)' "${P[@]}" \
      --location="$FIRESTORE_LOCATION" --type=firestore-native
}

# gcloud has no command for security rules: they go through the Firebase Rules API, the same
# calls `firebase deploy --only firestore:rules` makes, without needing firebase-tools or a
# Firebase login.
rules_api() { # METHOD PATH [BODY_FILE]
  local args=(curl --fail-with-body --silent --show-error -X "$1"
    "https://firebaserules.googleapis.com/v1/$2"
    -H "Content-Type: application/json" -H "x-goog-user-project: $PROJECT_ID")
  if [ -n "${3:-}" ]; then
    args+=(--data-binary "@$3")
  fi
  if [ "$DRY_RUN" = 1 ]; then
    quote "${args[@]}" >&3
    return 0
  fi
  echo "+ $(quote "${args[@]}")" >&2
  "${args[@]}" -H "Authorization: Bearer $(gcloud auth print-access-token)"
}

firestore_rules() {
  note "Firestore security rules (deploy/firestore.rules) through the Firebase Rules API"
  local body="$WORK_DIR/ruleset.json" response ruleset release
  python3 -c 'import json, sys
print(json.dumps({"source": {"files": [{"name": "firestore.rules", "content": open(sys.argv[1]).read()}]}}))' \
    deploy/firestore.rules >"$body"
  response=$(rules_api POST "projects/$PROJECT_ID/rulesets" "$body")
  ruleset="projects/$PROJECT_ID/rulesets/RULESET_ID"
  if [ "$DRY_RUN" = 0 ]; then
    ruleset=$(printf '%s' "$response" | python3 -c 'import json, sys; print(json.load(sys.stdin)["name"])')
  fi
  release="projects/$PROJECT_ID/releases/cloud.firestore"
  if exists rules_api GET "$release"; then
    write_file release.json "{\"release\": {\"name\": \"$release\", \"rulesetName\": \"$ruleset\"}}" >/dev/null
    rules_api PATCH "$release" "$WORK_DIR/release.json" >&2
  else
    write_file release.json "{\"name\": \"$release\", \"rulesetName\": \"$ruleset\"}" >/dev/null
    rules_api POST "projects/$PROJECT_ID/releases" "$WORK_DIR/release.json" >&2
  fi
}

firestore_indexes() {
  note "Firestore composite indexes (deploy/firestore.indexes.json)"
  local listed="$WORK_DIR/indexes.json" line flags
  : >"$listed"
  if [ "$DRY_RUN" = 0 ]; then
    gcloud firestore indexes composite list --database='(default)' "${P[@]}" --format=json \
      >"$listed"
  fi
  while IFS= read -r line; do
    IFS=$'\t' read -r -a flags <<<"$line"
    run gcloud firestore indexes composite create --database='(default)' "${P[@]}" \
      "${flags[@]}" --async
  done < <(python3 -m deploy.indexes deploy/firestore.indexes.json "$listed")
}

firestore_ttl() {
  note "Firestore TTL on expire_at"
  local group state
  for group in "${TTL_GROUPS[@]}"; do
    state=$(lookup "" gcloud firestore indexes fields describe expire_at --collection-group="$group" \
      --database='(default)' "${P[@]}" --format='value(ttlConfig.state)')
    case "$state" in
      ACTIVE | CREATING) ;;
      *) run gcloud firestore fields ttls update expire_at --collection-group="$group" \
        --database='(default)' "${P[@]}" --enable-ttl --async ;;
    esac
  done
}

buckets() {
  note "Cloud Storage"
  # Objects live one day longer than their job: the lifecycle counts from each object's
  # creation (after its job's), and Firestore's TTL deletes a job up to a day after expire_at,
  # so a job never lists artifacts that are already gone.
  local lifecycle
  lifecycle=$(write_file lifecycle.json \
    "{\"rule\": [{\"action\": {\"type\": \"Delete\"}, \"condition\": {\"age\": $((JOB_TTL_DAYS + 1))}}]}")
  exists gcloud storage buckets describe "gs://$BUCKET" "${P[@]}" ||
    run gcloud storage buckets create "gs://$BUCKET" "${P[@]}" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention
  # The page reads artifacts with fetch(), which follows the API's redirect to a signed URL:
  # the bucket must answer the page's origins (browser uploads carry their own session CORS).
  local cors
  cors=$(write_file cors.json \
    "[{\"origin\": $ALLOWED_ORIGINS, \"method\": [\"GET\"], \"responseHeader\": [\"Content-Type\"], \"maxAgeSeconds\": 3600}]")
  run gcloud storage buckets update "gs://$BUCKET" "${P[@]}" --lifecycle-file="$lifecycle" \
    --cors-file="$cors"
  # Uploads are resumable sessions the API opens and the browser fills; download URLs are
  # signed by the API, so it reads too. The processor reads sources and (re)writes artifacts.
  bucket_role "$BUCKET" "$API_EMAIL" roles/storage.objectCreator
  bucket_role "$BUCKET" "$API_EMAIL" roles/storage.objectViewer
  bucket_role "$BUCKET" "$PROCESSOR_EMAIL" roles/storage.objectUser
  # Cloud Build's sources: `gcloud builds submit --gcs-source-staging-dir=gs://BUILD_BUCKET/source`.
  local sources
  sources=$(write_file build-lifecycle.json \
    "{\"rule\": [{\"action\": {\"type\": \"Delete\"}, \"condition\": {\"age\": 7}}]}")
  exists gcloud storage buckets describe "gs://$BUILD_BUCKET" "${P[@]}" ||
    run gcloud storage buckets create "gs://$BUILD_BUCKET" "${P[@]}" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention
  run gcloud storage buckets update "gs://$BUILD_BUCKET" "${P[@]}" --lifecycle-file="$sources"
  bucket_role "$BUILD_BUCKET" "$DEPLOY_EMAIL" roles/storage.objectViewer
}

bucket_role() { # BUCKET MEMBER_EMAIL ROLE
  run gcloud storage buckets add-iam-policy-binding "gs://$1" "${P[@]}" \
    --member="serviceAccount:$2" --role="$3"
}

topics() {
  note "Pub/Sub topics"
  local topic
  for topic in "$STAGES_TOPIC" "$DEAD_LETTER_TOPIC"; do
    exists gcloud pubsub topics describe "$topic" "${P[@]}" ||
      run gcloud pubsub topics create "$topic" "${P[@]}"
  done
  # The API publishes each job's first stage; the processor every next one.
  local account
  for account in "$API_EMAIL" "$PROCESSOR_EMAIL"; do
    run gcloud pubsub topics add-iam-policy-binding "$STAGES_TOPIC" "${P[@]}" \
      --member="serviceAccount:$account" --role=roles/pubsub.publisher
  done
}

webhook_secret() {
  note "webhook signing secret (a random value; never printed)"
  if ! exists gcloud secrets describe "$WEBHOOK_SECRET" "${P[@]}"; then
    local value=""
    if [ "$DRY_RUN" = 0 ]; then
      value=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
    fi
    run_with_secret "$value" gcloud secrets create "$WEBHOOK_SECRET" "${P[@]}" \
      --replication-policy=automatic --data-file=-
  fi
  run gcloud secrets add-iam-policy-binding "$WEBHOOK_SECRET" "${P[@]}" \
    --member="serviceAccount:$PROCESSOR_EMAIL" --role=roles/secretmanager.secretAccessor
}

log_metrics() {
  note "log-based metrics (deploy/metrics/*.yaml)"
  local file name
  for file in deploy/metrics/*.yaml; do
    name="longrun_$(basename "$file" .yaml | tr - _)"
    if exists gcloud logging metrics describe "$name" "${P[@]}"; then
      run gcloud logging metrics update "$name" "${P[@]}" --config-from-file="$file"
    else
      run gcloud logging metrics create "$name" "${P[@]}" --config-from-file="$file"
    fi
  done
}

apis
service_accounts
roles
artifact_registry
firestore_database
firestore_rules
firestore_indexes
firestore_ttl
buckets
topics
webhook_secret
log_metrics
note "done: build the image (gcloud builds submit), then run deploy/deploy.sh --tag TAG"
