namespace DeepSeek.Gateway.Tests.EndToEnd;

/// <summary>
/// The end-to-end classes run one after another: each hosts a gateway in this process, and OpenTelemetry's
/// meter listener joins meters by name across the process, so two live gateways would report into each
/// other's /metrics (a test-only artefact: in production one process is one gateway).
/// </summary>
[CollectionDefinition(Name)]
public sealed class GatewayCollection
{
    public const string Name = "gateway in this process";
}
