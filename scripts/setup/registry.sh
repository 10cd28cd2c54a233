#!/usr/bin/env bash
# Puts the Distribution registry (Debian's docker-registry package, the reference OCI registry) into the
# repository's ignored .tools/registry/ for the push tests of tests/DeepSeek.Images.Tests, which push
# what scripts/build-images.sh built to a real registry and read it back.
# Nothing is installed system-wide and no service is started: the Debian package is only downloaded
# (apt-get download) and unpacked (dpkg-deb -x) in a temporary folder, so its maintainer scripts (a
# docker-registry user, a system service) never run; only its one binary is kept. The tests start their
# own registry with their own config file and storage in a temporary folder on a loopback port, and stop
# it by its process id.
# Idempotent: does nothing when .tools/registry already holds the binary and it runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly dir=.tools/registry

if [ -x "$dir/registry" ] && "$dir/registry" --version >/dev/null 2>&1; then
  echo "registry: $("$dir/registry" --version 2>&1 | head -n 1 | cut -d" " -f2-) already in $dir"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  if command -v docker-registry >/dev/null 2>&1; then
    echo "registry: no apt-get here; the tests use $(command -v docker-registry) from PATH"
    exit 0
  fi
  echo "error: the image push tests need the Distribution registry; put its binary at $dir/registry (or docker-registry on PATH) and rerun" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt's download user must be able to write the folder.
chmod 0755 "$work"

if ! (cd "$work" && apt-get download -qq docker-registry >/dev/null 2>&1); then
  # A machine whose package lists were never fetched: fetching them needs root.
  if [ "$(id -u)" != "0" ]; then
    echo "error: apt-get download docker-registry failed; run 'sudo apt-get update' (or put the registry binary at $dir/registry) and rerun" >&2
    exit 1
  fi
  apt-get update -qq
  (cd "$work" && apt-get download -qq docker-registry >/dev/null)
fi

dpkg-deb -x "$work"/docker-registry_*.deb "$work/root"
mkdir -p "$dir"
install -m 0755 "$work/root/usr/bin/docker-registry" "$dir/registry"
echo "registry: $("$dir/registry" --version 2>&1 | head -n 1 | cut -d" " -f2-) unpacked into $dir"
