# Shared by setup.sh, deploy.sh and teardown.sh: options, the env file, and the one place a
# command is run (or, with --dry-run, printed). Sourced, never run on its own.
# shellcheck shell=bash
# The variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034

# Every path the scripts print is relative to the repository root, so the dry run reads the same
# on every machine.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
# fd 3 is the printed sequence, also from inside $(...) captures.
exec 3>&1

DRY_RUN=0
ASSUME_YES=0
ENV_FILE=deploy/env
IMAGE_TAG=""
IMAGE=""
WORK_DIR=""

usage() {
  cat >&2 <<EOF
usage: $0 [--env FILE] [--dry-run] $*
  --env FILE   the settings (default deploy/env; start from deploy/env.example)
  --dry-run    print every command that would change something, one per line, and run none
  --tag TAG    (deploy.sh) deploy REGION-docker.pkg.dev/PROJECT_ID/REPOSITORY/IMAGE_NAME:TAG
  --image REF  (deploy.sh) deploy this exact image
  --yes        (teardown.sh) do not ask before deleting
EOF
  exit 2
}

# parse_args EXTRA_USAGE "$@": the options every script takes, plus --tag, --image and --yes.
parse_args() {
  local extra=$1
  shift
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --dry-run) DRY_RUN=1 ;;
      --yes) ASSUME_YES=1 ;;
      --env) ENV_FILE=${2:?--env needs a file}; shift ;;
      --env=*) ENV_FILE=${1#--env=} ;;
      --tag) IMAGE_TAG=${2:?--tag needs a value}; shift ;;
      --tag=*) IMAGE_TAG=${1#--tag=} ;;
      --image) IMAGE=${2:?--image needs a value}; shift ;;
      --image=*) IMAGE=${1#--image=} ;;
      -h | --help) usage "$extra" ;;
      *) echo "unknown option: $1" >&2; usage "$extra" ;;
    esac
    shift
  done
}

# load_env: read the env file and check that every setting the scripts use is there.
load_env() {
  if [ ! -f "$ENV_FILE" ]; then
    echo "No env file at $ENV_FILE: copy deploy/env.example there and edit it." >&2
    exit 2
  fi
  # shellcheck source=/dev/null
  . "$ENV_FILE"
  local name
  for name in PROJECT_ID REGION FIRESTORE_LOCATION REPOSITORY IMAGE_NAME \
    API_SERVICE PROCESSOR_SERVICE API_ACCOUNT PROCESSOR_ACCOUNT PUSH_ACCOUNT DEPLOY_ACCOUNT \
    STAGES_TOPIC DEAD_LETTER_TOPIC STAGES_SUBSCRIPTION DEAD_LETTER_SUBSCRIPTION \
    BUCKET BUILD_BUCKET WEBHOOK_SECRET SCHEDULER_JOB JOB_TTL_DAYS ALLOWED_ORIGINS \
    ALLOW_ANONYMOUS_USERS; do
    if [ -z "${!name:-}" ]; then
      echo "$ENV_FILE does not set $name (see deploy/env.example)." >&2
      exit 2
    fi
  done
  TRANSCRIPTION_ENGINE=${TRANSCRIPTION_ENGINE:-pocketsphinx}
  case "$TRANSCRIPTION_ENGINE" in
    pocketsphinx | google) ;;
    *)
      echo "$ENV_FILE sets TRANSCRIPTION_ENGINE=$TRANSCRIPTION_ENGINE: longrun has" \
        "pocketsphinx (in the image) and google (Speech-to-Text)." >&2
      exit 2
      ;;
  esac
  API_EMAIL="${API_ACCOUNT}@${PROJECT_ID}.iam.gserviceaccount.com"
  PROCESSOR_EMAIL="${PROCESSOR_ACCOUNT}@${PROJECT_ID}.iam.gserviceaccount.com"
  PUSH_EMAIL="${PUSH_ACCOUNT}@${PROJECT_ID}.iam.gserviceaccount.com"
  DEPLOY_EMAIL="${DEPLOY_ACCOUNT}@${PROJECT_ID}.iam.gserviceaccount.com"
  IMAGE_REPO="${REGION}-docker.pkg.dev/${PROJECT_ID}/${REPOSITORY}/${IMAGE_NAME}"
  export API_EMAIL PROCESSOR_EMAIL PUSH_EMAIL DEPLOY_EMAIL IMAGE_REPO
  WORK_DIR=$(mktemp -d)
  trap 'rm -rf "$WORK_DIR"' EXIT
}

# quote ARG...: the arguments as one shell line, quoted only where a shell would need it, so
# the dry run is both stable and pasteable.
quote() {
  local arg out="" sep=""
  for arg in "$@"; do
    arg=${arg//"$WORK_DIR"/\$WORK}
    if [[ "$arg" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      out+="$sep$arg"
    else
      out+="$sep'${arg//\'/\'\\\'\'}'"
    fi
    sep=" "
  done
  printf '%s\n' "$out"
}

# run CMD...: a command that changes something. Printed on stdout in a dry run; otherwise echoed
# on stderr (so a log shows what ran) and run.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    quote "$@" >&3
    return 0
  fi
  echo "+ $(quote "$@")" >&2
  "$@"
}

# run_with_secret VALUE CMD...: like run, with VALUE on the command's stdin; VALUE is never
# printed, in a dry run or otherwise.
run_with_secret() {
  local value=$1
  shift
  if [ "$DRY_RUN" = 1 ]; then
    quote "$@"
    return 0
  fi
  echo "+ $(quote "$@") <<< (secret)" >&2
  printf '%s' "$value" | "$@"
}

# exists CMD...: whether a describe-like command succeeds. A dry run assumes nothing exists, so it
# prints the full sequence for a new project.
exists() {
  [ "$DRY_RUN" = 1 ] && return 1
  "$@" >/dev/null 2>&1
}

# lookup PLACEHOLDER CMD...: a value read from the project (a URL, a number); the placeholder in a
# dry run, or when the command finds nothing.
lookup() {
  local placeholder=$1 value=""
  shift
  if [ "$DRY_RUN" = 0 ]; then
    value=$("$@" 2>/dev/null || true)
  fi
  printf '%s\n' "${value:-$placeholder}"
}

# write_file NAME CONTENT: a generated input file under $WORK_DIR, its path on stdout. A dry run
# prints its content as a comment line, so the golden output holds it too.
write_file() {
  local path="$WORK_DIR/$1"
  printf '%s\n' "$2" >"$path"
  if [ "$DRY_RUN" = 1 ]; then
    # shellcheck disable=SC2016 # $WORK is printed as is, a name for the work directory.
    printf '# $WORK/%s: %s\n' "$1" "$(tr '\n' ' ' <"$path" | sed 's/ *$//')" >&3
  fi
  printf '%s\n' "$path"
}

# note TEXT: a comment line; in a dry run it lands in the printed sequence between the commands.
note() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '# %s\n' "$*"
  else
    printf '== %s\n' "$*" >&2
  fi
}

# project_number: needed for Google's service agents' addresses. Cloud Build passes it as
# $PROJECT_NUMBER, so the deploy account needs no permission to read the project.
project_number() {
  if [ -n "${PROJECT_NUMBER:-}" ]; then
    printf '%s\n' "$PROJECT_NUMBER"
    return
  fi
  lookup PROJECT_NUMBER gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)'
}

# processor_url: the processor's base URL, which is both its push endpoint's base and the OIDC
# audience; empty when the service does not exist yet (and in a dry run).
processor_url() {
  if [ "$DRY_RUN" = 1 ]; then
    return 0
  fi
  gcloud run services describe "$PROCESSOR_SERVICE" --project="$PROJECT_ID" --region="$REGION" \
    --format='value(status.url)' 2>/dev/null || true
}
