namespace DeepSeek.Runtime.Serving;

/// <summary>
/// One sampled token. <paramref name="TextDelta"/> is the text that became final with it: it may be
/// empty (an incomplete UTF-8 sequence, or text held back because it could start a stop string) and
/// is never part of a stop string.
/// </summary>
public sealed record TokenGenerated(int TokenId, string TextDelta, float Logprob, IReadOnlyList<TokenLogprob> TopLogprobs) : GenerationEvent;
