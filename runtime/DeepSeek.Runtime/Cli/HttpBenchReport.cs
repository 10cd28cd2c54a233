using DeepSeek.Runtime.Bench;

namespace DeepSeek.Runtime.Cli;

/// <summary>What <c>bench --url … --json</c> writes: the run's settings and one row per concurrency level.</summary>
public sealed record HttpBenchReport(
    string Url,
    string Model,
    int PromptTokens,
    int OutputTokens,
    int RequestsPerClient,
    int PromptIdBound,
    IReadOnlyList<HttpBenchResult> Rows);
