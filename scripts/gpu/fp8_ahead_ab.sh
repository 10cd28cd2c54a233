#!/usr/bin/env bash
# Usage (on a GPU host, from the repository root): BUNDLE=path/to/deepseek-runtime-linux-x64.tar.xz OUT=dir scripts/gpu/fp8_ahead_ab.sh
# FP8 prefill A/B: bf16 (none), fp8 with the expert stacks dequantised ahead, fp8 in order; two rounds; peak memory each.
set -uo pipefail
out=${OUT:-/tmp/out}; mkdir -p $out
nvidia-smi --query-gpu=name --format=csv,noheader
rm -rf /tmp/rt && mkdir -p /tmp/rt && tar -C /tmp/rt -xJf "${BUNDLE:-deepseek-runtime-linux-x64.tar.xz}"
timeout 200 bash scripts/build-native.sh $out/native 2>&1 | grep -v -i "interference\|^ *|\|^ *[0-9]* |\|note:\|In file included\|from " | tail -3
cp $out/native/libdeepseek_native.so /tmp/rt/deepseek-runtime/ || exit 1
rt=/tmp/rt/deepseek-runtime/deepseek-runtime
export DEEPSEEK_LIBTORCH_DIR="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
python3 scripts/gpu/make_random_checkpoint.py /tmp/ck --layers 8 --fp8 > /dev/null
for round in 1 2; do
  for v in none fp8 fp8-inorder; do
    q=${v%-inorder}; ahead=1; [[ $v == *inorder ]] && ahead=0
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > $out/ab-$round-$v.mem &
    s=$!
    DEEPSEEK_FP8_AHEAD=$ahead timeout 150 $rt bench --device cuda --dtype bfloat16 --model /tmp/ck --quantization $q \
      --batches 1,32 --prompt-tokens 256 --output-tokens 64 --bandwidth-gbs 4800 --json $out/ab-$round-$v.json | grep -E "│ (1|32) "
    kill $s; echo "== round $round $v peak MiB $(sort -n $out/ab-$round-$v.mem | tail -1)"
  done
done
rm -f $out/native/*.o
