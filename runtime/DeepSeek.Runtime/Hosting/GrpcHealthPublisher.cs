using Grpc.Health.V1;
using Grpc.HealthCheck;

using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Mirrors <see cref="Readiness"/> into the standard <c>grpc.health.v1</c> service, for the overall
/// server (name "") and for <c>deepseek.runtime.v1.Inference</c> by name, so gRPC-native probes and
/// clients that check their service see what <c>/ready</c> says.
/// </summary>
public sealed class GrpcHealthPublisher(HealthServiceImpl health, Readiness readiness) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        readiness.Changed += Publish;
        Publish(readiness.State);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        readiness.Changed -= Publish;
        return Task.CompletedTask;
    }

    /// <summary>The service names answered; any other name is NOT_FOUND, as the health protocol says.</summary>
    public static readonly string[] ServiceNames = ["", "deepseek.runtime.v1.Inference"];

    private void Publish(ReadinessState state)
    {
        var status = state == ReadinessState.Ready
            ? HealthCheckResponse.Types.ServingStatus.Serving
            : HealthCheckResponse.Types.ServingStatus.NotServing;
        foreach (var name in ServiceNames) health.SetStatus(name, status);
    }
}
