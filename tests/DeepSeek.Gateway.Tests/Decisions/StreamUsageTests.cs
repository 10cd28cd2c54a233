using System.Text;
using System.Text.Json;
using DeepSeek.Gateway.Api;
using DeepSeek.Gateway.Upstream;

namespace DeepSeek.Gateway.Tests.Decisions;

/// <summary>
/// The usage of a stream the client did not ask it of: the gateway asks it of the runtime (the body it
/// forwards) and holds the usage chunk back from the client (the filter), whatever the chunking.
/// </summary>
public sealed class StreamUsageTests
{
    private const string Content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"
        + "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n";
    private const string UsageChunk = "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n";
    private const string Done = "data: [DONE]\n\n";

    private static RequestBody Body(string json) => new(Encoding.UTF8.GetBytes(json), JsonDocument.Parse(json), JsonDocument.Parse(json).RootElement.GetProperty("model").GetString()!);

    [Theory]
    [InlineData("""{"model":"m","stream":true}""", true)]
    [InlineData("""{"model":"m","stream":true,"stream_options":null}""", true)]
    [InlineData("""{"model":"m","stream":true,"stream_options":{}}""", true)]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false}}""", true)]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":true}}""", false)]
    [InlineData("""{"model":"m","stream":true,"stream_options":"yes"}""", false)] // the runtime's 400 to give
    [InlineData("""{"model":"m"}""", false)]
    [InlineData("""{"model":"m","stream":false}""", false)]
    public void The_usage_is_asked_of_streams_that_do_not_ask_it(string json, bool asked)
    {
        using var body = Body(json);
        Assert.Equal(asked, body.NeedsUsageAsked());
    }

    [Fact]
    public void The_forwarded_body_asks_the_usage_and_keeps_every_other_field()
    {
        using var plain = Body("""{"model":"m","stream":true,"max_tokens":3}""");
        var forwarded = JsonDocument.Parse(plain.Forwarded("served", askUsage: true)).RootElement;
        Assert.Equal("served", forwarded.GetProperty("model").GetString());
        Assert.Equal(3, forwarded.GetProperty("max_tokens").GetInt32());
        Assert.True(forwarded.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());

        using var withOptions = Body("""{"model":"m","stream":true,"stream_options":{"include_usage":false,"other":1}}""");
        var options = JsonDocument.Parse(withOptions.Forwarded("m", askUsage: true)).RootElement.GetProperty("stream_options");
        Assert.True(options.GetProperty("include_usage").GetBoolean());
        Assert.Equal(1, options.GetProperty("other").GetInt32());
        Assert.Single(options.EnumerateObject(), o => o.Name == "include_usage");
        // Nothing to change: the very bytes sent.
        Assert.Same(plain.Bytes, plain.Forwarded("m", askUsage: false));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(4096)]
    public async Task The_filter_holds_back_the_usage_chunk_and_passes_the_rest_unchanged(int chunkSize)
    {
        var upstream = Encoding.UTF8.GetBytes(Content + UsageChunk + Done);
        using var client = new MemoryStream();
        using var filter = new UsageChunkFilter(client);
        for (var at = 0; at < upstream.Length; at += chunkSize)
            await filter.WriteAsync(upstream.AsMemory(at, Math.Min(chunkSize, upstream.Length - at)));
        await filter.CompleteAsync(CancellationToken.None);

        Assert.Equal(Content + Done, Encoding.UTF8.GetString(client.ToArray()));
        Assert.Equal(new TokenUsage(7, 2), filter.Usage);
    }

    [Fact]
    public async Task A_stream_cut_mid_event_passes_what_came_and_an_error_event_is_not_usage()
    {
        const string error = "data: {\"error\":{\"message\":\"the step failed\",\"type\":\"server_error\"}}\n\n";
        using var client = new MemoryStream();
        using var filter = new UsageChunkFilter(client);
        await filter.WriteAsync(Encoding.UTF8.GetBytes(Content + error + "data: {\"choi"));
        await filter.CompleteAsync(CancellationToken.None);
        Assert.Equal(Content + error + "data: {\"choi", Encoding.UTF8.GetString(client.ToArray()));
        Assert.Null(filter.Usage);
    }
}
