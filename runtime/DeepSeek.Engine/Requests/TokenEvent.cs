namespace DeepSeek.Engine.Requests;

/// <summary>
/// One item of a request's output stream: plain values only, safe to hand to request handlers.
/// The last item of a stream has <see cref="FinishReason"/> and <see cref="Usage"/> set; it may carry
/// no token (cancellation, or text held back at a stop string being released).
/// </summary>
public sealed record TokenEvent
{
    /// <summary>Null on a final event without a new token.</summary>
    public int? TokenId { get; init; }

    /// <summary>Text that became final with this token (may be empty while bytes or a possible stop string are held back).</summary>
    public string TextDelta { get; init; } = "";

    public SampledLogprobs? Logprobs { get; init; }

    public FinishReason? FinishReason { get; init; }

    public UsageInfo? Usage { get; init; }

    /// <summary>For <see cref="Requests.FinishReason.Error"/>: what went wrong.</summary>
    public string? ErrorMessage { get; init; }

    /// <summary>
    /// For <see cref="Requests.FinishReason.Error"/> (and cancellation): the stable reason, one of
    /// <c>Telemetry.FailureReasons</c> (<c>model_step</c>, <c>output</c>, <c>engine_failed</c>, ...),
    /// the same value the failure metric counts.
    /// </summary>
    public string? FailureReason { get; init; }

    /// <summary>For a failure caused by the request itself (an <see cref="InvalidRequestException"/> raised while it ran): the field at fault.</summary>
    public string? ErrorParam { get; init; }
}
