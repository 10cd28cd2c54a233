namespace DeepSeek.Model.Tests.Modeling;

[CollectionDefinition(nameof(LeakTests), DisableParallelization = true)]
public sealed class LeakTestsCollection;
