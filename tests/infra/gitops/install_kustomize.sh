#!/usr/bin/env bash
# Install the pinned kustomize the GitOps tests render overlays with, into <repo>/.cache/bin
# (git-ignored), from the Go module proxy by package name. Skips when it is already there.
# Needs Go >= 1.22. Takes about a minute on a fresh machine (module download + build).
#   bash tests/infra/gitops/install_kustomize.sh
set -euo pipefail
VERSION="v5.5.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
BIN="$ROOT/.cache/bin"
# `go install` builds report "(devel)" as their version: a marker file records the pin.
if [[ -x "$BIN/kustomize" ]] && [[ "$(cat "$BIN/kustomize.version" 2>/dev/null)" == "$VERSION" ]]; then
  echo "kustomize $VERSION already in $BIN"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "error: go is not installed; install Go >= 1.22 (or put kustomize $VERSION on PATH)" >&2
  exit 1
fi
mkdir -p "$BIN"
GOBIN="$BIN" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION"
echo "$VERSION" >"$BIN/kustomize.version"
echo "installed kustomize $VERSION in $BIN"
