using DeepSeek.Engine.Admission;
using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Telemetry;
using DeepSeek.Runtime.Api;
using DeepSeek.Runtime.Api.Grpc;
using DeepSeek.Runtime.Grpc.V1;
using DeepSeek.Runtime.Serving;
using Grpc.Core;

namespace DeepSeek.Runtime.Tests.Api;

/// <summary>The one error table and the one set of request rules both faces use.</summary>
public sealed class ApiRulesTests
{
    private static readonly ModelDescription Model = new()
    {
        ServedName = "m",
        Architecture = "deepseek_v3",
        VocabSize = 1000,
        MaxContextLength = 100,
        MaxTokenBytes = 10,
        MaxRunningRequests = 1,
        MaxQueuedRequests = 2,
    };

    [Fact]
    public void Engine_exceptions_keep_their_message_code_and_field_on_both_faces()
    {
        var invalid = ApiErrors.From(new InvalidRequestException("max_tokens", "too many", "context_length_exceeded"))!;
        Assert.Equal((ApiErrorKind.InvalidRequest, "too many", "max_tokens", "context_length_exceeded"), (invalid.Kind, invalid.Message, invalid.Param, invalid.Code));
        Assert.Equal((400, StatusCode.InvalidArgument), (ApiErrors.HttpStatus(invalid.Kind), ApiErrors.GrpcCode(invalid.Kind)));

        var overloaded = ApiErrors.From(new EngineOverloadedException(2))!;
        Assert.Equal((429, StatusCode.ResourceExhausted), (ApiErrors.HttpStatus(overloaded.Kind), ApiErrors.GrpcCode(overloaded.Kind)));
        Assert.Equal(ApiErrors.OverloadRetryAfter, overloaded.RetryAfter);

        var draining = ApiErrors.From(new EngineDrainingException())!;
        Assert.Equal((503, StatusCode.Unavailable), (ApiErrors.HttpStatus(draining.Kind), ApiErrors.GrpcCode(draining.Kind)));

        Assert.Null(ApiErrors.From(new NullReferenceException()));
    }

    [Fact]
    public void A_failed_request_carries_the_engines_reason()
    {
        var fault = ApiErrors.FromFailedEvent(new TokenEvent { FinishReason = FinishReason.Error, ErrorMessage = "CUDA out of memory", FailureReason = FailureReasons.ModelStep });
        Assert.Equal((ApiErrorKind.Internal, "CUDA out of memory", FailureReasons.ModelStep), (fault.Kind, fault.Message, fault.Code));

        var invalid = ApiErrors.FromFailedEvent(new TokenEvent { FinishReason = FinishReason.Error, ErrorMessage = "bad stop", ErrorParam = "stop", FailureReason = FailureReasons.Invalid });
        Assert.Equal((ApiErrorKind.InvalidRequest, "stop"), (invalid.Kind, invalid.Param));

        var unnamed = ApiErrors.FromFailedEvent(new TokenEvent { FinishReason = FinishReason.Error });
        Assert.Equal("engine_error", unnamed.Code);

        var rpc = InferenceService.ToRpc(fault);
        Assert.Equal(StatusCode.Internal, rpc.StatusCode);
        Assert.Equal(FailureReasons.ModelStep, rpc.Trailers.GetValue("error-code"));
    }

    [Theory]
    [InlineData(5, 1, true)]
    [InlineData(2, 1, false)]
    [InlineData(1, 3, true)]
    [InlineData(0, 1, true)]
    public void A_call_that_can_never_be_admitted_is_refused_naming_n(int n, int prompts, bool refused)
    {
        var error = Record.Exception(() => Model.Validator.CheckSequences(n, prompts, maxSequencesPerRequest: 64));
        Assert.Equal(refused, error is InvalidRequestException { Param: "n" });
    }

    [Fact]
    public void Text_that_cannot_fit_is_refused_from_its_length_alone()
    {
        Model.Validator.CheckTextFits(new string('x', 999), "prompt");
        var error = Assert.Throws<InvalidRequestException>(() => Model.Validator.CheckTextFits(new string('x', 1000), "prompt"));
        Assert.Equal("context_length_exceeded", error.Code);
    }

    [Theory]
    [InlineData("repetition_penalty")]
    [InlineData("top_k")]
    [InlineData("stop_token_ids")]
    [InlineData("stop")]
    public void The_engines_sampling_rules_judge_what_the_api_used_to(string field)
    {
        var sampling = field switch
        {
            "repetition_penalty" => new SamplingParameters { RepetitionPenalty = 2.5f },
            "top_k" => new SamplingParameters { TopK = 1001 },
            "stop_token_ids" => new SamplingParameters { StopTokenIds = [1000] },
            _ => new SamplingParameters { Stop = [.. Enumerable.Repeat("s", SamplingParameters.MaxStopStrings + 1)] },
        };
        var error = Assert.Throws<InvalidRequestException>(() => Model.Validator.CheckSampling(sampling, RequestFields.Completions));
        Assert.Equal(field, error.Param);
        // Both faces report it alike.
        Assert.Equal(field, ApiErrors.From(error)!.Param);
    }

    [Fact]
    public void Chat_and_grpc_spellings_of_the_fields_are_named()
    {
        var error = Assert.Throws<InvalidRequestException>(() => Model.Validator.CheckSampling(new SamplingParameters { Logprobs = 21 }, new RequestFields("messages", "max_completion_tokens", "top_logprobs")));
        Assert.Equal("top_logprobs", error.Param);
        Assert.Contains("top_logprobs", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Grpc_refuses_top_logprobs_without_logprobs() =>
        Assert.Equal("top_logprobs", Assert.Throws<InvalidRequestException>(() => InferenceService.Sampling(new SamplingOptions { TopLogprobs = 2 })).Param);
}
