using DeepSeek.Engine.Execution;
using DeepSeek.Engine.KvCache;
using DeepSeek.Engine.Requests;
using DeepSeek.Model.Lora;

namespace DeepSeek.Engine.Scheduling;

/// <summary>
/// Continuous batching in two calls, as vLLM v1: <see cref="Schedule"/> plans one forward pass (how
/// many tokens of which requests), <see cref="Update"/> takes the runner's sampled tokens back. Each step first
/// gives every decoding request its token so streams keep flowing, then continues chunked prefills
/// of running requests, then admits waiting requests in arrival order, all under
/// <see cref="EngineOptions.MaxBatchTokens"/> and <see cref="EngineOptions.MaxRunningRequests"/>.
/// When blocks run out the most recently admitted running request is preempted: its blocks go back
/// to the pool and it waits at the front of the queue to be recomputed (its full blocks usually
/// come back from the prefix cache). Single-threaded: the engine thread owns it.
/// </summary>
public sealed class Scheduler
{
    private readonly LinkedList<EngineRequest> _waiting = new();
    private readonly List<EngineRequest> _running = [];
    private readonly Dictionary<string, EngineRequest> _requests = [];
    private readonly HashSet<int> _eosTokenIds;
    private readonly List<string> _finishedSinceLastStep = [];
    private long _admissions;

    /// <param name="options">Batch and running limits, prefix caching; checked by <c>InferenceEngine.StartAsync</c> before the core builds its scheduler.</param>
    /// <param name="maxContextTokens">Prompt plus output never exceed it (<see cref="EngineOptions.ContextTokens"/>).</param>
    /// <param name="eosTokenIds">The model's end-of-sequence ids (from generation_config.json).</param>
    /// <param name="pool">The KV blocks this scheduler hands out.</param>
    public Scheduler(EngineOptions options, int maxContextTokens, IReadOnlyList<int> eosTokenIds, KvBlockPool pool)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(eosTokenIds);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxContextTokens, 2);
        Options = options;
        MaxContextTokens = maxContextTokens;
        Pool = pool;
        PrefixCache = new PrefixCache(pool);
        _eosTokenIds = [.. eosTokenIds];
    }

    public EngineOptions Options { get; }

    public int MaxContextTokens { get; }

    public KvBlockPool Pool { get; }

    public PrefixCache PrefixCache { get; }

    /// <summary>Waiting for a first step or for recompute after preemption.</summary>
    public int NumWaiting => _waiting.Count;

    public int NumRunning => _running.Count;

    public bool HasUnfinishedRequests => _requests.Count > 0;

    public IReadOnlyCollection<EngineRequest> Running => _running;

    /// <summary>Queues a validated request (admission control is the caller's, before this).</summary>
    public void Add(EngineRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.State != RequestState.Waiting || request.NumComputedTokens != 0)
            throw new InvalidOperationException($"Request {request.Id} was scheduled before; create a new request.");
        // A request that cannot fit the whole pool alone would preempt itself forever.
        var longest = Math.Min(MaxContextTokens, request.NumPromptTokens + (request.Sampling.MaxTokens ?? MaxContextTokens));
        if (BlockTable.BlocksFor(longest, Pool.BlockSize) > Pool.NumBlocks)
            throw new InvalidRequestException("max_tokens",
                $"The request may grow to {longest} tokens, but the KV cache holds {Pool.CapacityTokens}. Lower max_tokens, or give the cache more blocks (--kv-cache-blocks).",
                "context_length_exceeded");
        if (!_requests.TryAdd(request.Id, request))
            throw new InvalidOperationException($"A request with id {request.Id} is already in the engine.");
        _waiting.AddLast(request);
    }

    /// <summary>Marks a request cancelled; its blocks are freed at the start of the next step. False when unknown or finished.</summary>
    public bool Cancel(string requestId)
    {
        if (!_requests.TryGetValue(requestId, out var request)) return false;
        request.CancelRequested = true;
        return true;
    }

    /// <summary>Finishes a request now (a stop string found in its text, a failure); frees its blocks.</summary>
    public bool Finish(string requestId, FinishReason reason)
    {
        if (!_requests.TryGetValue(requestId, out var request)) return false;
        FinishNow(request, reason);
        return true;
    }

    public SchedulerStep Schedule()
    {
        var cancelled = new List<EngineRequest>();
        foreach (var request in _requests.Values.Where(r => r.CancelRequested).ToList())
        {
            FinishNow(request, FinishReason.Cancelled);
            cancelled.Add(request);
        }

        var budget = Options.MaxBatchTokens;
        var scheduled = new List<ScheduledSequence>();
        var scheduledIds = new HashSet<EngineRequest>();
        var preempted = new List<EngineRequest>();

        // Decodes first: one token each keeps every stream moving while long prompts prefill in chunks.
        var decodesFirst = _running.Where(r => r.NumTokens - r.NumComputedTokens == 1)
            .Concat(_running.Where(r => r.NumTokens - r.NumComputedTokens > 1))
            .ToList();
        foreach (var request in decodesFirst)
        {
            if (budget == 0) break;
            if (request.State != RequestState.Running) continue; // preempted earlier in this step
            var numNew = Math.Min(request.NumTokens - request.NumComputedTokens, budget);
            if (numNew <= 0) continue;
            if (!EnsureBlocks(request, numNew, scheduledIds, preempted)) continue;
            scheduled.Add(Sequence(request, numNew));
            scheduledIds.Add(request);
            budget -= numNew;
        }

        // Admission waits while memory is tight: a step that had to preempt admits nobody. A request whose
        // LoRA adapter would make the running set name more than --max-loras adapters waits for its turn
        // while the requests behind it may go (vLLM's rule), so every step fits the adapter slots.
        HashSet<LoraAdapter>? adapters = null;
        // The running set's adapters, gathered only when a waiting request has one (a base-only step never does).
        HashSet<LoraAdapter> RunningAdapters() => adapters ??= _running.Select(r => r.Adapter).OfType<LoraAdapter>().ToHashSet();
        var node = _waiting.First;
        while (preempted.Count == 0 && budget > 0 && _running.Count < Options.MaxRunningRequests && node is not null)
        {
            var request = node.Value;
            var next = node.Next;
            if (request.Adapter is { } adapter && !RunningAdapters().Contains(adapter) && RunningAdapters().Count >= Options.MaxLoras)
            {
                node = next;
                continue;
            }
            if (!TryAdmit(request, budget, out var numNew)) break;
            _waiting.Remove(node);
            if (request.Adapter is { } admitted) RunningAdapters().Add(admitted);
            scheduled.Add(Sequence(request, numNew));
            scheduledIds.Add(request);
            budget -= numNew;
            node = next;
        }

        // Finished ids ride on the next step that runs, the first the runner sees.
        string[] finished = [];
        if (scheduled.Count > 0)
        {
            finished = [.. _finishedSinceLastStep];
            _finishedSinceLastStep.Clear();
        }
        return new SchedulerStep(scheduled, preempted, cancelled, finished);
    }

    /// <summary>
    /// Takes the step's results: the runner's sampled token for every sequence of
    /// <paramref name="step"/> that samples one. Appends tokens, applies stop conditions, frees
    /// finished requests' blocks and offers full blocks to the prefix cache. Requests finished in
    /// between (a stop string, a failure) are skipped.
    /// </summary>
    public IReadOnlyList<RequestProgress> Update(SchedulerStep step, ModelRunnerOutput output)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(output);

        var progress = new List<RequestProgress>(step.Sequences.Count);
        foreach (var seq in step.Sequences)
        {
            var request = seq.Request;
            if (request.State != RequestState.Running) continue;
            request.NumComputedTokens = seq.StartPosition + seq.NumTokens;
            if (Options.EnablePrefixCaching) PrefixCache.CacheComputedBlocks(request);

            if (request.CancelRequested)
            {
                FinishNow(request, FinishReason.Cancelled);
                progress.Add(new RequestProgress(request, null, FinishReason.Cancelled));
                continue;
            }
            if (!seq.SamplesToken) continue;
            if (!output.Sampled.TryGetValue(request.Id, out var sampled))
                throw new InvalidOperationException($"The runner returned no token for request {request.Id}, which samples in this step.");

            request.AppendOutputToken(sampled.TokenId);
            var reason = StopReason(request, sampled.TokenId);
            if (reason is { } r) FinishNow(request, r);
            progress.Add(new RequestProgress(request, sampled.TokenId, reason, sampled.Logprobs));
        }
        return progress;
    }

    /// <summary>vLLM's order: end-of-sequence or stop token (once min_tokens are out), then length.</summary>
    private FinishReason? StopReason(EngineRequest request, int token)
    {
        var sampling = request.Sampling;
        var generated = request.OutputTokenIds.Count;
        if (generated >= sampling.MinTokens)
        {
            if (!sampling.IgnoreEos && _eosTokenIds.Contains(token)) return FinishReason.Stop;
            if (sampling.StopTokenIds.Contains(token)) return FinishReason.Stop;
        }
        if (sampling.MaxTokens is { } max && generated >= max) return FinishReason.Length;
        if (request.NumTokens >= MaxContextTokens) return FinishReason.Length;
        return null;
    }

    private static ScheduledSequence Sequence(EngineRequest request, int numNew) =>
        new(request, request.NumComputedTokens, numNew, request.NumComputedTokens + numNew == request.NumTokens);

    /// <summary>Grows a running request's block table for <paramref name="numNew"/> more tokens, preempting others if needed. False if it was preempted itself.</summary>
    private bool EnsureBlocks(EngineRequest request, int numNew, HashSet<EngineRequest> scheduled, List<EngineRequest> preempted)
    {
        var needed = BlockTable.BlocksFor(request.NumComputedTokens + numNew, Pool.BlockSize) - request.BlockTable.Count;
        while (needed > Pool.NumFreeBlocks)
        {
            var victim = _running.Where(r => !scheduled.Contains(r)).MaxBy(r => r.AdmissionOrder)!;
            Preempt(victim);
            preempted.Add(victim);
            if (victim == request) return false;
        }
        AllocateInto(request, needed);
        return true;
    }

    private bool TryAdmit(EngineRequest request, int budget, out int numNew)
    {
        var hit = PrefixCacheHit.None;
        if (Options.EnablePrefixCaching)
        {
            PrefixCache.ExtendBlockHashes(request.TokenAt, request.NumTokens, Pool.BlockSize, request.BlockHashes, request.PrefixRoot);
            // At least the last token is computed: its logits give the next token.
            hit = PrefixCache.FindLongestPrefix(request.BlockHashes, request.NumTokens - 1);
        }
        numNew = Math.Min(request.NumTokens - hit.NumTokens, budget);
        var needed = BlockTable.BlocksFor(hit.NumTokens + numNew, Pool.BlockSize) - hit.BlockIds.Count;
        var hitsNowFree = hit.BlockIds.Count(b => Pool.RefCount(b) == 0);
        if (needed > Pool.NumFreeBlocks - hitsNowFree) return false;

        foreach (var block in hit.BlockIds)
        {
            Pool.Retain(block);
            request.BlockTable.Add(block);
        }
        request.NumRegisteredBlocks = hit.BlockIds.Count;
        AllocateInto(request, needed);
        request.NumComputedTokens = hit.NumTokens;
        if (request.State == RequestState.Waiting)
        {
            request.NumCachedPromptTokens = Math.Min(hit.NumTokens, request.NumPromptTokens);
            if (Options.EnablePrefixCaching) PrefixCache.RecordQuery(request.NumPromptTokens, request.NumCachedPromptTokens);
        }
        request.State = RequestState.Running;
        request.AdmissionOrder = ++_admissions;
        _running.Add(request);
        return true;
    }

    private void AllocateInto(EngineRequest request, int count)
    {
        if (count <= 0) return;
        var blocks = new List<int>(count);
        if (!Pool.TryAllocate(count, blocks))
            throw new InvalidOperationException($"Allocation of {count} blocks failed after the free count said it would fit.");
        foreach (var block in blocks) request.BlockTable.Add(block);
    }

    private void Preempt(EngineRequest request)
    {
        _running.Remove(request);
        ReleaseBlocks(request);
        request.NumComputedTokens = 0;
        request.State = RequestState.Preempted;
        request.NumPreemptions++;
        _waiting.AddFirst(request);
    }

    private void FinishNow(EngineRequest request, FinishReason reason)
    {
        if (request.State == RequestState.Running) _running.Remove(request);
        else _waiting.Remove(request);
        ReleaseBlocks(request);
        request.State = RequestState.Finished;
        request.FinishReason = reason;
        _requests.Remove(request.Id);
        _finishedSinceLastStep.Add(request.Id);
    }

    /// <summary>Tail blocks first, so they sit ahead of the prefix blocks in the eviction order.</summary>
    private void ReleaseBlocks(EngineRequest request)
    {
        var blocks = request.BlockTable.BlockIds;
        for (var i = blocks.Count - 1; i >= 0; i--) Pool.Release(blocks[i]);
        request.BlockTable.Clear();
        request.NumRegisteredBlocks = 0;
    }
}
