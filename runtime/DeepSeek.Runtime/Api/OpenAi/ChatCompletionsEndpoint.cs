using System.Text;
using System.Text.Json;
using DeepSeek.Engine.Requests;
using DeepSeek.Model.Tokenization;
using DeepSeek.Runtime.Api.OpenAi.Contracts;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary><c>POST /v1/chat/completions</c>: messages through the chat template, then generation, streamed or whole.</summary>
internal static class ChatCompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext http)
    {
        var services = http.RequestServices;
        var backend = services.GetRequiredService<IInferenceBackend>();
        var options = services.GetRequiredService<OpenAiOptions>();
        var body = await RequestBodyReader.ReadAsync(http, OpenAiJsonContext.Default.ChatCompletionRequest, options.MaxRequestBytes);
        var model = backend.Model;

        OpenAiInputs.RejectUnknown(body.UnknownFields);
        var modelName = OpenAiEndpoints.CheckModel(body.Model, model);
        OpenAiInputs.CheckDefaultOnly(body);
        var validator = model.Validator;
        var messages = Messages(body, validator);
        var n = body.N ?? 1;
        validator.CheckSequences(n, prompts: 1, options.MaxSequencesPerRequest);

        // Everything cheap is checked before the template is tokenized.
        var fields = new RequestFields("messages", body.MaxCompletionTokens is null ? "max_tokens" : "max_completion_tokens", "top_logprobs");
        var logprobs = body.Logprobs ?? false;
        if (body.TopLogprobs is not null && !logprobs)
            throw new InvalidRequestException("top_logprobs", "top_logprobs needs \"logprobs\": true; set logprobs or remove top_logprobs.");
        var format = validator.CheckResponseFormat(OpenAiInputs.ResponseFormat(body));
        var tools = validator.CheckTools(OpenAiInputs.Tools(body), OpenAiInputs.ToolChoiceOf(body.ToolChoice), body.ParallelToolCalls ?? true, format);
        var sampling = OpenAiInputs.Sampling(body, body.MaxCompletionTokens ?? body.MaxTokens, logprobs ? body.TopLogprobs ?? 0 : null)
            with { Constraint = format ?? tools.Constraint };
        validator.CheckSampling(sampling, fields);

        var request = validator.Validate(backend.ApplyChatTemplate(messages, tools.Offered), sampling, fields);
        var promptLength = request.PromptTokenIds.Count;

        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = services.GetRequiredService<TimeProvider>().GetUtcNow().ToUnixTimeSeconds();
        // Null when logprobs are off; otherwise whether tokens are written "token_id:N".
        bool? asTokenIds = logprobs ? body.ReturnTokensAsTokenIds ?? false : null;
        var run = new ChatResponseWriter(http, backend, id, created, modelName, n, asTokenIds, promptLength, tools.Callable);
        using var fanOut = GenerationFanOut.Start(backend, [.. Enumerable.Range(0, n).Select(request.ForChoice)], http.RequestAborted, OpenAiEndpoints.AdapterOf(modelName, model));
        if (body.Stream == true)
            await run.StreamAsync(fanOut, body.StreamOptions?.IncludeUsage ?? false);
        else
            await run.RespondAsync(fanOut);
    }

    private static List<ChatMessage> Messages(ChatCompletionRequest body, RequestValidator validator)
    {
        if (body.Messages is not { Count: > 0 } messages)
            throw new InvalidRequestException("messages", "messages is required and must not be empty; send at least [{\"role\": \"user\", \"content\": \"...\"}].");
        var result = new List<ChatMessage>(messages.Count);
        // The ids of the calls the latest assistant message made, while tool messages may answer them.
        HashSet<string>? openCalls = null;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw new InvalidRequestException($"messages[{i}]", $"messages[{i}] is null; send a message object.");
            OpenAiInputs.RejectUnknown(message.UnknownFields, $"messages[{i}].");
            var role = OpenAiInputs.Role(message.Role, $"messages[{i}].role");
            if (message.ToolCalls is not null && role != "assistant")
                throw new InvalidRequestException($"messages[{i}].tool_calls", $"messages[{i}].tool_calls is only read in assistant messages; remove it.");
            if (message.ToolCallId is not null && role != "tool")
                throw new InvalidRequestException($"messages[{i}].tool_call_id", $"messages[{i}].tool_call_id is only read in tool messages; remove it.");
            var calls = role == "assistant" ? ToolCalls(message.ToolCalls, i) : null;
            // An assistant message that calls functions needs no content.
            var content = calls is { Count: > 0 } && message.Content.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null
                ? ""
                : OpenAiInputs.MessageContent(message.Content, $"messages[{i}].content");
            if (role == "tool") CheckAnswers(message.ToolCallId, openCalls, i);
            else openCalls = calls is { Count: > 0 } ? new HashSet<string>(message.ToolCalls!.Select(c => c!.Id!), StringComparer.Ordinal) : null;
            result.Add(new ChatMessage(role, content, calls));
        }
        // The cheap bound over all messages together, before the template is tokenized.
        validator.CheckTextFits(string.Concat(result.Select(m => m.Content + string.Concat((m.ToolCalls ?? []).Select(c => c.Name + c.Arguments)))), "messages");
        return result;
    }

    /// <summary>An assistant message's <c>tool_calls</c>: each a function call with an id, a name and its arguments' text.</summary>
    private static List<ChatToolCall>? ToolCalls(List<ChatCompletionRequest.ToolCallBody?>? calls, int message)
    {
        if (calls is null) return null;
        var result = new List<ChatToolCall>(calls.Count);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var j = 0; j < calls.Count; j++)
        {
            var param = $"messages[{message}].tool_calls[{j}]";
            var call = calls[j] ?? throw new InvalidRequestException(param, $"{param} is null; send {{\"id\": ..., \"type\": \"function\", \"function\": {{\"name\": ..., \"arguments\": ...}}}}.");
            OpenAiInputs.RejectUnknown(call.UnknownFields, $"{param}.");
            if (string.IsNullOrEmpty(call.Id))
                throw new InvalidRequestException($"{param}.id", $"{param}.id is required: the tool message answering the call names it in tool_call_id.");
            if (!ids.Add(call.Id))
                throw new InvalidRequestException($"{param}.id", $"{param}.id '{call.Id}' is the id of another call of this message; give each call its own.");
            if (call.Type != "function")
                throw new InvalidRequestException($"{param}.type", $"{param}.type must be \"function\".");
            var function = call.Function
                ?? throw new InvalidRequestException($"{param}.function", $"{param}.function is required; send {{\"name\": ..., \"arguments\": \"{{...}}\"}}.");
            OpenAiInputs.RejectUnknown(function.UnknownFields, $"{param}.function.");
            if (string.IsNullOrEmpty(function.Name))
                throw new InvalidRequestException($"{param}.function.name", $"{param}.function.name is required.");
            if (function.Arguments is null)
                throw new InvalidRequestException($"{param}.function.arguments", $"{param}.function.arguments is required: the arguments' JSON text, as the call returned it.");
            result.Add(new ChatToolCall(function.Name, function.Arguments));
        }
        return result;
    }

    /// <summary>A tool message answers one of the calls of the assistant message before it (other tool messages may come between).</summary>
    private static void CheckAnswers(string? toolCallId, HashSet<string>? openCalls, int message)
    {
        var param = $"messages[{message}].tool_call_id";
        if (string.IsNullOrEmpty(toolCallId))
            throw new InvalidRequestException(param, $"{param} is required: name the call (tool_calls[].id of the assistant message before) whose result this is.");
        if (openCalls is null)
            throw new InvalidRequestException($"messages[{message}]",
                $"messages[{message}] is a tool message, but no assistant message with tool_calls comes right before it (only other tool messages may come between).");
        if (!openCalls.Contains(toolCallId))
            throw new InvalidRequestException(param, $"{param} '{toolCallId}' is not the id of a call of the assistant message before it; its calls are {string.Join(", ", openCalls)}.");
    }

    /// <remarks><paramref name="callable"/>: the functions whose calls the output is read for (<see cref="ToolCallParser"/>); empty without tools.</remarks>
    private sealed class ChatResponseWriter(HttpContext http, IInferenceBackend backend, string id, long created, string model, int n, bool? asTokenIds, int promptTokens,
        IReadOnlySet<string> callable)
    {
        private int _completionTokens;
        private int _cached;

        public async Task RespondAsync(GenerationFanOut fanOut)
        {
            var texts = Enumerable.Range(0, n).Select(_ => new StringBuilder()).ToArray();
            var logprobs = new List<ChatLogprobs.TokenEntry>?[n];
            var finish = new FinishReason?[n];
            await foreach (var (choice, item) in fanOut.ReadAllAsync(http.RequestAborted))
            {
                if (Failed(item) is { } error)
                {
                    await OpenAiErrors.WriteAsync(http, error);
                    return;
                }
                texts[choice].Append(item.TextDelta);
                if (Entry(item) is { } entry) (logprobs[choice] ??= []).Add(entry);
                if (item.FinishReason is { } reason) finish[choice] = Finished(reason, item.Usage);
            }
            http.RequestAborted.ThrowIfCancellationRequested();
            var choices = Enumerable.Range(0, n).Select(i =>
            {
                var (message, calls) = Message(texts[i].ToString());
                return new ChatCompletionResponse.ChatChoice(i, message, logprobs[i] is { } content ? new ChatLogprobs(content) : null, Wire(finish[i], calls) ?? "cancelled");
            }).ToList();
            await http.Response.WriteAsJsonAsync(new ChatCompletionResponse(id, created, model, choices, Usage()),
                OpenAiJsonContext.Default.ChatCompletionResponse, contentType: "application/json", http.RequestAborted);
        }

        /// <summary>A whole choice's text as its message: content, and the calls read from it when tools were offered.</summary>
        private (ChatCompletionResponse.AssistantMessage Message, int Calls) Message(string text)
        {
            if (callable.Count == 0) return (new ChatCompletionResponse.AssistantMessage("assistant", text), 0);
            var parser = new ToolCallParser(callable);
            var content = new StringBuilder();
            var calls = new List<(string Name, StringBuilder Arguments)>();
            foreach (var piece in parser.Feed(text).Concat(parser.Finish()))
            {
                switch (piece.Kind)
                {
                    case ToolCallEventKind.Content: content.Append(piece.Text); break;
                    case ToolCallEventKind.CallStarted: calls.Add((piece.Text, new StringBuilder())); break;
                    default: calls[piece.Index].Arguments.Append(piece.Text); break;
                }
            }
            if (calls.Count == 0) return (new ChatCompletionResponse.AssistantMessage("assistant", content.ToString()), 0);
            var toolCalls = calls.Select(c => new ChatCompletionResponse.ToolCall(NewCallId(), new ChatCompletionResponse.FunctionCall(c.Name, c.Arguments.ToString()))).ToList();
            return (new ChatCompletionResponse.AssistantMessage("assistant", content.Length > 0 ? content.ToString() : null, toolCalls), calls.Count);
        }

        public async Task StreamAsync(GenerationFanOut fanOut, bool includeUsage)
        {
            var events = new ServerSentEvents(http.Response, http.RequestAborted);
            var chunks = OpenAiJsonContext.Default.ChatCompletionChunk;
            await events.StartAsync();
            for (var i = 0; i < n; i++)
                await events.WriteAsync(Chunk(i, new ChatCompletionChunk.Delta("assistant", ""), null, null), chunks);
            var parsers = callable.Count == 0 ? null : Enumerable.Range(0, n).Select(_ => new ToolCallParser(callable)).ToArray();

            await foreach (var (choice, item) in fanOut.ReadAllAsync(http.RequestAborted))
            {
                if (Failed(item) is { } error)
                {
                    await events.WriteErrorAsync(error);
                    return;
                }
                var entry = Entry(item);
                var finished = item.FinishReason is { } reason ? Finished(reason, item.Usage) : (FinishReason?)null;
                if (parsers is null)
                {
                    if (item.TextDelta.Length == 0 && entry is null && finished is null) continue;
                    var delta = new ChatCompletionChunk.Delta(Content: item.TextDelta.Length > 0 || entry is not null ? item.TextDelta : null);
                    await events.WriteAsync(Chunk(choice, delta, entry is null ? null : new ChatLogprobs([entry]), Wire(finished, 0)), chunks);
                    continue;
                }
                var parser = parsers[choice];
                var pieces = parser.Feed(item.TextDelta);
                if (finished is not null) pieces = [.. pieces, .. parser.Finish()];
                // The token's logprobs go with the first chunk it produces, or with an empty one when its text is held back.
                var logprobs = entry is null ? null : new ChatLogprobs([entry]);
                if (pieces.Count == 0 && logprobs is not null) await events.WriteAsync(Chunk(choice, new ChatCompletionChunk.Delta(Content: ""), logprobs, null), chunks);
                foreach (var piece in pieces)
                {
                    await events.WriteAsync(Chunk(choice, Delta(piece), logprobs, null), chunks);
                    logprobs = null;
                }
                if (finished is not null)
                    await events.WriteAsync(Chunk(choice, new ChatCompletionChunk.Delta(), null, Wire(finished, parser.CallCount)), chunks);
            }
            http.RequestAborted.ThrowIfCancellationRequested();
            if (includeUsage) await events.WriteAsync(new ChatCompletionChunk(id, created, model, [], Usage()), chunks);
            await events.WriteDoneAsync();
        }

        /// <summary>One piece of parsed output as OpenAI's delta: content, a call's first chunk (id, type, name), or a piece of its arguments.</summary>
        private static ChatCompletionChunk.Delta Delta(ToolCallEvent piece) => piece.Kind switch
        {
            ToolCallEventKind.Content => new(Content: piece.Text),
            ToolCallEventKind.CallStarted => new(ToolCalls: [new(piece.Index, NewCallId(), "function", new(piece.Text, ""))]),
            _ => new(ToolCalls: [new(piece.Index, null, null, new(null, piece.Text))]),
        };

        private static string NewCallId() => "call_" + Guid.NewGuid().ToString("N")[..24];

        /// <summary>OpenAI's <c>finish_reason</c>: <c>tool_calls</c> when the model stopped after calling functions.</summary>
        private static string? Wire(FinishReason? reason, int calls) => reason switch
        {
            null => null,
            FinishReason.Stop when calls > 0 => "tool_calls",
            { } finished => finished.WireText(),
        };

        /// <summary>The engine's error of a failed choice, logged; the call fails as a whole (its other choices are cancelled).</summary>
        private ApiError? Failed(TokenEvent item)
        {
            if (item.FinishReason != FinishReason.Error) return null;
            var error = ApiErrors.FromFailedEvent(item);
            ApiErrors.LogRequestFailed(http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ChatCompletionsEndpoint)), id, error.Code, error.Message);
            return error;
        }

        private FinishReason Finished(FinishReason reason, UsageInfo? usage)
        {
            _completionTokens += usage?.CompletionTokens ?? 0;
            _cached = Math.Max(_cached, usage?.CachedPromptTokens ?? 0);
            return reason;
        }

        private Usage Usage() => new(promptTokens, _completionTokens, promptTokens + _completionTokens, new Usage.TokenDetails(_cached));

        private ChatCompletionChunk Chunk(int choice, ChatCompletionChunk.Delta delta, ChatLogprobs? logprobs, string? finishReason) =>
            new(id, created, model, [new ChatCompletionChunk.ChunkChoice(choice, delta, logprobs, finishReason)]);

        /// <summary>The chosen token and its alternatives as OpenAI's chat logprobs; null when the caller did not ask.</summary>
        private ChatLogprobs.TokenEntry? Entry(TokenEvent item)
        {
            if (asTokenIds is not { } ids || item.TokenId is not { } token) return null;
            var alternatives = (item.Logprobs?.Top ?? [])
                .Select(alt => new ChatLogprobs.Alternative(OpenAiEndpoints.TokenText(backend, alt.TokenId, ids), alt.Logprob, Bytes(alt.TokenId)))
                .ToList();
            return new ChatLogprobs.TokenEntry(OpenAiEndpoints.TokenText(backend, token, ids), item.Logprobs?.Chosen.Logprob ?? 0f, Bytes(token), alternatives);
        }

        private int[] Bytes(int tokenId) =>
            [.. Encoding.UTF8.GetBytes(backend.Decode([tokenId], skipSpecialTokens: false)).Select(b => (int)b)];
    }
}
