namespace DeepSeek.Runtime.Serving;

/// <summary>Facts about the served model that the APIs report and validate against.</summary>
public sealed record ModelDescription
{
    public required string ServedName { get; init; }
    public required string Architecture { get; init; }
    public required int VocabSize { get; init; }
    public required int MaxContextLength { get; init; }
    public int EmbeddingDimensions { get; init; }
    public int NumLayers { get; init; }
    public int NumRoutedExperts { get; init; }
    public int ExpertsPerToken { get; init; }
    public string DType { get; init; } = "";
    public string Device { get; init; } = "";
    public long ParameterCount { get; init; }
    /// <summary>Unix seconds, reported as <c>created</c> by <c>/v1/models</c>.</summary>
    public long CreatedUnixSeconds { get; init; }
}
