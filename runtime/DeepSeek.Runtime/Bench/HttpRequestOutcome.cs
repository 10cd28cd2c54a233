namespace DeepSeek.Runtime.Bench;

/// <summary>
/// One streamed completion as the client saw it. <paramref name="Failure"/> is null for a success,
/// else a short class of failure ("HTTP 429", "stream error", "connection", "length", "no [DONE]")
/// and <paramref name="Detail"/> says more. Times are milliseconds from the moment the request was sent.
/// </summary>
public sealed record HttpRequestOutcome(
    string? Failure,
    string? Detail,
    double TtftMs,
    IReadOnlyList<double> ItlMs,
    double E2eMs,
    int OutputTokens,
    int? UsageCompletionTokens)
{
    public bool Succeeded => Failure is null;
}

/// <summary>Every request of one concurrency level and the wall time from the first send to the last answer.</summary>
public sealed record HttpLevelRun(int Concurrency, IReadOnlyList<HttpRequestOutcome> Requests, TimeSpan Elapsed);
