using DeepSeek.Operator.Autoscaling;
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
        var election = new LeaderElection(client, options.LeaderElection, loggers.CreateLogger<LeaderElection>());
        election.LeaderObserved += _ => Health.MarkConnected();
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
        var cluster = new KubernetesModelCluster(client, time);
        // Per term of leadership: a new leader starts the autoscaler's windows afresh.
        using var loads = new ReplicaLoadSource();
        var autoscaling = new ModelAutoscaling(cluster, loads, new ScalingHistoryStore(time), autoscalingMetrics ??= new AutoscalingMetrics(meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        var reconciler = new ModelReconciler(cluster, options.Defaults, time, loggers.CreateLogger<ModelReconciler>(), autoscaling);
        var controller = new ModelController(client, reconciler, options.WatchNamespaces, metrics, time, loggers, options.Workers);
        try
        {
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

    private async Task<WebApplication?> StartEndpointsAsync(CancellationToken cancellationToken)
    {
        if (options.HealthPort is null && options.MetricsPort is null) return null;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var port in new[] { options.HealthPort, options.MetricsPort }.OfType<int>().Distinct()) kestrel.Listen(options.ListenAddress, port);
        });
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(OperatorMetrics.MeterName, AutoscalingMetrics.MeterName).AddPrometheusExporter());
        var app = builder.Build();
        if (options.HealthPort is { } health)
        {
            app.MapGet("/healthz", () => Results.Text("ok")).RequireHost($"*:{health}");
            app.MapGet("/readyz", () => Results.Text(Health.Describe(), statusCode: Health.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable)).RequireHost($"*:{health}");
        }
        if (options.MetricsPort is { } metricsPort)
            app.MapPrometheusScrapingEndpoint("/metrics").RequireHost($"*:{metricsPort}");
        await app.StartAsync(cancellationToken);
        return app;
    }

    public void Dispose()
    {
        metrics.Dispose();
        meters.Dispose();
    }
}
