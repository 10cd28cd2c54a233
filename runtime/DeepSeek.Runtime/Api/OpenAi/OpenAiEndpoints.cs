using DeepSeek.Engine.Requests;
using DeepSeek.Model.Lora;
using DeepSeek.Runtime.Api.Auth;
using DeepSeek.Runtime.Api.OpenAi.Contracts;
using DeepSeek.Runtime.Serving;
using Microsoft.AspNetCore.Connections;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>Maps the OpenAI-compatible routes under <c>/v1</c>, on the HTTP listener only and behind the API key, and the error handling they share.</summary>
public static partial class OpenAiEndpoints
{
    public static IEndpointRouteBuilder MapOpenAi(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1").RequireFace(ApiFace.Http).WithMetadata(new ApiKeyRequired());
        v1.MapPost("/chat/completions", (HttpContext http) => Guarded(http, requiresReady: true, ChatCompletionsEndpoint.HandleAsync));
        v1.MapPost("/completions", (HttpContext http) => Guarded(http, requiresReady: true, CompletionsEndpoint.HandleAsync));
        v1.MapPost("/embeddings", (HttpContext http) => Guarded(http, requiresReady: true, EmbeddingsEndpoint.HandleAsync));
        v1.MapGet("/models", (HttpContext http) => Guarded(http, requiresReady: false, ListModelsAsync));
        v1.MapGet("/models/{**id}", (HttpContext http) => Guarded(http, requiresReady: false, RetrieveModelAsync));
        if (app.ServiceProvider.GetService<OpenAiOptions>() is { LoraUpdates: true })
        {
            v1.MapPost("/load_lora_adapter", (HttpContext http) => Guarded(http, requiresReady: false, LoraAdapterEndpoints.LoadAsync));
            v1.MapPost("/unload_lora_adapter", (HttpContext http) => Guarded(http, requiresReady: false, LoraAdapterEndpoints.UnloadAsync));
        }
        v1.Map("/{**rest}", (HttpContext http) => Guarded(http, requiresReady: false, context => throw new ApiFailure(new ApiError(
            ApiErrorKind.NotFound,
            $"There is no route {context.Request.Method} {context.Request.Path}; this server serves POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, GET /v1/models and GET /v1/models/{{model}}.",
            Code: "unknown_url"))));
        return app;
    }

    /// <exception cref="ApiFailure">404 when <paramref name="requested"/> is neither the served model nor one of its LoRA adapters.</exception>
    /// <exception cref="InvalidRequestException">It is missing.</exception>
    internal static string CheckModel(string? requested, ModelDescription model)
    {
        if (string.IsNullOrEmpty(requested))
            throw new InvalidRequestException("model", $"model is required; send \"model\": \"{model.ServedName}\".");
        _ = AdapterOf(requested, model);
        return requested;
    }

    /// <summary>The LoRA adapter a checked <c>model</c> names, or null for the served model itself.</summary>
    /// <exception cref="ApiFailure">404 when it names neither (an adapter unloaded since it was checked included).</exception>
    internal static LoraAdapter? AdapterOf(string requested, ModelDescription model) => model.Serves(requested, out var adapter)
        ? adapter
        : throw new ApiFailure(new ApiError(ApiErrorKind.NotFound,
            $"The model '{requested}' does not exist on this server; it serves {model.ServedNames()} (GET /v1/models lists them).", "model", "model_not_found"));

    internal static string TokenText(IInferenceBackend backend, int tokenId, bool asTokenIds) =>
        asTokenIds ? $"token_id:{tokenId}" : backend.Decode([tokenId], skipSpecialTokens: false);

    private static ModelList.Model Describe(ModelDescription model) =>
        new(model.ServedName, model.CreatedUnixSeconds, "deepseek-runtime", model.MaxContextLength, model.Architecture);

    /// <summary>A LoRA adapter as <c>/v1/models</c> lists it: vLLM's <c>parent</c> names the model it runs on.</summary>
    private static ModelList.Model Describe(ModelDescription model, LoraAdapter adapter) =>
        Describe(model) with { Id = adapter.Name, Parent = model.ServedName };

    private static async Task ListModelsAsync(HttpContext http)
    {
        var model = http.RequestServices.GetRequiredService<IInferenceBackend>().Model;
        var list = new List<ModelList.Model> { Describe(model) };
        list.AddRange((model.Adapters?.All ?? []).Select(a => Describe(model, a)));
        await http.Response.WriteAsJsonAsync(new ModelList(list), OpenAiJsonContext.Default.ModelList, contentType: "application/json", http.RequestAborted);
    }

    /// <summary>
    /// <c>GET /v1/models/{id}</c>: the SDK's <c>models.retrieve</c>. A served name may hold a slash
    /// (<c>deepseek-ai/DeepSeek-V3</c>), sent raw or, as the openai SDK sends it, escaped as <c>%2F</c>.
    /// </summary>
    private static async Task RetrieveModelAsync(HttpContext http)
    {
        var model = http.RequestServices.GetRequiredService<IInferenceBackend>().Model;
        // Kestrel decodes the path except %2F, which it keeps so that it cannot split a segment; the
        // catch-all id is one name whatever its segments, so an escaped slash is a slash like a raw one.
        var id = (http.Request.RouteValues["id"] as string)?.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase) ?? "";
        var found = AdapterOf(id, model) is { } adapter ? Describe(model, adapter) : Describe(model);
        await http.Response.WriteAsJsonAsync(found, OpenAiJsonContext.Default.Model, contentType: "application/json", http.RequestAborted);
    }

    /// <summary>
    /// Every /v1 handler runs here: bad input becomes a 4xx in OpenAI's shape, a refused request its
    /// 429/503 (all through <see cref="ApiErrors"/>), a vanished client nothing at all, and anything
    /// else a 500 without internals, logged once.
    /// </summary>
    private static async Task Guarded(HttpContext http, bool requiresReady, Func<HttpContext, Task> handler)
    {
        try
        {
            if (requiresReady) ApiErrors.CheckReady(http.RequestServices.GetRequiredService<Readiness>());
            await handler(http);
        }
        catch (Exception e) when (ApiErrors.From(e) is { } error)
        {
            await OpenAiErrors.WriteAsync(http, error);
        }
        catch (BadHttpRequestException e)
        {
            // A stalled or cut-off upload: the client's doing, answered without a stack trace in the log.
            var logger = Logger(http);
            if (logger.IsEnabled(LogLevel.Information)) LogUnreadableBody(logger, e.StatusCode, e.Message);
            if (!http.RequestAborted.IsCancellationRequested) await OpenAiErrors.WriteAsync(http, RequestBodyReader.FromBadRequest(e));
        }
        catch (Exception e) when (http.RequestAborted.IsCancellationRequested && e is OperationCanceledException or IOException or ConnectionResetException)
        {
            // The client went away; GenerationFanOut already cancelled its sequences.
        }
        catch (Exception e)
        {
            LogUnhandled(Logger(http), e, http.Request.Method, http.Request.Path.Value);
            await OpenAiErrors.WriteAsync(http, new ApiError(ApiErrorKind.Internal,
                "The server failed while handling this request; the error is in its log. Retrying may help.", Code: "internal_error"));
        }
    }

    private static ILogger Logger(HttpContext http) => http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OpenAiEndpoints));

    [LoggerMessage(Level = LogLevel.Information, Message = "Unreadable request body ({Status}): {Reason}")]
    private static partial void LogUnreadableBody(ILogger logger, int status, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled error in {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string method, string? path);
}
