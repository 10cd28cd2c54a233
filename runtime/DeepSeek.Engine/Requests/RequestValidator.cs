using System.Text;
using DeepSeek.Engine.Structured;
using DeepSeek.Model.Tokenization;

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
            throw new InvalidRequestException("min_tokens", "min_tokens cannot be combined with a constrained output (response_format json_object or json_schema, tool_choice \"required\" or a named function): the output ends when it is whole; remove min_tokens.");
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
    /// <c>tools</c>, <c>tool_choice</c> and <c>parallel_tool_calls</c> of a chat request: every function
    /// named once (1–64 of <c>a-zA-Z0-9_-</c>, at most <see cref="ToolCallGrammar.MaxTools"/>), its
    /// parameters a supported schema of an object (compiled, so refusals name the keyword), the choice
    /// one of <c>none</c>, <c>auto</c> (the default with tools), <c>required</c> or an offered function.
    /// A forced call (<c>required</c>, named) gets the call grammar as its constraint, which a JSON
    /// <paramref name="responseFormat"/> cannot share. <see cref="CheckedTools.None"/> when there is nothing to offer or parse.
    /// </summary>
    /// <exception cref="InvalidRequestException">The first rule broken, naming the field (<c>tools[2].function.name</c>, <c>tool_choice</c>, ...).</exception>
    public CheckedTools CheckTools(IReadOnlyList<ToolDefinition>? tools, ToolChoice? choice, bool parallel, OutputConstraint? responseFormat = null)
    {
        if (tools is null)
        {
            if (choice is not null && choice.Mode != "none")
                throw new InvalidRequestException("tool_choice", "tool_choice needs tools: send the functions the model may call in tools, or remove tool_choice.");
            return CheckedTools.None;
        }
        if (tools.Count == 0)
            throw new InvalidRequestException("tools", "tools is an empty list; send at least one function, or remove tools.");
        if (tools.Count > ToolCallGrammar.MaxTools)
            throw new InvalidRequestException("tools", $"tools has {tools.Count} functions; send at most {ToolCallGrammar.MaxTools}.");
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < tools.Count; i++)
        {
            var tool = tools[i];
            if (tool.Type != "function")
                throw new InvalidRequestException($"tools[{i}].type", tool.Type is null
                    ? $"tools[{i}].type is required; send \"function\"."
                    : $"tools[{i}].type '{tool.Type}' is not supported; only \"function\" tools are.", tool.Type is null ? "invalid_value" : "unsupported_value");
            var param = $"tools[{i}].function.name";
            if (tool.Name is not { } name || name.Length is 0 or > ToolCallGrammar.MaxNameLength || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                throw new InvalidRequestException(param, $"{param} must be 1 to {ToolCallGrammar.MaxNameLength} characters of a-z, A-Z, 0-9, _ and -.");
            if (!names.Add(name))
                throw new InvalidRequestException(param, $"{param} '{name}' names a function already in tools; name each function once.");
        }
        choice ??= ToolChoice.Auto;
        if (choice.Mode is not (null or "none" or "auto" or "required"))
            throw new InvalidRequestException("tool_choice", $"tool_choice '{choice.Mode}' is not one this server knows; send \"none\", \"auto\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}.");
        if (choice.Mode is null && (choice.FunctionName is not { } named || !names.Contains(named)))
            throw new InvalidRequestException("tool_choice.function.name",
                $"tool_choice.function.name '{choice.FunctionName}' is not a function of tools; name one of: {string.Join(", ", names)}.");
        if (choice.Forces && responseFormat is not null)
            throw new InvalidRequestException("tool_choice",
                "tool_choice \"required\" or a named function makes the output a tool call, which response_format json_object or json_schema cannot also shape; use tool_choice \"auto\" or remove response_format.");
        if (structuredOutputs is null)
            throw Unsupported("tools", "tools need the model's tokenizer, and this model folder has none; remove tools.");

        var callable = choice.Mode switch
        {
            "none" => new HashSet<string>(StringComparer.Ordinal),
            null => new HashSet<string>(StringComparer.Ordinal) { choice.FunctionName! },
            _ => names,
        };
        // Compiled in every mode, so an unsupported schema is refused whatever the choice.
        var constraint = structuredOutputs.CompileToolCalls(tools, callable.Count > 0 ? callable : names, parallel);
        if (choice.Mode == "none") return CheckedTools.None;
        var offered = tools.Select(t => new ChatTool(t.Name!, t.Description, t.ParametersJson)).ToList();
        return new CheckedTools(offered, callable, choice.Forces ? constraint : null);
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
