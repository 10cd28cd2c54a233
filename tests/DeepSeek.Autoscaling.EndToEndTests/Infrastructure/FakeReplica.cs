using System.Net;
using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace DeepSeek.Autoscaling.EndToEndTests.Infrastructure;

/// <summary>
/// A runtime stand-in on its own loopback address (127.0.0.N, as a pod has its own IP): a
/// <see cref="GrpcTestServer"/> serving the real <c>Inference</c> contract, GetLoad answering the queue the test sets.
/// </summary>
public sealed class FakeReplica : IAsyncDisposable
{
    private readonly GrpcTestServer server;
    private readonly LoadState state;

    private FakeReplica(GrpcTestServer server, LoadState state, IPAddress address)
    {
        this.server = server;
        this.state = state;
        Address = address;
    }

    public IPAddress Address { get; }
    public int Port => server.Port;

    /// <summary>Requests admitted and waiting; what the autoscaler compares with the target.</summary>
    public int Waiting { get => state.Waiting; set => state.Waiting = value; }
    public int Running { get => state.Running; set => state.Running = value; }

    /// <summary>How many GetLoad calls arrived.</summary>
    public int Calls => state.Calls;

    public static async Task<FakeReplica> StartAsync(IPAddress address)
    {
        var state = new LoadState();
        var server = await GrpcTestServer.StartAsync<Service>(address, services => services.AddSingleton(state));
        return new FakeReplica(server, state, address);
    }

    public ValueTask DisposeAsync() => server.DisposeAsync();

    internal sealed class LoadState
    {
        private int waiting;
        private int running;
        private int calls;

        public int Waiting { get => Volatile.Read(ref waiting); set => Volatile.Write(ref waiting, value); }
        public int Running { get => Volatile.Read(ref running); set => Volatile.Write(ref running, value); }
        public int Calls => Volatile.Read(ref calls);

        public LoadReport Report()
        {
            Interlocked.Increment(ref calls);
            return new LoadReport { Ready = true, Waiting = Waiting, Running = Running, MaxRunningRequests = 1, MaxQueuedRequests = 64 };
        }
    }

    private sealed class Service(LoadState state) : Inference.InferenceBase
    {
        public override Task<LoadReport> GetLoad(GetLoadRequest request, ServerCallContext context) => Task.FromResult(state.Report());
    }
}
