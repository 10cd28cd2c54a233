using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using k8s;

namespace DeepSeek.Gateway.Tests.Infrastructure;

/// <summary>The gateway in this test process on a free loopback port, over a configuration given as YAML (parsed and validated as <c>--config</c> does).</summary>
public sealed class RunningGateway : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RunningGateway(WebApplication app, string url)
    {
        _app = app;
        Url = url;
        Http = new HttpClient { BaseAddress = new Uri(url), Timeout = TestTime.Budget(TimeSpan.FromSeconds(60)) };
    }

    public string Url { get; }

    public HttpClient Http { get; }

    /// <summary>The services of the gateway (its model table, key table), for tests that wait on what it has taken in.</summary>
    internal IServiceProvider Services => _app.Services;

    internal static async Task<RunningGateway> StartAsync(string yaml, IKubernetes? kubernetes = null)
    {
        var config = ConfigFile.Parse(yaml);
        var app = GatewayHost.Build(config, port: 0, kubernetes: kubernetes);
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        var gateway = new RunningGateway(app, url.TrimEnd('/'));
        if (kubernetes is not null)
        {
            // In a cluster, ready once the models and keys have been read from the API server.
            await Eventually.HoldsAsync(async () =>
            {
                using var ready = await gateway.Http.GetAsync(new Uri("/ready", UriKind.Relative));
                return ready.IsSuccessStatusCode;
            }, TimeSpan.FromSeconds(30), "the gateway to read the cluster (/ready 200)");
        }
        return gateway;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}
