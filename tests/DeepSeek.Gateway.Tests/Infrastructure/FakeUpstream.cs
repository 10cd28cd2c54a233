using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Gateway.Tests.Infrastructure;

/// <summary>
/// A runtime stand-in on a loopback port, for what a real runtime cannot be made to do on cue: answer
/// <c>/ready</c> 503 until told, hang past a timeout, or stream one event and wait. What it does depends
/// on the <c>model</c> it is sent: <c>slow</c> hangs until the request is cancelled, <c>stream</c> sends
/// one event and then waits for <see cref="ReleaseStream"/> or cancellation, anything else answers a
/// canned completion at once (503 while not <see cref="Ready"/>, as a loading runtime does).
/// </summary>
internal sealed class FakeUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;
    private int _readyProbes;
    private int _cancelled;
    private TaskCompletionSource _streamRelease = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private FakeUpstream(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public volatile bool Ready = true;

    /// <summary>Drops every API connection before answering (while <c>/ready</c> still says 200): a replica that fails under the gateway's feet.</summary>
    public volatile bool ResetConnections;

    /// <summary>Answers the API 503 while <c>/ready</c> says 200: a replica that started draining between two probes.</summary>
    public volatile bool ApiUnavailable;

    /// <summary>Requests waiting that its <c>/metrics</c> reports, as a runtime's does; negative: no <c>/metrics</c> (404).</summary>
    public volatile int ReportedWaiting = -1;

    public int Requests => Volatile.Read(ref _requests);

    public int ReadyProbes => Volatile.Read(ref _readyProbes);

    /// <summary>Requests whose cancellation (the gateway giving up, or its client leaving) reached this upstream.</summary>
    public int Cancelled => Volatile.Read(ref _cancelled);

    public string? LastAuthorization { get; private set; }

    public void ReleaseStream() => _streamRelease.TrySetResult();

    public static async Task<FakeUpstream> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        var fake = new FakeUpstream(app);
        app.MapGet("/ready", () =>
        {
            Interlocked.Increment(ref fake._readyProbes);
            return fake.Ready ? Results.Ok() : Results.StatusCode(503);
        });
        app.MapGet("/metrics", () => fake.ReportedWaiting is var waiting and >= 0
            ? Results.Text($"# HELP deepseek_requests_waiting Requests admitted and waiting.\n# TYPE deepseek_requests_waiting gauge\n"
                + $"deepseek_requests_waiting{{otel_scope_name=\"DeepSeek.Engine\",model=\"m\"}} {waiting}\n"
                + "# TYPE deepseek_requests_running gauge\ndeepseek_requests_running{otel_scope_name=\"DeepSeek.Engine\",model=\"m\"} 1\n", "text/plain; version=0.0.4")
            : Results.NotFound());
        app.MapPost("/v1/{**path}", fake.HandleAsync);
        await app.StartAsync();
        fake.Url = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single().TrimEnd('/');
        return fake;
    }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        LastAuthorization = context.Request.Headers.Authorization.ToString();
        if (ResetConnections)
        {
            context.Abort();
            return;
        }
        using var body = await JsonDocument.ParseAsync(context.Request.Body);
        var model = body.RootElement.GetProperty("model").GetString();
        if (!Ready || ApiUnavailable)
        {
            context.Response.StatusCode = 503;
            await context.Response.WriteAsync("""{"error":{"message":"loading","type":"service_unavailable_error","param":null,"code":"loading"}}""");
            return;
        }
        try
        {
            switch (model)
            {
                case "slow":
                    await Task.Delay(Timeout.Infinite, context.RequestAborted);
                    break;
                case "stream":
                    context.Response.ContentType = "text/event-stream";
                    await context.Response.WriteAsync("data: {\"choices\":[{\"index\":0,\"text\":\"first\"}]}\n\n", context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    await _streamRelease.Task.WaitAsync(context.RequestAborted);
                    await context.Response.WriteAsync("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\ndata: [DONE]\n\n", context.RequestAborted);
                    break;
                default:
                    context.Response.ContentType = "application/json";
                    await context.Response.WriteAsync(
                        $$$"""{"id":"x","object":"chat.completion","model":"{{{model}}}","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}""",
                        Encoding.UTF8, context.RequestAborted);
                    break;
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            Interlocked.Increment(ref _cancelled);
        }
    }

    public async ValueTask DisposeAsync()
    {
        ReleaseStream();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}
