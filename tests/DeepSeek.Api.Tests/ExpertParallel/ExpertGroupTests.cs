using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Api.Tests.Serve;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>
/// One replica as an expert-parallel group of three real <c>serve</c> processes on 127.0.0.2–4 over
/// the gRPC transport, each rank holding a shard of the tiny model's experts: the leader answers
/// with exactly the unsharded reference tokens, ranks refuse calls without the group token, a
/// killed rank turns the leader not ready (503 naming it) until it is back, and rebalancing under
/// skewed load lowers the leader's imbalance ratio without changing a token.
/// </summary>
public sealed partial class ExpertGroupTests : IAsyncLifetime
{
    private const string Token = "group-token-for-tests";
    private static readonly string[] Hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    private static string FixtureDir => ReferencePrompts.FixtureDir;

    private readonly int _expertPort = FreePort.Next();
    private readonly string _tokenFile = Path.GetTempFileName();
    private readonly ServeProcess?[] _ranks = new ServeProcess?[3];
    private string[] _groupArgs = [];
    private readonly string[][] _rankArgs = [[], [], []];
    private string? _modelCopy;

    private string Peers => string.Join(",", Hosts.Select(h => $"{h}:{_expertPort}"));

    public Task InitializeAsync() => File.WriteAllTextAsync(_tokenFile, Token + "\n");

    /// <summary>The three ranks, each with <paramref name="groupArgs"/> besides the group's own flags.</summary>
    private async Task StartGroupAsync(params string[] groupArgs)
    {
        _groupArgs = groupArgs;
        Task<ServeProcess>[] starting = [StartRankAsync(1), StartRankAsync(2)];
        try
        {
            await Task.WhenAll(starting);
        }
        catch
        {
            // One rank failed to start: the other may have, and no one else would stop it.
            foreach (var rank in starting.Where(t => t.IsCompletedSuccessfully)) await rank.Result.DisposeAsync();
            throw;
        }
        (_ranks[1], _ranks[2]) = (starting[0].Result, starting[1].Result);
        // The leader turns ready only once both ranks answer.
        _ranks[0] = await StartRankAsync(0);
    }

    private Task<ServeProcess> StartRankAsync(int rank) => ServeProcess.StartOnAsync(Hosts[rank],
        ["--rank", $"{rank}", "--world-size", "3", "--peers", Peers, "--expert-port", $"{_expertPort}",
        "--expert-transport", "grpc", "--group-token-file", _tokenFile, .. _groupArgs, .. _rankArgs[rank]]);

    private ServeProcess Leader => _ranks[0]!;

    [Fact]
    public async Task A_sharded_group_serves_the_reference_tokens_refuses_strangers_and_survives_a_lost_rank()
    {
        await StartGroupAsync();
        await AssertReferenceTokensAsync("with every rank up");

        // Each rank holds only a shard; together they hold every expert (8 per MoE layer, no copies).
        var held = new Dictionary<string, int>();
        foreach (var rank in _ranks)
        {
            var metrics = await rank!.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
            var layers = LocalExperts().Matches(metrics).ToDictionary(m => m.Groups["layer"].Value, m => int.Parse(m.Groups["count"].Value, CultureInfo.InvariantCulture));
            Assert.Equal(["1", "2"], layers.Keys.Order());
            Assert.All(layers.Values, count => Assert.InRange(count, 1, 7));
            foreach (var (layer, count) in layers) held[layer] = held.GetValueOrDefault(layer) + count;
            Assert.Contains($"deepseek_ep_rank{{", metrics, StringComparison.Ordinal);
        }
        Assert.All(held.Values, total => Assert.Equal(8, total));

        // A call without the group token, or with another one, is refused.
        using (var channel = GrpcChannel.ForAddress($"http://{Hosts[1]}:{_expertPort}"))
        {
            var client = new Experts.ExpertsClient(channel);
            var anonymous = await Assert.ThrowsAsync<RpcException>(async () => await client.StatusAsync(new RankStatusRequest()));
            Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
            var wrong = await Assert.ThrowsAsync<RpcException>(async () => await client.StatusAsync(new RankStatusRequest(), new Metadata { { "authorization", "Bearer not-the-token" } }));
            Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);
            var member = await client.StatusAsync(new RankStatusRequest(), new Metadata { { "authorization", $"Bearer {Token}" } });
            Assert.Equal((1, 3, true), (member.Rank, member.WorldSize, member.Ready));
        }

        // Rank 2 dies: the leader turns not ready and answers 503 naming it, never hangs.
        await _ranks[2]!.DisposeAsync();
        _ranks[2] = null;
        await Eventually.HoldsAsync(async () =>
        {
            using var ready = await Leader.Http.GetAsync(new Uri("/ready", UriKind.Relative));
            return ready.StatusCode == HttpStatusCode.ServiceUnavailable && (await ready.Content.ReadAsStringAsync()).Contains("rank 2", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(60), "the leader not ready, naming rank 2");
        using (var refused = await Leader.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative),
                   ServeClients.Json($$"""{"model":"{{ServeProcess.ModelName}}","prompt":[1,2,3],"max_tokens":4}""")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("expert_rank_unavailable", error.GetProperty("code").GetString());
            Assert.Contains($"rank 2 ({Hosts[2]}:{_expertPort})", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // It returns: the group is ready again by itself, with the same tokens.
        _ranks[2] = await StartRankAsync(2);
        await Eventually.HoldsAsync(async () =>
        {
            using var ready = await Leader.Http.GetAsync(new Uri("/ready", UriKind.Relative));
            return ready.IsSuccessStatusCode;
        }, TimeSpan.FromSeconds(60), "the leader ready again once rank 2 is back");
        await AssertReferenceTokensAsync("after rank 2 came back");
    }

    /// <summary>
    /// Token 4 repeated routes (on this fixture) every pick of both MoE layers to experts 4 and 7,
    /// which the initial placement with 4 redundant copies (spent on experts 0–3 while no load is
    /// known) leaves on single ranks: the busiest rank gets far more than a third of the picks.
    /// </summary>
    private static readonly string[] MoeLayers = ["1", "2"];

    private static int[] SkewedPrompt(int firstToken) => [firstToken, .. Enumerable.Repeat(4, 23)];

    [Fact]
    public async Task Rebalancing_under_skewed_load_lowers_the_imbalance_and_changes_no_token_even_for_requests_in_flight()
    {
        await StartGroupAsync("--redundant-experts", "4", "--rebalance-interval-seconds", "2");
        Assert.Equal(1, await PlacementVersionAsync(Leader));

        // One skewed prefill alone, on the initial placement: the leader's ratio for that step.
        var before = await ProbeImbalanceAsync(firstToken: 10);
        Assert.Equal(1, await PlacementVersionAsync(Leader));
        Assert.Equal(MoeLayers, before.Keys.Order());

        // Skewed load on four streams and the reference prompts on two more, until the placement has
        // changed and the reference streams have gone on across the switch.
        using var stop = new CancellationTokenSource();
        var spans = new System.Collections.Concurrent.ConcurrentBag<(long Before, long After)>();
        var skewed = Enumerable.Range(0, 4).Select(stream => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
                await ServeClients.GreedyCompletionAsync(Leader, SkewedPrompt(20 + ((stream * 50) + i) % 200), 2);
        })).ToList();
        var reference = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            var failures = new List<string>();
            while (!stop.IsCancellationRequested)
                foreach (var (input, expected) in await ReferencePrompts.LoadAsync())
                {
                    var versionBefore = await PlacementVersionAsync(Leader);
                    var actual = (await ServeClients.GreedyCompletionAsync(Leader, input, expected.Length)).Ids;
                    spans.Add((versionBefore, await PlacementVersionAsync(Leader)));
                    if (!expected.SequenceEqual(actual)) failures.Add($"expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}] (placement {versionBefore} when sent)");
                }
            return failures;
        })).ToList();
        try
        {
            await Eventually.HoldsAsync(async () => await RebalancesAsync(Leader, "switched") >= 1 && spans.Any(s => s.After > s.Before),
                TimeSpan.FromSeconds(180), "a rebalance with reference requests in flight across it");
        }
        finally
        {
            await stop.CancelAsync();
        }
        await Task.WhenAll(skewed);
        var wrong = (await Task.WhenAll(reference)).SelectMany(f => f).ToList();
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {spans.Count} reference requests changed tokens across rebalancing: {string.Join("; ", wrong.Take(5))}");
        // Every rank runs the leader's placement, and all of them together still hold every expert (8 + 4
        // copies per layer). The decayed load may still move experts once more: read a settled group.
        long version = 0;
        var held = new Dictionary<string, int>();
        await Eventually.HoldsAsync(async () =>
        {
            version = await PlacementVersionAsync(Leader);
            held.Clear();
            foreach (var rank in _ranks)
            {
                var metrics = await MetricsAsync(rank!);
                if (long.Parse(PlacementVersion().Match(metrics).Groups["version"].Value, CultureInfo.InvariantCulture) != version) return false;
                foreach (Match m in LocalExperts().Matches(metrics))
                    held[m.Groups["layer"].Value] = held.GetValueOrDefault(m.Groups["layer"].Value) + int.Parse(m.Groups["count"].Value, CultureInfo.InvariantCulture);
            }
            return await PlacementVersionAsync(Leader) == version;
        }, TimeSpan.FromSeconds(60), "every rank on the leader's placement");
        Assert.True(version >= 2, $"placement version {version}");
        Assert.Equal(MoeLayers, held.Keys.Order());
        Assert.All(held.Values, total => Assert.Equal(12, total));

        // The same skewed prefill alone on the new placement: the busiest rank's share fell in every MoE layer.
        var after = await ProbeImbalanceAsync(firstToken: 11);
        foreach (var layer in before.Keys)
            Assert.True(after[layer] < before[layer], $"layer {layer}: imbalance {before[layer]} before rebalancing, {after[layer]} after (placement {version}); leader log:\n{Leader.Log}");
        Assert.Equal(0, await RebalancesAsync(Leader, "failed"));
        await AssertReferenceTokensAsync($"on placement {version}");

        // A rank restarted now comes back with the initial placement: the leader is not ready until it
        // has brought the rank up to date (to whatever placement is in force by then), then serves the same tokens.
        await _ranks[2]!.DisposeAsync();
        _ranks[2] = null;
        await Eventually.HoldsAsync(async () =>
        {
            using var ready = await Leader.Http.GetAsync(new Uri("/ready", UriKind.Relative));
            return ready.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, TimeSpan.FromSeconds(60), "the leader not ready without rank 2");
        _ranks[2] = await StartRankAsync(2);
        await Eventually.HoldsAsync(async () =>
        {
            using var ready = await Leader.Http.GetAsync(new Uri("/ready", UriKind.Relative));
            return ready.IsSuccessStatusCode && await PlacementVersionAsync(_ranks[2]!) == await PlacementVersionAsync(Leader);
        }, TimeSpan.FromSeconds(120), "rank 2 brought up to the leader's placement");
        Assert.True(await PlacementVersionAsync(Leader) > ExpertPlacement.InitialVersion);
        await AssertReferenceTokensAsync("after rank 2 came back on the rebalanced placement");
    }

    [Fact]
    public async Task A_rebalance_a_rank_cannot_load_keeps_the_placement_and_serving_and_is_tried_again()
    {
        // Rank 2 serves its own copy of the embedded model (same files, so the same fingerprint).
        _modelCopy = Path.Combine(Path.GetTempPath(), $"rebalance-{Guid.NewGuid():N}");
        var model = Path.Combine(_modelCopy, ServeProcess.ModelName);
        Directory.CreateDirectory(model);
        foreach (var file in Directory.GetFiles(Path.Combine(Path.GetDirectoryName(ServeProcess.RuntimeDll)!, "models", ServeProcess.ModelName)))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        _rankArgs[2] = ["--model", model];
        await StartGroupAsync("--redundant-experts", "4", "--rebalance-interval-seconds", "2");

        // Same size, unreadable: rank 2 loaded its shard at start but can read no expert now.
        var weights = Path.Combine(model, "model.safetensors");
        var original = await File.ReadAllBytesAsync(weights);
        await File.WriteAllBytesAsync(weights, new byte[original.Length]);

        await SkewedLoadUntilAsync(async () => await RebalancesAsync(Leader, "failed") >= 1, "a failed rebalance");
        Assert.Equal(0, await RebalancesAsync(Leader, "switched"));
        foreach (var rank in _ranks) Assert.Equal(ExpertPlacement.InitialVersion, await PlacementVersionAsync(rank!));
        Assert.Contains("rank 2: Rank 2", Leader.Log, StringComparison.Ordinal);
        Assert.Contains("could not load the experts of placement", Leader.Log, StringComparison.Ordinal);
        using (var ready = await Leader.Http.GetAsync(new Uri("/ready", UriKind.Relative)))
            Assert.True(ready.IsSuccessStatusCode, await ready.Content.ReadAsStringAsync());
        await AssertReferenceTokensAsync("after a failed rebalance");

        // Readable again: a later interval moves the experts.
        await File.WriteAllBytesAsync(weights, original);
        await SkewedLoadUntilAsync(async () => await RebalancesAsync(Leader, "switched") >= 1, "a rebalance once rank 2 can load again");
        await AssertReferenceTokensAsync("after the retried rebalance");
    }

    /// <summary>Skewed requests on four streams until <paramref name="condition"/> holds.</summary>
    private async Task SkewedLoadUntilAsync(Func<Task<bool>> condition, string what)
    {
        using var stop = new CancellationTokenSource();
        var streams = Enumerable.Range(0, 4).Select(stream => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
                await ServeClients.GreedyCompletionAsync(Leader, SkewedPrompt(20 + ((stream * 50) + i) % 200), 2);
        })).ToList();
        try
        {
            await Eventually.HoldsAsync(condition, TimeSpan.FromSeconds(180), what);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(streams);
        }
    }

    /// <summary>
    /// The leader's <c>deepseek_expert_load_imbalance_ratio</c> per layer for one skewed prefill run
    /// alone, read from the first scrape that shows the prefill's picks (the engine sets a step's ratio
    /// before it counts the step's picks).
    /// </summary>
    private async Task<Dictionary<string, double>> ProbeImbalanceAsync(int firstToken)
    {
        // Quiet first: a request of the load before (a client gave up on it under a busy machine) may still
        // take a step, and its picks would land in the probe's count.
        await Eventually.HoldsAsync(async () =>
        {
            var metrics = await MetricsAsync(Leader);
            return Gauge(metrics, "deepseek_requests_running") == 0 && Gauge(metrics, "deepseek_requests_waiting") == 0;
        }, TimeSpan.FromSeconds(60), "the leader idle before the probe");
        var picksBefore = ExpertPicks(await MetricsAsync(Leader));
        var prompt = SkewedPrompt(firstToken);
        await ServeClients.GreedyCompletionAsync(Leader, prompt, 1);
        // Two picks per token (num_experts_per_tok) in each MoE layer.
        var expected = MoeLayers.ToDictionary(layer => layer, layer => picksBefore.GetValueOrDefault(layer) + (prompt.Length * 2));
        var scrape = "";
        var seen = new Dictionary<string, long>();
        try
        {
            await Eventually.HoldsAsync(async () =>
            {
                scrape = await MetricsAsync(Leader);
                seen = ExpertPicks(scrape);
                return expected.All(e => seen.GetValueOrDefault(e.Key) == e.Value);
            }, TimeSpan.FromSeconds(60), "the probe's picks on the leader's /metrics");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"{e.Message}: expected {string.Join(", ", expected)}, last seen {string.Join(", ", seen)}; leader log:\n{Leader.Log}", e);
        }
        return Imbalance().Matches(scrape).ToDictionary(m => m.Groups["layer"].Value, m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture));
    }

    private static double Gauge(string metrics, string name) =>
        Regex.Matches(metrics, $@"^{name}(?:\{{[^}}]*\}})? (?<value>\S+)$", RegexOptions.Multiline)
            .Sum(m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture));

    private static Dictionary<string, long> ExpertPicks(string metrics) => ExpertTokens().Matches(metrics)
        .GroupBy(m => m.Groups["layer"].Value)
        .ToDictionary(g => g.Key, g => g.Sum(m => long.Parse(m.Groups["count"].Value, CultureInfo.InvariantCulture)));

    private static async Task<string> MetricsAsync(ServeProcess server) => await server.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));

    private static async Task<long> PlacementVersionAsync(ServeProcess server) =>
        long.Parse(PlacementVersion().Match(await MetricsAsync(server)).Groups["version"].Value, CultureInfo.InvariantCulture);

    private static async Task<long> RebalancesAsync(ServeProcess server, string result) =>
        Rebalances().Matches(await MetricsAsync(server)).Where(m => m.Groups["result"].Value == result)
            .Sum(m => long.Parse(m.Groups["count"].Value, CultureInfo.InvariantCulture));

    /// <summary>Every reference prompt twice, all at once: the leader batches them and dispatches each step's tokens to both ranks.</summary>
    private async Task AssertReferenceTokensAsync(string when)
    {
        var prompts = await ReferencePrompts.LoadAsync();
        var requests = prompts.Concat(prompts).Select(async p => (p.Expected, Actual: (await ServeClients.GreedyCompletionAsync(Leader, p.Input, p.Expected.Length)).Ids));
        foreach (var (expected, actual) in await Task.WhenAll(requests))
            Assert.True(expected.SequenceEqual(actual), $"{when}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
    }

    /// <summary>The fixture's prompts with their reference greedy tokens up to the first near-tie.</summary>
    public async Task DisposeAsync()
    {
        foreach (var rank in _ranks)
            if (rank is not null) await rank.DisposeAsync();
        File.Delete(_tokenFile);
        if (_modelCopy is not null) Directory.Delete(_modelCopy, recursive: true);
    }

    [GeneratedRegex("""^deepseek_ep_local_experts\{[^}]*layer="(?<layer>\d+)"[^}]*\} (?<count>\d+)""", RegexOptions.Multiline)]
    private static partial Regex LocalExperts();

    [GeneratedRegex("""^deepseek_expert_load_imbalance_ratio\{[^}]*layer="(?<layer>\d+)"[^}]*\} (?<value>\S+)""", RegexOptions.Multiline)]
    private static partial Regex Imbalance();

    [GeneratedRegex("""^deepseek_expert_tokens_total\{[^}]*layer="(?<layer>\d+)"[^}]*\} (?<count>\d+)""", RegexOptions.Multiline)]
    private static partial Regex ExpertTokens();

    [GeneratedRegex("""^deepseek_ep_placement_version\{[^}]*\} (?<version>\d+)""", RegexOptions.Multiline)]
    private static partial Regex PlacementVersion();

    [GeneratedRegex("""^deepseek_ep_rebalances_total\{[^}]*result="(?<result>\w+)"[^}]*\} (?<count>\d+)""", RegexOptions.Multiline)]
    private static partial Regex Rebalances();
}
