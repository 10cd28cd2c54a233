namespace DeepSeek.Runtime.Bench;

/// <summary>Every request of one concurrency level and the wall time from the first send to the last answer.</summary>
public sealed record HttpLevelRun(int Concurrency, IReadOnlyList<HttpRequestOutcome> Requests, TimeSpan Elapsed);
