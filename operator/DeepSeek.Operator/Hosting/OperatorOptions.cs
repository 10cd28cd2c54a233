using System.Net;
using DeepSeek.Operator.Cluster;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Leadership;

namespace DeepSeek.Operator.Hosting;

/// <summary>Everything the run verb configures.</summary>
public sealed record OperatorOptions
{
    /// <summary>Namespaces to watch; empty: all.</summary>
    public IReadOnlyList<string> WatchNamespaces { get; init; } = [];

    public LeaderElectionSettings? LeaderElection { get; init; } = new();

    /// <summary>Port of /healthz and /readyz; null: no health endpoint (tests).</summary>
    public int? HealthPort { get; init; } = 8081;

    /// <summary>Port of /metrics; null: no metrics endpoint (tests).</summary>
    public int? MetricsPort { get; init; } = 8080;

    /// <summary>Address /healthz and /readyz listen on (all interfaces in a pod, where the kubelet probes the pod IP; loopback in tests).</summary>
    public IPAddress HealthAddress { get; init; } = IPAddress.Any;

    /// <summary>Address /metrics listens on.</summary>
    public IPAddress MetricsAddress { get; init; } = IPAddress.Any;

    public OperatorDefaults Defaults { get; init; } = new();

    /// <summary>What the cluster offers; null: read from the API server's /version when the controller starts.</summary>
    public ClusterFeatures? Features { get; init; }

    /// <summary>
    /// Models reconciled at once (controller-runtime's MaxConcurrentReconciles). A reconcile mostly waits
    /// on the API server (tens of milliseconds a write against a real one), so this bounds writes in
    /// flight, not CPU: 16 brings 1,000 new models up in seconds where 2 took minutes.
    /// </summary>
    public int Workers { get; init; } = DefaultWorkers;

    public const int DefaultWorkers = 16;
}
