using DeepSeek.Runtime.Api.OpenAi.Contracts;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Runtime.Serving;
using SamplingParameters = DeepSeek.Engine.Requests.SamplingParameters;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>Maps the OpenAI-compatible routes under <c>/v1</c> and the error handling they share.</summary>
public static class OpenAiEndpoints
{
    public static void MapOpenAi(this WebApplication app, string httpHost)
    {
        app.MapPost("/v1/chat/completions", (HttpContext http) => Guarded(http, requiresReady: true, ChatCompletionsEndpoint.HandleAsync)).RequireHost(httpHost);
        app.MapPost("/v1/completions", (HttpContext http) => Guarded(http, requiresReady: true, CompletionsEndpoint.HandleAsync)).RequireHost(httpHost);
        app.MapPost("/v1/embeddings", (HttpContext http) => Guarded(http, requiresReady: true, EmbeddingsEndpoint.HandleAsync)).RequireHost(httpHost);
        app.MapGet("/v1/models", (HttpContext http) => Guarded(http, requiresReady: false, ListModelsAsync)).RequireHost(httpHost);
        app.Map("/v1/{**rest}", (HttpContext http) => Guarded(http, requiresReady: false, context => throw new ApiFailure(new ApiError(
                ApiErrorKind.NotFound,
                $"There is no route {context.Request.Method} {context.Request.Path}; this server serves POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings and GET /v1/models.",
                Code: "unknown_url"))))
            .RequireHost(httpHost);
    }

    /// <exception cref="ApiFailure">404 when <paramref name="requested"/> is not the served model, 400 when missing.</exception>
    internal static string CheckModel(string? requested, ModelDescription model)
    {
        if (string.IsNullOrEmpty(requested))
            throw new ApiFailure(ApiError.Invalid("model", $"model is required; send \"model\": \"{model.ServedName}\"."));
        if (requested != model.ServedName)
            throw new ApiFailure(new ApiError(ApiErrorKind.NotFound,
                $"The model '{requested}' does not exist on this server; it serves '{model.ServedName}' (GET /v1/models lists it).", "model", "model_not_found"));
        return requested;
    }

    /// <summary>Sampling fields both generation endpoints share, as the rules read them.</summary>
    internal static SamplingInput Sampling(GenerationRequestBody body, int? maxTokens, string maxTokensField, bool logprobs, int? topLogprobs, string topLogprobsField)
    {
        if (body.Seed is < 0) throw new ApiFailure(ApiError.Invalid("seed", $"seed must be between 0 and {long.MaxValue}, not {body.Seed}."));
        OpenAiInputs.RejectUnknown(body.StreamOptions?.UnknownFields, "stream_options.");
        if (body.StreamOptions is not null && body.Stream != true)
            throw new ApiFailure(ApiError.Invalid("stream_options", "stream_options is only allowed with \"stream\": true; remove it or set stream."));
        return new SamplingInput
        {
            Temperature = body.Temperature,
            TopP = body.TopP,
            TopK = body.TopK,
            Seed = body.Seed is { } seed ? (ulong)seed : null,
            PresencePenalty = body.PresencePenalty,
            FrequencyPenalty = body.FrequencyPenalty,
            RepetitionPenalty = body.RepetitionPenalty,
            Stop = OpenAiInputs.Stop(body.Stop),
            StopTokenIds = body.StopTokenIds,
            MinTokens = body.MinTokens,
            MaxTokens = maxTokens,
            MaxTokensField = maxTokensField,
            Logprobs = logprobs,
            TopLogprobs = topLogprobs,
            TopLogprobsField = topLogprobsField,
        };
    }

    /// <exception cref="ApiFailure"><c>n</c> is out of range or the call asks for too many sequences.</exception>
    internal static int Choices(GenerationRequestBody body, int prompts, OpenAiOptions options)
    {
        var n = body.N ?? 1;
        if (n < 1 || n * (long)prompts > options.MaxSequencesPerRequest)
            throw new ApiFailure(ApiError.Invalid("n", $"n must be at least 1 and n times the number of prompts at most {options.MaxSequencesPerRequest}; got n={n} with {prompts} prompt(s)."));
        return n;
    }

    /// <summary>Per-choice seeds: choice i of a seeded request uses seed + i, so choices differ yet reproduce.</summary>
    internal static SamplingParameters ForChoice(SamplingParameters sampling, int choice) =>
        choice == 0 || sampling.Seed is not { } seed ? sampling : sampling with { Seed = unchecked(seed + (ulong)choice) };

    internal static string FinishReasonText(FinishReason reason) => reason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length => "length",
        FinishReason.Error => "error",
        _ => "cancelled",
    };

    internal static string TokenText(IInferenceBackend backend, int tokenId, bool asTokenIds) =>
        asTokenIds ? $"token_id:{tokenId}" : backend.Decode([tokenId], skipSpecialTokens: false);

    private static async Task ListModelsAsync(HttpContext http)
    {
        var model = http.RequestServices.GetRequiredService<IInferenceBackend>().Model;
        var list = new ModelList([new ModelList.Model(model.ServedName, model.CreatedUnixSeconds, "deepseek-runtime", model.MaxContextLength, model.Architecture)]);
        await http.Response.WriteAsJsonAsync(list, OpenAiJsonContext.Default.ModelList, contentType: "application/json", http.RequestAborted);
    }

    /// <summary>
    /// Every /v1 handler runs here: bad input becomes a 4xx in OpenAI's shape, a refused request its
    /// 429/503, a vanished client nothing at all, and anything else a 500 without internals.
    /// </summary>
    private static async Task Guarded(HttpContext http, bool requiresReady, Func<HttpContext, Task> handler)
    {
        try
        {
            if (requiresReady) CheckReady(http.RequestServices.GetRequiredService<Readiness>().State);
            await handler(http);
        }
        catch (ApiFailure failure)
        {
            await OpenAiErrors.WriteAsync(http, failure.Error);
        }
        catch (InferenceRejectedException rejected)
        {
            await OpenAiErrors.WriteAsync(http, ApiError.From(rejected));
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away; GenerationFanOut already cancelled its sequences.
        }
        catch (Exception e)
        {
            http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OpenAiEndpoints))
                .LogError(e, "Unhandled error in {Method} {Path}", http.Request.Method, http.Request.Path);
            await OpenAiErrors.WriteAsync(http, new ApiError(ApiErrorKind.Internal,
                "The server failed while handling this request; the error is in its log. Retrying may help.", Code: "internal_error"));
        }
    }

    /// <exception cref="ApiFailure">503 while loading or draining.</exception>
    internal static void CheckReady(ReadinessState state)
    {
        switch (state)
        {
            case ReadinessState.Loading:
                throw new ApiFailure(new ApiError(ApiErrorKind.Unavailable, "The model is still loading; retry when GET /ready answers 200.", Code: "loading")
                    { RetryAfter = TimeSpan.FromSeconds(5) });
            case ReadinessState.Draining:
                throw new ApiFailure(new ApiError(ApiErrorKind.Unavailable, "This replica is draining (shutting down); send the request to another replica.", Code: "draining"));
        }
    }
}
