using System.Text;
using DeepSeek.Runtime.Api.OpenAi.Contracts;
using DeepSeek.Runtime.Serving;
using SamplingParameters = DeepSeek.Engine.Requests.SamplingParameters;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary><c>POST /v1/completions</c>: raw prompts (text or token ids, one or many) continued, streamed or whole.</summary>
internal static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext http)
    {
        var services = http.RequestServices;
        var backend = services.GetRequiredService<IInferenceBackend>();
        var options = services.GetRequiredService<OpenAiOptions>();
        var body = await RequestBodyReader.ReadAsync(http, OpenAiJsonContext.Default.CompletionRequest, options.MaxRequestBytes);

        OpenAiInputs.RejectUnknown(body.UnknownFields);
        var modelName = OpenAiEndpoints.CheckModel(body.Model, backend.Model);
        var prompts = OpenAiInputs.Prompts(body.Prompt, "prompt");
        var n = OpenAiEndpoints.Choices(body, prompts.Count, options);
        var logprobs = body.Logprobs is not null;
        var input = OpenAiEndpoints.Sampling(body, body.MaxTokens, "max_tokens", logprobs, body.Logprobs, "logprobs");

        var id = "cmpl-" + Guid.NewGuid().ToString("N");
        var created = services.GetRequiredService<TimeProvider>().GetUtcNow().ToUnixTimeSeconds();
        var requests = new List<GenerationRequest>(prompts.Count * n);
        var promptTokens = 0;
        for (var p = 0; p < prompts.Count; p++)
        {
            var param = prompts.Count == 1 ? "prompt" : $"prompt[{p}]";
            var ids = prompts[p].TokenIds ?? backend.Encode(prompts[p].Text!, addSpecialTokens: true);
            SamplingRules.CheckVocabulary(param, ids, backend.Model.VocabSize);
            var sampling = Validate(input, ids.Length, backend.Model, options, param);
            promptTokens += ids.Length;
            for (var j = 0; j < n; j++)
                requests.Add(new GenerationRequest($"{id}-{p * n + j}", ids, OpenAiEndpoints.ForChoice(sampling, j)));
        }
        bool? asTokenIds = logprobs ? body.ReturnTokensAsTokenIds ?? false : null;

        await using var fanOut = GenerationFanOut.Start(backend, requests, http.RequestAborted);
        var run = new Run(http, backend, fanOut, id, created, modelName, requests.Count, asTokenIds, promptTokens);
        if (body.Stream == true)
            await run.StreamAsync(body.StreamOptions?.IncludeUsage ?? false);
        else
            await run.RespondAsync();
    }

    /// <summary>The shared rules, with the prompt's own index named when several prompts were sent.</summary>
    private static SamplingParameters Validate(SamplingInput input, int promptLength, ModelDescription model, OpenAiOptions options, string param)
    {
        try
        {
            return SamplingRules.Validate(input, promptLength, model, options.DefaultCompletionMaxTokens);
        }
        catch (ApiFailure failure) when (failure.Error.Param == "prompt" && param != "prompt")
        {
            throw new ApiFailure(failure.Error with { Param = param, Message = failure.Error.Message.Replace("The prompt", $"{param}", StringComparison.Ordinal) });
        }
    }

    private sealed class Run(HttpContext http, IInferenceBackend backend, GenerationFanOut fanOut, string id, long created, string model, int choices, bool? asTokenIds, int promptTokens)
    {
        private readonly int[] _textLength = new int[choices];
        private int _completionTokens;
        private int _cached;

        public async Task RespondAsync()
        {
            var texts = Enumerable.Range(0, choices).Select(_ => new StringBuilder()).ToArray();
            var logprobs = new CompletionLogprobs?[choices];
            var finish = new string[choices];
            await foreach (var (choice, generationEvent) in fanOut.ReadAllAsync(http.RequestAborted))
            {
                switch (generationEvent)
                {
                    case TokenGenerated token:
                        if (asTokenIds is not null) Append(logprobs[choice] ??= Empty(), Logprobs(choice, token));
                        texts[choice].Append(token.TextDelta);
                        _textLength[choice] += token.TextDelta.Length;
                        break;
                    case GenerationFinished done:
                        texts[choice].Append(done.TextDelta);
                        finish[choice] = Finish(done);
                        break;
                }
            }
            http.RequestAborted.ThrowIfCancellationRequested();
            var list = Enumerable.Range(0, choices)
                .Select(i => new CompletionResponse.TextChoice(i, texts[i].ToString(), logprobs[i] ?? (asTokenIds is null ? null : Empty()), finish[i] ?? "cancelled"))
                .ToList();
            await http.Response.WriteAsJsonAsync(new CompletionResponse(id, created, model, list, Usage()),
                OpenAiJsonContext.Default.CompletionResponse, contentType: "application/json", http.RequestAborted);
        }

        public async Task StreamAsync(bool includeUsage)
        {
            var events = new ServerSentEvents(http.Response, http.RequestAborted);
            var chunks = OpenAiJsonContext.Default.CompletionResponse;
            await events.StartAsync();
            await foreach (var (choice, generationEvent) in fanOut.ReadAllAsync(http.RequestAborted))
            {
                switch (generationEvent)
                {
                    case TokenGenerated token:
                        var logprobs = asTokenIds is null ? null : Logprobs(choice, token);
                        _textLength[choice] += token.TextDelta.Length;
                        if (token.TextDelta.Length == 0 && logprobs is null) break;
                        await events.WriteAsync(Chunk(choice, token.TextDelta, logprobs, null), chunks);
                        break;
                    case GenerationFinished done:
                        await events.WriteAsync(Chunk(choice, done.TextDelta, null, Finish(done)), chunks);
                        break;
                }
            }
            http.RequestAborted.ThrowIfCancellationRequested();
            if (includeUsage) await events.WriteAsync(new CompletionResponse(id, created, model, [], Usage()), chunks);
            await events.WriteDoneAsync();
        }

        private CompletionResponse Chunk(int choice, string text, CompletionLogprobs? logprobs, string? finishReason) =>
            new(id, created, model, [new CompletionResponse.TextChoice(choice, text, logprobs, finishReason)], null);

        private string Finish(GenerationFinished done)
        {
            _completionTokens += done.Usage.CompletionTokens;
            _cached = Math.Max(_cached, done.Usage.CachedPromptTokens);
            return OpenAiEndpoints.FinishReasonText(done.Reason);
        }

        private Usage Usage() => new(promptTokens, _completionTokens, promptTokens + _completionTokens, new Usage.TokenDetails(_cached));

        private CompletionLogprobs Logprobs(int choice, TokenGenerated token)
        {
            var ids = asTokenIds ?? false;
            var top = new Dictionary<string, float>();
            foreach (var alternative in token.TopLogprobs)
                top.TryAdd(OpenAiEndpoints.TokenText(backend, alternative.TokenId, ids), alternative.Logprob);
            return new CompletionLogprobs([OpenAiEndpoints.TokenText(backend, token.TokenId, ids)], [token.Logprob], [top], [_textLength[choice]]);
        }

        private static CompletionLogprobs Empty() => new([], [], [], []);

        private static void Append(CompletionLogprobs into, CompletionLogprobs one)
        {
            into.Tokens.AddRange(one.Tokens);
            into.TokenLogprobs.AddRange(one.TokenLogprobs);
            into.TopLogprobs.AddRange(one.TopLogprobs);
            into.TextOffset.AddRange(one.TextOffset);
        }
    }
}
