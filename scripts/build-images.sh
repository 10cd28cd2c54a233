#!/usr/bin/env bash
# Builds the container images without a daemon and without pulling anything:
#   <registry>/deepseek-operator:<version>      the operator             (operator/Dockerfile)
#   <registry>/deepseek-gateway:<version>       the gateway              (gateway/Dockerfile)
#   <registry>/deepseek-runtime:<version>-cpu   the runtime on CPU, serving the embedded tiny model
#                                                by default              (images/runtime-cpu.Dockerfile)
# and, with --cuda, <registry>/deepseek-runtime:<version> (runtime/Dockerfile, which pulls its PyTorch
# and .NET bases, so it needs a reachable registry).
#
# The daemonless images sit on a base unpacked from Debian 12 packages (images/base-packages: glibc,
# libstdc++, libgcc, OpenSSL, zlib, tzdata, CA certificates; no shell, no package manager) and carry
# self-contained .NET publishes, run as 65532:65532, have their executable as entrypoint, are
# reproducible (every timestamp is the epoch: the same sources and packages give the same image ID)
# and carry the OCI annotations and labels source, revision and version. They stay in the default
# containers-storage (podman sees them) and are exported as OCI archives. With --push they are then
# pushed to the registry their references name (no process publishes ghcr.io/deepseek-operator yet:
# until one does, users build and push the images to their own registry, README.md).
#
# Usage: scripts/build-images.sh [--release] [--version V] [--registry R] [--cuda] [--out DIR] [--list]
#                                [--push | --push-only] [--insecure]
#   --version V    tag (default: dev)
#   --registry R   repository prefix (default: localhost)
#   --release      what a release publishes: version from Directory.Build.props (the chart's
#                  appVersion), registry ghcr.io/deepseek-operator (the chart's default repositories);
#                  --version/--registry still override
#   --cuda         also build the CUDA runtime image (needs registry access for its base images)
#   --out DIR      where the OCI archives go (default: artifacts/images)
#   --list         print the image references this call would build, one a line, and build nothing
#   --push         after building, push each built reference to the registry it names: --registry R is
#                  host[:port]/prefix of any OCI registry, e.g. --registry 127.0.0.1:5000/deepseek
#                  pushes 127.0.0.1:5000/deepseek/deepseek-operator:dev; the default R, localhost, names
#                  local images only and is refused. The registry is checked reachable before anything
#                  is built. Log in first where it needs credentials (podman login HOST; REGISTRY_AUTH_FILE
#                  is honoured). Prints each reference with the digest the registry now serves it under.
#   --push-only    push what an earlier call built with the same --version/--registry/--release/--cuda
#                  (e.g. after testing it), build nothing
#   --insecure     with --push: allow plain HTTP and unverified TLS for a registry off loopback. A loopback
#                  registry (localhost, 127.x.x.x, [::1]) gets them without it; any other host is reached
#                  over verified TLS only unless --insecure is given
# Needs: the .NET SDK, buildah, apt-get (for the Debian packages), and podman (and curl, if present) for
# --push; scripts/setup/containers.sh installs buildah, podman and runc on Debian and writes
# .tools/containers/containers.conf, which this script uses through CONTAINERS_CONF
# (scripts/containers-env.sh) unless CONTAINERS_CONF is already set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/containers-env.sh

readonly release_registry="ghcr.io/deepseek-operator"
readonly source_url="https://github.com/deepseek-operator/deepseek-operator"

version=""
registry=""
release=false
cuda=false
list=false
push=false
push_only=false
insecure=false
out="artifacts/images"

usage() { sed -n '/^# Usage:/,/^# Needs:/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="${2:?--version needs a value}"; shift 2 ;;
    --registry) registry="${2:?--registry needs a value}"; shift 2 ;;
    --release) release=true; shift ;;
    --cuda) cuda=true; shift ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --list) list=true; shift ;;
    --push) push=true; shift ;;
    --push-only) push=true; push_only=true; shift ;;
    --insecure) insecure=true; shift ;;
    -h|--help) usage ;;
    *) echo "error: unknown argument $1" >&2; usage ;;
  esac
done

project_version="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -n 1)"
if $release; then
  version="${version:-$project_version}"
  registry="${registry:-$release_registry}"
fi
version="${version:-dev}"
registry="${registry:-localhost}"
registry="${registry%/}"

if ! [[ "$version" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,123}$ ]]; then
  echo "error: --version $version is not a valid image tag" >&2
  exit 2
fi

readonly operator_ref="$registry/deepseek-operator:$version"
readonly gateway_ref="$registry/deepseek-gateway:$version"
readonly runtime_cpu_ref="$registry/deepseek-runtime:$version-cpu"
readonly runtime_cuda_ref="$registry/deepseek-runtime:$version"
readonly base_ref="localhost/deepseek-base:$version"

refs=("$operator_ref" "$gateway_ref" "$runtime_cpu_ref")
if $cuda; then refs+=("$runtime_cuda_ref"); fi

if $list; then
  printf '%s\n' "${refs[@]}"
  exit 0
fi

if $insecure && ! $push; then
  echo "error: --insecure only applies to --push or --push-only" >&2
  exit 2
fi

# --- pushing --------------------------------------------------------------------------------------
# The registry of the references: their first component when it is a host (has a dot or a port, or is
# localhost), as podman reads them; otherwise Docker Hub.
registry_host="${registry%%/*}"
if ! [[ "$registry_host" == *.* || "$registry_host" == *:* || "$registry_host" == localhost ]]; then
  registry_host="docker.io"
fi
# The address and port to check, and whether plain HTTP is allowed (loopback or --insecure).
case "$registry_host" in
  \[*\]:*) registry_address="${registry_host%%]*}"; registry_address="${registry_address#[}"; registry_port="${registry_host##*]:}" ;;
  \[*\]) registry_address="${registry_host#[}"; registry_address="${registry_address%]}"; registry_port="" ;;
  *:*) registry_address="${registry_host%:*}"; registry_port="${registry_host##*:}" ;;
  *) registry_address="$registry_host"; registry_port="" ;;
esac
if [ "$registry_address" = "docker.io" ]; then registry_address="registry-1.docker.io"; fi
loopback=false
case "$registry_address" in localhost | 127.* | ::1) loopback=true ;; esac
plain_http=$insecure
if $loopback; then plain_http=true; fi

# Whether the registry answers at URL (any HTTP status, even a TLS error, is an answer; the push itself
# checks TLS). curl goes through a configured proxy as podman does, and past it for loopback as Go does;
# without curl, a TCP connection to the port counts.
reachable() {
  local url="$1" port="$2" code=0
  if command -v curl >/dev/null 2>&1; then
    local proxy=()
    if $loopback; then proxy=(--noproxy '*'); fi
    curl --silent --insecure "${proxy[@]}" --output /dev/null --max-time 10 "$url" || code=$?
    # 5, 6: proxy or host not resolved; 7: no connection; 28: no answer in time.
    case "$code" in 5 | 6 | 7 | 28) return 1 ;; *) return 0 ;; esac
  fi
  timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$registry_address" "$port" 2>/dev/null
}

check_registry() {
  if [ "$registry_host" = "localhost" ]; then
    echo "error: --push needs --registry naming a registry (host[:port]/prefix, e.g. 127.0.0.1:5000/deepseek) or --release; the default, localhost, names local images only" >&2
    exit 2
  fi
  if ! command -v podman >/dev/null 2>&1; then
    echo "error: podman is missing (it pushes the images: run scripts/setup/containers.sh as root on Debian)" >&2
    exit 1
  fi
  local host="$registry_address" urls=() tried=""
  if [[ "$host" == *:* ]]; then host="[$host]"; fi
  if [ -n "$registry_port" ]; then
    urls=("https://$host:$registry_port/v2/ $registry_port")
  else
    urls=("https://$host/v2/ 443")
    if $plain_http; then urls+=("http://$host/v2/ 80"); fi
  fi
  for url_port in "${urls[@]}"; do
    if reachable $url_port; then return 0; fi
    tried="${tried:+$tried or }${url_port% *}"
  done
  echo "error: registry $registry_host is unreachable (no answer from $tried within 10 s); nothing was built or pushed" >&2
  exit 1
}

push_images() {
  local tls=true ref log digest
  if $plain_http; then tls=false; fi
  log="$(mktemp)"
  digest="$(mktemp)"
  echo "== pushing to $registry_host$( $plain_http && echo ' (plain HTTP allowed)')"
  for ref in "${refs[@]}"; do
    # Bounded: a registry that stops answering mid-push ends the script, not a wait without end.
    local code=0 reason
    timeout 1800 podman push --quiet --tls-verify="$tls" --digestfile "$digest" "$ref" "docker://$ref" >"$log" 2>&1 || code=$?
    if [ "$code" != 0 ]; then
      # podman's last line says why (its earlier lines are retries of the same); one line here.
      reason="$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
      if [ "$code" = 124 ]; then reason="no answer within 1800 s"; fi
      rm -f "$log" "$digest"
      echo "error: pushing $ref failed: ${reason:-podman push exited $code}" >&2
      exit 1
    fi
    echo "$ref  pushed  digest $(cat "$digest")"
  done
  rm -f "$log" "$digest"
}

if $push; then check_registry; fi
if $push_only; then
  for ref in "${refs[@]}"; do
    if ! podman image exists "$ref"; then
      echo "error: $ref is not in local storage; build it first (the same arguments without --push-only)" >&2
      exit 1
    fi
  done
  push_images
  exit 0
fi

for tool in dotnet buildah apt-get dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is missing (buildah: run scripts/setup/containers.sh as root on Debian)" >&2
    exit 1
  fi
done

started=$SECONDS
work="artifacts/image-build"
rm -rf "$work"
mkdir -p "$work" "$out"

revision="unknown"
if git rev-parse --verify HEAD >/dev/null 2>&1; then
  revision="$(git rev-parse HEAD)"
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then revision="$revision-dirty"; fi
fi
metadata=()
for key_value in "source=$source_url" "revision=$revision" "version=$version"; do
  metadata+=(--annotation "org.opencontainers.image.$key_value" --label "org.opencontainers.image.$key_value")
done

# --- .NET publishes -------------------------------------------------------------------------------
# Self-contained (the base has no .NET): the CLI bundles of scripts/publish-cli.sh.
bash scripts/publish-cli.sh "$work"

# --- the base: Debian packages unpacked into a root filesystem --------------------------------------
echo "== base from Debian packages"
rootfs="$work/rootfs"
mkdir -p "$work/debs" "$rootfs"
mapfile -t packages < <(sed 's/#.*//; s/[[:space:]]//g; /^$/d' images/base-packages)
apt_options=()
if [ "$(id -u)" = "0" ]; then apt_options=(-o APT::Sandbox::User=root); fi
if ! (cd "$work/debs" && apt-get download -qq "${apt_options[@]}" "${packages[@]}"); then
  # Package lists missing or stale (a fresh or cleaned machine): refresh them once, as root.
  if [ "$(id -u)" != "0" ]; then
    echo "error: apt-get download failed; run apt-get update as root and retry" >&2
    exit 1
  fi
  apt-get update -qq
  (cd "$work/debs" && apt-get download -qq "${apt_options[@]}" "${packages[@]}")
fi
mkdir -p "$rootfs/var/lib/dpkg/status.d"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$rootfs"
  # What was installed, where scanners (Trivy, Grype, Syft) look in distroless images.
  name="$(dpkg-deb -f "$deb" Package)"
  dpkg-deb -f "$deb" > "$rootfs/var/lib/dpkg/status.d/$name"
  printf 'Status: install ok installed\n' >> "$rootfs/var/lib/dpkg/status.d/$name"
done
rm -rf "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/lintian \
       "$rootfs"/usr/share/doc/*/changelog* "$rootfs"/usr/share/doc/*/NEWS*
# ca-certificates' maintainer script would concatenate the certificates into the bundle; do it here.
# OpenSSL's default locations (which .NET uses) point at it as the openssl package's links do.
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/lib/ssl"
find "$rootfs/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | while read -r cert; do
  cat "$cert"; [ -z "$(tail -c 1 "$cert")" ] || echo
done > "$rootfs/etc/ssl/certs/ca-certificates.crt"
ln -sfn /etc/ssl/certs "$rootfs/usr/lib/ssl/certs"
ln -sfn /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/lib/ssl/cert.pem"
# Users: root and the unprivileged 65532 the images run as (the chart's runAsUser).
cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
mkdir -p "$rootfs/tmp" "$rootfs/root" "$rootfs/home/nonroot" "$rootfs/app"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"
# Deterministic archive: sorted names, epoch times, numeric root owners except the user's home.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
  -C "$rootfs" --exclude=./home/nonroot -cf "$work/base.tar" .
tar --sort=name --mtime=@0 --owner=65532 --group=65532 --numeric-owner --format=gnu \
  -C "$rootfs" -rf "$work/base.tar" ./home/nonroot

container="$(buildah from --pull=never scratch)"
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
# `add` unpacks the archive with its owners and modes (`copy` would make everything root's).
buildah add --quiet "$container" "$work/base.tar" / >/dev/null
buildah config --os linux --arch amd64 \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --user 65532:65532 --workingdir /app "$container"
buildah commit --quiet --timestamp 0 --rm "$container" "$base_ref" >/dev/null
trap - EXIT

# --- the images -----------------------------------------------------------------------------------
build() {
  local containerfile="$1" context="$2" ref="$3" previous
  echo "== $ref"
  previous="$(buildah images --noheading --format '{{.ID}}' "$ref" 2>/dev/null || true)"
  buildah bud --quiet --pull=never --isolation chroot --timestamp 0 --layers=false \
    --build-arg "BASE_IMAGE=$base_ref" "${metadata[@]}" -f "$containerfile" -t "$ref" "$context" >/dev/null
  # The image this tag named before, now untagged and unused, goes (only that one, by its ID).
  if [ -n "$previous" ] && [ "$previous" != "$(buildah images --noheading --format '{{.ID}}' "$ref")" ]; then
    buildah rmi "$previous" >/dev/null 2>&1 || true
  fi
}
build operator/Dockerfile "$work/deepseek-operator" "$operator_ref"
build gateway/Dockerfile "$work/deepseek-gateway" "$gateway_ref"
build images/runtime-cpu.Dockerfile "$work/deepseek-runtime" "$runtime_cpu_ref"
if $cuda; then
  # Pulls its bases; its context is the repository (.dockerignore keeps build outputs out).
  echo "== $runtime_cuda_ref"
  buildah bud --isolation chroot --timestamp 0 "${metadata[@]}" -f runtime/Dockerfile -t "$runtime_cuda_ref" .
fi

# --- OCI archives ---------------------------------------------------------------------------------
echo "== OCI archives in $out"
for ref in "${refs[@]}"; do
  name="${ref##*/}"
  archive="$out/${name/:/-}.oci.tar"
  rm -f "$archive"
  buildah push --quiet "$ref" "oci-archive:$archive:$ref" >/dev/null
done

echo "== built in $((SECONDS - started)) s"
for ref in "${refs[@]}"; do
  name="${ref##*/}"
  archive="$out/${name/:/-}.oci.tar"
  echo "$ref  id $(buildah images --noheading --format '{{.ID}}  size {{.Size}}' "$ref")  archive $archive ($(du -h "$archive" | cut -f1))"
done

if $push; then push_images; fi
