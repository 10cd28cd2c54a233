using DeepSeek.Autoscaling.Tests.Infrastructure;
using DeepSeek.Operator.Autoscaling;
using DeepSeek.Runtime.Grpc.V1;

namespace DeepSeek.Autoscaling.Tests.Load;

/// <summary>The gRPC load source against real servers on 127.0.0.1.</summary>
public class ReplicaLoadSourceTests
{
    private const string Model = "serving/deepseek-v3";

    // Generous: these tests check outcomes, not speed, on a shared 2-core machine.
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Reads_ready_not_ready_and_unreachable_replicas_in_order()
    {
        await using var ready = await FakeRuntimeServer.AnsweringAsync(new LoadReport
        {
            Waiting = 7, Running = 3, KvCacheUsage = 0.42, RecentTokensPerSecond = 123.5, Ready = true,
            MaxRunningRequests = 16, MaxQueuedRequests = 64,
        });
        await using var loading = await FakeRuntimeServer.AnsweringAsync(new LoadReport { Waiting = 0, Running = 0, Ready = false });
        var nobody = new Uri($"http://127.0.0.1:{FreePort.Next()}");
        using var source = new ReplicaLoadSource(CallTimeout);

        var loads = await source.ReadAsync(Model,
        [
            new ReplicaEndpoint("m-0", ready.Address),
            new ReplicaEndpoint("m-1", loading.Address),
            new ReplicaEndpoint("m-2", nobody),
            new ReplicaEndpoint("m-3", null),
        ], CancellationToken.None);

        Assert.Equal(["m-0", "m-1", "m-2", "m-3"], loads.Select(l => l.Name));
        Assert.Equal(ReplicaLoadState.Ready, loads[0].State);
        Assert.Equal(new LoadSnapshot(7, 3, 0.42, 123.5, 16, 64), loads[0].Load);
        Assert.Equal(ReplicaLoadState.NotReady, loads[1].State);
        Assert.Equal(ReplicaLoadState.Unreachable, loads[2].State);
        Assert.Null(loads[2].Load);
        Assert.Contains("unavailable", loads[2].Detail, StringComparison.Ordinal);
        Assert.Equal(ReplicaLoadState.Unreachable, loads[3].State);
        Assert.Contains("no address yet", loads[3].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_replica_slower_than_the_timeout_is_unreachable()
    {
        await using var slow = await FakeRuntimeServer.StartAsync(async context =>
        {
            // Answers only when the client's deadline cancels the call (bounded, so it never lingers).
            await Task.Delay(TimeSpan.FromSeconds(60), context.CancellationToken);
            return new LoadReport { Ready = true };
        });
        using var source = new ReplicaLoadSource(TimeSpan.FromMilliseconds(500));

        var loads = await source.ReadAsync(Model,
            [new ReplicaEndpoint("slow", slow.Address)], CancellationToken.None);

        Assert.Equal(ReplicaLoadState.Unreachable, loads[0].State);
        Assert.Contains("did not answer within 0.5 s", loads[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Channels_are_reused_between_polls_and_closed_when_the_replica_is_gone()
    {
        await using var first = await FakeRuntimeServer.AnsweringAsync(new LoadReport { Waiting = 1, Ready = true });
        await using var second = await FakeRuntimeServer.AnsweringAsync(new LoadReport { Waiting = 2, Ready = true });
        using var source = new ReplicaLoadSource(CallTimeout);
        ReplicaEndpoint[] both = [new("a", first.Address), new("b", second.Address)];

        await source.ReadAsync(Model, both, CancellationToken.None);
        await source.ReadAsync(Model, both, CancellationToken.None);

        // Two polls, one HTTP/2 connection per server.
        Assert.Equal(2, first.ConnectionIds.Count);
        Assert.Single(first.ConnectionIds.Distinct());
        Assert.Equal(new HashSet<Uri> { first.Address, second.Address }, source.OpenChannels(Model).ToHashSet());

        var loads = await source.ReadAsync(Model, [new ReplicaEndpoint("b", second.Address)], CancellationToken.None);
        Assert.Equal(2, loads.Single().Load!.Waiting);
        Assert.Equal([second.Address], source.OpenChannels(Model));

        source.Forget(Model);
        Assert.Empty(source.OpenChannels(Model));
    }

    [Fact]
    public async Task Cancellation_by_the_caller_is_not_reported_as_an_unreachable_replica()
    {
        await using var slow = await FakeRuntimeServer.StartAsync(async context =>
        {
            await Task.Delay(TimeSpan.FromSeconds(60), context.CancellationToken);
            return new LoadReport();
        });
        using var source = new ReplicaLoadSource(CallTimeout);
        using var cancel = new CancellationTokenSource();
        var read = source.ReadAsync(Model, [new ReplicaEndpoint("slow", slow.Address)], cancel.Token);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read);
    }

    [Theory]
    [InlineData("10.1.2.3", 50051, "http://10.1.2.3:50051/")]
    [InlineData("fd00::12", 50051, "http://[fd00::12]:50051/")]
    public void Pod_addresses_become_h2c_urls(string podIp, int port, string expected)
    {
        Assert.Equal(new Uri(expected), ReplicaEndpoint.ForPod("m-0", podIp, port).Address);
    }

    [Fact]
    public void A_pod_without_an_ip_has_no_address_and_a_bad_ip_is_an_error()
    {
        Assert.Null(ReplicaEndpoint.ForPod("m-0", null, 50051).Address);
        var error = Assert.Throws<ArgumentException>(() => ReplicaEndpoint.ForPod("m-0", "not-an-ip", 50051));
        Assert.Contains("Pod m-0 has IP 'not-an-ip'", error.Message, StringComparison.Ordinal);
    }
}
