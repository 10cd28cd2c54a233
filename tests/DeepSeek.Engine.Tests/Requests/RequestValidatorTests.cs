using DeepSeek.Engine.Requests;

namespace DeepSeek.Engine.Tests.Requests;

public sealed class RequestValidatorTests
{
    private static readonly RequestValidator Validator = new(vocabSize: 1000, maxContextTokens: 100);

    private static SamplingParameters Tokens(int max) => SamplingParameters.Greedy with { MaxTokens = max, IgnoreEos = true };

    private static int[] Prompt(int length) => [.. Enumerable.Repeat(5, length)];

    [Fact]
    public void A_prompt_longer_than_the_context_is_refused_with_the_numbers()
    {
        var error = Assert.Throws<InvalidRequestException>(() => Validator.Validate(Prompt(100), SamplingParameters.Greedy, RequestFields.Completions));
        Assert.Equal("prompt", error.Param);
        Assert.Equal("context_length_exceeded", error.Code);
        Assert.Contains("100 tokens", error.Message);
        Assert.Contains("at least one must remain", error.Message);
    }

    [Fact]
    public void Max_tokens_beyond_the_context_is_refused_naming_max_tokens()
    {
        var error = Assert.Throws<InvalidRequestException>(() => Validator.Validate(Prompt(60), Tokens(41), RequestFields.Completions));
        Assert.Equal("max_tokens", error.Param);
        Assert.Contains("max_tokens is 41 but the prompt (60 tokens)", error.Message);
        Assert.Contains("to 40 or less", error.Message);
        Assert.Equal(40, Validator.Validate(Prompt(60), Tokens(40), RequestFields.Completions).Sampling.MaxTokens);
    }

    [Fact]
    public void Bad_sampling_parameters_are_refused_naming_the_field()
    {
        string Refused(SamplingParameters sampling) =>
            Assert.Throws<InvalidRequestException>(() => Validator.Validate(Prompt(5), sampling, RequestFields.Completions)).Param;
        Assert.Equal("temperature", Refused(new SamplingParameters { Temperature = -1 }));
        Assert.Equal("top_p", Refused(new SamplingParameters { TopP = 0 }));
        Assert.Equal("top_k", Refused(new SamplingParameters { TopK = -1 }));
        Assert.Equal("logprobs", Refused(new SamplingParameters { Logprobs = 21 }));
        Assert.Equal("min_tokens", Refused(new SamplingParameters { MinTokens = 5, MaxTokens = 2 }));
        Assert.Equal("stop", Refused(new SamplingParameters { Stop = [""] }));
        Assert.Equal("repetition_penalty", Refused(new SamplingParameters { RepetitionPenalty = 0 }));
    }

    [Fact]
    public void Errors_name_the_fields_as_the_face_spells_them()
    {
        var chat = new RequestFields("messages", "max_completion_tokens", "top_logprobs");
        var outOfVocabulary = Assert.Throws<InvalidRequestException>(() => Validator.Validate([1, 1000], SamplingParameters.Greedy, chat));
        Assert.Equal("messages", outOfVocabulary.Param);
        var tooMany = Assert.Throws<InvalidRequestException>(() => Validator.Validate(Prompt(60), Tokens(41), chat));
        Assert.Equal("max_completion_tokens", tooMany.Param);
        Assert.DoesNotContain("max_tokens", tooMany.Message, StringComparison.Ordinal);
        var empty = Assert.Throws<InvalidRequestException>(() => Validator.Validate([], SamplingParameters.Greedy, new RequestFields("token_ids")));
        Assert.Equal("token_ids", empty.Param);
        Assert.StartsWith("token_ids is empty", empty.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_max_tokens_the_rest_of_the_context_or_the_default_is_the_limit()
    {
        Assert.Equal(90, Validator.Validate(Prompt(10), SamplingParameters.Greedy, RequestFields.Completions).Sampling.MaxTokens);
        Assert.Equal(16, Validator.Validate(Prompt(10), SamplingParameters.Greedy, RequestFields.Completions, defaultMaxTokens: 16).Sampling.MaxTokens);
    }

    [Fact]
    public void Default_only_options_pass_at_the_values_that_change_nothing()
    {
        RequestValidator.CheckDefaultOnly(DefaultOnlyOptions.None);
        RequestValidator.CheckDefaultOnly(new DefaultOnlyOptions { LogitBiasCount = 0, Store = false, ServiceTier = "auto" });
        RequestValidator.CheckDefaultOnly(new DefaultOnlyOptions { ServiceTier = "default" });
    }

    [Theory]
    [InlineData("logit_bias")]
    [InlineData("store")]
    [InlineData("service_tier")]
    public void Default_only_options_that_would_change_the_answer_are_refused_naming_the_field(string field)
    {
        var options = field switch
        {
            "logit_bias" => new DefaultOnlyOptions { LogitBiasCount = 1 },
            "store" => new DefaultOnlyOptions { Store = true },
            _ => new DefaultOnlyOptions { ServiceTier = "priority" },
        };
        var error = Assert.Throws<InvalidRequestException>(() => RequestValidator.CheckDefaultOnly(options));
        Assert.Equal(field, error.Param);
        Assert.Equal("unsupported_value", error.Code);
        Assert.Contains(field, error.Message, StringComparison.Ordinal);
    }
}
