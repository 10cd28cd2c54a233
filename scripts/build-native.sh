#!/usr/bin/env bash
# Builds the native GPU helper (runtime/native → libdeepseek_native.so) against the LibTorch of the
# PyTorch installation that `python3` imports, which must be the one the runtime loads at run time
# (DEEPSEEK_LIBTORCH_DIR): the helper and TorchSharp exchange at::Tensor pointers, so both must see
# the same ATen. Runs on a GPU host or in the CUDA image's build stage; needs g++, the CUDA toolkit's
# nvcc (for the .cu kernels) and PyTorch with CUDA. CUDA_ARCHS picks the GPU generations compiled for
# (default 80 90: Ampere and Hopper, plus PTX of the last for newer GPUs).
# Usage: scripts/build-native.sh OUT_DIR   → OUT_DIR/libdeepseek_native.so
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: $0 OUT_DIR}"
python="${PYTHON:-python3}"
cxx="${CXX:-g++}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# Where PyTorch keeps its headers and libraries, whether it links the C++11 ABI, and the CUDA and
# NCCL headers: those of the toolkit when one is installed, else the nvidia/* Python packages.
eval "$("$python" - <<'PY'
import glob, os, shlex, torch
from torch.utils import cpp_extension
if torch.version.cuda is None:
    raise SystemExit("this PyTorch has no CUDA; the helper needs a CUDA build of PyTorch")
root = os.path.dirname(torch.__file__)
includes = [os.path.join(root, "include"), os.path.join(root, "include", "torch", "csrc", "api", "include")]
cuda_home = cpp_extension.CUDA_HOME
if cuda_home and os.path.isdir(os.path.join(cuda_home, "include")):
    includes.append(os.path.join(cuda_home, "include"))
site = os.path.dirname(root)
includes += sorted(d for d in glob.glob(os.path.join(site, "nvidia", "*", "include")) + glob.glob(os.path.join(site, "nvidia", "*", "*", "include")) if os.path.isdir(d))
nvcc = os.path.join(cuda_home, "bin", "nvcc") if cuda_home else ""
print("nvcc=" + shlex.quote(nvcc if os.path.isfile(nvcc) else ""))
print("torch_version=" + shlex.quote(torch.__version__))
print("torch_lib=" + shlex.quote(os.path.join(root, "lib")))
print("cxx11_abi=" + ("1" if torch._C._GLIBCXX_USE_CXX11_ABI else "0"))
print("includes=(" + " ".join(shlex.quote("-I" + d) for d in includes) + ")")
PY
)"
echo "build-native: PyTorch ${torch_version}, LibTorch in ${torch_lib}" >&2

flags=(-std=c++17 -O2 -fPIC -fvisibility=hidden -Wall -Wno-unused-parameter
       "-D_GLIBCXX_USE_CXX11_ABI=${cxx11_abi}" -DUSE_C10D_NCCL "${includes[@]}")
objects="$(mktemp -d)"
trap 'rm -rf "$objects"' EXIT
# One translation unit per core: the LibTorch headers dominate the compile time.
pids=()
for source in runtime/native/*.cpp; do
  "$cxx" "${flags[@]}" -c "$source" -o "$objects/$(basename "${source%.cpp}").o" &
  pids+=($!)
done
[[ -n "$nvcc" ]] || { echo "build-native: no nvcc under PyTorch's CUDA_HOME; the quantised expert kernels need the CUDA toolkit" >&2; exit 1; }
archs=()
for arch in ${CUDA_ARCHS:-80 90}; do archs+=(-gencode "arch=compute_${arch},code=sm_${arch}"); done
archs+=(-gencode "arch=compute_${arch},code=compute_${arch}")
for source in runtime/native/*.cu; do
  "$nvcc" -std=c++17 -O3 "${archs[@]}" -Xcompiler -fPIC,-fvisibility=hidden "-D_GLIBCXX_USE_CXX11_ABI=${cxx11_abi}" "${includes[@]}" \
    -c "$source" -o "$objects/$(basename "${source%.cu}").o" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
"$cxx" -shared -o "$out/libdeepseek_native.so" "$objects"/*.o \
  -L"$torch_lib" -Wl,-rpath,"$torch_lib" -ltorch -ltorch_cuda -ltorch_cpu -lc10_cuda -lc10 \
  -L"$(dirname "$nvcc")/../lib64" -lcudart
# Only the C ABI is exported (visibility hidden elsewhere); list it so a missing symbol shows here.
nm -D --defined-only "$out/libdeepseek_native.so" | awk '$3 ~ /^dsn_/ {print $3}' | sort | tr '\n' ' ' >&2
echo >&2
ls -la "$out/libdeepseek_native.so" >&2
