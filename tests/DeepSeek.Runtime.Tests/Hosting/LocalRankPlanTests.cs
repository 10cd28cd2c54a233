using DeepSeek.Runtime.Experts;
using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Tests.Hosting;

public class LocalRankPlanTests
{
    [Fact]
    public void A_pod_of_four_gpus_runs_its_four_ranks_on_their_own_device_and_ports()
    {
        var plan = LocalRankPlan.For(localRanks: 4, podIndex: 1, worldSize: 8, device: "cuda", httpPort: 8000, grpcPort: 50051, expertPort: 50052);
        Assert.Equal([4, 5, 6, 7], plan.Select(r => r.Rank));
        Assert.Equal(["cuda:0", "cuda:1", "cuda:2", "cuda:3"], plan.Select(r => r.Device));
        Assert.Equal([8000, 8010, 8020, 8030], plan.Select(r => r.HttpPort));
        Assert.Equal([50051, 50061, 50071, 50081], plan.Select(r => r.GrpcPort));
        Assert.Equal([50052, 50062, 50072, 50082], plan.Select(r => r.ExpertPort));
        // No port of one rank is another's, nor the NCCL store's (rank 0's expert port + 1).
        var ports = plan.SelectMany(r => new[] { r.HttpPort, r.GrpcPort, r.ExpertPort }).Append(50053).ToList();
        Assert.Equal(ports.Count, ports.Distinct().Count());
    }

    [Fact]
    public void Peers_list_one_address_per_pod_and_expand_to_one_per_rank_in_rank_order()
    {
        var pods = ExpertParallelSettings.ParsePeers("m-g0-0.m-g0.ns.svc:50052,m-g0-1.m-g0.ns.svc:50052");
        Assert.Equal("m-g0-0.m-g0.ns.svc:50052,m-g0-0.m-g0.ns.svc:50062,m-g0-1.m-g0.ns.svc:50052,m-g0-1.m-g0.ns.svc:50062",
            LocalRankPlan.RankPeers(pods, localRanks: 2, worldSize: 4));
        Assert.Contains("one address per pod", Assert.Throws<ArgumentException>(() => LocalRankPlan.RankPeers(pods, localRanks: 2, worldSize: 2)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_inconsistent_plan_says_everything_wrong_at_once()
    {
        var error = Assert.Throws<ArgumentException>(() => LocalRankPlan.For(localRanks: 3, podIndex: 0, worldSize: 4, device: "cuda:1", httpPort: 65530, grpcPort: 0, expertPort: 50052));
        Assert.Contains("multiple of --local-ranks", error.Message, StringComparison.Ordinal);
        Assert.Contains("plain cuda", error.Message, StringComparison.Ordinal);
        Assert.Contains("--http-port 65530", error.Message, StringComparison.Ordinal);
        Assert.Contains("--grpc-port 0", error.Message, StringComparison.Ordinal);
        Assert.Contains("pod's index", Assert.Throws<ArgumentException>(() => LocalRankPlan.For(2, 2, 4, "cpu", 8000, 50051, 50052)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Children_get_their_place_through_the_environment_and_keep_every_other_flag()
    {
        string[] parent = ["--model", "/models", "--rank", "1", "--world-size=4", "--peers", "a:1,b:1", "--device:cuda", "--http-port", "8000",
            "--grpc-port", "50051", "--expert-port", "50052", "--local-ranks", "2", "--expert-transport", "nccl", "--dtype", "bfloat16"];
        Assert.Equal(["--model", "/models", "--expert-transport", "nccl", "--dtype", "bfloat16"], LocalRankSupervisor.ChildArguments(parent));

        var environment = LocalRankSupervisor.ChildEnvironment(new LocalRank(1, 3, "cuda:1", 8010, 50061, 50062), 4, "a:1,a:11,b:1,b:11");
        Assert.Equal(("3", "4", "cuda:1", "8010", "50061", "50062", "1"), (environment["DEEPSEEK_RANK"], environment["DEEPSEEK_WORLD_SIZE"], environment["DEEPSEEK_DEVICE"],
            environment["DEEPSEEK_HTTP_PORT"], environment["DEEPSEEK_GRPC_PORT"], environment["DEEPSEEK_EXPERT_PORT"], environment["DEEPSEEK_LOCAL_RANKS"]));
        // Every flag the plan sets is one a child reads from its environment.
        Assert.All(LocalRankSupervisor.PlannedFlags, flag => Assert.Contains(DeepSeek.Runtime.Cli.EnvironmentDefault.VariableFor(flag), environment.Keys));
    }
}
