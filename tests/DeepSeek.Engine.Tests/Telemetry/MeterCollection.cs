namespace DeepSeek.Engine.Tests.Telemetry;

/// <summary>Tests that listen to the process-wide <c>DeepSeek.Runtime</c> meter name run one at a time, so they never see each other's series.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeterCollection
{
    public const string Name = "DeepSeek.Runtime meter";
}
