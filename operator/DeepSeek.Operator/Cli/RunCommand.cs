using System.CommandLine;
using System.Net;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Hosting;
using DeepSeek.Operator.Leadership;
using k8s;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Operator.Cli;

/// <summary><c>run</c>: connect to the cluster and reconcile until stopped.</summary>
public static class RunCommand
{
    public const int ExitClusterUnreachable = 2;
    public const int ExitUsage = 64;
    /// <summary>The runtime image of this release (the chart's <c>runtimeDefaults.image</c> default is the same).</summary>
    public static readonly string DefaultRuntimeImage =
        $"ghcr.io/deepseek-operator/deepseek-runtime:{typeof(RunCommand).Assembly.GetName().Version!.ToString(3)}";

    /// <summary>The CPU runtime image of this release, <c>scripts/build-images.sh --release</c>'s <c>-cpu</c> tag (the chart's <c>runtimeDefaults.cpuImage</c> default is the same).</summary>
    public static readonly string DefaultCpuRuntimeImage = DefaultRuntimeImage + "-cpu";

    public static Command Build()
    {
        var kubeconfig = new Option<string?>("--kubeconfig")
        {
            Description = "Path to a kubeconfig file (default: KUBECONFIG, then in-cluster configuration, then ~/.kube/config).",
        };
        var watchNamespace = new Option<string[]>("--watch-namespace")
        {
            Description = "Namespace to watch (repeatable; default: all namespaces).",
            AllowMultipleArgumentsPerToken = false,
        };
        var leaderElect = new Option<bool>("--leader-elect")
        {
            Description = "Reconcile only while holding the leader Lease, so several replicas can run (default: true; --leader-elect false to turn it off).",
            DefaultValueFactory = _ => true,
        };
        var leaderNamespace = new Option<string>("--leader-election-namespace")
        {
            Description = "Namespace of the leader Lease (default: POD_NAMESPACE, else default).",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } ns ? ns : "default",
        };
        var leaderId = new Option<string>("--leader-election-id")
        {
            Description = "Name of the leader Lease.",
            DefaultValueFactory = _ => "deepseek-operator-leader",
        };
        var healthPort = new Option<int>("--health-port") { Description = "Port of /healthz and /readyz.", DefaultValueFactory = _ => 8081 };
        var metricsPort = new Option<int>("--metrics-port") { Description = "Port of /metrics (Prometheus).", DefaultValueFactory = _ => 8080 };
        var healthAddress = new Option<IPAddress>("--health-bind-address")
        {
            Description = "IP address /healthz and /readyz listen on (default: 0.0.0.0, every interface, where the kubelet probes the pod IP).",
            DefaultValueFactory = _ => IPAddress.Any,
            CustomParser = ParseAddress,
        };
        var metricsAddress = new Option<IPAddress>("--metrics-bind-address")
        {
            Description = "IP address /metrics listens on (default: 0.0.0.0; 127.0.0.1 keeps it to the pod, e.g. behind an authenticating proxy).",
            DefaultValueFactory = _ => IPAddress.Any,
            CustomParser = ParseAddress,
        };
        var runtimeImage = new Option<string>("--runtime-image")
        {
            Description = "Runtime image for models that set none.",
            DefaultValueFactory = _ => DefaultRuntimeImage,
        };
        var cpuRuntimeImage = CpuRuntimeImageOption();
        var nodeSelector = new Option<string[]>("--default-node-selector") { Description = "key=value node label for models that set no nodeSelector (repeatable)." };
        var toleration = new Option<string[]>("--default-toleration")
        {
            Description = "Toleration for models that set none, kubectl taint syntax: key=value:Effect, or key:Effect for operator Exists (repeatable).",
        };
        var workers = new Option<int>("--workers")
        {
            Description = $"Models reconciled at once (default: {OperatorOptions.DefaultWorkers}); each reconcile mostly waits on the API server.",
            DefaultValueFactory = _ => OperatorOptions.DefaultWorkers,
            CustomParser = ParseWorkers,
        };
        var command = new Command("run", "Connect to the cluster and reconcile DeepSeekModel resources (the default verb).")
        {
            kubeconfig, watchNamespace, leaderElect, leaderNamespace, leaderId, healthPort, metricsPort, healthAddress, metricsAddress, runtimeImage, cpuRuntimeImage, nodeSelector, toleration, workers,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            OperatorDefaults defaults;
            try
            {
                defaults = new OperatorDefaults
                {
                    RuntimeImage = parse.GetValue(runtimeImage),
                    CpuRuntimeImage = parse.GetValue(cpuRuntimeImage),
                    NodeSelector = (parse.GetValue(nodeSelector) ?? []).Select(SchedulingFlags.ParseNodeSelector).ToDictionary(),
                    Tolerations = (parse.GetValue(toleration) ?? []).Select(SchedulingFlags.ParseToleration).ToList(),
                };
            }
            catch (FormatException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}");
                return ExitUsage;
            }
            var options = new OperatorOptions
            {
                WatchNamespaces = parse.GetValue(watchNamespace) ?? [],
                LeaderElection = parse.GetValue(leaderElect)
                    ? new LeaderElectionSettings { Namespace = parse.GetValue(leaderNamespace)!, LeaseName = parse.GetValue(leaderId)! }
                    : null,
                HealthPort = parse.GetValue(healthPort),
                MetricsPort = parse.GetValue(metricsPort),
                HealthAddress = parse.GetValue(healthAddress)!,
                MetricsAddress = parse.GetValue(metricsAddress)!,
                Defaults = defaults,
                Workers = parse.GetValue(workers),
            };
            try
            {
                var config = ClusterConnection.Resolve(parse.GetValue(kubeconfig));
                using var client = new Kubernetes(config);
                var version = await ClusterConnection.ProbeAsync(client, TimeSpan.FromSeconds(10), cancellationToken);
                using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information));
                loggers.CreateLogger("DeepSeek.Operator").LogInformation("Connected to Kubernetes {Version} at {Server}", version, client.BaseUri);
                using var host = new OperatorHost(client, options, TimeProvider.System, loggers);
                await host.RunAsync(cancellationToken);
                return 0;
            }
            catch (ClusterUnreachableException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}");
                return ExitClusterUnreachable;
            }
        });
        return command;
    }

    private static int ParseWorkers(System.CommandLine.Parsing.ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var workers) && workers is >= 1 and <= 256) return workers;
        result.AddError($"--workers '{text}' is not a number from 1 to 256.");
        return 0;
    }

    /// <summary><c>--cpu-runtime-image</c>, shared with <c>render</c>.</summary>
    internal static Option<string> CpuRuntimeImageOption() => new("--cpu-runtime-image")
    {
        Description = "Runtime image for models that set none and run on CPU (spec.runtime.gpusPerPod: 0).",
        DefaultValueFactory = _ => DefaultCpuRuntimeImage,
    };

    private static IPAddress? ParseAddress(System.CommandLine.Parsing.ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (IPAddress.TryParse(text, out var address)) return address;
        result.AddError($"{result.Parent?.ToString() ?? "address"} '{text}' is not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::).");
        return null;
    }
}
