namespace DeepSeek.Model.Generation;

/// <summary>How the next token is chosen: temperature 0 is greedy (argmax); top-k and top-p filter before sampling.</summary>
public sealed record SamplingOptions(double Temperature = 0, double TopP = 1.0, int TopK = 0, long? Seed = null)
{
    public void Validate()
    {
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException($"temperature must be 0 (greedy) or positive, not {Temperature}.");
        if (TopP is <= 0 or > 1 || double.IsNaN(TopP)) throw new ArgumentException($"top_p must be in (0, 1], not {TopP}.");
        if (TopK < 0) throw new ArgumentException($"top_k must be 0 (off) or positive, not {TopK}.");
    }
}
