namespace DeepSeek.Engine.Requests;

/// <summary>
/// How one request picks its tokens and when it stops. Names follow the OpenAI API and vLLM's extensions;
/// defaults are theirs (temperature 1, top_p 1, no top-k, no penalties).
/// </summary>
public sealed record SamplingParameters
{
    /// <summary>0 means greedy (argmax).</summary>
    public float Temperature { get; init; } = 1f;

    public float TopP { get; init; } = 1f;

    /// <summary>0 keeps every token.</summary>
    public int TopK { get; init; }

    /// <summary>Same seed, same prompt, same parameters: same tokens, whatever else is in the batch.</summary>
    public ulong? Seed { get; init; }

    /// <summary>OpenAI semantics: subtracted once from every token already generated.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>OpenAI semantics: subtracted per occurrence of a token already generated.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Hugging Face semantics over prompt and output: positive logits divided, negative multiplied. 1 is off.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    public IReadOnlyList<string> Stop { get; init; } = [];

    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>End-of-sequence and stop token ids are masked until this many tokens were generated.</summary>
    public int MinTokens { get; init; }

    /// <summary>Null: up to the end of the context.</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Null: no log-probabilities. K: the chosen token's and the K most likely tokens'.</summary>
    public int? Logprobs { get; init; }

    /// <summary>When true, the end-of-sequence token does not stop generation (benchmarks).</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>
    /// Null: free text. Otherwise the grammar the output must follow (<c>response_format</c>), applied as
    /// a token mask before sampling; only <see cref="Structured.StructuredOutputs.Compile"/> makes one.
    /// </summary>
    public Structured.OutputConstraint? Constraint { get; init; }

    public const int MaxLogprobs = 20;
    public const float MaxRepetitionPenalty = 2f;
    public const int MaxStopStrings = 16;
    public const int MaxStopStringLength = 256;
    public const int MaxStopTokenIds = 64;

    public static SamplingParameters Greedy { get; } = new() { Temperature = 0f };
}
