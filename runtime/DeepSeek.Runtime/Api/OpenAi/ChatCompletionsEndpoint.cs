using System.Text;
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
        var constraint = validator.CheckResponseFormat(OpenAiInputs.ResponseFormat(body));
        var sampling = OpenAiInputs.Sampling(body, body.MaxCompletionTokens ?? body.MaxTokens, logprobs ? body.TopLogprobs ?? 0 : null) with { Constraint = constraint };
        validator.CheckSampling(sampling, fields);

        var request = validator.Validate(backend.ApplyChatTemplate(messages), sampling, fields);
        var promptLength = request.PromptTokenIds.Count;

        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = services.GetRequiredService<TimeProvider>().GetUtcNow().ToUnixTimeSeconds();
        // Null when logprobs are off; otherwise whether tokens are written "token_id:N".
        bool? asTokenIds = logprobs ? body.ReturnTokensAsTokenIds ?? false : null;
        var run = new ChatResponseWriter(http, backend, id, created, modelName, n, asTokenIds, promptLength);
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
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw new InvalidRequestException($"messages[{i}]", $"messages[{i}] is null; send a message object.");
            OpenAiInputs.RejectUnknown(message.UnknownFields, $"messages[{i}].");
            var role = OpenAiInputs.Role(message.Role, $"messages[{i}].role");
            var content = OpenAiInputs.MessageContent(message.Content, $"messages[{i}].content");
            result.Add(new ChatMessage(role, content));
        }
        // The cheap bound over all messages together, before the template is tokenized.
        validator.CheckTextFits(string.Concat(result.Select(m => m.Content)), "messages");
        return result;
    }

    private sealed class ChatResponseWriter(HttpContext http, IInferenceBackend backend, string id, long created, string model, int n, bool? asTokenIds, int promptTokens)
    {
        private int _completionTokens;
        private int _cached;

        public async Task RespondAsync(GenerationFanOut fanOut)
        {
            var texts = Enumerable.Range(0, n).Select(_ => new StringBuilder()).ToArray();
            var logprobs = new List<ChatLogprobs.TokenEntry>?[n];
            var finish = new string[n];
            await foreach (var (choice, item) in fanOut.ReadAllAsync(http.RequestAborted))
            {
                if (Failed(item) is { } error)
                {
                    await OpenAiErrors.WriteAsync(http, error);
                    return;
                }
                texts[choice].Append(item.TextDelta);
                if (Entry(item) is { } entry) (logprobs[choice] ??= []).Add(entry);
                if (item.FinishReason is { } reason) finish[choice] = Finish(reason, item.Usage);
            }
            http.RequestAborted.ThrowIfCancellationRequested();
            var choices = Enumerable.Range(0, n).Select(i => new ChatCompletionResponse.ChatChoice(
                i, new ChatCompletionResponse.AssistantMessage("assistant", texts[i].ToString()),
                logprobs[i] is { } content ? new ChatLogprobs(content) : null, finish[i] ?? "cancelled")).ToList();
            await http.Response.WriteAsJsonAsync(new ChatCompletionResponse(id, created, model, choices, Usage()),
                OpenAiJsonContext.Default.ChatCompletionResponse, contentType: "application/json", http.RequestAborted);
        }

        public async Task StreamAsync(GenerationFanOut fanOut, bool includeUsage)
        {
            var events = new ServerSentEvents(http.Response, http.RequestAborted);
            var chunks = OpenAiJsonContext.Default.ChatCompletionChunk;
            await events.StartAsync();
            for (var i = 0; i < n; i++)
                await events.WriteAsync(Chunk(i, new ChatCompletionChunk.Delta("assistant", ""), null, null), chunks);

            await foreach (var (choice, item) in fanOut.ReadAllAsync(http.RequestAborted))
            {
                if (Failed(item) is { } error)
                {
                    await events.WriteErrorAsync(error);
                    return;
                }
                var entry = Entry(item);
                var finish = item.FinishReason is { } reason ? Finish(reason, item.Usage) : null;
                if (item.TextDelta.Length == 0 && entry is null && finish is null) continue;
                var delta = new ChatCompletionChunk.Delta(Content: item.TextDelta.Length > 0 || entry is not null ? item.TextDelta : null);
                await events.WriteAsync(Chunk(choice, delta, entry is null ? null : new ChatLogprobs([entry]), finish), chunks);
            }
            http.RequestAborted.ThrowIfCancellationRequested();
            if (includeUsage) await events.WriteAsync(new ChatCompletionChunk(id, created, model, [], Usage()), chunks);
            await events.WriteDoneAsync();
        }

        /// <summary>The engine's error of a failed choice, logged; the call fails as a whole (its other choices are cancelled).</summary>
        private ApiError? Failed(TokenEvent item)
        {
            if (item.FinishReason != FinishReason.Error) return null;
            var error = ApiErrors.FromFailedEvent(item);
            ApiErrors.LogRequestFailed(http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ChatCompletionsEndpoint)), id, error.Code, error.Message);
            return error;
        }

        private string Finish(FinishReason reason, UsageInfo? usage)
        {
            _completionTokens += usage?.CompletionTokens ?? 0;
            _cached = Math.Max(_cached, usage?.CachedPromptTokens ?? 0);
            return reason.WireText();
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
