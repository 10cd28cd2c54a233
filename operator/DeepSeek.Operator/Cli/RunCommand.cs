using System.CommandLine;
using k8s;

namespace DeepSeek.Operator.Cli;

/// <summary><c>run</c>: connect to the cluster and reconcile until stopped.</summary>
public static class RunCommand
{
    public const int ExitClusterUnreachable = 2;

    public static Command Build()
    {
        var kubeconfig = new Option<string?>("--kubeconfig")
        {
            Description = "Path to a kubeconfig file (default: KUBECONFIG, then in-cluster configuration, then ~/.kube/config).",
        };
        var command = new Command("run", "Connect to the cluster and reconcile DeepSeekModel resources (the default verb).")
        {
            kubeconfig,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var config = ClusterConnection.Resolve(parse.GetValue(kubeconfig));
                using var client = new Kubernetes(config);
                var version = await ClusterConnection.ProbeAsync(client, TimeSpan.FromSeconds(10), cancellationToken);
                Console.WriteLine($"Connected to Kubernetes {version} at {client.BaseUri}.");
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
}
