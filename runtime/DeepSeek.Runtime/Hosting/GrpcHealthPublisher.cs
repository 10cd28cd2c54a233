using Grpc.Health.V1;
using Grpc.HealthCheck;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Mirrors <see cref="Readiness"/> into the standard <c>grpc.health.v1</c> service (overall server,
/// name ""), so gRPC-native probes see what <c>/ready</c> says.
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

    private void Publish(ReadinessState state) => health.SetStatus("", state == ReadinessState.Ready
        ? HealthCheckResponse.Types.ServingStatus.Serving
        : HealthCheckResponse.Types.ServingStatus.NotServing);
}
