using System.Text;
using DeepSeek.Engine.Structured;

namespace DeepSeek.Engine.Requests;

/// <summary>
/// The one set of rules a request must pass before the engine takes it (vLLM's input processor):
/// sampling values, prompts as token ids against the vocabulary and the context, <c>max_tokens</c>,
/// how many sequences one call may start, embedding inputs. Pure over the model's facts and safe from
/// any thread. Faces only parse; they pass the field names their clients use (<see cref="RequestFields"/>)
/// and every refusal is an <see cref="InvalidRequestException"/> naming that field.
/// </summary>
/// <remarks><c>maxContextTokens</c> is <see cref="EngineOptions.ContextTokens"/>; <c>maxTokenBytes</c>, the most UTF-8 bytes one token stands for, bounds text before it is tokenized.</remarks>
/// <remarks><c>structuredOutputs</c> compiles response formats over the tokenizer's vocabulary; without one (no tokenizer) only <c>text</c> is served.</remarks>
public sealed class RequestValidator(int vocabSize, int maxContextTokens, int maxTokenBytes = 1, int maxQueuedRequests = int.MaxValue,
    StructuredOutputs? structuredOutputs = null)
{
    public int VocabSize { get; } = vocabSize;

    public int MaxContextTokens { get; } = maxContextTokens;

    /// <summary>
    /// A prompt with its sampling, once it is token ids: every id in the vocabulary, room left in the
    /// context, and <c>max_tokens</c> resolved (with none sent, the rest of the context or
    /// <paramref name="defaultMaxTokens"/>, whichever is smaller).
    /// </summary>
    /// <exception cref="InvalidRequestException">The first rule broken.</exception>
    public ValidatedRequest Validate(IReadOnlyList<int> promptTokenIds, SamplingParameters sampling, RequestFields fields, int? defaultMaxTokens = null)
    {
        var prompt = fields.Prompt;
        CheckTokenIds(promptTokenIds, prompt);
        var length = promptTokenIds.Count;
        if (length < 1) throw new InvalidRequestException(prompt, $"{prompt} is empty; send at least one token.");
        if (length >= MaxContextTokens)
            throw new InvalidRequestException(prompt,
                $"{prompt} is {length} tokens but the model's context is {MaxContextTokens} tokens and at least one must remain for generation; shorten it.",
                "context_length_exceeded");
        var room = MaxContextTokens - length;
        var maxTokens = sampling.MaxTokens ?? Math.Min(defaultMaxTokens ?? room, room);
        if (maxTokens > room)
            throw new InvalidRequestException(fields.MaxTokens,
                $"{fields.MaxTokens} is {maxTokens} but the prompt ({length} tokens) leaves room for {room} of the model's {MaxContextTokens}-token context; lower {fields.MaxTokens} to {room} or less.",
                "context_length_exceeded");
        var resolved = sampling with { MaxTokens = maxTokens };
        CheckSampling(resolved, fields);
        return new ValidatedRequest([.. promptTokenIds], resolved);
    }

    /// <summary>
    /// The sampling values alone: what a face checks before it pays for tokenizing the prompt, and
    /// what <see cref="Validate"/> checks again once <c>max_tokens</c> is resolved.
    /// </summary>
    /// <exception cref="InvalidRequestException">The first field out of range, with its allowed values.</exception>
    public void CheckSampling(SamplingParameters s, RequestFields fields)
    {
        if (!float.IsFinite(s.Temperature) || s.Temperature < 0f || s.Temperature > 2f)
            throw new InvalidRequestException("temperature", $"temperature must be between 0 and 2, got {s.Temperature}.");
        if (!float.IsFinite(s.TopP) || s.TopP <= 0f || s.TopP > 1f)
            throw new InvalidRequestException("top_p", $"top_p must be greater than 0 and at most 1 (1 turns nucleus sampling off), got {s.TopP}.");
        if (s.TopK < 0 || s.TopK > VocabSize)
            throw new InvalidRequestException("top_k", $"top_k must be between 0 (disabled) and the vocabulary size {VocabSize}, got {s.TopK}.");
        if (!float.IsFinite(s.PresencePenalty) || s.PresencePenalty < -2f || s.PresencePenalty > 2f)
            throw new InvalidRequestException("presence_penalty", $"presence_penalty must be between -2 and 2, got {s.PresencePenalty}.");
        if (!float.IsFinite(s.FrequencyPenalty) || s.FrequencyPenalty < -2f || s.FrequencyPenalty > 2f)
            throw new InvalidRequestException("frequency_penalty", $"frequency_penalty must be between -2 and 2, got {s.FrequencyPenalty}.");
        if (!float.IsFinite(s.RepetitionPenalty) || s.RepetitionPenalty <= 0f || s.RepetitionPenalty > SamplingParameters.MaxRepetitionPenalty)
            throw new InvalidRequestException("repetition_penalty", $"repetition_penalty must be greater than 0 and at most {SamplingParameters.MaxRepetitionPenalty} (1 disables it), got {s.RepetitionPenalty}.");
        if (s.Constraint is not null && s.MinTokens > 0)
            throw new InvalidRequestException("min_tokens", "min_tokens cannot be combined with response_format json_object or json_schema: the document ends when it is whole; remove min_tokens.");
        if (s.MaxTokens is { } max && max < 1)
            throw new InvalidRequestException(fields.MaxTokens, $"{fields.MaxTokens} must be at least 1, got {max}.");
        if (s.MinTokens < 0)
            throw new InvalidRequestException("min_tokens", $"min_tokens must be 0 or more, got {s.MinTokens}.");
        if (s.MaxTokens is { } maxTokens && s.MinTokens > maxTokens)
            throw new InvalidRequestException("min_tokens", $"min_tokens ({s.MinTokens}) must not exceed {fields.MaxTokens} ({maxTokens}).");
        if (s.Logprobs is { } k && (k < 0 || k > SamplingParameters.MaxLogprobs))
            throw new InvalidRequestException(fields.Logprobs, $"{fields.Logprobs} must be between 0 and {SamplingParameters.MaxLogprobs}, got {k}.");
        if (s.Stop.Count > SamplingParameters.MaxStopStrings)
            throw new InvalidRequestException("stop", $"stop has {s.Stop.Count} strings; send at most {SamplingParameters.MaxStopStrings}.");
        foreach (var stop in s.Stop)
        {
            if (string.IsNullOrEmpty(stop)) throw new InvalidRequestException("stop", "stop strings must not be empty.");
            if (stop.Length > SamplingParameters.MaxStopStringLength)
                throw new InvalidRequestException("stop", $"A stop string is {stop.Length} characters; each may have at most {SamplingParameters.MaxStopStringLength}.");
        }
        if (s.StopTokenIds.Count > SamplingParameters.MaxStopTokenIds)
            throw new InvalidRequestException("stop_token_ids", $"stop_token_ids has {s.StopTokenIds.Count} ids; send at most {SamplingParameters.MaxStopTokenIds}.");
        for (var i = 0; i < s.StopTokenIds.Count; i++)
        {
            var id = s.StopTokenIds[i];
            if (id < 0 || id >= VocabSize)
                throw new InvalidRequestException("stop_token_ids", $"stop_token_ids[{i}] is {id}; token ids must be between 0 and {VocabSize - 1}.");
        }
    }

    /// <summary>
    /// The options this server implements only at their defaults (<see cref="DefaultOnlyOptions"/>):
    /// what changes nothing passes; biased sampling, a stored completion
    /// or another processing tier is refused, since a client that asked for it would rely on an
    /// answer it did not get.
    /// </summary>
    /// <exception cref="InvalidRequestException">The first option at a value this server does not implement (<c>unsupported_value</c>).</exception>
    public static void CheckDefaultOnly(DefaultOnlyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.LogitBiasCount > 0)
            throw Unsupported("logit_bias", "logit_bias is not supported: this server samples from the model's own distribution. Send null or {}, or remove it.");
        if (options.Store == true)
            throw Unsupported("store", "store: true keeps the completion for later retrieval, which this server does not offer; send false or remove it.");
        if (options.ServiceTier is { } tier && tier is not ("auto" or "default"))
            throw Unsupported("service_tier", $"service_tier '{tier}' is not offered: this server has one tier; send \"auto\" or \"default\", or remove it.");
    }

    private static InvalidRequestException Unsupported(string param, string message) => new(param, message, "unsupported_value");

    /// <summary>
    /// <c>response_format</c>: null for free text (none sent, or <c>text</c>); otherwise the compiled
    /// constraint the sampler applies (<see cref="StructuredOutputs"/>: the supported schema features,
    /// the bounds, and the refusals naming the schema's keyword).
    /// </summary>
    /// <exception cref="InvalidRequestException">An unknown type, a schema missing, malformed, unsupported or over a bound, or no tokenizer to constrain with.</exception>
    public OutputConstraint? CheckResponseFormat(ResponseFormat? format)
    {
        if (format is null) return null;
        if (structuredOutputs is not null) return structuredOutputs.Compile(format);
        if (format is { Type: "text", SchemaJson: null }) return null;
        throw Unsupported(format.TypeParam, format.Type is "json_object" or "json_schema"
            ? $"{format.TypeParam} '{format.Type}' needs the model's tokenizer, and this model folder has none; send text or remove response_format."
            : $"{format.TypeParam} '{format.Type}' is not one this server knows; send \"text\", \"json_object\" or \"json_schema\".");
    }

    /// <summary>
    /// A cheap bound before tokenizing: text of <c>B</c> UTF-8 bytes is at least <c>B / maxTokenBytes</c>
    /// tokens, so text that cannot fit the context is refused without paying for its tokenization.
    /// </summary>
    /// <exception cref="InvalidRequestException">The text cannot fit the context whatever its tokenization.</exception>
    public void CheckTextFits(string text, string param)
    {
        var bytes = Encoding.UTF8.GetByteCount(text);
        var fewestTokens = bytes / Math.Max(1, maxTokenBytes);
        if (fewestTokens >= MaxContextTokens)
            throw new InvalidRequestException(param,
                $"{param} is {bytes} bytes, at least {fewestTokens} tokens, but the model's context is {MaxContextTokens} tokens; shorten it.",
                "context_length_exceeded");
    }

    /// <exception cref="InvalidRequestException">An id is negative or not below the vocabulary size.</exception>
    public void CheckTokenIds(IReadOnlyList<int> tokenIds, string param)
    {
        for (var i = 0; i < tokenIds.Count; i++)
        {
            var id = tokenIds[i];
            if (id < 0 || id >= VocabSize)
                throw new InvalidRequestException(param, $"Token id {id} at position {i} of {param} is outside the vocabulary; ids must be between 0 and {VocabSize - 1}.");
        }
    }

    /// <summary>
    /// Ids to turn back into text: no prompt or output is longer than the context, so no real sequence
    /// needs more ids than that, and each must be in the vocabulary.
    /// </summary>
    /// <exception cref="InvalidRequestException">Too many ids, or one outside the vocabulary.</exception>
    public void CheckDetokenizable(IReadOnlyList<int> tokenIds, string param)
    {
        if (tokenIds.Count > MaxContextTokens)
            throw new InvalidRequestException(param,
                $"{param} has {tokenIds.Count} ids but the model's context is {MaxContextTokens} tokens; send at most that many per call.",
                "context_length_exceeded");
        CheckTokenIds(tokenIds, param);
    }

    /// <summary>
    /// <paramref name="choices"/> sequences for each of <paramref name="prompts"/> prompts are admitted
    /// together; more than the server can ever hold waiting at once is refused naming <c>n</c>, not
    /// left to an overload that no retry can cure.
    /// </summary>
    /// <exception cref="InvalidRequestException"><c>n</c> is below 1 or the call can never be admitted.</exception>
    public void CheckSequences(int choices, int prompts, int maxSequencesPerRequest)
    {
        var sequences = (long)choices * prompts;
        if (choices < 1 || sequences > maxSequencesPerRequest)
            throw new InvalidRequestException("n", $"n must be at least 1 and n times the number of prompts at most {maxSequencesPerRequest}; got n={choices} with {prompts} prompt(s).");
        var capacity = Math.Max(1, maxQueuedRequests);
        if (sequences > capacity)
            throw new InvalidRequestException("n",
                $"n={choices} with {prompts} prompt(s) is {sequences} sequences, but this server queues at most {capacity} at once (--max-queued-requests); lower n or send the prompts in separate requests.");
    }

    /// <summary>Embedding inputs, named as the embeddings API names them (<c>input</c>, or <c>input[i]</c> of several): not empty, within the context, in the vocabulary.</summary>
    /// <exception cref="InvalidRequestException">The first input that breaks a rule.</exception>
    public void CheckEmbeddingInputs(IReadOnlyList<IReadOnlyList<int>> inputs)
    {
        for (var n = 0; n < inputs.Count; n++)
        {
            var param = inputs.Count == 1 ? "input" : $"input[{n}]";
            var ids = inputs[n];
            if (ids.Count == 0) throw new InvalidRequestException(param, $"{param} is empty; send at least one character or token id.");
            if (ids.Count > MaxContextTokens)
                throw new InvalidRequestException(param, $"{param} is {ids.Count} tokens; the model's context is {MaxContextTokens}; shorten it.", "context_length_exceeded");
            CheckTokenIds(ids, param);
        }
    }
}
