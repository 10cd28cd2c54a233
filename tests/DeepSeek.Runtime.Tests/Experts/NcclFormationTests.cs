using DeepSeek.Runtime.Experts;

namespace DeepSeek.Runtime.Tests.Experts;

/// <summary>The NCCL transport's start-up checks and lifecycle decisions (the collectives themselves are tested in DeepSeek.Model.Tests).</summary>
public class NcclFormationTests
{
    private static ExpertParallelSettings Group(ExpertTransportKind transport, string peers = "leader:50052,rank1:50052") => new()
    {
        Rank = 0,
        WorldSize = 2,
        Peers = ExpertParallelSettings.ParsePeers(peers),
        GroupToken = "t",
        Transport = transport,
    };

    [Fact]
    public void Nccl_on_cpu_is_refused_whatever_the_world_size_and_grpc_is_never_refused()
    {
        var problem = Group(ExpertTransportKind.Nccl).TransportProblem("cpu", nativeHelperPresent: true);
        Assert.Contains("needs CUDA", problem, StringComparison.Ordinal);
        Assert.Contains("--expert-transport grpc", problem, StringComparison.Ordinal);
        Assert.NotNull(new ExpertParallelSettings { Transport = ExpertTransportKind.Nccl }.TransportProblem("cpu", nativeHelperPresent: true));
        Assert.Null(Group(ExpertTransportKind.Grpc).TransportProblem("cpu", nativeHelperPresent: false));
        Assert.Null(Group(ExpertTransportKind.Grpc).TransportProblem("cuda:0", nativeHelperPresent: false));
    }

    [Fact]
    public void Nccl_group_on_cuda_without_the_helper_names_the_build_script_and_the_alternative()
    {
        var problem = Group(ExpertTransportKind.Nccl).TransportProblem("cuda", nativeHelperPresent: false);
        Assert.Contains("scripts/build-native.sh", problem, StringComparison.Ordinal);
        Assert.Contains("--expert-transport grpc", problem, StringComparison.Ordinal);
        Assert.Null(Group(ExpertTransportKind.Nccl).TransportProblem("cuda:1", nativeHelperPresent: true));
        // World size 1 exchanges nothing: the default transport on CUDA needs no helper there.
        Assert.Null(new ExpertParallelSettings { Transport = ExpertTransportKind.Nccl }.TransportProblem("cuda", nativeHelperPresent: false));
        Assert.Contains("no port above it", Group(ExpertTransportKind.Nccl, "leader:65535,r:1").TransportProblem("cuda", nativeHelperPresent: true), StringComparison.Ordinal);
    }

    [Fact]
    public void The_store_listens_on_the_leader_one_port_above_its_expert_port()
    {
        var store = NcclFormation.StoreEndpoint(Group(ExpertTransportKind.Nccl, "m-g0-0.m-g0.ns.svc:50052,m-g0-1.m-g0.ns.svc:50052"));
        Assert.Equal(("m-g0-0.m-g0.ns.svc", 50053), (store.Host, store.Port));
    }

    [Fact]
    public void The_leader_forms_only_when_every_rank_is_ready_and_none_is_attached_backing_off_after_failures()
    {
        Assert.True(NcclFormation.ShouldForm(ranksReady: true, attached: false, failures: 0, sinceLastAttempt: TimeSpan.Zero));
        Assert.False(NcclFormation.ShouldForm(ranksReady: false, attached: false, failures: 0, sinceLastAttempt: TimeSpan.FromHours(1)));
        Assert.False(NcclFormation.ShouldForm(ranksReady: true, attached: true, failures: 0, sinceLastAttempt: TimeSpan.FromHours(1)));
        Assert.False(NcclFormation.ShouldForm(ranksReady: true, attached: false, failures: 3, sinceLastAttempt: Backoff.Delay(3) - TimeSpan.FromMilliseconds(1)));
        Assert.True(NcclFormation.ShouldForm(ranksReady: true, attached: false, failures: 3, sinceLastAttempt: Backoff.Delay(3)));
    }

    [Fact]
    public void Leader_readiness_names_missing_ranks_first_then_an_unformed_group()
    {
        var missing = GroupReadiness.Of([new RankState(1, "r1:50052", false, "Unavailable: connection refused")]);
        Assert.Same(missing, NcclFormation.Readiness(missing, generation: 4, detachedBecause: "x"));

        var ranksReady = GroupReadiness.Of([new RankState(1, "r1:50052", true, null)]);
        var unformed = NcclFormation.Readiness(ranksReady, generation: null, detachedBecause: "combine of layer 3 failed: timed out");
        Assert.False(unformed.Ready);
        Assert.Contains("NCCL group not formed: combine of layer 3 failed", unformed.Message, StringComparison.Ordinal);

        var formed = NcclFormation.Readiness(ranksReady, generation: 4, detachedBecause: "x");
        Assert.True(formed.Ready);
        Assert.Contains("generation 4", formed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rank_rejoins_quickly_after_a_stop_and_backs_off_after_failures()
    {
        Assert.True(NcclFormation.RejoinDelay(failed: false, failuresInARow: 0) < TimeSpan.FromSeconds(1));
        Assert.Equal(Backoff.Delay(4), NcclFormation.RejoinDelay(failed: true, failuresInARow: 4));
    }
}
