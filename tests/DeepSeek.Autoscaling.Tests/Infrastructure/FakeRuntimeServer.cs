using System.Collections.Concurrent;
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

namespace DeepSeek.Autoscaling.Tests.Infrastructure;

/// <summary>
/// A runtime stand-in: Kestrel on 127.0.0.1 (a free port), HTTP/2 cleartext only, serving the real
/// <c>Inference</c> contract with GetLoad answered by the function given to <see cref="StartAsync"/>.
/// </summary>
internal sealed class FakeRuntimeServer : IAsyncDisposable
{
    private readonly WebApplication app;

    private FakeRuntimeServer(WebApplication app, Uri address, Calls calls)
    {
        this.app = app;
        Address = address;
        ConnectionIds = calls.ConnectionIds;
    }

    public Uri Address { get; }

    /// <summary>The HTTP/2 connection each GetLoad arrived on, in order.</summary>
    public ConcurrentQueue<string> ConnectionIds { get; }

    public static async Task<FakeRuntimeServer> StartAsync(Func<ServerCallContext, Task<LoadReport>> getLoad)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        var calls = new Calls(getLoad);
        builder.Services.AddSingleton(calls);
        var app = builder.Build();
        app.MapGrpcService<FakeInference>();
        await app.StartAsync();
        var bound = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new FakeRuntimeServer(app, new Uri(bound.Replace("[::]", "127.0.0.1", StringComparison.Ordinal)), calls);
    }

    public static Task<FakeRuntimeServer> AnsweringAsync(LoadReport report) => StartAsync(_ => Task.FromResult(report));

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await app.StopAsync(stop.Token);
        await app.DisposeAsync();
    }

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
