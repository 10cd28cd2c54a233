namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>Limits of the OpenAI-compatible API (documented in docs/api.md).</summary>
public sealed record OpenAiOptions
{
    /// <summary>From <c>--max-request-bytes</c> (its default is <c>ServeConfiguration</c>'s).</summary>
    public required long MaxRequestBytes { get; init; }
    /// <summary>Inputs per <c>/v1/embeddings</c> call.</summary>
    public int MaxEmbeddingInputs { get; init; } = 64;
    /// <summary>Sequences per generation call: <c>n</c> times the number of prompts.</summary>
    public int MaxSequencesPerRequest { get; init; } = 64;
    /// <summary>Default <c>max_tokens</c> of <c>/v1/completions</c>, as OpenAI's legacy API.</summary>
    public int DefaultCompletionMaxTokens { get; init; } = 16;
    /// <summary>From <c>--enable-lora-updates</c>: <c>POST /v1/load_lora_adapter</c> and <c>/v1/unload_lora_adapter</c> are served.</summary>
    public bool LoraUpdates { get; init; }
}
