#!/usr/bin/env bash
# Puts Prometheus's two binaries, prometheus and promtool, into the repository's ignored .tools/prometheus/
# for the /metrics tests of tests/DeepSeek.Api.Tests and the chart's alert tests (promtool check/test
# rules) of tests/DeepSeek.Chart.Tests. The tests look there first, then on PATH.
# Nothing is installed system-wide and no service is started: the Debian package is only downloaded
# (apt-get download) and unpacked (dpkg-deb -x) in a temporary folder, so its maintainer scripts (a
# prometheus user, a system service) never run. The tests start their own Prometheus server with their
# own config and data folder on a loopback port, and stop it by its process id.
# Idempotent: does nothing when .tools/prometheus already holds both binaries and they run.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly dir=.tools/prometheus

if [ -x "$dir/prometheus" ] && [ -x "$dir/promtool" ] && "$dir/promtool" --version >/dev/null 2>&1; then
  echo "prometheus: $("$dir/prometheus" --version 2>&1 | head -n 1) already in $dir"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    echo "prometheus: no apt-get here; the tests use $(command -v prometheus) and $(command -v promtool) from PATH"
    exit 0
  fi
  echo "error: the API and chart tests need promtool and prometheus; put both in $dir (or on PATH) and rerun" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt's download user must be able to write the folder.
chmod 0755 "$work"

if ! (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); then
  # A machine whose package lists were never fetched: fetching them needs root.
  if [ "$(id -u)" != "0" ]; then
    echo "error: apt-get download prometheus failed; run 'sudo apt-get update' (or put prometheus and promtool in $dir) and rerun" >&2
    exit 1
  fi
  apt-get update -qq
  (cd "$work" && apt-get download -qq prometheus >/dev/null)
fi

dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$dir"
install -m 0755 "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$dir/"
echo "prometheus: $("$dir/prometheus" --version 2>&1 | head -n 1) unpacked into $dir"
