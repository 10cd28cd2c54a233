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

    public const int MaxLogprobs = 20;
    public const float MaxRepetitionPenalty = 2f;
    public const int MaxStopStrings = 16;
    public const int MaxStopStringLength = 256;
    public const int MaxStopTokenIds = 64;

    public static SamplingParameters Greedy { get; } = new() { Temperature = 0f };

    /// <summary>
    /// The one set of rules for a request's sampling values, used by the engine's admission and by
    /// both APIs before they tokenize anything further. Throws <see cref="InvalidRequestException"/>
    /// naming the first field out of range and its allowed values. With <paramref name="vocabSize"/>,
    /// token ids and <see cref="TopK"/> are checked against the model's vocabulary too.
    /// </summary>
    public void Validate(int? vocabSize = null)
    {
        if (!float.IsFinite(Temperature) || Temperature < 0f || Temperature > 2f)
            throw Invalid("temperature", $"temperature must be between 0 and 2, got {Temperature}.");
        if (!float.IsFinite(TopP) || TopP <= 0f || TopP > 1f)
            throw Invalid("top_p", $"top_p must be greater than 0 and at most 1 (1 turns nucleus sampling off), got {TopP}.");
        if (TopK < 0 || (vocabSize is { } vocab && TopK > vocab))
            throw Invalid("top_k", vocabSize is { } size
                ? $"top_k must be between 0 (disabled) and the vocabulary size {size}, got {TopK}."
                : $"top_k must be 0 (disabled) or a positive number of tokens, got {TopK}.");
        if (!float.IsFinite(PresencePenalty) || PresencePenalty < -2f || PresencePenalty > 2f)
            throw Invalid("presence_penalty", $"presence_penalty must be between -2 and 2, got {PresencePenalty}.");
        if (!float.IsFinite(FrequencyPenalty) || FrequencyPenalty < -2f || FrequencyPenalty > 2f)
            throw Invalid("frequency_penalty", $"frequency_penalty must be between -2 and 2, got {FrequencyPenalty}.");
        if (!float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0f || RepetitionPenalty > MaxRepetitionPenalty)
            throw Invalid("repetition_penalty", $"repetition_penalty must be greater than 0 and at most {MaxRepetitionPenalty} (1 disables it), got {RepetitionPenalty}.");
        if (MaxTokens is { } max && max < 1)
            throw Invalid("max_tokens", $"max_tokens must be at least 1, got {max}.");
        if (MinTokens < 0)
            throw Invalid("min_tokens", $"min_tokens must be 0 or more, got {MinTokens}.");
        if (MaxTokens is { } maxTokens && MinTokens > maxTokens)
            throw Invalid("min_tokens", $"min_tokens ({MinTokens}) must not exceed max_tokens ({maxTokens}).");
        if (Logprobs is { } k && (k < 0 || k > MaxLogprobs))
            throw Invalid("logprobs", $"logprobs must be between 0 and {MaxLogprobs}, got {k}.");
        if (Stop.Count > MaxStopStrings)
            throw Invalid("stop", $"stop has {Stop.Count} strings; send at most {MaxStopStrings}.");
        foreach (var stop in Stop)
        {
            if (string.IsNullOrEmpty(stop)) throw Invalid("stop", "stop strings must not be empty.");
            if (stop.Length > MaxStopStringLength)
                throw Invalid("stop", $"A stop string is {stop.Length} characters; each may have at most {MaxStopStringLength}.");
        }
        if (StopTokenIds.Count > MaxStopTokenIds)
            throw Invalid("stop_token_ids", $"stop_token_ids has {StopTokenIds.Count} ids; send at most {MaxStopTokenIds}.");
        for (var i = 0; i < StopTokenIds.Count; i++)
        {
            var id = StopTokenIds[i];
            if (id < 0 || (vocabSize is { } vocab2 && id >= vocab2))
                throw Invalid("stop_token_ids", vocabSize is { } size
                    ? $"stop_token_ids[{i}] is {id}; token ids must be between 0 and {size - 1}."
                    : $"stop_token_ids[{i}] is {id}; token ids must be non-negative.");
        }
    }

    private static InvalidRequestException Invalid(string param, string message) => new(param, message);
}
