using System.Net;
using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Autoscaling.EndToEndTests.Infrastructure;

/// <summary>
/// A runtime stand-in on its own loopback address (127.0.0.N, as a pod has its own IP): Kestrel,
/// HTTP/2 cleartext, the real <c>Inference</c> contract, GetLoad answering the queue the test sets.
/// </summary>
public sealed class FakeReplica : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly LoadState state;

    private FakeReplica(WebApplication app, LoadState state, IPAddress address, int port)
    {
        this.app = app;
        this.state = state;
        Address = address;
        Port = port;
    }

    public IPAddress Address { get; }
    public int Port { get; }

    /// <summary>Requests admitted and waiting; what the autoscaler compares with the target.</summary>
    public int Waiting { get => state.Waiting; set => state.Waiting = value; }
    public int Running { get => state.Running; set => state.Running = value; }

    /// <summary>How many GetLoad calls arrived.</summary>
    public int Calls => state.Calls;

    public static async Task<FakeReplica> StartAsync(IPAddress address)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(address, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        var state = new LoadState();
        builder.Services.AddSingleton(state);
        var app = builder.Build();
        app.MapGrpcService<Service>();
        await app.StartAsync();
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single());
        return new FakeReplica(app, state, address, bound.Port);
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await app.StopAsync(stop.Token);
        await app.DisposeAsync();
    }

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
