"""GPU check: decode steps replayed as CUDA graphs give the greedy tokens of eager decode.

Runs on a GPU host from the repository root, with the runtime unpacked (scripts/publish-gpu-bundle.sh)
and the native helper beside its executable. For `serve --cuda-graphs true` and then `--cuda-graphs
false` on the same checkpoint (bf16 on CUDA unless --device/--dtype say otherwise), it sends one request alone (batch 1) and then `--batch`
requests at once, each a different random token-id prompt, greedy, exactly `--steps` new tokens
(min_tokens = max_tokens, so an end-of-sequence token does not stop one early), and records every
request's token ids (return_tokens_as_token_ids). Writes OUT/graph-check.json: per batch, how many
requests are equal and, for each that is not, the first step that differs; the server logs as
OUT/graph-check-*.log. Exit status 0 when every request is equal.

Usage: python3 scripts/gpu/graph_check.py --runtime PATH/deepseek-runtime --model DIR [--steps 256] [--batch 32] [--out OUT]
"""
import argparse, concurrent.futures, json, os, random, signal, socket, subprocess, sys, time, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--runtime", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--steps", type=int, default=256)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--prompt-tokens", type=int, default=64)
ap.add_argument("--device", default="cuda")
ap.add_argument("--dtype", default="bfloat16")
ap.add_argument("--out", default=os.environ.get("OUT", "out"))
ap.add_argument("--ready-seconds", type=int, default=300)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)

vocab = json.load(open(os.path.join(a.model, "config.json")))["vocab_size"]
rng = random.Random(7)
prompts = [[rng.randrange(3, vocab) for _ in range(a.prompt_tokens)] for _ in range(a.batch + 1)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def complete(port, prompt):
    body = json.dumps({"model": "deepseek", "prompt": prompt, "max_tokens": a.steps, "min_tokens": a.steps, "temperature": 0,
                       "logprobs": 0, "return_tokens_as_token_ids": True}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=900) as response:
        tokens = json.load(response)["choices"][0]["logprobs"]["tokens"]
    return [int(t.split(":", 1)[1]) for t in tokens]


def run(graphs):
    port, grpc = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPSEEK_") or k == "DEEPSEEK_LIBTORCH_DIR"}
    log = open(os.path.join(a.out, f"graph-check-{'graphs' if graphs else 'eager'}.log"), "w")
    proc = subprocess.Popen([a.runtime, "serve", "--model", a.model, "--device", a.device, "--dtype", a.dtype, "--host", "127.0.0.1",
                             "--served-name", "deepseek", "--http-port", str(port), "--grpc-port", str(grpc), "--max-running-requests", str(a.batch),
                             "--cuda-graphs", "true" if graphs else "false"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + a.ready_seconds
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited with {proc.returncode}; see its log")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("serve was not ready in time")
            time.sleep(0.5)
        started = time.time()
        alone = complete(port, prompts[0])
        alone_seconds = time.time() - started
        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(a.batch) as pool:
            together = list(pool.map(lambda p: complete(port, p), prompts[1:]))
        return {"alone": alone, "together": together, "alone_seconds": round(alone_seconds, 2), "together_seconds": round(time.time() - started, 2)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def first_difference(x, y):
    return next((i for i, (s, t) in enumerate(zip(x, y)) if s != t), None if len(x) == len(y) else min(len(x), len(y)))


graphs, eager = run(True), run(False)
rows = {
    "batch 1": {"equal": graphs["alone"] == eager["alone"], "tokens": len(eager["alone"]), "first_difference": first_difference(graphs["alone"], eager["alone"]),
                "seconds_graphs": graphs["alone_seconds"], "seconds_eager": eager["alone_seconds"]},
    f"batch {a.batch}": {"equal": sum(g == e for g, e in zip(graphs["together"], eager["together"])), "of": a.batch,
                         "tokens_each": [len(e) for e in eager["together"]][:1],
                         "first_differences": [d for d in (first_difference(g, e) for g, e in zip(graphs["together"], eager["together"])) if d is not None],
                         "seconds_graphs": graphs["together_seconds"], "seconds_eager": eager["together_seconds"]},
}
print(json.dumps(rows, indent=1))
json.dump(rows, open(os.path.join(a.out, "graph-check.json"), "w"), indent=1)
sys.exit(0 if rows["batch 1"]["equal"] and rows[f"batch {a.batch}"]["equal"] == a.batch else 1)
