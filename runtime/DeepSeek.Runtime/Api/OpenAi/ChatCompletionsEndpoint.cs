using System.Text;
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

        OpenAiInputs.RejectUnknown(body.UnknownFields);
        var modelName = OpenAiEndpoints.CheckModel(body.Model, backend.Model);
        var messages = Messages(body);
        var prompt = backend.ApplyChatTemplate(messages);

        var maxTokensField = body.MaxCompletionTokens is null ? "max_tokens" : "max_completion_tokens";
        var logprobs = body.Logprobs ?? false;
        if (body.TopLogprobs is not null && !logprobs)
            throw new ApiFailure(ApiError.Invalid("top_logprobs", "top_logprobs needs \"logprobs\": true; set logprobs or remove top_logprobs."));
        var input = OpenAiEndpoints.Sampling(body, body.MaxCompletionTokens ?? body.MaxTokens, maxTokensField, logprobs, body.TopLogprobs, "top_logprobs");
        var sampling = SamplingRules.Validate(input, prompt.Length, backend.Model);
        var n = OpenAiEndpoints.Choices(body, prompts: 1, options);

        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = services.GetRequiredService<TimeProvider>().GetUtcNow().ToUnixTimeSeconds();
        var requests = Enumerable.Range(0, n)
            .Select(choice => new GenerationRequest($"{id}-{choice}", prompt, OpenAiEndpoints.ForChoice(sampling, choice)))
            .ToList();
        // Null when logprobs are off; otherwise whether tokens are written "token_id:N".
        bool? asTokenIds = logprobs ? body.ReturnTokensAsTokenIds ?? false : null;

        await using var fanOut = GenerationFanOut.Start(backend, requests, http.RequestAborted);
        if (body.Stream == true)
            await StreamAsync(http, backend, fanOut, id, created, modelName, n, asTokenIds, body.StreamOptions?.IncludeUsage ?? false, prompt.Length);
        else
            await RespondAsync(http, backend, fanOut, id, created, modelName, n, asTokenIds, prompt.Length);
    }

    private static List<ChatMessage> Messages(ChatCompletionRequest body)
    {
        if (body.Messages is not { Count: > 0 } messages)
            throw new ApiFailure(ApiError.Invalid("messages", "messages is required and must not be empty; send at least [{\"role\": \"user\", \"content\": \"...\"}]."));
        var result = new List<ChatMessage>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw new ApiFailure(ApiError.Invalid($"messages[{i}]", $"messages[{i}] is null; send a message object."));
            OpenAiInputs.RejectUnknown(message.UnknownFields, $"messages[{i}].");
            var role = OpenAiInputs.Role(message.Role, $"messages[{i}].role");
            result.Add(new ChatMessage(role, OpenAiInputs.MessageContent(message.Content, $"messages[{i}].content")));
        }
        return result;
    }

    private static async Task RespondAsync(HttpContext http, IInferenceBackend backend, GenerationFanOut fanOut, string id, long created, string model, int n, bool? asTokenIds, int promptTokens)
    {
        var texts = Enumerable.Range(0, n).Select(_ => new StringBuilder()).ToArray();
        var logprobs = new List<ChatLogprobs.TokenEntry>?[n];
        var finish = new string[n];
        var completionTokens = 0;
        var cached = 0;
        await foreach (var (choice, generationEvent) in fanOut.ReadAllAsync(http.RequestAborted))
        {
            switch (generationEvent)
            {
                case TokenGenerated token:
                    texts[choice].Append(token.TextDelta);
                    if (LogprobEntry(backend, token, asTokenIds) is { } entry) (logprobs[choice] ??= []).Add(entry);
                    break;
                case GenerationFinished done:
                    texts[choice].Append(done.TextDelta);
                    finish[choice] = OpenAiEndpoints.FinishReasonText(done.Reason);
                    completionTokens += done.Usage.CompletionTokens;
                    cached = done.Usage.CachedPromptTokens;
                    break;
            }
        }
        http.RequestAborted.ThrowIfCancellationRequested();
        var choices = Enumerable.Range(0, n).Select(i => new ChatCompletionResponse.ChatChoice(
            i, new ChatCompletionResponse.AssistantMessage("assistant", texts[i].ToString()),
            logprobs[i] is { } content ? new ChatLogprobs(content) : null, finish[i] ?? "cancelled")).ToList();
        var usage = new Usage(promptTokens, completionTokens, promptTokens + completionTokens, new Usage.TokenDetails(cached));
        await http.Response.WriteAsJsonAsync(new ChatCompletionResponse(id, created, model, choices, usage),
            OpenAiJsonContext.Default.ChatCompletionResponse, contentType: "application/json", http.RequestAborted);
    }

    private static async Task StreamAsync(HttpContext http, IInferenceBackend backend, GenerationFanOut fanOut, string id, long created, string model, int n, bool? asTokenIds, bool includeUsage, int promptTokens)
    {
        var events = new ServerSentEvents(http.Response, http.RequestAborted);
        var chunks = OpenAiJsonContext.Default.ChatCompletionChunk;
        await events.StartAsync();
        for (var i = 0; i < n; i++)
            await events.WriteAsync(Chunk(id, created, model, i, new ChatCompletionChunk.Delta("assistant", ""), null, null), chunks);

        var completionTokens = 0;
        var cached = 0;
        await foreach (var (choice, generationEvent) in fanOut.ReadAllAsync(http.RequestAborted))
        {
            switch (generationEvent)
            {
                case TokenGenerated token:
                    var entry = LogprobEntry(backend, token, asTokenIds);
                    if (token.TextDelta.Length == 0 && entry is null) break;
                    await events.WriteAsync(Chunk(id, created, model, choice, new ChatCompletionChunk.Delta(Content: token.TextDelta),
                        entry is null ? null : new ChatLogprobs([entry]), null), chunks);
                    break;
                case GenerationFinished done:
                    completionTokens += done.Usage.CompletionTokens;
                    cached = done.Usage.CachedPromptTokens;
                    var delta = new ChatCompletionChunk.Delta(Content: done.TextDelta.Length > 0 ? done.TextDelta : null);
                    await events.WriteAsync(Chunk(id, created, model, choice, delta, null, OpenAiEndpoints.FinishReasonText(done.Reason)), chunks);
                    break;
            }
        }
        http.RequestAborted.ThrowIfCancellationRequested();
        if (includeUsage)
            await events.WriteAsync(new ChatCompletionChunk(id, created, model, [],
                new Usage(promptTokens, completionTokens, promptTokens + completionTokens, new Usage.TokenDetails(cached))), chunks);
        await events.WriteDoneAsync();
    }

    private static ChatCompletionChunk Chunk(string id, long created, string model, int choice, ChatCompletionChunk.Delta delta, ChatLogprobs? logprobs, string? finishReason) =>
        new(id, created, model, [new ChatCompletionChunk.ChunkChoice(choice, delta, logprobs, finishReason)]);

    private static ChatLogprobs.TokenEntry? LogprobEntry(IInferenceBackend backend, TokenGenerated token, bool? asTokenIds)
    {
        // Null: the caller did not ask for logprobs.
        if (asTokenIds is not { } ids) return null;
        var text = OpenAiEndpoints.TokenText(backend, token.TokenId, ids);
        var alternatives = token.TopLogprobs
            .Select(alt =>
            {
                var altText = OpenAiEndpoints.TokenText(backend, alt.TokenId, ids);
                return new ChatLogprobs.Alternative(altText, alt.Logprob, Bytes(backend, alt.TokenId));
            })
            .ToList();
        return new ChatLogprobs.TokenEntry(text, token.Logprob, Bytes(backend, token.TokenId), alternatives);
    }

    private static int[] Bytes(IInferenceBackend backend, int tokenId) =>
        [.. Encoding.UTF8.GetBytes(backend.Decode([tokenId], skipSpecialTokens: false)).Select(b => (int)b)];
}
