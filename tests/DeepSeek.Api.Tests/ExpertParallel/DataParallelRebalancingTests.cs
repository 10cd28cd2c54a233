using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Api.Tests.Serve;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>Three data-parallel ranks over gRPC that rebalance every 2 s, with 4 redundant copies per layer.</summary>
public sealed class RebalancingDataParallelGroup() : DataParallelGroup(["--redundant-experts", "4", "--rebalance-interval-seconds", "2"]);

/// <summary>
/// Rebalancing with data-parallel attention: rank 0 sums the picks every rank's own forwards routed,
/// decides, and every rank prepares and then switches between its own steps, answering its peers by
/// whichever placement they routed by until all have switched. Skewed load sent only to ranks 1 and 2
/// moves the experts (so rank 0 heard it from them), and requests in flight on those ranks across the
/// switches keep exactly the reference tokens.
/// </summary>
public sealed partial class DataParallelRebalancingTests(RebalancingDataParallelGroup group) : IClassFixture<RebalancingDataParallelGroup>
{
    /// <summary>Token 4 repeated routes (on this fixture) every pick of both MoE layers to experts 4 and 7 (see ExpertGroupTests).</summary>
    private static int[] SkewedPrompt(int firstToken) => [firstToken, .. Enumerable.Repeat(4, 23)];

    [Fact]
    public async Task Load_seen_by_other_ranks_moves_the_experts_of_every_rank_without_changing_a_token()
    {
        var prompts = await ReferencePrompts.LoadAsync();
        Assert.All(group.Ranks, rank => Assert.Equal(1, PlacementVersion(rank!)));
        var busy = group.Ranks.Skip(1).Select(r => r!).ToList();

        // Skewed load and the reference prompts on ranks 1 and 2 only, until rank 0 has switched the group at
        // least once with reference requests in flight across a switch.
        using var stop = new CancellationTokenSource();
        var spans = new ConcurrentBag<(long Before, long After)>();
        var skewed = Enumerable.Range(0, 4).Select(stream => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
                await ServeClients.GreedyCompletionAsync(busy[stream % 2], SkewedPrompt(20 + ((stream * 50) + i) % 200), 2);
        })).ToList();
        var reference = busy.Select(rank => Task.Run(async () =>
        {
            var failures = new List<string>();
            while (!stop.IsCancellationRequested)
                foreach (var (input, expected) in prompts)
                {
                    var before = PlacementVersion(rank);
                    var actual = (await ServeClients.GreedyCompletionAsync(rank, input, expected.Length)).Ids;
                    spans.Add((before, PlacementVersion(rank)));
                    if (!expected.SequenceEqual(actual)) failures.Add($"{rank.Host}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}] (placement {before} when sent)");
                }
            return failures;
        })).ToList();
        try
        {
            await Eventually.HoldsAsync(async () => await RebalancesAsync(group.Ranks[0]!, "switched") >= 1 && spans.Any(s => s.After > s.Before),
                TimeSpan.FromSeconds(180), "a rebalance with reference requests in flight across it");
        }
        finally
        {
            await stop.CancelAsync();
        }
        await Task.WhenAll(skewed);
        var wrong = (await Task.WhenAll(reference)).SelectMany(f => f).ToList();
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {spans.Count} reference requests changed tokens across rebalancing: {string.Join("; ", wrong.Take(5))}\nrank 0 log:\n{group.Ranks[0]!.Log}");

        // Settled: every rank on one placement, together holding every expert plus the 4 copies per layer,
        // each having freed the experts of the placement before (its parameters are what it holds now).
        long version = 0;
        var held = new Dictionary<string, int>();
        await Eventually.HoldsAsync(async () =>
        {
            version = PlacementVersion(group.Ranks[0]!);
            held.Clear();
            foreach (var rank in group.Ranks)
            {
                var metrics = await rank!.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
                if (PlacementVersion(metrics) != version) return false;
                foreach (Match m in LocalExperts().Matches(metrics))
                    held[m.Groups["layer"].Value] = held.GetValueOrDefault(m.Groups["layer"].Value) + int.Parse(m.Groups["count"].Value, CultureInfo.InvariantCulture);
            }
            return PlacementVersion(group.Ranks[0]!) == version;
        }, TimeSpan.FromSeconds(60), "every rank on rank 0's placement");
        Assert.True(version >= 2, $"placement version {version}");
        Assert.Equal(["1", "2"], held.Keys.Order());
        Assert.All(held.Values, total => Assert.Equal(12, total));
        Assert.Equal(0, await RebalancesAsync(group.Ranks[0]!, "failed"));
        Assert.Matches(Switched(), group.Ranks[0]!.Log);

        // Every rank, rank 0 included, serves the reference tokens on the new placement, all at once.
        var requests = group.Ranks.SelectMany(rank => prompts.Select(async p => (rank!.Host, p.Expected, Actual: (await ServeClients.GreedyCompletionAsync(rank, p.Input, p.Expected.Length)).Ids)));
        foreach (var (host, expected, actual) in await Task.WhenAll(requests))
            Assert.True(expected.SequenceEqual(actual), $"on {host} after rebalancing: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
    }

    private static long PlacementVersion(ServeProcess rank) => PlacementVersion(rank.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative)).GetAwaiter().GetResult());

    private static long PlacementVersion(string metrics) => long.Parse(PlacementVersionSeries().Match(metrics).Groups["version"].Value, CultureInfo.InvariantCulture);

    private static async Task<long> RebalancesAsync(ServeProcess server, string result) =>
        Rebalances().Matches(await server.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative))).Where(m => m.Groups["result"].Value == result)
            .Sum(m => long.Parse(m.Groups["count"].Value, CultureInfo.InvariantCulture));

    [GeneratedRegex("""^deepseek_ep_local_experts\{[^}]*layer="(?<layer>\d+)"[^}]*\} (?<count>\d+)""", RegexOptions.Multiline)]
    private static partial Regex LocalExperts();

    [GeneratedRegex("""^deepseek_ep_placement_version\{[^}]*\} (?<version>\d+)""", RegexOptions.Multiline)]
    private static partial Regex PlacementVersionSeries();

    [GeneratedRegex("""^deepseek_ep_rebalances_total\{[^}]*result="(?<result>\w+)"[^}]*\} (?<count>\d+)""", RegexOptions.Multiline)]
    private static partial Regex Rebalances();

    [GeneratedRegex(@"Expert placement 1 → 2: layer \d: imbalance")]
    private static partial Regex Switched();
}
