# Sourced by scripts that run buildah, podman or skopeo: points CONTAINERS_CONF at the project's own
# containers.conf (written by scripts/setup/containers.sh under .tools/), so the container tools use
# the project's settings without any file under /etc/containers. A CONTAINERS_CONF already set wins.
deepseek_containers_conf="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/containers/containers.conf"
if [ -z "${CONTAINERS_CONF:-}" ] && [ -f "$deepseek_containers_conf" ]; then
  export CONTAINERS_CONF="$deepseek_containers_conf"
fi
unset deepseek_containers_conf
