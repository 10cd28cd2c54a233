using System.Diagnostics.Metrics;
using System.Net;
using DeepSeek.Runtime.Api.Auth;
using DeepSeek.Runtime.Api.Grpc;
using DeepSeek.Runtime.Api.OpenAi;
using DeepSeek.Runtime.Serving;
using DeepSeek.Engine.Telemetry;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OpenTelemetry.Metrics;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Builds the runtime's web host: HTTP/1.1 (probes, metrics, the OpenAI API) on one port and
/// HTTP/2 cleartext (gRPC) on another, as the pods the operator creates expose them.
/// </summary>
public static class RuntimeHost
{
    public const string MeterName = "DeepSeek.Runtime";

    /// <summary>Probes and metrics only, ready at startup: the host without a model.</summary>
    public static WebApplication Build(ServeSettings settings, string[]? args = null) => Build(settings, backend: null, args);

    /// <summary>
    /// The serving host: with a <paramref name="backend"/> (tests) or <see cref="ServeSettings.Engine"/>
    /// (<c>serve</c>: an <see cref="EngineBackend"/> over the real engine), the OpenAI API and the gRPC
    /// Inference service run on it, and <c>/ready</c> turns true only after the backend's warm-up.
    /// </summary>
    public static WebApplication Build(ServeSettings settings, IInferenceBackend? backend, string[]? args = null)
    {
        var address = ResolveListenAddress(settings.Host);
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        // Per-request framework logs drown the engine's own lines at serving rates.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, settings.HttpPort, o => o.Protocols = HttpProtocols.Http1);
            kestrel.Listen(address, settings.GrpcPort, o => o.Protocols = HttpProtocols.Http2);
        });

        builder.Services.AddSingleton<Readiness>();
        var apiKey = ApiKey.Resolve(settings.ApiKey, settings.ApiKeyFile);
        if (settings.Engine is { } engine)
        {
            builder.Services.AddSingleton(engine);
            // The one source of design §2.4's metrics, deepseek_requests_waiting included.
            builder.Services.AddSingleton(services => new EngineMetrics(engine.Options.ServedModelName, services.GetRequiredService<IMeterFactory>()));
            builder.Services.AddSingleton<EngineHost>();
            builder.Services.AddHostedService(services => services.GetRequiredService<EngineHost>());
            // The drain runs inside the host's shutdown; give it its timeout and a margin for the step under way.
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = engine.DrainTimeout + TimeSpan.FromSeconds(30));
        }
        var serving = backend is not null || settings.Engine is not null;
        if (serving)
        {
            if (backend is not null) builder.Services.AddSingleton(backend);
            else builder.Services.AddSingleton<IInferenceBackend>(services => new EngineBackend(services.GetRequiredService<EngineHost>(), settings.Engine!));
            builder.Services.AddSingleton(TimeProvider.System);
            builder.Services.AddSingleton(new OpenAiOptions { MaxRequestBytes = settings.MaxRequestBytes });
            // The one readiness path: ready once the backend has loaded and run its warm-up step.
            builder.Services.AddHostedService<BackendWarmUp>();
            // The API reads bodies itself under MaxRequestBytes, to answer 413 in OpenAI's shape.
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = Math.Max(settings.MaxRequestBytes + 1, 30_000_000));
        }
        builder.Services.AddSingleton(new ApiKeyInterceptor(apiKey));
        builder.Services.AddGrpc(grpc => grpc.Interceptors.Add<ApiKeyInterceptor>());
        builder.Services.AddGrpcReflection();
        builder.Services.AddSingleton<HealthServiceImpl>();
        builder.Services.AddHostedService<GrpcHealthPublisher>();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(MeterName)
            .AddPrometheusExporter());

        var app = builder.Build();
        var grpcHost = $"*:{settings.GrpcPort}";
        var httpHost = $"*:{settings.HttpPort}";

        app.MapGet("/health", () => Results.Ok(new { status = "up" })).RequireHost(httpHost);
        app.MapGet("/ready", (Readiness readiness) => readiness.IsReady
                ? Results.Ok(new { status = "ready" })
                : Results.Json(new { status = readiness.State.ToString().ToLowerInvariant() }, statusCode: StatusCodes.Status503ServiceUnavailable))
            .RequireHost(httpHost);
        app.MapPrometheusScrapingEndpoint("/metrics").RequireHost(httpHost);

        if (serving)
        {
            if (apiKey is not null) app.UseMiddleware<ApiKeyMiddleware>(apiKey, settings.HttpPort);
            app.MapOpenAi(httpHost);
            app.MapGrpcService<InferenceService>().RequireHost(grpcHost);
            // Created now so the instruments exist before the first scrape.
            if (settings.Engine is not null) app.Services.GetRequiredService<EngineMetrics>();
        }

        app.MapGrpcService<HealthServiceImpl>().RequireHost(grpcHost);
        app.MapGrpcReflectionService().RequireHost(grpcHost);

        // With a backend or an engine, readiness waits for the model to be loaded and warmed up.
        if (!serving) app.Lifetime.ApplicationStarted.Register(() => app.Services.GetRequiredService<Readiness>().MarkReady());
        app.Lifetime.ApplicationStopping.Register(() => app.Services.GetRequiredService<Readiness>().MarkDraining());
        return app;
    }

    /// <summary>Accepts an IP address or <c>localhost</c>; anything else is a configuration error worth saying so.</summary>
    public static IPAddress ResolveListenAddress(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        if (IPAddress.TryParse(host, out var address)) return address;
        throw new ArgumentException($"--host '{host}' is not an IP address; use 0.0.0.0 for all interfaces or 127.0.0.1 for loopback only.", nameof(host));
    }
}
