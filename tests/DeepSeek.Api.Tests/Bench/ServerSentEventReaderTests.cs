using System.Net;
using System.Text;
using DeepSeek.Runtime.Bench;

namespace DeepSeek.Api.Tests.Bench;

public sealed class ServerSentEventReaderTests
{
    /// <summary>A stream that hands out at most a few bytes per read, so lines and UTF-8 characters split across reads.</summary>
    private sealed class TrickleStream(byte[] bytes, int perRead) : MemoryStream(bytes)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, perRead));
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, perRead)], cancellationToken);
    }

    private static async Task<(List<string> Events, bool Done)> ReadAll(string text, int perRead)
    {
        var done = false;
        var events = new List<string>();
        await foreach (var data in ServerSentEventReader.ReadDataAsync(new TrickleStream(Encoding.UTF8.GetBytes(text), perRead), () => done = true))
            events.Add(data);
        return (events, done);
    }

    private const string Stream =
        ": keep-alive comment\n\n" +
        "data: {\"choices\":[{\"index\":0,\"text\":\"é\",\"logprobs\":{\"tokens\":[\"token_id:7\"]},\"finish_reason\":null}]}\n\n" +
        "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":{\"tokens\":[\"token_id:3\"]},\"finish_reason\":null}]}\r\n\r\n" +
        "data: {\"choices\":[{\"index\":0,\"text\":\"x\",\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n" +
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\n\n" +
        "data: [DONE]\n\n" +
        "data: {\"after\":\"done\"}\n\n";

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task Events_split_across_reads_are_whole_and_stop_at_done(int perRead)
    {
        var (events, done) = await ReadAll(Stream, perRead);

        Assert.True(done);
        Assert.Equal(4, events.Count); // the comment is skipped, nothing after [DONE] is read
        var chunks = events.Select(CompletionChunk.Parse).ToArray();
        Assert.Equal([1, 1, 0, 0], chunks.Select(c => c.Tokens));
        Assert.Equal([null, null, null, 2], chunks.Select(c => c.UsageCompletionTokens));
        Assert.All(chunks, c => Assert.Null(c.Error));
        Assert.Contains("é", events[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Multi_line_data_is_joined_and_a_cut_stream_has_no_done()
    {
        var (events, done) = await ReadAll("data: first\ndata:second\n\ndata: trailing", 2);

        Assert.False(done);
        Assert.Equal(["first\nsecond", "trailing"], events);
    }

    [Fact]
    public void Chunks_without_logprobs_count_one_token_per_text_chunk_but_not_the_finishing_text()
    {
        Assert.Equal(1, CompletionChunk.Parse("{\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}").Tokens);
        Assert.Equal(0, CompletionChunk.Parse("{\"choices\":[{\"text\":\"\",\"finish_reason\":null}]}").Tokens);
        Assert.Equal(0, CompletionChunk.Parse("{\"choices\":[{\"text\":\"held\",\"finish_reason\":\"stop\"}]}").Tokens);
    }

    [Fact]
    public void An_error_chunk_carries_its_message()
    {
        var chunk = CompletionChunk.Parse("{\"error\":{\"message\":\"engine stopped\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
        Assert.Equal("engine stopped", chunk.Error);
    }

    /// <summary>A handler that answers every request with one canned response.</summary>
    private sealed class CannedHandler(HttpStatusCode status, string contentType, string body) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, contentType) });
    }

    private static Task<HttpRequestOutcome> SendOne(HttpStatusCode status, string contentType, string body, int outputTokens)
    {
        var http = new HttpClient(new CannedHandler(status, contentType, body));
        var benchmark = new HttpLoadBenchmark(http, new Uri("http://127.0.0.1:1/"), null, "m", 256, 0);
        return benchmark.SendAsync([1, 2, 3], outputTokens, CancellationToken.None);
    }

    [Fact]
    public async Task A_non_200_answer_is_a_failure_named_by_its_status_with_the_body()
    {
        var outcome = await SendOne(HttpStatusCode.TooManyRequests, "application/json",
            "{\"error\":{\"message\":\"The queue is full; retry later.\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":null}}", 2);

        Assert.False(outcome.Succeeded);
        Assert.Equal("HTTP 429", outcome.Failure);
        Assert.Contains("The queue is full", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_is_timed_and_checked_against_the_requested_length()
    {
        var ok = await SendOne(HttpStatusCode.OK, "text/event-stream", Stream, 2);
        Assert.True(ok.Succeeded, ok.Detail);
        Assert.Equal(2, ok.OutputTokens);
        Assert.Equal(2, ok.UsageCompletionTokens);
        Assert.Single(ok.ItlMs);
        Assert.True(ok.TtftMs <= ok.E2eMs);

        var shorter = await SendOne(HttpStatusCode.OK, "text/event-stream", Stream, 3);
        Assert.Equal("length", shorter.Failure);

        var cut = await SendOne(HttpStatusCode.OK, "text/event-stream", Stream[..Stream.IndexOf("data: [DONE]", StringComparison.Ordinal)], 2);
        Assert.Equal("no [DONE]", cut.Failure);

        var error = await SendOne(HttpStatusCode.OK, "text/event-stream", "data: {\"error\":{\"message\":\"boom\"}}\n\ndata: [DONE]\n\n", 2);
        Assert.Equal("stream error", error.Failure);
        Assert.Equal("boom", error.Detail);
    }

    [Fact]
    public void A_level_counts_failures_by_class_and_keeps_them_out_of_the_percentiles()
    {
        HttpRequestOutcome Ok(double ttft) => new(null, null, ttft, [1, 2], ttft + 3, 3, 3);
        var run = new HttpLevelRun(2, [Ok(10), Ok(20), new("HTTP 429", "full", 0, [], 1, 0, null), new("HTTP 429", "full", 0, [], 1, 0, null)], TimeSpan.FromSeconds(2));

        var row = HttpBenchResult.From(run);

        Assert.Equal(4, row.Requests);
        Assert.Equal(2, row.Succeeded);
        Assert.Equal(2, row.Failures["HTTP 429"]);
        Assert.Equal(1.0, row.RequestsPerSecond);
        Assert.Equal(3.0, row.OutputTokensPerSecond);
        Assert.Equal(10, row.TtftP50Ms);
        Assert.Equal(20, row.TtftP99Ms);
        Assert.Equal(23, row.E2eP99Ms);
    }
}
