using System.Text;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Structured;
using DeepSeek.Runtime.Grpc.V1;
using DeepSeek.Runtime.Serving;
using Grpc.Core;
using Grpc.HealthCheck;

namespace DeepSeek.Runtime.Api.Grpc;

/// <summary>
/// <c>deepseek.runtime.v1.Inference</c> over the backend: the same rules as the HTTP API (the
/// engine's <see cref="RequestValidator"/>, naming the proto's fields), the
/// engine's events written out as they arrive, and failures as status codes from <see cref="ApiErrors"/>.
/// </summary>
public sealed class InferenceService(IInferenceBackend backend, Readiness readiness, ILogger<InferenceService> logger) : Inference.InferenceBase
{
    /// <summary>
    /// The longest caller-chosen <c>request_id</c>, in UTF-8 bytes. The proto promises it back in every
    /// streamed response, so an unbounded id multiplied by the tokens generated (a 1 MB id × 100 tokens
    /// sent 100 MB back).
    /// </summary>
    public const int MaxRequestIdBytes = 256;

    public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Guard(() => CheckRequestId(request.RequestId));
        var requestId = string.IsNullOrEmpty(request.RequestId) ? "gen-" + Guid.NewGuid().ToString("N") : request.RequestId;
        var handle = Guard(() =>
        {
            ApiErrors.CheckReady(readiness);
            var validator = backend.Model.Validator;
            var fields = new RequestFields("prompt", "max_tokens", "top_logprobs");
            var sampling = Sampling(request.Sampling ?? new SamplingOptions()) with
            {
                Constraint = request.JsonSchema.Length == 0 ? null
                    : validator.CheckResponseFormat(new ResponseFormat("json_schema", SchemaJson: request.JsonSchema, Param: "json_schema", TypeParam: "json_schema")),
            };
            validator.CheckSampling(sampling, fields);
            int[] prompt;
            switch (request.PromptCase)
            {
                case GenerateRequest.PromptOneofCase.Text:
                    fields = fields with { Prompt = "text" };
                    validator.CheckTextFits(request.Text, fields.Prompt);
                    prompt = backend.Encode(request.Text, addSpecialTokens: true);
                    break;
                case GenerateRequest.PromptOneofCase.TokenIds:
                    fields = fields with { Prompt = "token_ids" };
                    prompt = [.. request.TokenIds.Ids];
                    break;
                default:
                    throw new InvalidRequestException("prompt", "Set the prompt: either text or token_ids.");
            }
            var model = backend.Model;
            if (!model.Serves(request.Adapter.Length == 0 ? model.ServedName : request.Adapter, out var adapter))
                throw new ApiFailure(new ApiError(ApiErrorKind.NotFound,
                    $"The LoRA adapter '{request.Adapter}' is not served here; this server serves {model.ServedNames()}.", "adapter", "model_not_found"));
            return backend.Submit(validator.Validate(prompt, sampling, fields).WithAdapter(adapter), context.CancellationToken);
        });

        await foreach (var item in handle.Events.ReadAllAsync(context.CancellationToken))
        {
            if (item.FinishReason == FinishReason.Error)
            {
                var error = ApiErrors.FromFailedEvent(item);
                ApiErrors.LogRequestFailed(logger, requestId, error.Code, error.Message);
                throw ToRpc(error);
            }
            var response = new GenerateResponse { RequestId = requestId, TextDelta = item.TextDelta };
            if (item.TokenId is { } token)
            {
                var generated = new GeneratedToken { TokenId = token, Logprob = item.Logprobs?.Chosen.Logprob ?? 0f };
                generated.TopLogprobs.Add((item.Logprobs?.Top ?? []).Select(alt => new Runtime.Grpc.V1.TokenLogprob { TokenId = alt.TokenId, Logprob = alt.Logprob }));
                response.Tokens.Add(generated);
            }
            if (item.FinishReason is { } reason)
            {
                response.FinishReason = reason.WireText();
                var usage = item.Usage ?? new UsageInfo(0, 0, 0);
                response.Usage = new Runtime.Grpc.V1.Usage
                {
                    PromptTokens = usage.PromptTokens,
                    CompletionTokens = usage.CompletionTokens,
                    CachedPromptTokens = usage.CachedPromptTokens,
                };
            }
            await responseStream.WriteAsync(response, context.CancellationToken);
        }
    }

    public override Task<TokenizeResponse> Tokenize(TokenizeRequest request, ServerCallContext context)
    {
        // The bound the text prompts of both faces get: text that cannot fit the context is refused before it is tokenized.
        var ids = Guard(() =>
        {
            backend.Model.Validator.CheckTextFits(request.Text, "text");
            return backend.Encode(request.Text, request.AddSpecialTokens);
        });
        var response = new TokenizeResponse();
        response.TokenIds.Add(ids);
        return Task.FromResult(response);
    }

    public override Task<DetokenizeResponse> Detokenize(DetokenizeRequest request, ServerCallContext context)
    {
        var ids = request.TokenIds.ToArray();
        Guard(() =>
        {
            backend.Model.Validator.CheckDetokenizable(ids, "token_ids");
            return 0;
        });
        return Task.FromResult(new DetokenizeResponse { Text = backend.Decode(ids, request.SkipSpecialTokens) });
    }

    public override Task<LoadReport> GetLoad(GetLoadRequest request, ServerCallContext context)
    {
        var load = backend.GetLoad();
        var model = backend.Model;
        return Task.FromResult(new LoadReport
        {
            Waiting = load.Waiting,
            Running = load.Running,
            KvCacheUsage = load.KvCacheUsage,
            RecentTokensPerSecond = load.TokensPerSecond,
            Ready = !load.Draining && readiness.IsReady,
            MaxRunningRequests = model.MaxRunningRequests,
            MaxQueuedRequests = model.MaxQueuedRequests,
        });
    }

    public override Task<ModelInfo> GetModelInfo(GetModelInfoRequest request, ServerCallContext context)
    {
        var model = backend.Model;
        return Task.FromResult(new ModelInfo
        {
            ServedName = model.ServedName,
            Architecture = model.Architecture,
            VocabSize = model.VocabSize,
            MaxContextLength = model.MaxContextLength,
            NumLayers = model.NumLayers,
            NumRoutedExperts = model.NumRoutedExperts,
            ExpertsPerToken = model.ExpertsPerToken,
            Dtype = model.DType,
            Device = model.Device,
            ParameterCount = model.ParameterCount,
        });
    }

    /// <summary>
    /// Proto3 zeros mean "not set" (the engine's defaults), except temperature where 0 is greedy as the
    /// proto says. <c>top_logprobs</c> without <c>logprobs</c> is refused, as HTTP refuses it.
    /// </summary>
    /// <exception cref="InvalidRequestException">top_logprobs without logprobs.</exception>
    internal static SamplingParameters Sampling(SamplingOptions options)
    {
        if (options.TopLogprobs != 0 && !options.Logprobs)
            throw new InvalidRequestException("top_logprobs", "top_logprobs needs logprobs set to true; set logprobs or leave top_logprobs 0.");
        return new SamplingParameters
        {
            Temperature = options.Temperature,
            TopP = options.TopP == 0 ? 1f : options.TopP,
            TopK = options.TopK == -1 ? 0 : options.TopK,
            Seed = options.HasSeed ? options.Seed : null,
            PresencePenalty = options.PresencePenalty,
            FrequencyPenalty = options.FrequencyPenalty,
            RepetitionPenalty = options.RepetitionPenalty == 0 ? 1f : options.RepetitionPenalty,
            Stop = [.. options.Stop],
            StopTokenIds = [.. options.StopTokenIds],
            MinTokens = options.MinTokens,
            MaxTokens = options.MaxTokens == 0 ? null : options.MaxTokens,
            Logprobs = options.Logprobs ? options.TopLogprobs : null,
        };
    }

    /// <exception cref="ApiFailure">The id is longer than <see cref="MaxRequestIdBytes"/>.</exception>
    private static int CheckRequestId(string requestId)
    {
        var bytes = Encoding.UTF8.GetByteCount(requestId);
        if (bytes > MaxRequestIdBytes)
            throw new ApiFailure(ApiError.Invalid("request_id", $"request_id is {bytes} bytes; send at most {MaxRequestIdBytes} (it is echoed in every response)."));
        return bytes;
    }

    /// <summary>Runs request checks and admission; what they refuse becomes the status <see cref="ApiErrors"/> gives it.</summary>
    private static T Guard<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (ApiErrors.From(e) is { } error)
        {
            throw ToRpc(error);
        }
    }

    internal static RpcException ToRpc(ApiError error)
    {
        var detail = error.Param is null ? error.Message : $"{error.Param}: {error.Message}";
        var trailers = new Metadata();
        if (error.Code is { } code) trailers.Add("error-code", code);
        if (error.RetryAfter is { } retryAfter) trailers.Add("retry-after", ApiErrors.RetryAfterSeconds(retryAfter));
        return new RpcException(new Status(ApiErrors.GrpcCode(error.Kind), detail), trailers);
    }
}

public static class GrpcInferenceEndpoints
{
    /// <summary>
    /// The gRPC services, on the gRPC listener only: Inference (its messages checked by
    /// <see cref="MalformedMessageGuard"/>), standard health (overall and per service) and reflection.
    /// </summary>
    public static WebApplication MapGrpcInference(this WebApplication app, bool withInference)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (withInference)
        {
            app.UseWhen(http => http.Face() == ApiFace.Grpc, grpc => grpc.UseMiddleware<MalformedMessageGuard>());
            app.MapGrpcService<InferenceService>().RequireFace(ApiFace.Grpc);
        }
        app.MapGrpcService<HealthServiceImpl>().RequireFace(ApiFace.Grpc);
        app.MapGrpcReflectionService().RequireFace(ApiFace.Grpc);
        return app;
    }
}
