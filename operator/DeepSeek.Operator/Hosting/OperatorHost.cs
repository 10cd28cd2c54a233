using DeepSeek.Operator.Autoscaling;
using DeepSeek.Operator.Cluster;
using DeepSeek.Operator.Controller;
using DeepSeek.Operator.Leadership;
using k8s;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace DeepSeek.Operator.Hosting;

/// <summary>
/// The running operator: health and metrics endpoints, leader election, and the controller while leading.
/// </summary>
public sealed class OperatorHost(IKubernetes client, OperatorOptions options, TimeProvider time, ILoggerFactory loggers) : IDisposable
{
    private readonly OperatorMetrics metrics = new();
    // The autoscaler's instruments come from a meter factory; the exporter picks meters up by name.
    private readonly ServiceProvider meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private AutoscalingMetrics? autoscalingMetrics;

    public HealthState Health { get; } = new();

    internal OperatorMetrics Metrics => metrics;

    /// <summary>Reconciles until cancelled (leadership lost and regained in between is handled inside).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var web = await StartEndpointsAsync(cancellationToken);
        if (options.LeaderElection is null)
        {
            Health.SetLeading(true);
            metrics.Leading(true);
            await RunControllerAsync(cancellationToken);
            return;
        }
        var election = new LeaderElection(client, options.LeaderElection, time, loggers.CreateLogger<LeaderElection>());
        election.LeaderObserved += _ => Health.MarkConnected();
        election.LeaseProblem += Health.SetLeaseProblem;
        election.LeadershipChanged += leading =>
        {
            if (leading) Health.MarkConnected();
            Health.SetLeading(leading);
            metrics.Leading(leading);
        };
        await election.RunAsync(RunControllerAsync, cancellationToken);
    }

    private async Task RunControllerAsync(CancellationToken cancellationToken)
    {
        try
        {
            var features = await ReadFeaturesAsync(cancellationToken);
            // Per term of leadership: fresh caches (a new leader re-lists), and the autoscaler's windows start afresh.
            var cache = new ClusterCache();
            var cluster = new KubernetesModelCluster(client, cache, new EventRecorder(client, time));
            using var loads = new ReplicaLoadSource();
            var autoscaling = new ModelAutoscaling(cluster, loads, new ScalingHistoryStore(time), autoscalingMetrics ??= new AutoscalingMetrics(meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
            using var autoscaler = new AutoscalerLoop(cluster, autoscaling, time, loggers.CreateLogger<AutoscalerLoop>());
            var reconciler = new ModelReconciler(cluster, options.Defaults, features, time, loggers.CreateLogger<ModelReconciler>(), metrics);
            var controller = new ModelController(client, cache, reconciler, options.WatchNamespaces, metrics, time, loggers, options.Workers, autoscaler.Observe);
            var run = controller.RunAsync(cancellationToken);
            // RunAsync has started every watch by the time it first yields, so Synced covers them all.
            await Task.WhenAny(controller.Synced, run);
            if (controller.Synced.IsCompletedSuccessfully && !cancellationToken.IsCancellationRequested) Health.MarkSynced();
            await run;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>The cluster's version, which decides what models it can run; asked until it answers (an outage is waited out).</summary>
    private async Task<ClusterFeatures> ReadFeaturesAsync(CancellationToken cancellationToken)
    {
        if (options.Features is { } given) return given;
        var logger = loggers.CreateLogger<OperatorHost>();
        var delay = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                var version = await client.Version.GetCodeAsync(cancellationToken);
                var features = ClusterFeatures.FromVersion(version.Major, version.Minor);
                if (!features.Supported)
                    logger.LogWarning("Kubernetes {Version} is older than {Oldest}, the oldest supported: every model will be refused with reason FeatureUnsupported", features, ClusterFeatures.OldestSupported);
                return features;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                logger.LogWarning("Cannot read the Kubernetes version ({Error}); retrying in {Delay}", e.Message, delay);
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }

    private async Task<WebApplication?> StartEndpointsAsync(CancellationToken cancellationToken)
    {
        if (options.HealthPort is null && options.MetricsPort is null) return null;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (options.HealthPort is { } healthPort) kestrel.Listen(options.HealthAddress, healthPort);
            if (options.MetricsPort is { } metricsPort && metricsPort != options.HealthPort) kestrel.Listen(options.MetricsAddress, metricsPort);
        });
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(OperatorMetrics.MeterName, AutoscalingMetrics.MeterName).AddPrometheusExporter());
        var app = builder.Build();
        // Each path answers only on the port it belongs to, judged by the port the connection arrived
        // on, never by the client's Host header (port-forwards and gateways rewrite it).
        app.Use(async (http, next) =>
        {
            var port = http.Connection.LocalPort;
            var path = http.Request.Path;
            var allowed = path.StartsWithSegments("/metrics", StringComparison.Ordinal) ? port == options.MetricsPort
                : path.StartsWithSegments("/healthz", StringComparison.Ordinal) || path.StartsWithSegments("/readyz", StringComparison.Ordinal) ? port == options.HealthPort
                : true;
            if (allowed) await next(http);
            else http.Response.StatusCode = StatusCodes.Status404NotFound;
        });
        if (options.HealthPort is not null)
        {
            app.MapGet("/healthz", () => Results.Text("ok"));
            app.MapGet("/readyz", () => Results.Text(Health.Describe(), statusCode: Health.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable));
        }
        if (options.MetricsPort is not null)
            app.MapPrometheusScrapingEndpoint("/metrics");
        await app.StartAsync(cancellationToken);
        return app;
    }

    public void Dispose()
    {
        metrics.Dispose();
        meters.Dispose();
    }
}
