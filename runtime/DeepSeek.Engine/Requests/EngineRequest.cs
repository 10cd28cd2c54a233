using DeepSeek.Engine.KvCache;
using DeepSeek.Model.Lora;

namespace DeepSeek.Engine.Requests;

/// <summary>
/// One generation request as the scheduler sees it: its tokens (prompt then output), how many of them
/// have their KV latents in the cache, and the blocks holding them. Owned by the engine thread.
/// </summary>
public sealed class EngineRequest
{
    private readonly int[] _promptTokenIds;
    private readonly List<int> _outputTokenIds = [];

    public EngineRequest(string id, IReadOnlyList<int> promptTokenIds, SamplingParameters sampling, LoraAdapter? adapter = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(promptTokenIds);
        ArgumentNullException.ThrowIfNull(sampling);
        // RequestValidator refuses empty prompts; one here is a bug in the caller.
        ArgumentOutOfRangeException.ThrowIfZero(promptTokenIds.Count);
        Id = id;
        _promptTokenIds = [.. promptTokenIds];
        Sampling = sampling;
        Adapter = adapter;
        PrefixRoot = adapter is null ? null : BlockHash.ForAdapter(adapter.Id);
    }

    /// <summary>The LoRA adapter applied to this request's tokens; null: the base model.</summary>
    public LoraAdapter? Adapter { get; }

    /// <summary>What its metrics are labelled with: the adapter's name, or null for the base model's.</summary>
    public string? ModelLabel => Adapter?.Name;

    public string Id { get; }

    public IReadOnlyList<int> PromptTokenIds => _promptTokenIds;

    public SamplingParameters Sampling { get; }

    public RequestState State { get; internal set; } = RequestState.Waiting;

    /// <summary>Tokens whose KV latents are written (or reused from the prefix cache).</summary>
    public int NumComputedTokens { get; internal set; }

    public IReadOnlyList<int> OutputTokenIds => _outputTokenIds;

    /// <summary>Prompt tokens served from the prefix cache when the request was first admitted.</summary>
    public int NumCachedPromptTokens { get; internal set; }

    public int NumPreemptions { get; internal set; }

    public FinishReason? FinishReason { get; internal set; }

    public int NumPromptTokens => _promptTokenIds.Length;

    /// <summary>Prompt plus output tokens so far.</summary>
    public int NumTokens => _promptTokenIds.Length + _outputTokenIds.Count;

    public int TokenAt(int position) =>
        position < _promptTokenIds.Length ? _promptTokenIds[position] : _outputTokenIds[position - _promptTokenIds.Length];

    public BlockTable BlockTable { get; } = new();

    /// <summary>Hashes of this request's full blocks, in order (a chain: each covers every token before it).</summary>
    internal List<BlockHash> BlockHashes { get; } = [];

    /// <summary>What its first block's hash chains from: its adapter's root, so adapters never share prefix blocks.</summary>
    internal BlockHash? PrefixRoot { get; }

    /// <summary>How many leading blocks of <see cref="BlockTable"/> were offered to the prefix cache already.</summary>
    internal int NumRegisteredBlocks { get; set; }

    /// <summary>Order of the latest admission: the highest is preempted first.</summary>
    internal long AdmissionOrder { get; set; }

    internal bool CancelRequested { get; set; }

    internal void AppendOutputToken(int tokenId) => _outputTokenIds.Add(tokenId);

    public UsageInfo Usage => new(NumPromptTokens, _outputTokenIds.Count, NumCachedPromptTokens);
}
