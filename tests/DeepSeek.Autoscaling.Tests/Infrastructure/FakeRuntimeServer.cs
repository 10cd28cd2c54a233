using System.Collections.Concurrent;
using System.Net;
using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace DeepSeek.Autoscaling.Tests.Infrastructure;

/// <summary>
/// A runtime stand-in: a <see cref="GrpcTestServer"/> on 127.0.0.1 serving the real <c>Inference</c>
/// contract, with GetLoad answered by the function given to <see cref="StartAsync"/>.
/// </summary>
internal sealed class FakeRuntimeServer : IAsyncDisposable
{
    private readonly GrpcTestServer server;

    private FakeRuntimeServer(GrpcTestServer server, Calls calls)
    {
        this.server = server;
        ConnectionIds = calls.ConnectionIds;
    }

    public Uri Address => server.Address;

    /// <summary>The HTTP/2 connection each GetLoad arrived on, in order.</summary>
    public ConcurrentQueue<string> ConnectionIds { get; }

    public static async Task<FakeRuntimeServer> StartAsync(Func<ServerCallContext, Task<LoadReport>> getLoad)
    {
        var calls = new Calls(getLoad);
        var server = await GrpcTestServer.StartAsync<FakeInference>(IPAddress.Loopback, services => services.AddSingleton(calls));
        return new FakeRuntimeServer(server, calls);
    }

    public static Task<FakeRuntimeServer> AnsweringAsync(LoadReport report) => StartAsync(_ => Task.FromResult(report));

    public ValueTask DisposeAsync() => server.DisposeAsync();

    internal sealed class Calls(Func<ServerCallContext, Task<LoadReport>> getLoad)
    {
        public Func<ServerCallContext, Task<LoadReport>> GetLoad { get; } = getLoad;
        public ConcurrentQueue<string> ConnectionIds { get; } = new();
    }

    private sealed class FakeInference(Calls calls) : Inference.InferenceBase
    {
        public override Task<LoadReport> GetLoad(GetLoadRequest request, ServerCallContext context)
        {
            calls.ConnectionIds.Enqueue(context.GetHttpContext().Connection.Id);
            return calls.GetLoad(context);
        }
    }
}
