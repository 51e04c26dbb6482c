#!/usr/bin/env bash
# Build the Containerfile with podman and check the image as it would ship: the build
# context, the HEALTHCHECK, no pip or setuptools, the image's size, /api/health, a room
# created through the built-in LiveKit emulator, `podman healthcheck run` (on the port
# given with --port, and with AURA_PORT and AURA_API_PREFIX), a non-root uid, and how
# long SIGTERM takes and with which exit code. Prints a summary table; exits 1 if any
# check failed, 2 if it could not run at all.
#
#   scripts/container-check.sh [--no-cache]      (as root, on Debian; about 4 minutes the
#                                                 first time, 20-120 s after that)
#
# The base image is a local stand-in. This machine reaches no container registry, so
# `FROM python:3.12-slim` is served by a Debian minbase (debootstrap, from apt's own
# mirror) with Debian's python3, imported under that name: the Containerfile builds
# unchanged with --pull=never, but on Debian's Python (3.11 on bookworm), not the
# registry image's 3.12. What the check proves is the Containerfile and the service in
# it; the base image's own size is not measured. The stand-in and podman's storage are
# cached in ${XDG_CACHE_HOME:-~/.cache}/aura-container-check (delete it to start over),
# apart from the system's podman images, so no fake python image shows up there.
#
# pip inside the build reaches PyPI the way pip on this machine does: the network
# settings of `pip config list` and PIP_* variables (index URLs, trusted hosts, proxy,
# timeouts) go into a pip.conf handed to the build as the `pip.conf` secret, and the CA
# bundle pip trusts is mounted read-only. Nothing is written into the image or the repo.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/aura-container-check
STORAGE=$CACHE/storage
RUNROOT=${XDG_RUNTIME_DIR:-/run}/aura-container-check
LOGS=$CACHE/logs
IMAGE=localhost/aura-livekit-backend:check
BASE=localhost/aura-container-check-base
# What our layers may add on top of the base image. The venv was 57 MB in 2026-11, then
# 87 MB with the dependencies identity and Redis brought on purpose (cryptography 16 MB,
# for RS256/ES256 tokens; redis-py 6 MB; limits), and the layers reached the old 85 MB
# bound. Measured 2026-11-28: our layers add 85 MB. pip and setuptools would add 21 MB
# more. Past this bound a dependency has grown the image again, which should be a
# decision, not a surprise.
MAX_ADDED_MB=95
# SIGTERM: the service stops in about a second; Sanic's graceful shutdown allows 15 s
# for requests in flight, and none are in flight here.
MAX_STOP_SECONDS=10
NO_CACHE=()

for arg in "$@"; do
  case $arg in
    --no-cache) NO_CACHE=(--no-cache) ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "container-check: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

started=$EPOCHREALTIME
die() { echo "container-check: $*" >&2; exit 2; }
say() { printf '==> %s\n' "$*"; }
seconds_since() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$EPOCHREALTIME"; }

# --- prerequisites -----------------------------------------------------------------
[[ $(id -u) == 0 ]] || die "run as root: debootstrap and podman's storage here need it"
# shellcheck source=/dev/null  # the machine's, not ours
[[ -r /etc/os-release ]] && . /etc/os-release
[[ ${ID:-} == debian && -n ${VERSION_CODENAME:-} ]] || die "needs Debian (the stand-in base comes from apt's Debian mirror)"
missing=()
for tool in podman runc debootstrap curl python3 flock; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sed 's/^flock$/util-linux/' | sort -u)
  say "installing what is missing with apt-get: ${packages[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}"; } >/dev/null \
    || die "apt-get install ${packages[*]} failed"
fi

mkdir -p "$CACHE" "$RUNROOT"
exec 9>"$CACHE/lock"
flock -n 9 || die "another container-check is running (lock: $CACHE/lock)"
rm -rf "$LOGS" && mkdir -p "$LOGS"
WORK=$(mktemp -d /tmp/aura-container-check.XXXXXX)
CONTAINERS=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  for name in "${CONTAINERS[@]}"; do pm rm -f -t 0 "$name" >/dev/null 2>&1; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# crun fails here on setrlimit and on hybrid cgroups; runc works. tmp_dir keeps even
# podman's runtime state apart from the system's.
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
tmp_dir = "$RUNROOT/libpod"
events_logger = "file"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
pm() { podman --root "$STORAGE" --runroot "$RUNROOT" "$@"; }
pm rm -a -f -t 0 >/dev/null 2>&1  # containers a killed run left behind (this storage is ours alone)

# --- the summary -------------------------------------------------------------------
ROWS=()
FAILED=0
record() {  # record PASS|FAIL|INFO "check" "detail"
  ROWS+=("$1"$'\t'"$2"$'\t'"$3")
  [[ $1 == FAIL ]] && FAILED=$((FAILED + 1))
  printf '    %-4s %s: %s\n' "$1" "$2" "$3"
}
summary() {
  echo
  echo "container-check summary ($(basename "$REPO"), $(date -u +%Y-%m-%dT%H:%M:%SZ))"
  printf '%s\n' "${ROWS[@]}" | python3 -c '
import sys
rows = [line.rstrip("\n").split("\t") for line in sys.stdin if line.strip()]
head = ["result", "check", "detail"]
a, b = (max(len(r[i]) for r in [head, *rows]) for i in range(2))
for result, check, detail in [head, ["-" * a, "-" * b, "------"], *rows]:
    print("| %-*s | %-*s | %s" % (a, result, b, check, detail))
'
  echo "total: $(seconds_since "$started") s; logs in $LOGS"
  if ((FAILED)); then echo "FAILED: $FAILED check(s)"; else echo "all checks passed"; fi
}
finish() { summary; ((FAILED == 0)); exit $?; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the stand-in base image ---------------------------------------------------------
# The names the Containerfile builds FROM (not its own stages), as podman spells them.
mapfile -t FROM_IMAGES < <(python3 - "$REPO/Containerfile" <<'PY'
import sys
stages, images = set(), []
for line in open(sys.argv[1]):
    words = line.split()
    if len(words) >= 2 and words[0].upper() == "FROM":
        name = words[1]
        if len(words) >= 4 and words[2].upper() == "AS":
            stages.add(words[3].lower())
        if name.lower() in stages or name in images:
            continue
        images.append(name)
for name in images:
    first = name.split("/")[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + name
    if ":" not in name.rsplit("/", 1)[1] and "@" not in name:
        name += ":latest"
    print(name)
PY
)
((${#FROM_IMAGES[@]})) || die "no FROM image found in Containerfile"

# Apt's own Debian mirror for this release, as this machine's sources name it.
apt_mirror() {
  python3 - "$VERSION_CODENAME" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources <<'PY'
import re, sys
suite, paths = sys.argv[1], sys.argv[2:]
found = []
for path in paths:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):  # deb822 stanzas
        for stanza in re.split(r"\n\s*\n", text):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line.startswith("#"):
                    continue
                if line[:1] in (" ", "\t") and key:
                    fields[key] += " " + line.strip()
                    continue
                key, sep, value = line.partition(":")
                key = key.strip().lower() if sep else None
                if key:
                    fields[key] = value.strip()
            if (
                "deb" in fields.get("types", "").split()
                and suite in fields.get("suites", "").split()
                and "main" in fields.get("components", "").split()
                and fields.get("enabled", "yes").lower() != "no"
            ):
                found += fields.get("uris", "").split()
    else:  # one-line format: deb [options] uri suite components...
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
                found.append(words[1])
for uri in found:
    if uri.startswith(("http://", "https://")):
        print(uri)
        break
PY
}

phase=$EPOCHREALTIME
if pm image exists "$BASE:$VERSION_CODENAME"; then
  base_note="cached"
else
  mirror=$(apt_mirror)
  [[ -n $mirror ]] || die "no http(s) Debian mirror for $VERSION_CODENAME main in /etc/apt/sources.list{,.d}"
  say "making the stand-in base: debootstrap --variant=minbase $VERSION_CODENAME from apt's mirror (once; cached)"
  rootfs=$WORK/rootfs
  if ! debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
      "$VERSION_CODENAME" "$rootfs" "$mirror" >"$LOGS/debootstrap.log" 2>&1; then
    tail -20 "$LOGS/debootstrap.log"
    die "debootstrap failed (log: $LOGS/debootstrap.log)"
  fi
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | pm import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "LABEL org.opencontainers.image.description=\"stand-in made by scripts/container-check.sh: Debian $VERSION_CODENAME minbase with Debian's python3\"" \
    --message "container-check stand-in base" - "$BASE:$VERSION_CODENAME" >"$LOGS/import.log" 2>&1 \
    || die "podman import failed (log: $LOGS/import.log)"
  rm -rf "$rootfs"
  base_note="made in $(seconds_since "$phase") s"
fi
for name in "${FROM_IMAGES[@]}"; do pm tag "$BASE:$VERSION_CODENAME" "$name" || die "podman tag $name failed"; done
base_python=$(pm run --rm --entrypoint python3 "$BASE:$VERSION_CODENAME" -c 'import platform; print(platform.python_version())' 2>/dev/null)
record INFO "base image" "STAND-IN for ${FROM_IMAGES[*]}: Debian $VERSION_CODENAME minbase + Debian's python3 ($base_python), not the registry image ($base_note)"

# --- the build context: only what .containerignore allows ------------------------------
printf 'FROM %s\nCOPY . /context\nRUN cd /context && find . -type f | sort\n' "${FROM_IMAGES[0]}" >"$WORK/context.Containerfile"
if pm build --pull=never --no-cache -f "$WORK/context.Containerfile" "$REPO" >"$LOGS/context.log" 2>&1; then
  mapfile -t context < <(grep '^\./' "$LOGS/context.log")
  outside=$(printf '%s\n' "${context[@]}" | grep -Ev '^\./(pyproject\.toml|README\.md|CHANGELOG\.md|aura_livekit_backend/.*|scripts/container-healthcheck\.py)$' | grep -v '^$'; printf '%s\n' "${context[@]}" | grep -E '__pycache__|\.py[co]$')
  if [[ -z $outside ]]; then
    record PASS "build context" "${#context[@]} files: pyproject.toml, README.md, CHANGELOG.md, aura_livekit_backend/, scripts/container-healthcheck.py (no .git, tests, caches)"
  else
    record FAIL "build context" "unexpected files sent: $(echo "$outside" | head -5 | tr '\n' ' ')"
  fi
else
  record FAIL "build context" "probe build failed (log: $LOGS/context.log)"
fi

# --- pip's network settings for the build ----------------------------------------------
python3 - "$WORK/pip.conf" "$WORK/pip-cert" >"$WORK/pip-note" <<'PY'
import ast, os, re, subprocess, sys

conf_path, cert_link = sys.argv[1], sys.argv[2]
# Only what reaching an index takes; local sources (file:// indexes, find-links
# directories) and constraints are this machine's own and stay out.
KEYS = ["index-url", "extra-index-url", "trusted-host", "proxy", "timeout", "default-timeout", "retries", "cert"]
listed = {}
try:
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60).stdout
except (OSError, subprocess.TimeoutExpired):
    out = ""
for line in out.splitlines():
    match = re.match(r"^([^=]+?)\.([a-z0-9-]+)=(.*)$", line)
    if match:
        listed[(match[1], match[2])] = ast.literal_eval(match[3])
def value(key):
    # pip's own order: PIP_* variables, then the command's section, then [global].
    for section in (":env:", "install", "wheel", "global"):
        if (section, key) in listed:
            return listed[(section, key)]
    return None
settings, dropped = {}, []
for key in KEYS:
    raw = value(key)
    if raw is None:
        continue
    if key in ("index-url", "extra-index-url"):
        urls = raw.split()
        remote = [u for u in urls if u.startswith(("http://", "https://"))]
        dropped += [f"{key} {u}" for u in urls if u not in remote]
        if remote:
            settings[key] = " ".join(remote)
    else:
        settings[key] = raw
cert = settings.pop("cert", None) or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
if cert and os.path.isfile(cert):
    os.symlink(os.path.realpath(cert), cert_link)
    settings["cert"] = "/etc/ssl/certs/ca-certificates.crt"
with open(conf_path, "w") as conf:
    conf.write("[global]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
# Says which settings were passed, never their values (an index URL may hold a password).
note = "pip in the build: " + (", ".join(sorted(settings)) or "pip's defaults")
if dropped:
    note += f"; left out {len(dropped)} local source(s)"
print(note)
PY
pip_note=$(cat "$WORK/pip-note")
BUILD_MOUNTS=(--secret "id=pip.conf,src=$WORK/pip.conf")
# Mounted over the bundle the base image has, so no mount point is left in a layer.
[[ -e $WORK/pip-cert ]] && BUILD_MOUNTS+=(-v "$(readlink -f "$WORK/pip-cert"):/etc/ssl/certs/ca-certificates.crt:ro")

# --- the build --------------------------------------------------------------------------
say "building $IMAGE (podman build --format docker; $pip_note)"
phase=$EPOCHREALTIME
# The build stage gets a tag of its own first, so pruning untagged images afterwards
# (earlier builds, the context probe) keeps it as the next run's layer cache.
build() { pm build --format docker --pull=never --network=host "${BUILD_MOUNTS[@]}" -f "$REPO/Containerfile" "$@" "$REPO"; }
if ! { build "${NO_CACHE[@]}" --target build -t "$IMAGE-build" && build -t "$IMAGE"; } >"$LOGS/build.log" 2>&1; then
  tail -30 "$LOGS/build.log"
  record FAIL "build" "podman build failed after $(seconds_since "$phase") s (log: $LOGS/build.log)"
  finish
fi
pm image prune -f >/dev/null 2>&1
record PASS "build" "podman build --format docker --pull=never in $(seconds_since "$phase") s${NO_CACHE:+ (--no-cache)}; $pip_note"

# --- the image ----------------------------------------------------------------------------
healthcheck=$(pm image inspect --format '{{json .HealthCheck}}' "$IMAGE")
if [[ $healthcheck == *'"Test":['*aura-healthcheck* ]]; then
  record PASS "HEALTHCHECK in image" "$(python3 -c 'import json, sys; h = json.loads(sys.argv[1]); print(" ".join(h["Test"][1:]), "(every %d s, timeout %d s)" % (h["Interval"] // 10**9, h["Timeout"] // 10**9))' "$healthcheck")"
else
  record FAIL "HEALTHCHECK in image" "podman image inspect shows none: $healthcheck"
fi

leftovers=$(pm run --rm --entrypoint python "$IMAGE" -c '
import glob
print(" ".join(sorted(glob.glob("/opt/venv/bin/pip*") + glob.glob("/opt/venv/lib/python3*/site-packages/*")
    ))) ' 2>/dev/null | tr ' ' '\n' | grep -E '/(pip|setuptools|_distutils_hack|distutils-precedence|wheel)[^/]*$')
venv_size=$(pm run --rm --entrypoint du "$IMAGE" -sm /opt/venv 2>/dev/null | cut -f1)
if [[ -z $leftovers ]]; then
  record PASS "no pip/setuptools" "the runtime venv has neither (venv: ${venv_size:-?} MB)"
else
  record FAIL "no pip/setuptools" "still in the runtime venv: $(echo "$leftovers" | tr '\n' ' ')"
fi

image_bytes=$(pm image inspect --format '{{.Size}}' "$IMAGE")
base_bytes=$(pm image inspect --format '{{.Size}}' "$BASE:$VERSION_CODENAME")
added_mb=$(((image_bytes - base_bytes) / 1000000))
size_detail="$((image_bytes / 1000000)) MB on the stand-in base ($((base_bytes / 1000000)) MB); our layers add $added_mb MB (bound: $MAX_ADDED_MB MB)"
if ((added_mb <= MAX_ADDED_MB)); then record PASS "image size" "$size_detail"; else record FAIL "image size" "$size_detail"; fi

# --- the service in the container ---------------------------------------------------------
# Host networking: the service stays on loopback (--host 127.0.0.1, as --dev wants)
# and the check reaches it without publishing ports.
run_service() {  # run_service NAME [podman run options...] -- [service arguments...]
  local name=$1; shift
  local options=()
  while (($#)) && [[ $1 != -- ]]; do options+=("$1"); shift; done
  shift
  CONTAINERS+=("$name")
  pm run -d --name "$name" --network=host "${options[@]}" "$IMAGE" --dev --host 127.0.0.1 "$@" \
    >>"$LOGS/run.log" 2>&1
}
wait_healthy() {  # wait_healthy URL: 0 once it answers 200, within 60 s
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1") == 200 ]] && return 0
    sleep 0.3
  done
  return 1
}
health_run() {  # health_run NAME: `podman healthcheck run`, then the check's own line
  local status=0
  HEALTH_OUTPUT=""
  pm healthcheck run "$1" >>"$LOGS/healthcheck.log" 2>&1 || status=$?
  HEALTH_OUTPUT=$(pm inspect --format '{{with .State.Health}}{{range .Log}}{{.Output}}{{"\n"}}{{end}}{{end}}' "$1" 2>/dev/null | grep . | tail -1)
  return $status
}

MAIN=aura-check-$$-main
PORT=$(free_port)
say "running the image: --dev --host 127.0.0.1 --port $PORT --workers 2 (AURA_PORT=8000 stays as the image sets it)"
run_service "$MAIN" -- --port "$PORT" --workers 2
phase=$EPOCHREALTIME
if wait_healthy "http://127.0.0.1:$PORT/api/health"; then
  record PASS "GET /api/health" "200 after $(seconds_since "$phase") s"
else
  record FAIL "GET /api/health" "no 200 within 60 s (log: podman logs; $LOGS/main.log)"
  pm logs "$MAIN" >"$LOGS/main.log" 2>&1
  finish
fi

created=$(curl -s --max-time 10 -w '\n%{http_code}' -X POST "http://127.0.0.1:$PORT/api/room/create" \
  -H 'Content-Type: application/json' -d '{"userName":"container-check","roomTopic":"Container check"}')
room=$(python3 -c '
import json, sys
body, _, status = sys.argv[1].rpartition("\n")
data = json.loads(body) if status == "200" else {}
print(data["roomId"] if data.get("token") and data.get("roomId") else "")' "$created" 2>/dev/null)
described=$([[ -n $room ]] && curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT/api/room/$room")
if [[ -n $room && $described == 200 ]]; then
  record PASS "room create" "POST /api/room/create 200 with a token: $room; GET /api/room/$room 200"
else
  record FAIL "room create" "answer: $(echo "$created" | tr '\n' ' ' | cut -c1-200); describe: ${described:-not tried}"
fi

if health_run "$MAIN"; then
  record PASS "healthcheck, --port" "podman healthcheck run: $HEALTH_OUTPUT"
else
  record FAIL "healthcheck, --port" "podman healthcheck run failed: $HEALTH_OUTPUT (log: $LOGS/healthcheck.log)"
fi

# shellcheck disable=SC2016  # expanded by the container's shell
uids=$(pm exec "$MAIN" sh -c 'for s in /proc/[0-9]*/status; do grep "^Uid:" "$s"; done' 2>/dev/null | awk '{print $2, $3}' | tr ' ' '\n' | sort -u | tr '\n' ' ')
nprocs=$(pm exec "$MAIN" sh -c 'ls -d /proc/[0-9]* | wc -l' 2>/dev/null)
if [[ $uids == "10001 " ]]; then
  record PASS "non-root" "every process (${nprocs:-?}, the workers and this probe included) runs as uid 10001"
else
  record FAIL "non-root" "uids seen: ${uids:-none}"
fi

# A service given its port and prefix by the environment alone.
ENVIRON=aura-check-$$-env
PORT2=$(free_port)
run_service "$ENVIRON" -e "AURA_PORT=$PORT2" -e AURA_API_PREFIX=/v2 --
HEALTH_OUTPUT=""
if wait_healthy "http://127.0.0.1:$PORT2/v2/health" && health_run "$ENVIRON"; then
  record PASS "healthcheck, AURA_PORT" "AURA_PORT=$PORT2 AURA_API_PREFIX=/v2: $HEALTH_OUTPUT"
else
  record FAIL "healthcheck, AURA_PORT" "AURA_PORT=$PORT2 AURA_API_PREFIX=/v2: ${HEALTH_OUTPUT:-no answer on /v2/health}"
fi
pm logs "$ENVIRON" >"$LOGS/env.log" 2>&1
pm rm -f -t 0 "$ENVIRON" >/dev/null 2>&1

# The same check in a container with no service: it must fail, or it proves nothing.
no_service=$(pm run --rm --network=host --entrypoint python "$IMAGE" -I /usr/local/bin/aura-healthcheck 2>/dev/null)
no_service_status=$?
if ((no_service_status == 1)); then
  record PASS "healthcheck, no service" "exit 1: $no_service"
else
  record FAIL "healthcheck, no service" "exit $no_service_status: $no_service"
fi

# --- SIGTERM -------------------------------------------------------------------------------
phase=$EPOCHREALTIME
pm stop -t 30 "$MAIN" >>"$LOGS/run.log" 2>&1
stop_seconds=$(seconds_since "$phase")
exit_code=$(pm inspect --format '{{.State.ExitCode}}' "$MAIN")
pm logs "$MAIN" >"$LOGS/main.log" 2>&1
# The service's own share, from its log: SIGTERM received to "Server Stopped".
own=$(python3 - "$LOGS/main.log" <<'PY'
import re, sys
from datetime import datetime
times = {}
for line in open(sys.argv[1], errors="replace"):
    match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*(Received signal SIGTERM|Server Stopped)", line)
    if match:
        times[match[2]] = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
if len(times) == 2:
    print(f"; the service's log: SIGTERM to 'Server Stopped' in {(times['Server Stopped'] - times['Received signal SIGTERM']).total_seconds():.1f} s")
PY
)
stop_detail="podman stop -t 30: $stop_seconds s wall (bound: $MAX_STOP_SECONDS s)$own"
if python3 -c 'import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))' "$stop_seconds" "$MAX_STOP_SECONDS"; then
  record PASS "SIGTERM stop time" "$stop_detail"
else
  record FAIL "SIGTERM stop time" "$stop_detail"
fi
if [[ $exit_code == 0 ]]; then
  record PASS "exit code" "0 after SIGTERM"
else
  record FAIL "exit code" "$exit_code after SIGTERM (log: $LOGS/main.log)"
fi
if grep -q Traceback "$LOGS/main.log"; then
  record FAIL "service log" "a traceback (log: $LOGS/main.log)"
else
  record PASS "service log" "$(wc -l <"$LOGS/main.log") lines, no traceback"
fi

finish
