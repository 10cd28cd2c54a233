using System.Net.Http.Headers;
using DeepSeek.Api.Tests.Backend;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Runtime.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace DeepSeek.Api.Tests.Infrastructure;

/// <summary>The real runtime host on loopback ports with a <see cref="TestBackend"/>, ready when started.</summary>
public sealed class RunningServer : IAsyncDisposable
{
    public const string Key = "test-key-0123456789";

    private RunningServer(WebApplication app, ServeConfiguration settings, TestBackend backend)
    {
        App = app;
        Settings = settings;
        Backend = backend;
        Http = new HttpClient { BaseAddress = new Uri(HttpUrl), Timeout = TimeSpan.FromSeconds(60) };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
    }

    public WebApplication App { get; }
    public ServeConfiguration Settings { get; }
    public TestBackend Backend { get; }
    /// <summary>Sends the API key on every request.</summary>
    public HttpClient Http { get; }
    public string HttpUrl => $"http://127.0.0.1:{Settings.HttpPort}";
    public string GrpcAddress => $"127.0.0.1:{Settings.GrpcPort}";
    public Readiness Readiness => App.Services.GetRequiredService<Readiness>();

    public static async Task<RunningServer> StartAsync(TestBackend? backend = null, bool warmUp = true, long maxRequestBytes = 64 * 1024)
    {
        backend ??= new TestBackend();
        if (warmUp) backend.WarmUpGate.TrySetResult();
        var settings = new ServeConfiguration { Host = "127.0.0.1", HttpPort = FreePort.Next(), GrpcPort = FreePort.Next(), ApiKey = Key, MaxRequestBytes = maxRequestBytes };
        var app = RuntimeHost.Build(settings, backend: backend);
        await app.StartAsync();
        var server = new RunningServer(app, settings, backend);
        if (warmUp) await server.WaitReadyAsync();
        return server;
    }

    public async Task WaitReadyAsync()
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            if (Readiness.IsReady) return;
            await Task.Delay(25);
        }
        throw new TimeoutException("The server did not become ready within 5 s.");
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
