using System.Text;
using DeepSeek.Runtime.Api;
using DeepSeek.Runtime.Api.OpenAi;

namespace DeepSeek.Runtime.Tests.Api;

/// <summary>Request bodies a client got wrong, each named for what is wrong with it.</summary>
public sealed class RequestBodyReaderTests
{
    private static ApiError Refused(string body) =>
        Assert.Throws<ApiFailure>(() => RequestBodyReader.Parse(Encoding.UTF8.GetBytes(body), OpenAiJsonContext.Default.CompletionRequest)).Error;

    [Theory]
    [InlineData("""{"model":""")]
    [InlineData("""{"model":"m","prompt":[1,2""")]
    [InlineData("""{"model":"m",}""")]
    public void A_body_cut_short_or_misspelt_is_a_syntax_error_with_its_position(string body)
    {
        var error = Refused(body);
        Assert.Equal(ApiErrorKind.InvalidRequest, error.Kind);
        Assert.StartsWith("The request body is not valid JSON (line 1, byte ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nesting_deeper_than_the_limit_is_named_as_such()
    {
        var error = Refused($$"""{"model":"m","prompt":{{new string('[', 100)}}{{new string(']', 100)}}}""");
        Assert.Equal("The request body nests deeper than 64 levels; flatten it.", error.Message);
    }

    [Fact]
    public void Nesting_at_the_limit_is_not_refused_for_its_depth()
    {
        // 63 arrays inside the object: 64 levels, the most the reader takes. Whatever else the body
        // gets (the endpoint checks prompt's shape later), it is not refused for its depth.
        var body = Encoding.UTF8.GetBytes($$"""{"model":"m","prompt":{{new string('[', 63)}}{{new string(']', 63)}}}""");
        var failure = Record.Exception(() => RequestBodyReader.Parse(body, OpenAiJsonContext.Default.CompletionRequest));
        Assert.DoesNotContain("nests deeper", failure?.Message ?? "", StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model":"m","model":"n"}""", "model")]
    [InlineData("""{"model":"m","mod\u0065l":"n"}""", "model")]
    [InlineData("""{"model":"m","stream_options":{"include_usage":true,"include_usage":false}}""", "stream_options.include_usage")]
    [InlineData("""{"model":"m","prompt":[{"a":1},{"b":1,"b":1}]}""", "prompt[1].b")]
    [InlineData("""{"model":"m","x":{"y":[0,[],{"z":1,"z":1}]}}""", "x.y[2].z")]
    public void A_key_sent_twice_in_one_object_is_refused_naming_its_path(string body, string param)
    {
        var error = Refused(body);
        Assert.Equal(ApiErrorKind.InvalidRequest, error.Kind);
        Assert.Equal(param, error.Param);
        Assert.Equal("duplicate_key", error.Code);
        Assert.Contains($"'{param}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_key_in_different_objects_is_no_duplicate()
    {
        var body = Encoding.UTF8.GetBytes("""{"model":"m","prompt":"p","stream_options":{"include_usage":true},"metadata":{"model":"m","prompt":"p"}}""");
        Assert.Null(Record.Exception(() => RequestBodyReader.Parse(body, OpenAiJsonContext.Default.CompletionRequest)));
    }
}
