using DeepSeek.Engine;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Structured;
using DeepSeek.Model.Lora;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Runtime.Serving;

/// <summary>
/// What the HTTP and gRPC faces need from the engine, in the engine's own types: model facts, the
/// tokenizer, admission of generation requests (an engine <see cref="GenerationHandle"/> whose
/// <see cref="TokenEvent"/>s the faces write out directly), a cheap load snapshot and embeddings.
/// No tensor reaches a request handler.
/// </summary>
/// <remarks>
/// Requests are validated before they are submitted (<see cref="ModelDescription.Validator"/>, which
/// throws the engine's <see cref="InvalidRequestException"/>); admission failures are thrown
/// synchronously from <see cref="Submit"/> as <c>EngineOverloadedException</c> or <c>EngineDrainingException</c>. Once admitted, a request's events always end with one carrying a
/// <see cref="FinishReason"/> (cancelled when its token was cancelled), after which the channel completes.
/// </remarks>
public interface IInferenceBackend
{
    ModelDescription Model { get; }

    /// <summary>Loads and runs one warm-up step; the host reports ready only after this completes.</summary>
    Task WarmUpAsync(CancellationToken cancellationToken);

    /// <summary>Text as the tokenizer encodes it, special-token text included (a raw prompt is the caller's to shape).</summary>
    int[] Encode(string text, bool addSpecialTokens);

    /// <summary>Ids the tokenizer does not know decode to nothing.</summary>
    string Decode(IReadOnlyList<int> tokenIds, bool skipSpecialTokens);

    /// <summary>The model's chat template applied to <paramref name="messages"/> with the functions offered (<paramref name="tools"/>, often none), ending where the assistant writes next; content is encoded as plain text.</summary>
    int[] ApplyChatTemplate(IReadOnlyList<ChatMessage> messages, IReadOnlyList<ChatTool> tools);

    /// <summary>Queues a request <see cref="ModelDescription.Validator"/> accepted; <paramref name="cancellationToken"/> (the client going away) frees its slot.</summary>
    GenerationHandle Submit(ValidatedRequest request, CancellationToken cancellationToken);

    /// <summary>Answered without waiting on the engine thread: the autoscaler and probes poll it. Before the engine runs, all zeros.</summary>
    EngineLoad GetLoad();

    /// <summary>One L2-normalised vector per input (see docs/api.md for how it is derived).</summary>
    Task<float[][]> EmbedAsync(IReadOnlyList<IReadOnlyList<int>> inputs, CancellationToken cancellationToken);
}

/// <summary>Facts about the served model and the server's bounds that the APIs report and validate against.</summary>
public sealed record ModelDescription
{
    public required string ServedName { get; init; }
    public required string Architecture { get; init; }
    public required int VocabSize { get; init; }
    public required int MaxContextLength { get; init; }
    public int EmbeddingDimensions { get; init; }
    public int NumLayers { get; init; }
    public int NumRoutedExperts { get; init; }
    public int ExpertsPerToken { get; init; }
    public string DType { get; init; } = "";
    public string Device { get; init; } = "";
    public long ParameterCount { get; init; }
    /// <summary>Unix seconds, reported as <c>created</c> by <c>/v1/models</c>.</summary>
    public long CreatedUnixSeconds { get; init; }
    /// <summary>The most UTF-8 bytes one token stands for: the cheap length bound checked before tokenizing.</summary>
    public int MaxTokenBytes { get; init; } = 1;
    public int MaxRunningRequests { get; init; }
    public int MaxQueuedRequests { get; init; }

    /// <summary>The LoRA adapters served beside the model (a request's <c>model</c> may name one); null: none are.</summary>
    public LoraAdapterSet? Adapters { get; init; }

    /// <summary>Response formats compiled over the tokenizer (<c>response_format</c>, gRPC <c>json_schema</c>); null without a tokenizer.</summary>
    public StructuredOutputs? StructuredOutputs { get; init; }

    /// <summary>
    /// Whether <paramref name="name"/> is served: the model itself (<paramref name="adapter"/> null) or one of
    /// its LoRA adapters. Both faces pick a request's adapter here.
    /// </summary>
    public bool Serves(string name, out LoraAdapter? adapter)
    {
        adapter = name == ServedName ? null : Adapters?.Find(name);
        return name == ServedName || adapter is not null;
    }

    /// <summary>What a request may name, for messages: the model, then its adapters.</summary>
    public string ServedNames() => Adapters is { } set && set.All is { Count: > 0 } all
        ? $"'{ServedName}' and the LoRA adapters {string.Join(", ", all.Select(a => $"'{a.Name}'"))}"
        : $"'{ServedName}'";

    /// <summary>The engine's request rules over these facts: what both faces validate with.</summary>
    public RequestValidator Validator => new(VocabSize, MaxContextLength, MaxTokenBytes, MaxQueuedRequests, StructuredOutputs);
}
