namespace DeepSeek.Engine.IntegrationTests.Support;

/// <summary>
/// Engine tests run one at a time: each engine owns a thread doing tensor work (two cores here), and
/// the leak test reads the process-wide tensor count.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EngineCollection
{
    public const string Name = "engine";
}
