using DeepSeek.Contract;
using DeepSeek.Runtime.Api;
using System.Diagnostics.Metrics;
using System.Text.Json.Serialization;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Runtime.Api.Auth;
using DeepSeek.Runtime.Api.Grpc;
using DeepSeek.Runtime.Api.OpenAi;
using DeepSeek.Runtime.Serving;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Metrics;

namespace DeepSeek.Runtime.Hosting;

/// <summary>The runtime's wiring, one extension per concern, in the order <see cref="RuntimeHost.Build"/> applies them.</summary>
public static partial class HostingExtensions
{
    /// <summary>
    /// The two listeners (each connection tagged with its <see cref="ApiFace"/>), routing by face,
    /// readiness, gRPC with its key interceptor and health, and the Prometheus exporter.
    /// </summary>
    /// <exception cref="InvalidOperationException">The API key settings are contradictory or the key file is unusable.</exception>
    public static WebApplicationBuilder AddRuntimeHost(this WebApplicationBuilder builder, ServeConfiguration settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        var address = RuntimeHost.ResolveListenAddress(settings.Host);
        // Per-request framework logs drown the engine's own lines at serving rates.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, settings.HttpPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                listen.UseFace(ApiFace.Http);
            });
            kestrel.Listen(address, settings.GrpcPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.UseFace(ApiFace.Grpc);
            });
        });
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ApiFaceMatcherPolicy>());
        builder.Services.AddSingleton<Readiness>();

        var apiKey = ApiKey.Resolve(settings.ApiKey, settings.ApiKeyFile);
        if (apiKey is not null) builder.Services.AddSingleton(apiKey);
        builder.Services.AddSingleton(new ApiKeyInterceptor(apiKey));
        // The fault mapping first, so that it is outermost and sees what every handler and later interceptor throws.
        builder.Services.AddGrpc(grpc =>
        {
            grpc.Interceptors.Add<ServerFaultInterceptor>();
            grpc.Interceptors.Add<ApiKeyInterceptor>();
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddSingleton<HealthServiceImpl>();
        builder.Services.AddHostedService<GrpcHealthPublisher>();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(RuntimeHost.MeterName)
            .AddPrometheusExporter());
        return builder;
    }

    /// <summary>
    /// The model behind the APIs: <paramref name="backend"/> when given (tests), else the
    /// <see cref="EngineService"/> over <paramref name="model"/>; the replica turns ready after
    /// its warm-up. False when there is neither (a host of probes and metrics only).
    /// </summary>
    public static bool AddInferenceEngine(this WebApplicationBuilder builder, ServeConfiguration settings, ModelFolder? model, IInferenceBackend? backend = null,
        DeepSeek.Model.Lora.LoraAdapterSet? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        var services = builder.Services;
        if (backend is not null)
        {
            services.AddSingleton(backend);
        }
        else if (model is not null)
        {
            services.AddSingleton(settings);
            services.AddSingleton(model);
            if (adapters is not null) services.AddSingleton(adapters);
            services.AddSingleton(provider => new EngineMetrics(settings.Engine.ServedModelName, provider.GetRequiredService<IMeterFactory>()));
            services.AddSingleton<EngineService>();
            services.AddSingleton<IInferenceBackend>(provider => provider.GetRequiredService<EngineService>());
            services.AddHostedService(provider => provider.GetRequiredService<EngineService>());
            // The drain runs inside the host's shutdown; give it its timeout and a margin for the step under way.
            services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.DrainTimeout + TimeSpan.FromSeconds(30));
        }
        else
        {
            return false;
        }
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(new OpenAiOptions { MaxRequestBytes = settings.MaxRequestBytes, LoraUpdates = settings.EnableLoraUpdates });
        services.AddHostedService<BackendWarmUp>();
        // The API reads bodies itself under MaxRequestBytes, to answer 413 in OpenAI's shape.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = Math.Max(settings.MaxRequestBytes + 1, 30_000_000));
        return true;
    }

    /// <summary>With a key configured, endpoints marked <see cref="ApiKeyRequired"/> need it; runs after routing picked the endpoint.</summary>
    public static WebApplication UseApiKey(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (app.Services.GetService<ApiKey>() is { } key) app.UseMiddleware<ApiKeyMiddleware>(key);
        return app;
    }

    /// <summary>What the probes and <c>/metrics</c> answer (HEAD as GET, without the body); another method is 405 with this <c>Allow</c>.</summary>
    private static readonly string[] ReadOnlyMethods = [HttpMethods.Get, HttpMethods.Head];

    /// <summary>
    /// <c>/health</c>, <c>/ready</c> and <c>/metrics</c> on the HTTP listener, open without a key (kubelet
    /// and Prometheus carry none). Without a model the host is ready as soon as it listens.
    /// </summary>
    public static WebApplication MapProbes(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapMethods(RuntimeContract.HealthPath, ReadOnlyMethods, () => Results.Json(new ProbeStatus("up"), ProbeJsonContext.Default.ProbeStatus)).RequireFace(ApiFace.Http);
        app.MapMethods(RuntimeContract.ReadyPath, ReadOnlyMethods, (Readiness readiness) => Results.Json(
                new ProbeStatus(readiness.State == ReadinessState.WaitingForRanks ? "waiting_for_ranks" : readiness.State.ToString().ToLowerInvariant(), readiness.MissingRanks),
                ProbeJsonContext.Default.ProbeStatus,
                statusCode: readiness.IsReady ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable))
            .RequireFace(ApiFace.Http);
        // The exporter maps every method; a POST that scrapes is a client's mistake that deserves its 405.
        app.MapPrometheusScrapingEndpoint("/metrics").WithMetadata(new HttpMethodMetadata(ReadOnlyMethods)).RequireFace(ApiFace.Http);

        var readiness = app.Services.GetRequiredService<Readiness>();
        // A model (or a rank's expert shard) turns the replica ready once loaded; a host of probes alone is ready when it listens.
        if (app.Services.GetService<IInferenceBackend>() is null && app.Services.GetService<Experts.RankExperts>() is null)
            app.Lifetime.ApplicationStarted.Register(readiness.MarkReady);
        // Created now so the instruments exist before the first scrape.
        _ = app.Services.GetService<EngineMetrics>();
        app.Lifetime.ApplicationStopping.Register(readiness.MarkDraining);
        return app;
    }

    /// <summary>
    /// Says once at start which runtime this is, and when listening which port serves what: a replica's
    /// APIs and whether they need a key, or, on an expert-parallel rank other than the leader, its expert
    /// listener and probes (a rank serves no OpenAI API and no Inference service, so says nothing of a key).
    /// </summary>
    public static WebApplication LogListeners(this WebApplication app, ServeConfiguration settings, bool serving, bool rank)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(settings);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("DeepSeek.Runtime.Hosting");
        LogVersion(logger, RuntimeHost.Version);
        var keyed = app.Services.GetService<ApiKey>() is not null;
        var parallel = settings.Parallel;
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            if (rank) LogListeningRank(logger, settings.Host, parallel.Rank, parallel.WorldSize, parallel.ExpertPort, settings.HttpPort, settings.GrpcPort);
            else if (serving) LogListening(logger, settings.Host, settings.HttpPort, settings.GrpcPort,
                keyed ? "required on /v1/* and gRPC Inference (GetLoad open)" : "not set: the API is open");
            else LogListeningProbes(logger, settings.Host, settings.HttpPort, settings.GrpcPort);
        });
        return app;
    }

    /// <summary>Says once at start how many intra-op threads LibTorch got, and why.</summary>
    public static WebApplication LogCpuThreads(this WebApplication app, CpuThreads threads)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(threads);
        LogCpuThreads(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("DeepSeek.Runtime.Hosting"), threads);
        return app;
    }

    /// <summary>The same line through <paramref name="logger"/> (<c>generate</c>'s stderr log).</summary>
    public static void LogCpuThreads(ILogger logger, CpuThreads threads)
    {
        ArgumentNullException.ThrowIfNull(threads);
        LogThreads(logger, threads.Threads, threads.Reason);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "CPU intra-op threads: {Threads} ({Reason})")]
    private static partial void LogThreads(ILogger logger, int threads, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "DeepSeek runtime {Version}")]
    private static partial void LogVersion(ILogger logger, string version);

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening on {Host}: HTTP/1.1 port {HttpPort} (OpenAI API /v1, /health, /ready, /metrics); gRPC h2c port {GrpcPort} (deepseek.runtime.v1.Inference, grpc.health.v1, reflection); API key {Key}")]
    private static partial void LogListening(ILogger logger, string host, int httpPort, int grpcPort, string key);

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening on {Host} as expert-parallel rank {Rank} of {WorldSize}: h2c port {ExpertPort} (deepseek.runtime.v1.Experts for the leader, group token required); HTTP/1.1 port {HttpPort} (/health, /ready, /metrics); gRPC h2c port {GrpcPort} (grpc.health.v1, reflection). No OpenAI API or Inference service here: clients call the leader, rank 0")]
    private static partial void LogListeningRank(ILogger logger, string host, int rank, int worldSize, int expertPort, int httpPort, int grpcPort);

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening on {Host}: HTTP/1.1 port {HttpPort} (/health, /ready, /metrics); gRPC h2c port {GrpcPort} (grpc.health.v1, reflection); no model, so no API")]
    private static partial void LogListeningProbes(ILogger logger, string host, int httpPort, int grpcPort);
}

/// <summary>The body of <c>/health</c> and <c>/ready</c>: the state, and why it is not ready where there is more to say (a missing rank).</summary>
public sealed record ProbeStatus(string Status, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Reason = null);

/// <summary>Source-generated, so the trimmed bundle can serialize its probes (reflection metadata is trimmed away).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ProbeStatus))]
internal sealed partial class ProbeJsonContext : JsonSerializerContext;
