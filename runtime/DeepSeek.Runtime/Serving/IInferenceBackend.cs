namespace DeepSeek.Runtime.Serving;

/// <summary>
/// What the HTTP and gRPC faces need from the engine: model facts, the tokenizer, admission of
/// generation requests, a cheap load snapshot and embeddings. Everything crossing this boundary is
/// plain values (ids, strings, arrays): no tensor reaches a request handler.
/// </summary>
/// <remarks>
/// Admission failures are thrown synchronously from <see cref="Submit"/> as
/// <see cref="OverloadedException"/>, <see cref="UnavailableException"/> or
/// <see cref="InvalidRequestException"/>. Once admitted, a request always ends with one
/// <see cref="GenerationFinished"/> event (finish reason <see cref="FinishReason.Cancelled"/> when
/// its token was cancelled), after which the channel completes.
/// </remarks>
public interface IInferenceBackend
{
    ModelDescription Model { get; }

    /// <summary>Loads and runs one warm-up step; the host reports ready only after this completes.</summary>
    Task WarmUpAsync(CancellationToken cancellationToken);

    int[] Encode(string text, bool addSpecialTokens);

    string Decode(IReadOnlyList<int> tokenIds, bool skipSpecialTokens);

    /// <summary>The model's chat template applied to <paramref name="messages"/>, ending with the assistant turn's opening.</summary>
    int[] ApplyChatTemplate(IReadOnlyList<ChatMessage> messages);

    /// <summary>Queues a request; <paramref name="cancellationToken"/> (the client going away) frees its slot.</summary>
    GenerationHandle Submit(GenerationRequest request, CancellationToken cancellationToken);

    /// <summary>Answered without waiting on the engine thread: the autoscaler and probes poll it.</summary>
    LoadSnapshot GetLoad();

    /// <summary>One L2-normalised vector per input (see docs/api.md for how it is derived).</summary>
    Task<float[][]> EmbedAsync(IReadOnlyList<int[]> inputs, CancellationToken cancellationToken);
}
