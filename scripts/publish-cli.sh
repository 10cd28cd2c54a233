#!/usr/bin/env bash
# Publishes the executables as self-contained single-folder bundles for linux-x64 (no .NET needed
# on the machine that runs them): OUT/deepseek-runtime/deepseek-runtime (with the CPU LibTorch and the
# embedded tiny model), OUT/deepseek-operator/deepseek-operator and OUT/deepseek-gateway/deepseek-gateway.
# scripts/build-images.sh puts the same bundles into the images. Put them on PATH with symbolic links
# (README.md, "Install the CLIs").
# Usage: scripts/publish-cli.sh [--archive] [OUT]   (OUT default: artifacts/cli)
#   --archive   also write OUT/deepseek-runtime-linux-x64.tar.gz, OUT/deepseek-operator-linux-x64.tar.gz and
#               OUT/deepseek-gateway-linux-x64.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."

archive=false
out="artifacts/cli"
while [ $# -gt 0 ]; do
  case "$1" in
    --archive) archive=true; shift ;;
    -h|--help) sed -n '/^# Usage:/,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    -*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) out="$1"; shift ;;
  esac
done

# Intermediate files in their own artifacts path, so that a build running next to this one (tests, an
# IDE) never shares obj/ folders with it. ContinuousIntegrationBuild maps source paths, so the binaries
# do not depend on where the repository is checked out.
publish() {
  local project="$1" name="$2"
  echo "== dotnet publish $project → $out/$name"
  rm -rf "${out:?}/$name"
  dotnet publish "$project" --configuration Release --runtime linux-x64 --self-contained \
    --artifacts-path artifacts/dotnet-publish --output "$out/$name" \
    -p:ContinuousIntegrationBuild=true -p:SatelliteResourceLanguages=en -p:DebugType=none \
    -nologo -clp:ErrorsOnly
}
mkdir -p "$out"
publish operator/DeepSeek.Operator/DeepSeek.Operator.csproj deepseek-operator
publish gateway/DeepSeek.Gateway/DeepSeek.Gateway.csproj deepseek-gateway
# The runtime's publish marks libLibTorchSharp.so's GLIBCXX_3.4.32 need weak (build/*.targets), which
# Debian 12's libstdc++ needs.
publish runtime/DeepSeek.Runtime/DeepSeek.Runtime.csproj deepseek-runtime

if $archive; then
  for name in deepseek-operator deepseek-gateway deepseek-runtime; do
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$out" -czf "$out/$name-linux-x64.tar.gz" "$name"
    echo "$out/$name-linux-x64.tar.gz ($(du -h "$out/$name-linux-x64.tar.gz" | cut -f1))"
  done
fi
