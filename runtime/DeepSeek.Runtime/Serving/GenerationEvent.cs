namespace DeepSeek.Runtime.Serving;

/// <summary>What a running request reports: <see cref="TokenGenerated"/> per token, then <see cref="GenerationFinished"/>.</summary>
public abstract record GenerationEvent;
