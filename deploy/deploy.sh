#!/usr/bin/env bash
# Deploy one image as both Cloud Run services, and wire Pub/Sub and Cloud Scheduler to the
# processor. Safe to run again: it converges every setting to what is written here.
#
#   deploy/deploy.sh --tag TAG [--env deploy/env] [--dry-run]
#   deploy/deploy.sh --image IMAGE [--env deploy/env] [--dry-run]
#
# --tag deploys REGION-docker.pkg.dev/PROJECT_ID/REPOSITORY/IMAGE_NAME:TAG; cloudbuild.yaml passes
# the exact --image it pushed (tagged with the commit). Cloud Build runs this same script, so the
# flags live only here.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
parse_args "(--tag TAG | --image IMAGE)" "$@"
load_env
if [ -z "$IMAGE" ] && [ -n "$IMAGE_TAG" ]; then
  IMAGE="$IMAGE_REPO:$IMAGE_TAG"
fi
if [ -z "$IMAGE" ]; then
  usage "(--tag TAG | --image IMAGE)"
fi
P=(--project="$PROJECT_ID")
R=(--project="$PROJECT_ID" --region="$REGION")

# Pub/Sub's ack deadline is at most 600 s; a stage's time budget (480 s by default) ends well
# inside it, and the processor's request timeout matches the deadline.
ACK_DEADLINE_SECONDS=600
STAGE_REQUEST_TIMEOUT_SECONDS=600
# Clients hold an SSE stream on the API for as long as they watch a job; Cloud Run's maximum.
API_REQUEST_TIMEOUT_SECONDS=3600
# Nacked stages come back after 10 s, backing off to 5 min; after 20 deliveries (busy answers
# count too) Pub/Sub moves the message to the dead-letter topic.
MIN_RETRY_DELAY=10s
MAX_RETRY_DELAY=300s
MAX_DELIVERY_ATTEMPTS=20
SWEEP_SCHEDULE="* * * * *"

# The processor's instances (the env file may set each). Stages and fan-out items are CPU-bound
# (decoding and analysis keep about one vCPU busy each), so an instance takes as many at once as
# it has vCPUs: each runs at full speed, its time inside the stage budget stays predictable, and
# more work makes Cloud Run start instances instead of time-slicing the ones it has. At most
# MAX_INSTANCES x CONCURRENCY stages run at once (100 by default); a push beyond that is refused
# (429), and Pub/Sub retries it with the backoff above: 20 deliveries span about 75 minutes of
# refusals before a message dead-letters.
PROCESSOR_CPU=${PROCESSOR_CPU:-2}
PROCESSOR_MEMORY_GIB=${PROCESSOR_MEMORY_GIB:-8}
PROCESSOR_CONCURRENCY=${PROCESSOR_CONCURRENCY:-2}
PROCESSOR_MIN_INSTANCES=${PROCESSOR_MIN_INSTANCES:-0}
PROCESSOR_MAX_INSTANCES=${PROCESSOR_MAX_INSTANCES:-50}

# whole_number NAME MIN MAX: stop, naming the setting, unless it is a whole number in MIN..MAX.
whole_number() {
  local name=$1 min=$2 max=$3
  local value=${!name}
  if ! [[ "$value" =~ ^[0-9]+$ ]] || [ "$value" -lt "$min" ] || [ "$value" -gt "$max" ]; then
    echo "$ENV_FILE sets $name=$value: it must be a whole number from $min to $max." >&2
    exit 2
  fi
}

# Cloud Run's own limits, checked before anything is deployed: 1, 2, 4, 6 or 8 vCPUs, at most
# 4 GiB of memory per vCPU, at most 1000 requests per instance.
check_processor_size() {
  case "$PROCESSOR_CPU" in
    1 | 2 | 4 | 6 | 8) ;;
    *)
      echo "$ENV_FILE sets PROCESSOR_CPU=$PROCESSOR_CPU: Cloud Run offers 1, 2, 4, 6 or 8." >&2
      exit 2
      ;;
  esac
  whole_number PROCESSOR_MEMORY_GIB 1 $((4 * PROCESSOR_CPU))
  whole_number PROCESSOR_CONCURRENCY 1 1000
  whole_number PROCESSOR_MAX_INSTANCES 1 1000
  whole_number PROCESSOR_MIN_INSTANCES 0 "$PROCESSOR_MAX_INSTANCES"
}

# env_vars KEY=VALUE...: one --set-env-vars flag. `^|^` makes `|` the separator, since values
# such as ALLOWED_ORIGINS (a JSON list) hold commas.
env_vars() {
  local IFS="|"
  printf -- '--set-env-vars=^|^%s\n' "$*"
}

# Settings both services share (names as jobs/contract/settings.py reads them).
common_env() {
  printf '%s\n' \
    "GOOGLE_CLOUD_PROJECT=$PROJECT_ID" \
    "LONGRUN_BUCKET=$BUCKET" \
    "LONGRUN_JOB_TTL_DAYS=$JOB_TTL_DAYS" \
    "LONGRUN_STAGES_TOPIC=$STAGES_TOPIC" \
    "LONGRUN_DEAD_LETTER_TOPIC=$DEAD_LETTER_TOPIC" \
    "LONGRUN_MAX_DELIVERY_ATTEMPTS=$MAX_DELIVERY_ATTEMPTS" \
    "LONGRUN_TRACE_EXPORTER=cloud-trace"
  # Both services check gs:// sources against it; unset, gs:// sources are refused.
  if [ -n "${SOURCE_BUCKETS:-}" ]; then
    printf '%s\n' "LONGRUN_SOURCE_BUCKETS=$SOURCE_BUCKETS"
  fi
}

deploy_processor() { # AUDIENCE (empty on the very first deploy)
  local env
  mapfile -t env < <(common_env)
  # Cost accounting charges each stage the instance's size (an upper bound when stages share
  # an instance).
  env+=(
    "LONGRUN_APP=processor"
    "LONGRUN_PROCESSOR_VCPUS=$PROCESSOR_CPU"
    "LONGRUN_PROCESSOR_MEMORY_GIB=$PROCESSOR_MEMORY_GIB"
    "LONGRUN_TRANSCRIPTION_ENGINE=$TRANSCRIPTION_ENGINE"
  )
  if [ -n "$1" ]; then
    env+=("LONGRUN_PUSH_AUTH_SERVICE_ACCOUNT=$PUSH_EMAIL" "LONGRUN_PUSH_AUTH_AUDIENCE=$1")
  fi
  # Each request runs one stage or item: CPU-bound work with its scratch files in the
  # in-memory disk, as many at once as the instance has vCPUs (see PROCESSOR_CPU above). No
  # minimum: Pub/Sub retries ride out a cold start. The maximum bounds cost, and how many
  # stages write to Firestore at once.
  run gcloud run deploy "$PROCESSOR_SERVICE" "${R[@]}" --image="$IMAGE" \
    --service-account="$PROCESSOR_EMAIL" --no-allow-unauthenticated \
    --execution-environment=gen2 --cpu="$PROCESSOR_CPU" --memory="${PROCESSOR_MEMORY_GIB}Gi" \
    --concurrency="$PROCESSOR_CONCURRENCY" \
    --timeout="$STAGE_REQUEST_TIMEOUT_SECONDS" --cpu-boost \
    --min-instances="$PROCESSOR_MIN_INSTANCES" \
    --max-instances="$PROCESSOR_MAX_INSTANCES" \
    --set-secrets="LONGRUN_WEBHOOK_SECRET=$WEBHOOK_SECRET:latest" \
    "$(env_vars "${env[@]}")"
}

processor() {
  note "processor (private)"
  local url
  url=$(processor_url)
  if [ -z "$url" ]; then
    # Its URL, the push audience, exists only once the service does: deploy it once without
    # token checks (Cloud Run's IAM still admits only invokers; nothing pushes to it yet).
    deploy_processor ""
    url=$(processor_url)
  fi
  PROCESSOR_URL=${url:-https://PROCESSOR_URL}
  deploy_processor "$PROCESSOR_URL"
  run gcloud run services add-iam-policy-binding "$PROCESSOR_SERVICE" "${R[@]}" \
    --member="serviceAccount:$PUSH_EMAIL" --role=roles/run.invoker
}

# push_subscription NAME TOPIC PATH ACK_DEADLINE [DEAD-LETTER FLAGS...]: create it, or bring an
# existing one to the same settings (its topic cannot change).
push_subscription() {
  local name=$1 topic=$2 path=$3 ack=$4
  shift 4
  local settings=(
    --push-endpoint="$PROCESSOR_URL$path"
    --push-auth-service-account="$PUSH_EMAIL"
    --push-auth-token-audience="$PROCESSOR_URL"
    --ack-deadline="$ack"
    --min-retry-delay="$MIN_RETRY_DELAY" --max-retry-delay="$MAX_RETRY_DELAY"
    --expiration-period=never
    "$@"
  )
  if exists gcloud pubsub subscriptions describe "$name" "${P[@]}"; then
    run gcloud pubsub subscriptions update "$name" "${P[@]}" "${settings[@]}"
  else
    run gcloud pubsub subscriptions create "$name" "${P[@]}" --topic="$topic" "${settings[@]}"
  fi
}

subscriptions() {
  note "push subscriptions (OIDC tokens from $PUSH_ACCOUNT, audience the processor's URL)"
  push_subscription "$STAGES_SUBSCRIPTION" "$STAGES_TOPIC" /pubsub/push "$ACK_DEADLINE_SECONDS" \
    --dead-letter-topic="$DEAD_LETTER_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS"
  # Pub/Sub's own service agent moves messages to the dead-letter topic: it publishes there and
  # acknowledges on the subscription.
  local agent
  agent="service-$(project_number)@gcp-sa-pubsub.iam.gserviceaccount.com"
  run gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" "${P[@]}" \
    --member="serviceAccount:$agent" --role=roles/pubsub.publisher
  run gcloud pubsub subscriptions add-iam-policy-binding "$STAGES_SUBSCRIPTION" "${P[@]}" \
    --member="serviceAccount:$agent" --role=roles/pubsub.subscriber
  # The dead-letter handler only records the failure on the job: a short deadline is plenty.
  push_subscription "$DEAD_LETTER_SUBSCRIPTION" "$DEAD_LETTER_TOPIC" /pubsub/dead-letter 60
}

scheduler() {
  note "Cloud Scheduler: the sweeper, each minute"
  # Each minute, as DESIGN.md's sweeper expects: a lost message is found within a minute of
  # going stale. No retries: the next minute's call is the retry.
  local settings=(
    --location="$REGION" "${P[@]}"
    --schedule="$SWEEP_SCHEDULE" --time-zone=Etc/UTC
    --uri="$PROCESSOR_URL/tasks/sweep" --http-method=post
    --oidc-service-account-email="$PUSH_EMAIL" --oidc-token-audience="$PROCESSOR_URL"
    --attempt-deadline=120s --max-retry-attempts=0
  )
  if exists gcloud scheduler jobs describe "$SCHEDULER_JOB" --location="$REGION" "${P[@]}"; then
    run gcloud scheduler jobs update http "$SCHEDULER_JOB" "${settings[@]}"
  else
    run gcloud scheduler jobs create http "$SCHEDULER_JOB" "${settings[@]}"
  fi
}

api() {
  note "API (public)"
  local env
  mapfile -t env < <(common_env)
  env+=(
    "LONGRUN_APP=service"
    "LONGRUN_ALLOWED_ORIGINS=$ALLOWED_ORIGINS"
    "LONGRUN_ALLOW_ANONYMOUS_USERS=$ALLOW_ANONYMOUS_USERS"
    # The processor holds the signing secret; the API only needs to know webhooks are on.
    "LONGRUN_WEBHOOKS_ENABLED=true"
  )
  if [ -n "${FIREBASE_WEB_API_KEY:-}" ]; then
    env+=("LONGRUN_FIREBASE_WEB_API_KEY=$FIREBASE_WEB_API_KEY")
  fi
  if [ -n "${FIREBASE_AUTH_DOMAIN:-}" ]; then
    env+=("LONGRUN_FIREBASE_AUTH_DOMAIN=$FIREBASE_AUTH_DOMAIN")
  fi
  # Requests are short async I/O, except SSE streams that idle for up to an hour: many share
  # one CPU. Bodies are small (uploads go straight to Cloud Storage).
  run gcloud run deploy "$API_SERVICE" "${R[@]}" --image="$IMAGE" \
    --service-account="$API_EMAIL" --allow-unauthenticated \
    --cpu=1 --memory=1Gi --concurrency=80 \
    --timeout="$API_REQUEST_TIMEOUT_SECONDS" --cpu-boost \
    --min-instances="${API_MIN_INSTANCES:-0}" --max-instances="${API_MAX_INSTANCES:-20}" \
    "$(env_vars "${env[@]}")"
}

check_processor_size
processor
subscriptions
scheduler
api
note "done: $IMAGE"
