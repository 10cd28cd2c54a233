using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Api.Tests.Serve;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>
/// Three real <c>serve</c> processes on 127.0.0.2–4 with data-parallel attention over gRPC, each holding a
/// third of the tiny model's experts; started together, since each turns ready only once the others
/// answer its warm-up's exchanges.
/// </summary>
public class DataParallelGroup : IAsyncLifetime
{
    public const string Token = "group-token-for-tests";
    public static readonly string[] Hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

    private readonly string[] _arguments;

    public DataParallelGroup() : this([])
    {
    }

    /// <param name="arguments">More <c>serve</c> flags for every rank.</param>
    protected DataParallelGroup(string[] arguments) => _arguments = arguments;

    private readonly int _expertPort = FreePort.Next();
    private readonly string _tokenFile = Path.GetTempFileName();

    public ServeProcess?[] Ranks { get; } = new ServeProcess?[Hosts.Length];

    public string Address(int rank) => $"{Hosts[rank]}:{_expertPort}";

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(_tokenFile, Token + "\n");
        var starting = Enumerable.Range(0, Hosts.Length).Select(StartRankAsync).ToArray();
        try
        {
            await Task.WhenAll(starting);
        }
        catch
        {
            foreach (var rank in starting.Where(t => t.IsCompletedSuccessfully)) await rank.Result.DisposeAsync();
            throw;
        }
        for (var rank = 0; rank < Hosts.Length; rank++) Ranks[rank] = starting[rank].Result;
    }

    public Task<ServeProcess> StartRankAsync(int rank) => ServeProcess.StartOnAsync(Hosts[rank],
        ["--rank", $"{rank}", "--world-size", $"{Hosts.Length}", "--peers", string.Join(",", Enumerable.Range(0, Hosts.Length).Select(Address)),
        "--expert-port", $"{_expertPort}", "--expert-transport", "grpc", "--group-token-file", _tokenFile, "--data-parallel-attention", "true", .. _arguments]);

    public async Task DisposeAsync()
    {
        foreach (var rank in Ranks)
            if (rank is not null) await rank.DisposeAsync();
        File.Delete(_tokenFile);
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Data-parallel attention (design §2.5.1) over gRPC: each rank serves its own requests with its own
/// scheduler and KV cache, sends its tokens' picks to the experts' holders and answers the others'.
/// Every request, on every rank at once, gets the unsharded reference tokens; a rank without requests
/// still answers its peers; a lost rank turns every other rank not ready, naming it, until it returns.
/// </summary>
public sealed partial class DataParallelAttentionTests(DataParallelGroup group) : IClassFixture<DataParallelGroup>
{
    [Fact]
    public async Task Every_rank_serves_its_own_requests_with_the_reference_tokens_its_own_kv_cache_and_a_lost_rank_is_named()
    {
        var prompts = await ReferencePrompts.LoadAsync();
        // Every prompt on every rank, all at once: each rank's steps exchange tokens with the others' mid-step.
        var requests = group.Ranks.SelectMany(rank => prompts.Select(async p => (rank!.Host, p.Expected, Actual: (await ServeClients.GreedyCompletionAsync(rank, p.Input, p.Expected.Length)).Ids)));
        foreach (var (host, expected, actual) in await Task.WhenAll(requests))
            Assert.True(expected.SequenceEqual(actual), $"on {host}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");

        // Each rank holds a shard of the experts (8 per MoE layer in all) and a KV cache of its own.
        var held = new Dictionary<string, int>();
        foreach (var rank in group.Ranks)
        {
            var metrics = await rank!.Http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
            foreach (Match m in LocalExperts().Matches(metrics))
                held[m.Groups["layer"].Value] = held.GetValueOrDefault(m.Groups["layer"].Value) + int.Parse(m.Groups["count"].Value, CultureInfo.InvariantCulture);
            var blocks = KvBlocks().Match(rank.Log);
            Assert.True(blocks.Success && int.Parse(blocks.Groups["blocks"].Value, CultureInfo.InvariantCulture) > 0, $"{rank.Host} has no KV cache of its own:\n{rank.Log}");
        }
        Assert.Equal(["1", "2"], held.Keys.Order());
        Assert.All(held.Values, total => Assert.Equal(8, total));

        // Rank 2 dies: ranks 0 and 1 turn not ready, name it, and refuse requests (their steps would need its experts).
        await group.Ranks[2]!.DisposeAsync();
        group.Ranks[2] = null;
        foreach (var rank in group.Ranks.Take(2))
        {
            await Eventually.HoldsAsync(async () =>
            {
                using var ready = await rank!.Http.GetAsync(new Uri("/ready", UriKind.Relative));
                return ready.StatusCode == HttpStatusCode.ServiceUnavailable && (await ready.Content.ReadAsStringAsync()).Contains("rank 2", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(60), $"{rank!.Host} not ready, naming rank 2");
            using var refused = await rank.Http.PostAsync(new Uri("/v1/completions", UriKind.Relative),
                ServeClients.Json($$"""{"model":"{{ServeProcess.ModelName}}","prompt":[1,2,3],"max_tokens":4}"""));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Contains($"rank 2 ({group.Address(2)})", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // It returns (its warm-up exchanges with the others): the group serves the same tokens again.
        group.Ranks[2] = await group.StartRankAsync(2);
        foreach (var rank in group.Ranks)
            await Eventually.HoldsAsync(async () =>
            {
                using var ready = await rank!.Http.GetAsync(new Uri("/ready", UriKind.Relative));
                return ready.IsSuccessStatusCode;
            }, TimeSpan.FromSeconds(60), $"{rank!.Host} ready again");
        foreach (var p in prompts)
            Assert.Equal(p.Expected, (await ServeClients.GreedyCompletionAsync(group.Ranks[2]!, p.Input, p.Expected.Length)).Ids);
    }

    [Fact]
    public async Task A_rank_without_requests_still_answers_its_peers()
    {
        var prompts = await ReferencePrompts.LoadAsync();
        // Only ranks 0 and 1 get requests: rank 2's engine is idle and computes its experts for them between (empty) steps.
        var requests = group.Ranks.Take(2).SelectMany(rank => prompts.Select(async p => (p.Expected, Actual: (await ServeClients.GreedyCompletionAsync(rank!, p.Input, p.Expected.Length)).Ids)));
        foreach (var (expected, actual) in await Task.WhenAll(requests))
            Assert.Equal(expected, actual);
    }

    [GeneratedRegex("""^deepseek_ep_local_experts\{[^}]*layer="(?<layer>\d+)"[^}]*\} (?<count>\d+)""", RegexOptions.Multiline)]
    private static partial Regex LocalExperts();

    [GeneratedRegex("""Engine serving: (?<blocks>\d+) KV blocks""")]
    private static partial Regex KvBlocks();
}
