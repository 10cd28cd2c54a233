using System.Text;
using DeepSeek.Runtime.Api.OpenAi.Contracts;
using DeepSeek.Engine.Requests;
using DeepSeek.Runtime.Serving;

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
        var model = backend.Model;

        OpenAiInputs.RejectUnknown(body.UnknownFields);
        var modelName = OpenAiEndpoints.CheckModel(body.Model, model);
        OpenAiInputs.CheckDefaultOnly(body);
        var prompts = OpenAiInputs.Prompts(body.Prompt, "prompt");
        var n = body.N ?? 1;
        var validator = model.Validator;
        validator.CheckSequences(n, prompts.Count, options.MaxSequencesPerRequest);
        var logprobs = body.Logprobs is not null;
        var sampling = OpenAiInputs.Sampling(body, body.MaxTokens, body.Logprobs);
        validator.CheckSampling(sampling, RequestFields.Completions);

        var id = "cmpl-" + Guid.NewGuid().ToString("N");
        var created = services.GetRequiredService<TimeProvider>().GetUtcNow().ToUnixTimeSeconds();
        var sequences = new List<ValidatedRequest>(prompts.Count * n);
        var promptTokens = 0;
        for (var p = 0; p < prompts.Count; p++)
        {
            var fields = RequestFields.Completions with { Prompt = prompts.Count == 1 ? "prompt" : $"prompt[{p}]" };
            if (prompts[p].Text is { } text) validator.CheckTextFits(text, fields.Prompt);
            var ids = prompts[p].TokenIds ?? backend.Encode(prompts[p].Text!, addSpecialTokens: true);
            var request = validator.Validate(ids, sampling, fields, options.DefaultCompletionMaxTokens);
            promptTokens += ids.Length;
            for (var j = 0; j < n; j++) sequences.Add(request.ForChoice(j));
        }
        bool? asTokenIds = logprobs ? body.ReturnTokensAsTokenIds ?? false : null;

        using var fanOut = GenerationFanOut.Start(backend, sequences, http.RequestAborted, OpenAiEndpoints.AdapterOf(modelName, model));
        var run = new CompletionResponseWriter(http, backend, fanOut, id, created, modelName, sequences.Count, asTokenIds, promptTokens);
        if (body.Stream == true)
            await run.StreamAsync(body.StreamOptions?.IncludeUsage ?? false);
        else
            await run.RespondAsync();
    }

    private sealed class CompletionResponseWriter(HttpContext http, IInferenceBackend backend, GenerationFanOut fanOut, string id, long created, string model, int choices, bool? asTokenIds, int promptTokens)
    {
        private readonly int[] _textLength = new int[choices];
        private int _completionTokens;
        private int _cached;

        public async Task RespondAsync()
        {
            var texts = Enumerable.Range(0, choices).Select(_ => new StringBuilder()).ToArray();
            var logprobs = new CompletionLogprobs?[choices];
            var finish = new string[choices];
            await foreach (var (choice, item) in fanOut.ReadAllAsync(http.RequestAborted))
            {
                if (Failed(item) is { } error)
                {
                    await OpenAiErrors.WriteAsync(http, error);
                    return;
                }
                if (asTokenIds is not null && Logprobs(choice, item) is { } entry) Append(logprobs[choice] ??= Empty(), entry);
                texts[choice].Append(item.TextDelta);
                _textLength[choice] += item.TextDelta.Length;
                if (item.FinishReason is { } reason) finish[choice] = Finish(reason, item.Usage);
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
            await foreach (var (choice, item) in fanOut.ReadAllAsync(http.RequestAborted))
            {
                if (Failed(item) is { } error)
                {
                    await events.WriteErrorAsync(error);
                    return;
                }
                var logprobs = asTokenIds is null ? null : Logprobs(choice, item);
                _textLength[choice] += item.TextDelta.Length;
                var finish = item.FinishReason is { } reason ? Finish(reason, item.Usage) : null;
                if (item.TextDelta.Length == 0 && logprobs is null && finish is null) continue;
                await events.WriteAsync(Chunk(choice, item.TextDelta, logprobs, finish), chunks);
            }
            http.RequestAborted.ThrowIfCancellationRequested();
            if (includeUsage) await events.WriteAsync(new CompletionResponse(id, created, model, [], Usage()), chunks);
            await events.WriteDoneAsync();
        }

        private CompletionResponse Chunk(int choice, string text, CompletionLogprobs? logprobs, string? finishReason) =>
            new(id, created, model, [new CompletionResponse.TextChoice(choice, text, logprobs, finishReason)], null);

        private string Finish(FinishReason reason, UsageInfo? usage)
        {
            _completionTokens += usage?.CompletionTokens ?? 0;
            _cached = Math.Max(_cached, usage?.CachedPromptTokens ?? 0);
            return reason.WireText();
        }

        /// <summary>The engine's error of a failed sequence, logged; the call fails as a whole (its other sequences are cancelled).</summary>
        private ApiError? Failed(TokenEvent item)
        {
            if (item.FinishReason != FinishReason.Error) return null;
            var error = ApiErrors.FromFailedEvent(item);
            ApiErrors.LogRequestFailed(http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(CompletionsEndpoint)), id, error.Code, error.Message);
            return error;
        }

        private Usage Usage() => new(promptTokens, _completionTokens, promptTokens + _completionTokens, new Usage.TokenDetails(_cached));

        /// <summary>The legacy API's logprobs of one token; null for an event without a token.</summary>
        private CompletionLogprobs? Logprobs(int choice, TokenEvent item)
        {
            if (item.TokenId is not { } token) return null;
            var ids = asTokenIds ?? false;
            var top = new Dictionary<string, float>();
            foreach (var alternative in item.Logprobs?.Top ?? [])
                top.TryAdd(OpenAiEndpoints.TokenText(backend, alternative.TokenId, ids), alternative.Logprob);
            return new CompletionLogprobs([OpenAiEndpoints.TokenText(backend, token, ids)], [item.Logprobs?.Chosen.Logprob ?? 0f], [top], [_textLength[choice]]);
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
