namespace DeepSeek.Model.Generation;

/// <summary>A chosen token's log-probability under the model, with the most likely alternatives.</summary>
public sealed record TokenLogprob(long TokenId, double Logprob, IReadOnlyList<(long TokenId, double Logprob)> Top);
