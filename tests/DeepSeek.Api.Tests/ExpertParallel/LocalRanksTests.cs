using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Api.Tests.Serve;

namespace DeepSeek.Api.Tests.ExpertParallel;

/// <summary>
/// A pod's <c>serve --local-ranks 2</c> on one loopback address (CPU, gRPC transport): it starts both ranks
/// of the group as processes of their own, the leader (local rank 0, on the pod's ports) gives the
/// reference tokens, SIGTERM stops both and the pod's serve exits 0, and a killed rank makes it stop the
/// other and exit non-zero naming the rank and its exit code.
/// </summary>
public sealed partial class LocalRanksTests : IAsyncLifetime
{
    private const string Host = "127.0.0.6";
    private readonly string _tokenFile = Path.GetTempFileName();
    private ServeProcess? _pod;

    private ServeProcess Pod => _pod!;

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(_tokenFile, "local-ranks-token\n");
        var expertPort = FreePort.Next();
        // Ready once local rank 0 (the leader, on the pod's HTTP port) is, which needs local rank 1 ready.
        _pod = await ServeProcess.StartOnAsync(Host, "--local-ranks", "2", "--world-size", "2", "--rank", "0", "--peers", $"{Host}:{expertPort}",
            "--expert-port", $"{expertPort}", "--expert-transport", "grpc", "--group-token-file", _tokenFile);
    }

    [Fact]
    public async Task Both_ranks_serve_the_reference_tokens_and_sigterm_stops_them_all_with_exit_zero()
    {
        var prompt = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", "deepseek-v3-tiny", "reference.json")))
            .RootElement.GetProperty("prompts")[0];
        var expected = prompt.GetProperty("greedy").EnumerateArray().Select(v => v.GetInt32()).Take(4).ToArray();
        var (ids, _) = await ServeClients.GreedyCompletionAsync(Pod, [.. prompt.GetProperty("input_ids").EnumerateArray().Select(v => v.GetInt32())], expected.Length);
        Assert.Equal(expected, ids);
        // Both ranks hold a shard: the second one answers on the pod's ports + 10.
        var children = Children();
        Assert.Equal(2, children.Count);
        using (var rank1 = new HttpClient { BaseAddress = new Uri($"http://{Host}:{Pod.HttpPort + 10}") })
            Assert.Contains("deepseek_ep_rank{", await rank1.GetStringAsync(new Uri("/metrics", UriKind.Relative)), StringComparison.Ordinal);

        await Pod.SendSigtermAsync();
        Assert.Equal(0, await Pod.WaitForExitAsync(TimeSpan.FromSeconds(180)));
        Assert.All(children.Values, pid => Assert.False(Running(pid), $"local rank pid {pid} still runs"));
    }

    [Fact]
    public async Task A_killed_rank_stops_the_pod_with_a_non_zero_exit_naming_it()
    {
        var children = Children();
        using (var rank1 = Process.GetProcessById(children[1]))
            rank1.Kill();
        var exit = await Pod.WaitForExitAsync(TimeSpan.FromSeconds(180));
        Assert.NotEqual(0, exit);
        Assert.Contains($"local rank 1 (rank 1, pid {children[1]}) exited with code", Pod.Log, StringComparison.Ordinal);
        Assert.False(Running(children[0]), "the leader outlived the pod's serve");
    }

    /// <summary>Local rank → pid, from the pod's log.</summary>
    private Dictionary<int, int> Children() => Started().Matches(Pod.Log)
        .ToDictionary(m => int.Parse(m.Groups["local"].Value, CultureInfo.InvariantCulture), m => int.Parse(m.Groups["pid"].Value, CultureInfo.InvariantCulture));

    private static bool Running(int pid) => Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);

    public async Task DisposeAsync()
    {
        if (_pod is not null) await _pod.DisposeAsync();
        File.Delete(_tokenFile);
    }

    [GeneratedRegex(@"local rank (?<local>\d+) \(rank \d+ of \d+, [^,]+, HTTP \d+\) started as pid (?<pid>\d+)")]
    private static partial Regex Started();
}
