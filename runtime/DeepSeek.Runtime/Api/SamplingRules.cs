using System.Globalization;
using DeepSeek.Runtime.Serving;
using SamplingParameters = DeepSeek.Engine.Requests.SamplingParameters;

namespace DeepSeek.Runtime.Api;

/// <summary>
/// The limits every face applies before a request reaches the engine, as one pure function, so
/// HTTP and gRPC accept and reject exactly the same inputs with the same messages.
/// </summary>
public static class SamplingRules
{
    public const int MaxStopStrings = 16;
    public const int MaxStopStringLength = 256;
    public const int MaxStopTokenIds = 64;
    public const int MaxTopLogprobs = 20;

    /// <summary>Checks <paramref name="input"/> for a prompt of <paramref name="promptLength"/> tokens.</summary>
    /// <remarks><paramref name="defaultMaxTokens"/> applies when the caller sent no limit; null means "up to the end of the context".</remarks>
    /// <exception cref="ApiFailure">The first rule the input breaks, naming the field and what to send instead.</exception>
    public static SamplingParameters Validate(SamplingInput input, int promptLength, ModelDescription model, int? defaultMaxTokens = null)
    {
        var context = model.MaxContextLength;
        if (promptLength < 1) throw Fail("prompt", "The prompt is empty; send at least one token of text.");
        if (promptLength >= context)
            throw Fail("prompt", $"The prompt is {promptLength} tokens but the model's context is {context} tokens and at least one must remain for generation; shorten the prompt.");
        var room = context - promptLength;

        var maxTokens = input.MaxTokens ?? Math.Min(defaultMaxTokens ?? room, room);
        if (maxTokens < 1) throw Fail(input.MaxTokensField, $"{input.MaxTokensField} must be at least 1, not {maxTokens}.");
        if (maxTokens > room)
            throw Fail(input.MaxTokensField, $"{input.MaxTokensField} is {maxTokens} but the prompt ({promptLength} tokens) leaves room for {room} of the model's {context}-token context; lower {input.MaxTokensField} to {room} or less.");

        var minTokens = input.MinTokens ?? 0;
        if (minTokens < 0 || minTokens > maxTokens)
            throw Fail("min_tokens", $"min_tokens must be between 0 and {input.MaxTokensField} ({maxTokens}), not {minTokens}.");

        var temperature = InRange(input.Temperature, "temperature", 0, 2, fallback: 1);
        var topP = InRange(input.TopP, "top_p", 0, 1, fallback: 1);
        if (topP <= 0) throw Fail("top_p", "top_p must be greater than 0 and at most 1 (1 turns nucleus sampling off).");
        var presence = InRange(input.PresencePenalty, "presence_penalty", -2, 2, fallback: 0);
        var frequency = InRange(input.FrequencyPenalty, "frequency_penalty", -2, 2, fallback: 0);
        var repetition = InRange(input.RepetitionPenalty, "repetition_penalty", 0, 2, fallback: 1);
        if (repetition <= 0) throw Fail("repetition_penalty", "repetition_penalty must be greater than 0 and at most 2 (1 turns it off).");

        // vLLM spells "no top-k" as -1; 0 means the same here.
        var topK = input.TopK ?? 0;
        if (topK < -1 || topK > model.VocabSize)
            throw Fail("top_k", $"top_k must be between 0 and the vocabulary size {model.VocabSize} (0 or -1 turn it off), not {topK}.");

        var stop = input.Stop ?? [];
        if (stop.Count > MaxStopStrings) throw Fail("stop", $"stop has {stop.Count} strings; send at most {MaxStopStrings}.");
        foreach (var text in stop)
        {
            if (text.Length == 0) throw Fail("stop", "stop strings must not be empty; remove the empty string.");
            if (text.Length > MaxStopStringLength) throw Fail("stop", $"A stop string is {text.Length} characters; each may have at most {MaxStopStringLength}.");
        }

        var stopTokenIds = input.StopTokenIds ?? [];
        if (stopTokenIds.Count > MaxStopTokenIds) throw Fail("stop_token_ids", $"stop_token_ids has {stopTokenIds.Count} ids; send at most {MaxStopTokenIds}.");
        CheckVocabulary("stop_token_ids", stopTokenIds, model.VocabSize);

        var topLogprobs = input.TopLogprobs ?? 0;
        if (topLogprobs < 0 || topLogprobs > MaxTopLogprobs)
            throw Fail(input.TopLogprobsField, $"{input.TopLogprobsField} must be between 0 and {MaxTopLogprobs}, not {topLogprobs}.");

        return new SamplingParameters
        {
            Temperature = (float)temperature,
            TopP = (float)topP,
            TopK = Math.Max(topK, 0),
            Seed = input.Seed,
            PresencePenalty = (float)presence,
            FrequencyPenalty = (float)frequency,
            RepetitionPenalty = (float)repetition,
            Stop = stop,
            StopTokenIds = stopTokenIds,
            MinTokens = minTokens,
            MaxTokens = maxTokens,
            // The API's logprobs flag plus top count is the engine's one optional count.
            Logprobs = input.Logprobs ? topLogprobs : null,
        };
    }

    /// <exception cref="ApiFailure">An id is negative or not below <paramref name="vocabSize"/>.</exception>
    public static void CheckVocabulary(string param, IReadOnlyList<int> tokenIds, int vocabSize)
    {
        for (var i = 0; i < tokenIds.Count; i++)
        {
            var id = tokenIds[i];
            if (id < 0 || id >= vocabSize)
                throw Fail(param, $"Token id {id} at position {i} of {param} is outside the vocabulary; ids must be between 0 and {vocabSize - 1}.");
        }
    }

    private static double InRange(double? value, string param, double min, double max, double fallback)
    {
        if (value is not { } v) return fallback;
        if (!double.IsFinite(v) || v < min || v > max)
            throw Fail(param, $"{param} must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}, not {v.ToString(CultureInfo.InvariantCulture)}.");
        return v;
    }

    private static ApiFailure Fail(string param, string message) => new(ApiError.Invalid(param, message));
}
