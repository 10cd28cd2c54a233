namespace DeepSeek.Runtime.Bench;

/// <summary>
/// One row of the HTTP bench table: one concurrency level of closed-loop clients. Rates count
/// successful requests and their output tokens over the level's wall time; percentiles are over
/// successful requests only; failures are counted by class.
/// </summary>
public sealed record HttpBenchResult(
    int Concurrency,
    int Requests,
    int Succeeded,
    IReadOnlyDictionary<string, int> Failures,
    double ElapsedSeconds,
    double RequestsPerSecond,
    double OutputTokensPerSecond,
    double TtftP50Ms,
    double TtftP90Ms,
    double TtftP99Ms,
    double ItlP50Ms,
    double ItlP90Ms,
    double ItlP99Ms,
    double E2eP50Ms,
    double E2eP90Ms,
    double E2eP99Ms)
{
    public static HttpBenchResult From(HttpLevelRun run)
    {
        var ok = run.Requests.Where(r => r.Succeeded).ToArray();
        var failures = run.Requests.Where(r => !r.Succeeded)
            .GroupBy(r => r.Failure!)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var seconds = run.Elapsed.TotalSeconds;
        var ttft = ok.Select(r => r.TtftMs).ToArray();
        var itl = ok.SelectMany(r => r.ItlMs).ToArray();
        var e2e = ok.Select(r => r.E2eMs).ToArray();
        static double P(double[] values, double q) => EngineBenchmark.Percentile(values, q);
        return new HttpBenchResult(
            run.Concurrency, run.Requests.Count, ok.Length, failures, seconds,
            seconds > 0 ? ok.Length / seconds : 0,
            seconds > 0 ? ok.Sum(r => r.OutputTokens) / seconds : 0,
            P(ttft, 0.5), P(ttft, 0.9), P(ttft, 0.99),
            P(itl, 0.5), P(itl, 0.9), P(itl, 0.99),
            P(e2e, 0.5), P(e2e, 0.9), P(e2e, 0.99));
    }
}
