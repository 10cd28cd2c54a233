#!/usr/bin/env bash
# CPU A/B of two runtime bundles (scripts/publish-gpu-bundle.sh) on a quiet many-core host, such as
# the GPU host's CPUs: the same `bench` rows as docs/benchmarks.md's CPU section, the two builds
# alternating so that drift on the host hits both alike.
# Usage: OLD=old.tar.xz NEW=new.tar.xz [ROUNDS=3] [OUT=dir] bash scripts/gpu/cpu-ab.sh
# Needs PyTorch (its LibTorch serves the CPU path: the GPU bundle carries none of its own).
set -uo pipefail
out="${OUT:-/tmp/out}"; mkdir -p "$out"
rounds="${ROUNDS:-3}"
exec > >(tee -a "$out/cpu-ab.log") 2>&1
lscpu | grep -E "Model name|^CPU\(s\)"; uptime
export LD_LIBRARY_PATH="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
for b in old new; do
  bundle=$([[ $b == old ]] && echo "${OLD:?}" || echo "${NEW:?}")
  rm -rf "/tmp/ab-$b" && mkdir -p "/tmp/ab-$b" && tar -C "/tmp/ab-$b" -xJf "$bundle"
done
for round in $(seq 1 "$rounds"); do
  for b in old new; do
    echo "== round $round $b tiny"
    timeout 60 "/tmp/ab-$b/deepseek-runtime/deepseek-runtime" bench --device cpu --shape tiny --batches 1,8,32 --prompt-tokens 128 --output-tokens 48 \
      --json "$out/tiny-$b-$round.json" 2>&1 | grep "│" | tail -3
  done
done
for round in $(seq 1 "$rounds"); do
  for b in old new; do
    echo "== round $round $b V2-Lite 2 layers"
    timeout 120 "/tmp/ab-$b/deepseek-runtime/deepseek-runtime" bench --device cpu --shape deepseek-v2-lite --layers 2 --dtype float32 --batches 1,8,32 \
      --prompt-tokens 64 --output-tokens 16 --json "$out/v2lite-$b-$round.json" 2>&1 | grep "│" | tail -3
  done
done
