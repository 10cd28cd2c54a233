#!/usr/bin/env bash
# Installs what scripts/build-images.sh and tests/DeepSeek.Images.Tests need to build and run OCI
# images without a daemon or a registry: buildah (build), podman and runc (run), skopeo (copy), all
# Debian packages, and writes the project's own .tools/containers/storage.conf (an image store under
# .tools/containers/storage) and .tools/containers/containers.conf, with the settings sandboxed build
# machines need:
#   - default_ulimits: podman asks for 1,048,576 open files by default, above the hard limit of
#     sandboxes such as CI containers, and then no container starts;
#   - runtime = "runc", cgroup_manager = "cgroupfs": crun refuses hosts with a hybrid cgroup v1/v2
#     layout and there is no systemd to manage cgroups; runc with cgroupfs works on either.
# Nothing under /etc is written: scripts/build-images.sh and the image tests point CONTAINERS_CONF and
# CONTAINERS_STORAGE_CONF at these files (scripts/containers-env.sh), which podman, buildah and skopeo
# then read instead of the host's containers.conf, its drop-ins and storage.conf. A variable already
# set is left alone.
# Idempotent: installs only what is missing and rewrites the file with the same content.
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly packages=(buildah podman runc skopeo)
readonly conf=.tools/containers/containers.conf
readonly storage_conf=.tools/containers/storage.conf

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the image tests need ${missing[*]}; install them (Debian: sudo apt-get install ${packages[*]}) and rerun" >&2
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

mkdir -p "$(dirname "$conf")"
content="# Written by scripts/setup/containers.sh (DeepSeekOperator) and read through CONTAINERS_CONF:
# settings that work on sandboxed build machines (no systemd, hybrid cgroups, a low open-files hard
# limit) as well as on hosts.
[containers]
default_ulimits = [\"nofile=${files}:${files}\", \"nproc=32768:32768\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
"
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$(printf '%s' "$content")" ]; then
  printf '%s' "$content" > "$conf"
  echo "containers: wrote $conf"
fi

# The project's own image store beside it, so builds of two checkouts on one machine never replace each
# other's tags, and nothing lands in the host's /var/lib/containers. overlay, the driver podman picks here.
storage_content="# Written by scripts/setup/containers.sh (DeepSeekOperator) and read through CONTAINERS_STORAGE_CONF.
[storage]
driver = \"overlay\"
graphroot = \"$PWD/.tools/containers/storage\"
runroot = \"$PWD/.tools/containers/run\"
"
if [ ! -f "$storage_conf" ] || [ "$(cat "$storage_conf")" != "$(printf '%s' "$storage_content")" ]; then
  printf '%s' "$storage_content" > "$storage_conf"
  echo "containers: wrote $storage_conf"
fi

echo "containers: $(buildah --version), $(podman --version), $(runc --version | head -n 1)"
