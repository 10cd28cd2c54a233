using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Text;

/// <summary>
/// One request's output side: sampled tokens in, <see cref="TokenEvent"/>s out, with text from the
/// <see cref="IncrementalDetokenizer"/> filtered by the <see cref="StopStringMatcher"/>. When a stop
/// string shows up the event finishes the request with <see cref="FinishReason.Stop"/> and
/// <see cref="StopStringHit"/> tells the engine to finish it in the scheduler too. The text of a token
/// that stopped the request (end-of-sequence, a stop token id) is not part of the output.
/// </summary>
public sealed class OutputTextAssembler
{
    private readonly IncrementalDetokenizer _detokenizer;
    private readonly StopStringMatcher _stops;

    public OutputTextAssembler(ITokenDecoder decoder, SamplingParameters sampling, IReadOnlyList<int> promptTokenIds)
    {
        ArgumentNullException.ThrowIfNull(sampling);
        _detokenizer = new IncrementalDetokenizer(decoder, promptTokenIds);
        _stops = new StopStringMatcher(sampling.Stop);
    }

    public bool StopStringHit => _stops.Stopped;

    /// <summary>The event for a newly generated token; <paramref name="finish"/> and <paramref name="usage"/> when the scheduler finished the request with it.</summary>
    public TokenEvent OnToken(int tokenId, SampledLogprobs? logprobs, FinishReason? finish, UsageInfo? usage)
    {
        if (_stops.Stopped) throw new InvalidOperationException("The request already stopped at a stop string.");
        var stoppedByToken = finish == FinishReason.Stop;
        var delta = stoppedByToken ? "" : _detokenizer.Append(tokenId);
        if (finish is not null) delta += _detokenizer.Flush();
        var text = _stops.Append(delta);
        if (_stops.Stopped) finish = FinishReason.Stop;
        else if (finish is not null) text += _stops.Flush();
        return new TokenEvent
        {
            TokenId = tokenId,
            TextDelta = text,
            Logprobs = logprobs,
            FinishReason = finish,
            Usage = finish is null ? null : usage,
        };
    }

    /// <summary>The closing event of a request that ended without a new token (cancelled, failed).</summary>
    public static TokenEvent OnEnd(FinishReason finish, UsageInfo usage, string? errorMessage = null, string? failureReason = null) =>
        new() { FinishReason = finish, Usage = usage, ErrorMessage = errorMessage, FailureReason = failureReason };
}
