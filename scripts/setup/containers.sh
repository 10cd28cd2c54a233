#!/usr/bin/env bash
# Installs what scripts/build-images.sh and tests/DeepSeek.Images.Tests need to build and run OCI
# images without a daemon or a registry: buildah (build), podman and runc (run), skopeo (copy), all
# Debian packages, and writes a containers.conf drop-in for sandboxed build machines:
#   - default_ulimits: podman asks for 1,048,576 open files by default, above the hard limit of
#     sandboxes such as CI containers, and then no container starts;
#   - runtime = "runc", cgroup_manager = "cgroupfs": crun refuses hosts with a hybrid cgroup v1/v2
#     layout and there is no systemd to manage cgroups; runc with cgroupfs works on either.
# Idempotent: installs only what is missing and rewrites the drop-in with the same content.
set -euo pipefail

readonly packages=(buildah podman runc skopeo)
readonly dropin=/etc/containers/containers.conf.d/50-deepseek-build-machine.conf

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done

if [ "$(id -u)" != "0" ]; then
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "error: the image tests need ${missing[*]}; install them (Debian: sudo apt-get install ${packages[*]}) and rerun as root" >&2
    exit 1
  fi
  if [ ! -f "$dropin" ]; then
    echo "error: $dropin is missing; rerun this script as root to write it" >&2
    exit 1
  fi
  echo "containers: ${packages[*]} installed, $dropin present"
  exit 0
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the image tests need ${missing[*]}; install them with your package manager and rerun" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  echo "containers: installed ${missing[*]}"
fi

# The lower of the two limits podman needs and what this machine allows a process.
hard_files="$(ulimit -Hn)"
files=20000
if [ "$hard_files" != "unlimited" ] && [ "$hard_files" -lt "$files" ]; then files="$hard_files"; fi

mkdir -p "$(dirname "$dropin")"
content="# Written by scripts/setup/containers.sh (DeepSeekOperator): settings that work on sandboxed
# build machines (no systemd, hybrid cgroups, a low open-files hard limit) as well as on hosts.
[containers]
default_ulimits = [\"nofile=${files}:${files}\", \"nproc=32768:32768\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
"
if [ ! -f "$dropin" ] || [ "$(cat "$dropin")" != "$(printf '%s' "$content")" ]; then
  printf '%s' "$content" > "$dropin"
  echo "containers: wrote $dropin"
fi

echo "containers: $(buildah --version), $(podman --version), $(runc --version | head -n 1)"
