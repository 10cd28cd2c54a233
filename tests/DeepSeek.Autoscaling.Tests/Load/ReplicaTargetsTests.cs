using DeepSeek.Operator.Autoscaling;
using DeepSeek.Operator.Desired;
using k8s.Models;

namespace DeepSeek.Autoscaling.Tests.Load;

/// <summary>From pods to the replicas the autoscaler reads: group leaders, or with data-parallel attention every rank, summed per group.</summary>
public class ReplicaTargetsTests
{
    private static V1Pod Pod(string name, int group, int index, string ip, bool ready = true) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            Labels = new Dictionary<string, string> { [ModelLabels.Group] = ObjectNames.GroupLabel(group), [ModelLabels.PodIndex] = index.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        },
        Status = new V1PodStatus { PodIP = ip, Conditions = [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False" }] },
    };

    private static readonly V1Pod[] TwoGroupsOfThree =
    [
        Pod("m-g0-0", 0, 0, "10.0.0.1"), Pod("m-g0-1", 0, 1, "10.0.0.2"), Pod("m-g0-2", 0, 2, "10.0.0.3"),
        Pod("m-g1-0", 1, 0, "10.0.1.1"), Pod("m-g1-1", 1, 1, "10.0.1.2"), Pod("m-g1-2", 1, 2, "10.0.1.3", ready: false),
    ];

    [Fact]
    public void The_leader_shape_reads_rank_zero_of_each_group_as_the_replica()
    {
        var targets = ReplicaTargets.Of("m", new ModelShape(2, 3, 1, 3), TwoGroupsOfThree);

        Assert.Equal(["m-g0", "m-g1"], targets.Select(t => t.Endpoint.Name));
        Assert.Equal(["10.0.0.1", "10.0.1.1"], targets.Select(t => t.Endpoint.Address!.Host));
        Assert.All(targets, t => Assert.Null(t.Replica));
    }

    [Fact]
    public void Data_parallel_attention_reads_every_rank_and_sums_each_group()
    {
        var targets = ReplicaTargets.Of("m", new ModelShape(2, 3, 1, 3, DataParallelAttention: true), TwoGroupsOfThree);
        Assert.Equal(["m-g0-0", "m-g0-1", "m-g0-2", "m-g1-0", "m-g1-1", "m-g1-2"], targets.Select(t => t.Endpoint.Name));
        Assert.Equal(["m-g0", "m-g0", "m-g0", "m-g1", "m-g1", "m-g1"], targets.Select(t => t.Replica));

        var read = targets.Select((t, i) => ReplicaLoad.Ready(t.Endpoint.Name, new LoadSnapshot(Waiting: i, Running: 1, KvCacheUsage: 0.1 * i, RecentTokensPerSecond: 10, MaxRunningRequests: 8, MaxQueuedRequests: 64))).ToList();
        var replicas = ReplicaTargets.PerReplica(ReplicaTargets.WithPodReadiness(read, targets), targets);

        Assert.Equal(["m-g0", "m-g1"], replicas.Select(r => r.Name));
        var first = replicas[0];
        Assert.Equal(ReplicaLoadState.Ready, first.State);
        Assert.Equal(new LoadSnapshot(0 + 1 + 2, 3, (0.0 + 0.1 + 0.2) / 3, 30, 24, 192), first.Load! with { KvCacheUsage = (0.0 + 0.1 + 0.2) / 3 });
        Assert.Equal(0.1, first.Load!.KvCacheUsage, 9);
        // A rank whose pod is not Ready makes its group NotReady, its queue still counted.
        Assert.Equal(ReplicaLoadState.NotReady, replicas[1].State);
        Assert.Equal(3 + 4 + 5, replicas[1].Load!.Waiting);
    }

    [Fact]
    public void A_group_missing_a_rank_is_unreachable_naming_it()
    {
        var pods = TwoGroupsOfThree.Where(p => p.Metadata.Name != "m-g0-1").ToList();
        var targets = ReplicaTargets.Of("m", new ModelShape(2, 3, 1, 3, DataParallelAttention: true), pods);
        Assert.Null(targets.Single(t => t.Endpoint.Name == "m-g0-1").Endpoint.Address);

        var read = targets.Select(t => t.Endpoint.Address is null
            ? ReplicaLoad.Unreachable(t.Endpoint.Name, "no address yet")
            : ReplicaLoad.Ready(t.Endpoint.Name, new LoadSnapshot(1, 1))).ToList();
        var replicas = ReplicaTargets.PerReplica(read, targets);

        Assert.Equal(ReplicaLoadState.Unreachable, replicas[0].State);
        Assert.Equal("rank pod m-g0-1: no address yet", replicas[0].Detail);
        Assert.Equal(ReplicaLoadState.Ready, replicas[1].State);
    }
}
