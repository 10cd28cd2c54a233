using System.Text;
using DeepSeek.Engine.Requests;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Api;

/// <summary>
/// What both faces check before a request reaches the engine, beyond the engine's own
/// <see cref="SamplingParameters.Validate"/> (the one place for sampling values): prompts as token
/// ids, the context, and how many sequences one call may start. Pure functions over the model's facts.
/// </summary>
public static class GenerationRules
{
    /// <summary>Sampling values, by the engine's rules with the model's vocabulary; the API's field names in the error.</summary>
    /// <exception cref="ApiFailure">The first rule broken.</exception>
    public static SamplingParameters Validate(SamplingParameters sampling, ModelDescription model, string maxTokensField = "max_tokens", string logprobsField = "logprobs")
    {
        try
        {
            sampling.Validate(model.VocabSize);
            return sampling;
        }
        catch (InvalidRequestException e)
        {
            // The engine names the fields as /v1/completions does; chat and gRPC spell two of them differently.
            var (param, message) = e.Param switch
            {
                "max_tokens" when maxTokensField != "max_tokens" => (maxTokensField, e.Message.Replace("max_tokens", maxTokensField, StringComparison.Ordinal)),
                "logprobs" when logprobsField != "logprobs" => (logprobsField, e.Message.Replace("logprobs", logprobsField, StringComparison.Ordinal)),
                _ => (e.Param, e.Message),
            };
            throw new ApiFailure(ApiError.Invalid(param, message, e.Code));
        }
    }

    /// <summary>
    /// A prompt of <paramref name="promptLength"/> tokens must leave room in the context; with no
    /// <c>max_tokens</c> sent, the rest of the context (or <paramref name="defaultMaxTokens"/>) is the limit.
    /// </summary>
    /// <exception cref="ApiFailure">The prompt is empty or fills the context, or max_tokens does not fit.</exception>
    public static int MaxTokens(int? requested, int promptLength, ModelDescription model, string param, string maxTokensField, int? defaultMaxTokens = null)
    {
        var context = model.MaxContextLength;
        if (promptLength < 1) throw new ApiFailure(ApiError.Invalid(param, $"{param} is empty; send at least one token of text."));
        if (promptLength >= context)
            throw new ApiFailure(ApiError.Invalid(param,
                $"{param} is {promptLength} tokens but the model's context is {context} tokens and at least one must remain for generation; shorten it.",
                "context_length_exceeded"));
        var room = context - promptLength;
        var maxTokens = requested ?? Math.Min(defaultMaxTokens ?? room, room);
        if (maxTokens < 1) throw new ApiFailure(ApiError.Invalid(maxTokensField, $"{maxTokensField} must be at least 1, not {maxTokens}."));
        if (maxTokens > room)
            throw new ApiFailure(ApiError.Invalid(maxTokensField,
                $"{maxTokensField} is {maxTokens} but the prompt ({promptLength} tokens) leaves room for {room} of the model's {context}-token context; lower {maxTokensField} to {room} or less.",
                "context_length_exceeded"));
        return maxTokens;
    }

    /// <summary>
    /// A cheap bound before tokenizing: text of <c>B</c> UTF-8 bytes is at least <c>B / MaxTokenBytes</c>
    /// tokens, so text that cannot fit the context is refused without paying for its tokenization.
    /// </summary>
    /// <exception cref="ApiFailure">The text cannot fit the context whatever its tokenization.</exception>
    public static void CheckTextFits(string text, ModelDescription model, string param)
    {
        var bytes = Encoding.UTF8.GetByteCount(text);
        var fewestTokens = bytes / Math.Max(1, model.MaxTokenBytes);
        if (fewestTokens >= model.MaxContextLength)
            throw new ApiFailure(ApiError.Invalid(param,
                $"{param} is {bytes} bytes, at least {fewestTokens} tokens, but the model's context is {model.MaxContextLength} tokens; shorten it.",
                "context_length_exceeded"));
    }

    /// <exception cref="ApiFailure">An id is negative or not below the vocabulary size.</exception>
    public static void CheckTokenIds(string param, IReadOnlyList<int> tokenIds, ModelDescription model)
    {
        for (var i = 0; i < tokenIds.Count; i++)
        {
            var id = tokenIds[i];
            if (id < 0 || id >= model.VocabSize)
                throw new ApiFailure(ApiError.Invalid(param, $"Token id {id} at position {i} of {param} is outside the vocabulary; ids must be between 0 and {model.VocabSize - 1}."));
        }
    }

    /// <summary>
    /// <paramref name="choices"/> sequences for each of <paramref name="prompts"/> prompts are admitted
    /// together; more than the server can ever hold waiting at once is a 400 naming <c>n</c>, not a 429
    /// that no retry can cure.
    /// </summary>
    /// <exception cref="ApiFailure"><c>n</c> is below 1 or the call can never be admitted.</exception>
    public static void CheckSequences(int choices, int prompts, ModelDescription model, int maxSequencesPerRequest)
    {
        var sequences = (long)choices * prompts;
        if (choices < 1 || sequences > maxSequencesPerRequest)
            throw new ApiFailure(ApiError.Invalid("n", $"n must be at least 1 and n times the number of prompts at most {maxSequencesPerRequest}; got n={choices} with {prompts} prompt(s)."));
        var capacity = Math.Max(1, model.MaxQueuedRequests);
        if (sequences > capacity)
            throw new ApiFailure(ApiError.Invalid("n",
                $"n={choices} with {prompts} prompt(s) is {sequences} sequences, but this server queues at most {capacity} at once (--max-queued-requests); lower n or send the prompts in separate requests."));
    }

    /// <summary>Per-choice seeds: choice i of a seeded request uses seed + i, so choices differ yet reproduce.</summary>
    public static SamplingParameters ForChoice(SamplingParameters sampling, int choice) =>
        choice == 0 || sampling.Seed is not { } seed ? sampling : sampling with { Seed = unchecked(seed + (ulong)choice) };

    /// <summary>The wire spelling of a finish reason, the same in OpenAI's <c>finish_reason</c> and the proto's.</summary>
    public static string FinishReasonText(FinishReason reason) => reason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        FinishReason.Error => "error",
        _ => "cancelled",
    };
}
