using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Testing;

/// <summary>
/// Kestrel on a loopback address and a free port, HTTP/2 cleartext only, serving one gRPC service
/// type of the caller's (a runtime stand-in). The service's generated base class stays in the
/// consumer, which compiles the .proto itself.
/// </summary>
public sealed class GrpcTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcTestServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>http://address:port as bound.</summary>
    public Uri Address { get; }

    public int Port => Address.Port;

    /// <param name="address">A loopback address (127.0.0.N, as a pod has its own IP).</param>
    /// <param name="services">Registers what <typeparamref name="TService"/> needs (its state, its answers).</param>
    public static async Task<GrpcTestServer> StartAsync<TService>(IPAddress address, Action<IServiceCollection> services)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(address, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        services(builder.Services);
        var app = builder.Build();
        app.MapGrpcService<TService>();
        await app.StartAsync().ConfigureAwait(false);
        var bound = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new GrpcTestServer(app, new Uri(bound));
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(stop.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
