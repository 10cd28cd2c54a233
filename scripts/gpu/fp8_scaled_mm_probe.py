"""Which FP8 matrix products this PyTorch offers on this GPU, and what they cost beside bf16.

Probes torch._scaled_mm with DeepSeek-V3's block scales (weights 128x128, activations 1x128 per token
group), and its grouped form, on V2-Lite/V3 projection shapes; prints errors against the dequantised
bf16 product and times (CUDA events, median of 20 after warm-up). Used to choose the runtime's FP8 path
(docs/quantization.md)."""
import torch, time, sys, statistics

dev = "cuda"
torch.manual_seed(0)
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())
F8 = torch.float8_e4m3fn

def quant_weight(w):
    n, k = w.shape
    wb = w.float().view(n // 128, 128, k // 128, 128)
    amax = wb.abs().amax(dim=(1, 3), keepdim=True).clamp(min=1e-12)
    s = amax / 448.0
    q = (wb / s).to(F8).view(n, k)
    return q, s.view(n // 128, k // 128).contiguous()

def dequant(q, s):
    n, k = q.shape
    return (q.float().view(n // 128, 128, k // 128, 128) * s.view(n // 128, 1, k // 128, 1)).view(n, k).to(torch.bfloat16)

def quant_act(x):
    m, k = x.shape
    xb = x.float().view(m, k // 128, 128)
    s = xb.abs().amax(-1, keepdim=True).clamp(min=1e-12) / 448.0
    return (xb / s).to(F8).view(m, k), s.view(m, k // 128)

def timeit(fn, reps=20):
    for _ in range(5): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize(); ts.append(a.elapsed_time(b) * 1000)
    return statistics.median(ts)

def attempt(label, fn):
    try:
        r = fn(); torch.cuda.synchronize(); return r
    except Exception as e:
        print(f"  {label}: FAILED {type(e).__name__}: {str(e).splitlines()[0][:300]}")
        return None

shapes = [(3072, 2048), (2816, 2048), (24576, 1536), (7168, 2048)]
for (n, k) in shapes:
    w = torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02
    q, s = quant_weight(w)
    wd = dequant(q, s)
    for m in [1, 32, 256, 8192]:
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        ref = x @ wd.t()
        variants = {}
        # scale layouts to try: a 1x128 [m, k/128] outer-dim-major (column-major), b 128x128 [k/128, n/128]
        def run_scaled(xq, xs):
            return torch._scaled_mm(xq, q.t(), scale_a=xs.t().contiguous().t(), scale_b=s.t(), out_dtype=torch.bfloat16)
        xq, xs = quant_act(x)
        out = attempt(f"n{n} k{k} m{m} _scaled_mm 1x128/128x128", lambda: run_scaled(xq, xs))
        t_bf16 = timeit(lambda: x @ wd.t())
        line = f"n={n:6d} k={k:5d} m={m:5d} bf16 {t_bf16:8.1f} us"
        if out is not None:
            err = ((out.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
            t_f8 = timeit(lambda: run_scaled(xq, xs))
            t_f8q = timeit(lambda: run_scaled(*quant_act(x)))
            line += f" | scaled_mm {t_f8:8.1f} us (+act quant {t_f8q:8.1f}) rel.err {err:.4f}"
        t_dq = timeit(lambda: x @ dequant(q, s).t())
        line += f" | dequant+bf16 {t_dq:8.1f} us"
        print(line, flush=True)

# grouped: experts [E, N, K] with 128x128 scales
try:
    E, n, k, m = 8, 2816, 2048, 64
    w = torch.randn(E, n, k, device=dev, dtype=torch.bfloat16) * 0.02
    qs = [quant_weight(w[e]) for e in range(E)]
    q = torch.stack([a for a, _ in qs]); s = torch.stack([b for _, b in qs])
    x = torch.randn(m * E, k, device=dev, dtype=torch.bfloat16)
    xq, xs = quant_act(x)
    offs = torch.arange(m, m * E + 1, m, device=dev, dtype=torch.int32)
    out = attempt("_scaled_grouped_mm blockwise", lambda: torch._scaled_grouped_mm(xq, q.transpose(-2, -1), xs, s.transpose(-2, -1), offs=offs, out_dtype=torch.bfloat16))
    print("grouped blockwise:", "ok" if out is not None else "no")
except Exception as e:
    print("grouped probe failed", e)
try:
    import torch.nn.functional as Fn
    print("F.scaled_mm present:", hasattr(Fn, "scaled_mm"), "ScalingType:", [x.name for x in Fn.ScalingType] if hasattr(Fn, "ScalingType") else None)
except Exception as e:
    print(e)
