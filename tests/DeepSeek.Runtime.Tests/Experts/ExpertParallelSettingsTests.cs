using DeepSeek.Runtime.Experts;

namespace DeepSeek.Runtime.Tests.Experts;

public class ExpertParallelSettingsTests
{
    [Fact]
    public void Peers_parse_host_port_lists_including_dns_names_and_ipv6()
    {
        var peers = ExpertParallelSettings.ParsePeers("m-g0-0.m-g0.ns.svc:50052, 127.0.0.3:7000,[::1]:9");
        Assert.Equal(["m-g0-0.m-g0.ns.svc", "127.0.0.3", "::1"], peers.Select(p => p.Host));
        Assert.Equal([50052, 7000, 9], peers.Select(p => p.Port));
    }

    [Theory]
    [InlineData("host")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData(":50052")]
    public void A_peer_without_a_valid_host_and_port_is_refused(string peers) =>
        Assert.Contains("is not host:port", Assert.Throws<ArgumentException>(() => ExpertParallelSettings.ParsePeers(peers)).Message, StringComparison.Ordinal);

    [Fact]
    public void A_group_needs_one_peer_per_rank_and_a_token_and_says_everything_wrong_at_once()
    {
        var settings = new ExpertParallelSettings { Rank = 3, WorldSize = 3, Peers = ExpertParallelSettings.ParsePeers("a:1,b:2") };
        var error = Assert.Throws<ArgumentException>(settings.Validate);
        Assert.Contains("--rank must be between 0 and 2", error.Message, StringComparison.Ordinal);
        Assert.Contains("--peers must list 3 addresses", error.Message, StringComparison.Ordinal);
        Assert.Contains("--group-token-file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Data_parallel_attention_runs_and_rebalances_over_either_transport()
    {
        var group = new ExpertParallelSettings
        {
            WorldSize = 2, Peers = ExpertParallelSettings.ParsePeers("a:1,b:2"), GroupToken = "t", DataParallelAttention = true,
            Transport = ExpertTransportKind.Grpc, RebalanceInterval = TimeSpan.FromMinutes(1),
        };
        group.Validate();
        (group with { RebalanceInterval = TimeSpan.Zero }).Validate();
        // The lockstep all-to-all (LockstepExpertTransport) over NCCL.
        (group with { Transport = ExpertTransportKind.Nccl, RebalanceInterval = TimeSpan.Zero }).Validate();
        (group with { Transport = ExpertTransportKind.Nccl }).Validate();
        // The leader shape over NCCL: its ranks stage and switch between the leader's headers.
        (group with { Transport = ExpertTransportKind.Nccl, DataParallelAttention = false }).Validate();
        Assert.True(group.RunsEngine);
        Assert.True((group with { Rank = 1 }).RunsEngine);
        Assert.False((group with { Rank = 1, DataParallelAttention = false }).RunsEngine);
    }

    [Fact]
    public void World_size_one_needs_neither_peers_nor_token() =>
        new ExpertParallelSettings().Validate();

    [Theory]
    [InlineData(null, "cuda:0", ExpertTransportKind.Nccl)]
    [InlineData(null, "cpu", ExpertTransportKind.Grpc)]
    [InlineData("GRPC", "cuda", ExpertTransportKind.Grpc)]
    [InlineData("nccl", "cpu", ExpertTransportKind.Nccl)]
    public void The_transport_defaults_to_nccl_on_cuda_and_grpc_on_cpu(string? flag, string device, ExpertTransportKind expected) =>
        Assert.Equal(expected, ExpertParallelSettings.ParseTransport(flag, device));

    [Fact]
    public void An_unknown_transport_is_refused() =>
        Assert.Contains("grpc or nccl", Assert.Throws<ArgumentException>(() => ExpertParallelSettings.ParseTransport("tcp", "cpu")).Message, StringComparison.Ordinal);
}
