#!/usr/bin/env bash
# Publishes the runtime self-contained for linux-x64 without the CPU LibTorch, as a tar.xz for a GPU
# host that has .NET nowhere but PyTorch's CUDA LibTorch (loaded through DEEPSEEK_LIBTORCH_DIR).
# Usage: scripts/publish-gpu-bundle.sh OUT_DIR   → OUT_DIR/deepseek-runtime-linux-x64.tar.xz
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: $0 OUT_DIR}"
mkdir -p "$out"
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
# Trimming (partial: framework assemblies only) takes the bundle from ~84 MB to ~30 MB. The trim
# analyser cannot prove reflection-based JSON safe; the app's own code is kept whole (TrimMode=partial).
dotnet publish runtime/DeepSeek.Runtime -c Release -r linux-x64 --self-contained \
  -p:WithoutCpuLibTorch=true -p:PublishTrimmed=true -p:TrimMode=partial -p:SuppressTrimAnalysisWarnings=true \
  -o "$staging/deepseek-runtime" >&2
tar -C "$staging" -cJf "$out/deepseek-runtime-linux-x64.tar.xz" deepseek-runtime
ls -la "$out/deepseek-runtime-linux-x64.tar.xz" >&2
