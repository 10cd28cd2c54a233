using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Api.Tests.Serve;
using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>
/// One replica as an expert-parallel group of three real <c>serve</c> processes on 127.0.0.2–4 over
/// the gRPC transport, each rank holding a shard of the tiny model's experts: the leader answers
/// with exactly the unsharded reference tokens, ranks refuse calls without the group token, and a
/// killed rank turns the leader not ready (503 naming it) until it is back.
/// </summary>
public sealed partial class ExpertGroupTests : IAsyncLifetime
{
    private const string Token = "group-token-for-tests";
    private static readonly string[] Hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    private static string FixtureDir => Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", "deepseek-v3-tiny");

    private readonly int _expertPort = FreePort.Next();
    private readonly string _tokenFile = Path.GetTempFileName();
    private readonly ServeProcess?[] _ranks = new ServeProcess?[3];

    private string Peers => string.Join(",", Hosts.Select(h => $"{h}:{_expertPort}"));

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(_tokenFile, Token + "\n");
        var ranks = await Task.WhenAll(StartRankAsync(1), StartRankAsync(2));
        (_ranks[1], _ranks[2]) = (ranks[0], ranks[1]);
        // The leader turns ready only once both ranks answer.
        _ranks[0] = await StartRankAsync(0);
    }

    private Task<ServeProcess> StartRankAsync(int rank) => ServeProcess.StartOnAsync(Hosts[rank],
        "--rank", $"{rank}", "--world-size", "3", "--peers", Peers, "--expert-port", $"{_expertPort}",
        "--expert-transport", "grpc", "--group-token-file", _tokenFile);

    private ServeProcess Leader => _ranks[0]!;

    [Fact]
    public async Task A_sharded_group_serves_the_reference_tokens_refuses_strangers_and_survives_a_lost_rank()
    {
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

    /// <summary>Every reference prompt twice, all at once: the leader batches them and dispatches each step's tokens to both ranks.</summary>
    private async Task AssertReferenceTokensAsync(string when)
    {
        var prompts = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(FixtureDir, "reference.json"))).RootElement.GetProperty("prompts")
            .EnumerateArray().Select(p =>
            {
                var greedy = p.GetProperty("greedy").EnumerateArray().Select(v => v.GetInt32()).ToArray();
                var margins = p.GetProperty("greedy_margins").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                // Past a near-tie the argmax may flip on rounding; compare up to the first one.
                var reliable = Array.FindIndex(margins, m => m < 1e-3) is var tie and >= 0 ? tie : greedy.Length;
                return (Input: p.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32()).ToArray(), Expected: greedy[..reliable]);
            }).ToList();
        var requests = prompts.Concat(prompts).Select(async p => (p.Expected, Actual: (await ServeClients.GreedyCompletionAsync(Leader, p.Input, p.Expected.Length)).Ids));
        foreach (var (expected, actual) in await Task.WhenAll(requests))
            Assert.True(expected.SequenceEqual(actual), $"{when}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
    }

    public async Task DisposeAsync()
    {
        foreach (var rank in _ranks)
            if (rank is not null) await rank.DisposeAsync();
        File.Delete(_tokenFile);
    }

    [GeneratedRegex("""^deepseek_ep_local_experts\{[^}]*layer="(?<layer>\d+)"[^}]*\} (?<count>\d+)""", RegexOptions.Multiline)]
    private static partial Regex LocalExperts();
}
