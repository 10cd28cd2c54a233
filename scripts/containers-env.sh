# Sourced by scripts that run buildah, podman or skopeo: points CONTAINERS_CONF and CONTAINERS_STORAGE_CONF
# at the project's own containers.conf and storage.conf (written by scripts/setup/containers.sh under
# .tools/containers), so the container tools use the project's settings and image store without any file
# under /etc/containers. A variable already set wins.
deepseek_containers="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/containers"
if [ -z "${CONTAINERS_CONF:-}" ] && [ -f "$deepseek_containers/containers.conf" ]; then
  export CONTAINERS_CONF="$deepseek_containers/containers.conf"
fi
if [ -z "${CONTAINERS_STORAGE_CONF:-}" ] && [ -f "$deepseek_containers/storage.conf" ]; then
  export CONTAINERS_STORAGE_CONF="$deepseek_containers/storage.conf"
fi
unset deepseek_containers
