namespace DeepSeek.Runtime.Serving;

/// <summary>The last event of a request. <paramref name="TextDelta"/> flushes text held back until the end.</summary>
public sealed record GenerationFinished(FinishReason Reason, GenerationUsage Usage, string TextDelta = "") : GenerationEvent;
