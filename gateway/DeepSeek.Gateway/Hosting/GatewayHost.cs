using System.Net;
using System.Reflection;
using DeepSeek.Contract;
using DeepSeek.Gateway.Api;
using DeepSeek.Gateway.Audit;
using DeepSeek.Gateway.Cluster;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Keys;
using DeepSeek.Gateway.Telemetry;
using DeepSeek.Gateway.Upstream;
using k8s;
using OpenTelemetry.Metrics;

namespace DeepSeek.Gateway.Hosting;

/// <summary>The gateway's web host: one HTTP/1.1 listener, the routes, and the services behind them.</summary>
internal static partial class GatewayHost
{
    /// <summary>The OpenAI API version the gateway speaks (its paths' prefix).</summary>
    public const string ApiVersion = "v1";

    public static string Version { get; } =
        typeof(GatewayHost).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private static readonly string[] ReadOnlyMethods = [HttpMethods.Get, HttpMethods.Head];

    /// <summary>The OpenAI calls forwarded to the runtimes, each routed by its body's <c>model</c>.</summary>
    private static readonly string[] ProxiedPaths = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

    /// <summary>
    /// The host over <paramref name="config"/>. <paramref name="time"/> is the clock of hold, cache expiry,
    /// rate windows and latency (tests pass a fake one); <paramref name="port"/> overrides <c>listen.port</c>
    /// (tests: 0 for any free port); <paramref name="args"/> go to the host builder. With <c>cluster:</c>,
    /// <paramref name="kubernetes"/> is the API server the models, pods and key Secrets are read from.
    /// </summary>
    public static WebApplication Build(GatewayConfig config, TimeProvider? time = null, int? port = null, string[]? args = null, IKubernetes? kubernetes = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Cluster is not null && kubernetes is null) throw new ArgumentException("cluster: needs a Kubernetes client.", nameof(kubernetes));
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Yarp", LogLevel.Warning);
        var address = config.Listen.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(config.Listen.Host);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, port ?? config.Listen.Port);
            // Bodies are read under maxRequestBytes by the gateway itself, to answer 413 in OpenAI's shape.
            kestrel.Limits.MaxRequestBodySize = Math.Max(config.MaxRequestBytes + 1, 30_000_000);
        });
        var services = builder.Services;
        time ??= TimeProvider.System;
        services.AddSingleton(time);
        services.AddSingleton(config);
        services.AddSingleton<KeyLimits>();
        if (config.Cluster is { } cluster)
        {
            services.AddSingleton(kubernetes!);
            services.AddSingleton(cluster);
            services.AddSingleton(provider => new ModelTable(provider.GetRequiredService<TimeProvider>()));
            services.AddSingleton<ModelDiscovery>();
            services.AddHostedService(provider => provider.GetRequiredService<ModelDiscovery>());
            if (cluster.ScaleFromZero) services.AddSingleton<ScaleFromZero>();
            // Keys from Secrets: closed until they are read, so that no caller is let in meanwhile.
            services.AddSingleton(new KeyTable(config.Keys, closed: cluster.KeySecrets.Count > 0));
            if (cluster.KeySecrets.Count > 0)
            {
                services.AddSingleton<KeySecrets>();
                services.AddHostedService(provider => provider.GetRequiredService<KeySecrets>());
            }
        }
        else
        {
            services.AddSingleton(new KeyTable(config.Keys));
            services.AddSingleton(provider => new ModelTable(config, provider.GetRequiredService<TimeProvider>()));
        }
        services.AddSingleton<UpstreamClient>();
        services.AddHttpForwarder();
        services.AddSingleton(new ReadinessProbe(new HttpClient(new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(2) })));
        services.AddHostedService<ReadinessMonitor>();
        services.AddHostedService(provider => new RuntimeLoadMonitor(provider.GetRequiredService<ModelTable>(),
            new HttpClient(new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(1) }), provider.GetRequiredService<TimeProvider>()));
        services.AddSingleton(provider => new AuditLog(config.Audit?.Path, provider.GetRequiredService<ILogger<AuditLog>>()));
        services.AddHostedService(provider => provider.GetRequiredService<AuditLog>());
        services.AddSingleton<GatewayMetrics>();
        services.AddSingleton<ProxyEndpoint>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(GatewayMetrics.MeterName).AddPrometheusExporter());

        var app = builder.Build();
        app.MapMethods(RuntimeContract.HealthPath, ReadOnlyMethods, () => Results.Json(new ProbeStatus("up"), GatewayJsonContext.Default.ProbeStatus));
        // Ready once listening, and in a cluster once the models and keys have been read: a model with no ready
        // endpoint is the hold's business (held, then 503), not a reason to take the gateway out of its Service.
        var read = Task.WhenAll(new Task?[] { app.Services.GetService<ModelDiscovery>()?.Synced, app.Services.GetService<KeySecrets>()?.Synced }.OfType<Task>());
        app.MapMethods(RuntimeContract.ReadyPath, ReadOnlyMethods, () => read.IsCompletedSuccessfully
            ? Results.Json(new ProbeStatus("ready"), GatewayJsonContext.Default.ProbeStatus)
            : Results.Json(new ProbeStatus("reading the cluster"), GatewayJsonContext.Default.ProbeStatus, statusCode: StatusCodes.Status503ServiceUnavailable));
        app.MapPrometheusScrapingEndpoint("/metrics").WithMetadata(new HttpMethodMetadata(ReadOnlyMethods));
        app.MapMethods("/version", ReadOnlyMethods, () => Results.Json(new VersionInfo(Version, ApiVersion), GatewayJsonContext.Default.VersionInfo));
        app.MapGet("/v1/models", (HttpContext context, KeyTable keys, ModelTable models) => ModelsEndpoint.ListAsync(context, keys, models));
        app.MapGet("/v1/models/{id}", (HttpContext context, string id, KeyTable keys, ModelTable models) => ModelsEndpoint.GetAsync(context, id, keys, models));
        foreach (var path in ProxiedPaths)
            app.MapPost(path, (HttpContext context, ProxyEndpoint proxy) => proxy.HandleAsync(context));
        // Everything else under /v1 in OpenAI's shape too: another method on a proxied path (405 with Allow), or an unknown path.
        app.Map("/v1/{**rest}", (HttpContext context) =>
        {
            if (!ProxiedPaths.Contains(context.Request.Path.Value, StringComparer.Ordinal))
                return GatewayError.UnknownUrl(context.Request.Path).WriteAsync(context);
            context.Response.Headers.Allow = HttpMethods.Post;
            return GatewayError.WrongMethod(context.Request.Method, context.Request.Path).WriteAsync(context);
        });
        // Created now so the instruments exist before the first scrape.
        _ = app.Services.GetRequiredService<GatewayMetrics>();
        return app;
    }

    /// <summary>Says once at start what listens where and what it serves.</summary>
    public static void LogStart(WebApplication app, GatewayConfig config)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(config);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("DeepSeek.Gateway");
        var models = config.Cluster is { } cluster
            ? "discovered in " + (cluster.Namespaces.Count == 0 ? "every namespace" : "namespaces " + string.Join(", ", cluster.Namespaces))
            : string.Join(", ", config.Models.Select(m => m.Name));
        var keys = config.Cluster is { KeySecrets.Count: > 0 } withSecrets ? "from Secrets " + string.Join(", ", withSecrets.KeySecrets)
            : config.Keys.Count == 0 ? "none: open" : config.Keys.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        LogListening(logger, Version, config.Listen.Host, config.Listen.Port, models, keys);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "DeepSeek gateway {Version} listening on {Host}:{Port}; models: {Models}; keys: {Keys}")]
    private static partial void LogListening(ILogger logger, string version, string host, int port, string models, string keys);
}
