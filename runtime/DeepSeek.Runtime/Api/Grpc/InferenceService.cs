using DeepSeek.Runtime.Api.OpenAi;
using DeepSeek.Runtime.Grpc.V1;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Runtime.Serving;
using Grpc.Core;

namespace DeepSeek.Runtime.Api.Grpc;

/// <summary>
/// <c>deepseek.runtime.v1.Inference</c> over the backend, with the same validation as the HTTP API
/// (<see cref="SamplingRules"/>) and its failures as status codes.
/// </summary>
public sealed class InferenceService(IInferenceBackend backend, Readiness readiness) : Inference.InferenceBase
{
    public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
    {
        GenerationHandle handle;
        var requestId = string.IsNullOrEmpty(request.RequestId) ? "gen-" + Guid.NewGuid().ToString("N") : request.RequestId;
        try
        {
            OpenAiEndpoints.CheckReady(readiness.State);
            var prompt = request.PromptCase switch
            {
                GenerateRequest.PromptOneofCase.Text => backend.Encode(request.Text, addSpecialTokens: true),
                GenerateRequest.PromptOneofCase.TokenIds => [.. request.TokenIds.Ids],
                _ => throw new ApiFailure(ApiError.Invalid("prompt", "Set the prompt: either text or token_ids.")),
            };
            SamplingRules.CheckVocabulary("token_ids", prompt, backend.Model.VocabSize);
            var sampling = SamplingRules.Validate(Input(request.Sampling ?? new SamplingOptions()), prompt.Length, backend.Model);
            handle = backend.Submit(new GenerationRequest(requestId, prompt, sampling), context.CancellationToken);
        }
        catch (ApiFailure failure)
        {
            throw GrpcErrors.From(failure.Error);
        }
        catch (InferenceRejectedException rejected)
        {
            throw GrpcErrors.From(rejected);
        }

        await foreach (var generationEvent in handle.Events.ReadAllAsync(context.CancellationToken))
        {
            var response = new GenerateResponse { RequestId = requestId };
            switch (generationEvent)
            {
                case TokenGenerated token:
                    var generated = new GeneratedToken { TokenId = token.TokenId, Logprob = token.Logprob };
                    generated.TopLogprobs.Add(token.TopLogprobs.Select(alt => new DeepSeek.Runtime.Grpc.V1.TokenLogprob { TokenId = alt.TokenId, Logprob = alt.Logprob }));
                    response.Tokens.Add(generated);
                    response.TextDelta = token.TextDelta;
                    break;
                case GenerationFinished done:
                    response.TextDelta = done.TextDelta;
                    response.FinishReason = OpenAiEndpoints.FinishReasonText(done.Reason);
                    response.Usage = new Usage
                    {
                        PromptTokens = done.Usage.PromptTokens,
                        CompletionTokens = done.Usage.CompletionTokens,
                        CachedPromptTokens = done.Usage.CachedPromptTokens,
                    };
                    break;
            }
            await responseStream.WriteAsync(response, context.CancellationToken);
        }
    }

    public override Task<TokenizeResponse> Tokenize(TokenizeRequest request, ServerCallContext context)
    {
        var response = new TokenizeResponse();
        response.TokenIds.Add(backend.Encode(request.Text, request.AddSpecialTokens));
        return Task.FromResult(response);
    }

    public override Task<DetokenizeResponse> Detokenize(DetokenizeRequest request, ServerCallContext context)
    {
        var ids = request.TokenIds.ToArray();
        try
        {
            SamplingRules.CheckVocabulary("token_ids", ids, backend.Model.VocabSize);
        }
        catch (ApiFailure failure)
        {
            throw GrpcErrors.From(failure.Error);
        }
        return Task.FromResult(new DetokenizeResponse { Text = backend.Decode(ids, request.SkipSpecialTokens) });
    }

    public override Task<LoadReport> GetLoad(GetLoadRequest request, ServerCallContext context)
    {
        var load = backend.GetLoad();
        return Task.FromResult(new LoadReport
        {
            Waiting = load.Waiting,
            Running = load.Running,
            KvCacheUsage = load.KvCacheUsage,
            RecentTokensPerSecond = load.RecentTokensPerSecond,
            Ready = load.Ready && readiness.IsReady,
            MaxRunningRequests = load.MaxRunningRequests,
            MaxQueuedRequests = load.MaxQueuedRequests,
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

    /// <summary>Proto3 zeros mean "not set", except temperature where 0 is greedy as the proto says.</summary>
    private static SamplingInput Input(SamplingOptions options) => new()
    {
        Temperature = options.Temperature,
        TopP = options.TopP == 0 ? null : options.TopP,
        TopK = options.TopK,
        Seed = options.HasSeed ? options.Seed : null,
        PresencePenalty = options.PresencePenalty,
        FrequencyPenalty = options.FrequencyPenalty,
        RepetitionPenalty = options.RepetitionPenalty == 0 ? null : options.RepetitionPenalty,
        Stop = [.. options.Stop],
        StopTokenIds = [.. options.StopTokenIds],
        MinTokens = options.MinTokens,
        MaxTokens = options.MaxTokens == 0 ? null : options.MaxTokens,
        Logprobs = options.Logprobs,
        TopLogprobs = options.TopLogprobs,
    };
}
