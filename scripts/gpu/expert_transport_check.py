"""GPU check of the expert-parallel transports, over the published runtime bundle.

Runs on a GPU host (no .NET needed) from the repository root:
  1. builds the native helper (scripts/build-native.sh) and puts it next to the bundle's executable;
  2. the helper's own NCCL test (`bench native --sections nccl`): one rank always; two ranks, one process
     per GPU, when two or more GPUs are visible (NCCL refuses two ranks on one GPU: skipped, said so);
  3. on every fixture under tests/fixtures, greedy tokens over HTTP compared with reference.json from
     - `serve --expert-transport nccl --world-size 1` (one GPU, the default transport on CUDA),
     - two `serve` ranks over gRPC on the same GPU (`--world-size 2`),
     - two data-parallel `serve` ranks over gRPC on the same GPU, both asked at once (`--data-parallel-attention true`),
       in float32 and in bf16 (each rank's experts on the grouped GEMM; tokens up to the first near-tie of 0.1),
     - with two or more GPUs: one pod's `serve --local-ranks 2 --expert-transport nccl` (cuda:0, cuda:1), and two
       data-parallel ranks over NCCL in lockstep (cuda:0, cuda:1), both asked at once;
     - with two or more GPUs, the leader shape over NCCL rebalancing (`--redundant-experts 4 --rebalance-interval-seconds 2`):
       the placement version moves past 1 under traffic and the reference tokens hold;
     - with two or more GPUs, in bf16 (where decode steps are captured): the data-parallel NCCL pair with decode
       graphs (each MoE layer exchanging at a fixed capacity inside the graph) against the same pair with
       `--cuda-graphs false` (the same padded shapes, eagerly): the same greedy tokens on both ranks, and each
       rank's log says which decode steps it captured;
  4. writes everything under OUT: results.json (one entry per check, with pass/fail or the skip reason)
     and each process's log.
Exit status 0 when no check failed.

Usage: python3 scripts/gpu/expert_transport_check.py --bundle deepseek-runtime-linux-x64.tar.xz [--out $OUT]
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tarfile, tempfile, time, urllib.request, urllib.error

ap = argparse.ArgumentParser()
ap.add_argument("--bundle", required=True, help="scripts/publish-gpu-bundle.sh's tar.xz, or the folder it unpacks to")
ap.add_argument("--out", default=os.environ.get("OUT", "out"))
ap.add_argument("--fixtures", default="tests/fixtures")
ap.add_argument("--only", default="", help="comma-separated fixture names to check (default: every fixture with a reference)")
ap.add_argument("--ready-seconds", type=int, default=300)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
results = []
started = []  # every process this script starts, stopped by its id at the end


def record(check, ok, **detail):
    entry = {"check": check, "status": "pass" if ok is True else "fail" if ok is False else "skipped", **detail}
    results.append(entry)
    print(json.dumps(entry), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_block(stride=10, count=2):
    """A base port with base + stride·i free for every i < count (local ranks' ports)."""
    for _ in range(200):
        base = free_port()
        if base + stride * count >= 65535:
            continue
        ok = True
        for i in range(1, count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + stride * i))
                except OSError:
                    ok = False
        if ok:
            return base
    raise RuntimeError("no free block of ports")


def start(name, args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEEPSEEK_")}
    env.update(base_env)
    env.update(env_extra or {})
    log = open(os.path.join(a.out, f"{name}.log"), "w")
    proc = subprocess.Popen([exe] + args, stdout=log, stderr=subprocess.STDOUT, env=env)
    started.append(proc)
    return proc


def stop(proc, seconds=60):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http(url, body=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


def wait_ready(proc, port, name):
    deadline = time.time() + a.ready_seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready (see {name}.log)")
        try:
            if http(f"http://127.0.0.1:{port}/ready", timeout=5)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{name} was not ready within {a.ready_seconds} s (see {name}.log)")


def expected_tokens(prompt, near_tie=1e-3):
    greedy, margins = prompt["greedy"], prompt["greedy_margins"]
    # Past a near-tie the argmax may flip on rounding: compare up to the first one.
    tie = next((i for i, m in enumerate(margins) if m < near_tie), len(greedy))
    return greedy[:tie]


def compare(check, port, model_name, reference, near_tie=1e-3):
    mismatches = []
    for n, prompt in enumerate(reference["prompts"]):
        want = expected_tokens(prompt, near_tie)
        if not want:
            continue
        _, body = http(f"http://127.0.0.1:{port}/v1/completions", {"model": model_name, "prompt": prompt["input_ids"], "max_tokens": len(want),
                                                                   "temperature": 0, "logprobs": 0, "return_tokens_as_token_ids": True})
        got = [int(t[len("token_id:"):]) for t in json.loads(body)["choices"][0]["logprobs"]["tokens"]]
        # The reference runs past the end-of-sequence token; a server stops there: equal up to it is equal.
        ended = bool(got) and got[-1] == reference.get("eos_token_id", 1) and got == want[:len(got)]
        if got != want and not ended:
            mismatches.append({"prompt": n, "expected": want, "got": got})
    record(check, not mismatches, prompts=len(reference["prompts"]), mismatches=mismatches)


def serve_args(fixture, port, grpc_port, *extra, device="cuda", dtype="float32"):
    return ["serve", "--model", fixture, "--device", device, "--dtype", dtype, "--host", "127.0.0.1",
            "--http-port", str(port), "--grpc-port", str(grpc_port), *extra]


def generate(port, model_name, prompt_ids, max_tokens):
    _, body = http(f"http://127.0.0.1:{port}/v1/completions", {"model": model_name, "prompt": prompt_ids, "max_tokens": max_tokens,
                                                               "temperature": 0, "logprobs": 0, "return_tokens_as_token_ids": True})
    return [int(t[len("token_id:"):]) for t in json.loads(body)["choices"][0]["logprobs"]["tokens"]]


def data_parallel_pair(check, name, fixture, reference, transport, devices, dtype="float32", extra=(), per_rank=None):
    """Two data-parallel ranks, each asked every prompt at once (both ranks' requests in flight together):
    compared with the references, or with per_rank(rank, port) when given (its result is returned per rank)."""
    import threading
    expert = [free_port(), free_port()]
    ports = [(free_port(), free_port()) for _ in range(2)]
    group = ["--world-size", "2", "--peers", ",".join(f"127.0.0.1:{p}" for p in expert), "--expert-transport", transport,
             "--group-token-file", token_file, "--data-parallel-attention", "true", *extra]
    label = f"{name}-dp-{transport}-{dtype}{'-' + '-'.join(x.strip('-') for x in extra) if extra else ''}"
    ranks = [start(f"{label}-rank{r}", serve_args(fixture, ports[r][0], ports[r][1], "--rank", str(r), "--expert-port", str(expert[r]),
                                                  *group, device=devices[r], dtype=dtype)) for r in range(2)]
    outcome = [None, None]
    try:
        for r in range(2):
            wait_ready(ranks[r], ports[r][0], f"{label}-rank{r}")
        def run(r):
            if per_rank is None:
                compare(f"{check}, rank {r}", ports[r][0], name, reference)
            else:
                outcome[r] = per_rank(r, ports[r][0])
        threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(900)
    except Exception as e:
        record(check, False, error=str(e))
    finally:
        for p in ranks:
            stop(p)
    return outcome, label


def graphs_against_eager(name, fixture, reference):
    """bf16 data-parallel NCCL pair: decode graphs (fixed-capacity exchanges captured) against eager steps."""
    check = f"{name}: data-parallel NCCL pair in bf16, captured decode steps against eager ones (cuda:0, cuda:1)"
    prompts = [p["input_ids"] for p in reference["prompts"]]
    tokens = lambda r, port: [generate(port, name, ids, 24) for ids in prompts]
    graphs, graphs_label = data_parallel_pair(check, name, fixture, reference, "nccl", ["cuda:0", "cuda:1"], "bfloat16", (), tokens)
    eager, _ = data_parallel_pair(check, name, fixture, reference, "nccl", ["cuda:0", "cuda:1"], "bfloat16", ("--cuda-graphs", "false"), tokens)
    captured = []
    for r in range(2):
        with open(os.path.join(a.out, f"{graphs_label}-rank{r}.log")) as f:
            captured.append(sum("CUDA graphs: captured a decode step" in line for line in f))
    ok = None not in graphs and None not in eager and graphs == eager and all(c > 0 for c in captured)
    record(check, ok, captured_per_rank=captured, graphs=graphs, eager=eager if graphs != eager else "equal")


def metric(port, name):
    _, text = http(f"http://127.0.0.1:{port}/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name) and not line.startswith("#"))


def nccl_rebalance(name, fixture, reference):
    """The leader shape over NCCL rebalancing (cuda:0, cuda:1): the rank stages and switches between the leader's
    headers. Traffic, a look every 2 s; the leader must switch placement and keep the reference tokens."""
    check = f"{name}: serve --local-ranks 2 --expert-transport nccl rebalancing (cuda:0, cuda:1)"
    http_base, grpc_base, expert_base = free_block(), free_block(), free_block()
    pod = start(f"{name}-nccl-rebalance", serve_args(fixture, http_base, grpc_base, "--local-ranks", "2", "--world-size", "2", "--rank", "0",
                                                       "--peers", f"127.0.0.1:{expert_base}", "--expert-port", str(expert_base),
                                                       "--expert-transport", "nccl", "--group-token-file", token_file,
                                                       "--redundant-experts", "4", "--rebalance-interval-seconds", "2"))
    try:
        wait_ready(pod, http_base, f"{name}-nccl-rebalance")
        deadline = time.time() + 120
        while metric(http_base, "deepseek_ep_rebalances_total{") < 1 and time.time() < deadline:
            for prompt in reference["prompts"]:
                generate(http_base, name, prompt["input_ids"], 8)
        switched = metric(http_base, "deepseek_ep_placement_version")
        compare(check, http_base, name, reference)
        results[-1]["placement_version"] = switched
        if switched < 2:
            record(check, False, error=f"the placement stayed at version {switched} (see {name}-nccl-rebalance.log)")
    except Exception as e:
        record(check, False, error=str(e))
    finally:
        stop(pod, 120)


work = tempfile.mkdtemp(prefix="expert-transport-")
try:
    # The bundle and the helper next to its executable.
    if os.path.isdir(a.bundle):
        bundle = a.bundle
    else:
        with tarfile.open(a.bundle) as archive:
            archive.extractall(work)
        bundle = os.path.join(work, "deepseek-runtime")
    exe = os.path.join(bundle, "deepseek-runtime")
    built = subprocess.run(["bash", "scripts/build-native.sh", os.path.join(work, "native")], capture_output=True, text=True)
    with open(os.path.join(a.out, "build-native.log"), "w") as f:
        f.write(built.stdout + built.stderr)
    record("build native helper", built.returncode == 0, exported=built.stderr.strip().splitlines()[-2:] if built.stderr else [])
    if built.returncode != 0:
        raise SystemExit(1)
    shutil.copy(os.path.join(work, "native", "libdeepseek_native.so"), bundle)

    import torch
    gpus = torch.cuda.device_count()
    base_env = {"DEEPSEEK_LIBTORCH_DIR": os.path.join(os.path.dirname(torch.__file__), "lib"), "NCCL_NVLS_ENABLE": "0"}
    record("gpus visible", gpus >= 1, count=gpus, names=[torch.cuda.get_device_name(i) for i in range(gpus)])

    # The helper's own NCCL test.
    one = subprocess.run([exe, "bench", "native", "--sections", "nccl", "--device", "cuda", "--json", os.path.join(a.out, "nccl-1rank.json")],
                         capture_output=True, text=True, env={**os.environ, **base_env}, timeout=600)
    with open(os.path.join(a.out, "nccl-1rank.log"), "w") as f:
        f.write(one.stdout + one.stderr)
    record("helper NCCL test, 1 rank", one.returncode == 0)
    if gpus >= 2:
        store = f"127.0.0.1:{free_port()}"
        ranks = [start(f"nccl-2rank-{r}", ["bench", "native", "--sections", "nccl", "--device", "cuda", "--nccl-world-size", "2", "--nccl-rank", str(r),
                                          "--nccl-store", store, "--json", os.path.join(a.out, f"nccl-2rank-{r}.json")]) for r in range(2)]
        codes = [p.wait(600) for p in ranks]
        record("helper NCCL test, 2 ranks on 2 GPUs", all(c == 0 for c in codes), exit_codes=codes)
    else:
        record("helper NCCL test, 2 ranks on 2 GPUs", None, reason=f"{gpus} GPU visible: NCCL refuses two ranks on one GPU; needs a host with two or more")

    token_file = os.path.join(work, "group-token")
    with open(token_file, "w") as f:
        f.write("gpu-check-token\n")
    for name in sorted(os.listdir(a.fixtures)):
        if a.only and name not in a.only.split(","):
            continue
        fixture = os.path.join(a.fixtures, name)
        if not os.path.isfile(os.path.join(fixture, "reference.json")) or not os.path.isfile(os.path.join(fixture, "model.safetensors")):
            continue
        with open(os.path.join(fixture, "reference.json")) as f:
            reference = json.load(f)

        # NCCL transport, world size 1.
        port, grpc_port = free_port(), free_port()
        proc = start(f"{name}-nccl-world1", serve_args(fixture, port, grpc_port, "--expert-transport", "nccl", "--world-size", "1"))
        try:
            wait_ready(proc, port, f"{name}-nccl-world1")
            compare(f"{name}: serve --expert-transport nccl --world-size 1", port, name, reference)
        except Exception as e:
            record(f"{name}: serve --expert-transport nccl --world-size 1", False, error=str(e))
        finally:
            stop(proc)

        # Two gRPC ranks on the same GPU.
        expert = [free_port(), free_port()]
        peers = ",".join(f"127.0.0.1:{p}" for p in expert)
        ports = [(free_port(), free_port()) for _ in range(2)]
        group = ["--world-size", "2", "--peers", peers, "--expert-transport", "grpc", "--group-token-file", token_file]
        ranks = [start(f"{name}-grpc-rank{r}", serve_args(fixture, ports[r][0], ports[r][1], "--rank", str(r), "--expert-port", str(expert[r]), *group))
                 for r in (1, 0)]
        try:
            wait_ready(ranks[1], ports[0][0], f"{name}-grpc-rank0")
            compare(f"{name}: two gRPC ranks on one GPU", ports[0][0], name, reference)
        except Exception as e:
            record(f"{name}: two gRPC ranks on one GPU", False, error=str(e))
        finally:
            for p in ranks:
                stop(p)

        data_parallel_pair(f"{name}: two data-parallel gRPC ranks on one GPU", name, fixture, reference, "grpc", ["cuda", "cuda"])
        # bf16: each rank's share of the experts on the grouped GEMM, the picks held by the other rank sorted past
        # every group and zeroed (float32 takes the sorted path). Compared up to the first near-tie at bf16's resolution.
        bf16_check = f"{name}: two data-parallel gRPC ranks on one GPU in bf16 (grouped GEMM shards)"
        data_parallel_pair(bf16_check, name, fixture, reference, "grpc", ["cuda", "cuda"], "bfloat16",
                           per_rank=lambda r, port: compare(f"{bf16_check}, rank {r}", port, name, reference, near_tie=0.1))

        # Two NCCL ranks, one per GPU, under one pod's serve.
        check = f"{name}: serve --local-ranks 2 --expert-transport nccl (cuda:0, cuda:1)"
        if gpus < 2:
            record(check, None, reason=f"{gpus} GPU visible: NCCL refuses two ranks on one GPU")
            record(f"{name}: two data-parallel NCCL ranks in lockstep (cuda:0, cuda:1)", None, reason=f"{gpus} GPU visible: NCCL refuses two ranks on one GPU")
            record(f"{name}: data-parallel NCCL pair in bf16, captured decode steps against eager ones (cuda:0, cuda:1)", None,
                   reason=f"{gpus} GPU visible: NCCL refuses two ranks on one GPU")
            continue
        data_parallel_pair(f"{name}: two data-parallel NCCL ranks in lockstep (cuda:0, cuda:1)", name, fixture, reference, "nccl", ["cuda:0", "cuda:1"])
        graphs_against_eager(name, fixture, reference)
        http_base, grpc_base, expert_base = free_block(), free_block(), free_block()
        pod = start(f"{name}-nccl-local2", serve_args(fixture, http_base, grpc_base, "--local-ranks", "2", "--world-size", "2", "--rank", "0",
                                                        "--peers", f"127.0.0.1:{expert_base}", "--expert-port", str(expert_base),
                                                        "--expert-transport", "nccl", "--group-token-file", token_file))
        try:
            wait_ready(pod, http_base, f"{name}-nccl-local2")
            compare(check, http_base, name, reference)
        except Exception as e:
            record(check, False, error=str(e))
        finally:
            stop(pod, 120)
        nccl_rebalance(name, fixture, reference)
finally:
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)

sys.exit(0 if all(r["status"] != "fail" for r in results) else 1)
