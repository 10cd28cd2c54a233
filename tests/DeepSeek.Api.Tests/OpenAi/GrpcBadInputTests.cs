using System.Text;
using DeepSeek.Api.Tests.Backend;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Runtime.Api.Grpc;
using DeepSeek.Runtime.Grpc.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

namespace DeepSeek.Api.Tests.OpenAi;

/// <summary>
/// The gRPC face's rows of the bad-input table (issue #27 items 1 and 3): each hostile request gets
/// INVALID_ARGUMENT naming its field, and the server keeps serving.
/// </summary>
public sealed class GrpcBadInputTests : IAsyncLifetime
{
    private RunningServer _server = null!;
    private GrpcChannel _channel = null!;
    private InferenceCalls _client = null!;
    private static readonly Metadata Auth = new() { { "authorization", $"Bearer {RunningServer.Key}" } };

    public async Task InitializeAsync()
    {
        _server = await RunningServer.StartAsync();
        _channel = GrpcChannel.ForAddress($"http://{_server.GrpcAddress}");
        _client = new InferenceCalls(_channel.CreateCallInvoker());
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    public sealed record Row(string Name, Func<InferenceCalls, Task> Call, string Field, string? Code = null)
    {
        public override string ToString() => Name;
    }

    private static async Task Drain(AsyncServerStreamingCall<GenerateResponse> call)
    {
        using (call)
            await foreach (var _ in call.ResponseStream.ReadAllAsync()) { }
    }

    private static GenerateRequest Ids(string requestId) => new() { TokenIds = new TokenIds { Ids = { 1, 2, 3 } }, Sampling = new SamplingOptions { MaxTokens = 2 }, RequestId = requestId };

    public static TheoryData<Row> Rows() =>
    [
        new("request_id over 256 bytes", c => Drain(c.Generate(Ids(new string('r', InferenceService.MaxRequestIdBytes + 1)), Auth)), "request_id"),
        new("request_id of 1 MB", c => Drain(c.Generate(Ids(new string('r', 1 << 20)), Auth)), "request_id"),
        new("request_id of 129 two-byte characters", c => Drain(c.Generate(Ids(new string('é', 129)), Auth)), "request_id"),
        new("Tokenize text that cannot fit the context", c => c.TokenizeAsync(new TokenizeRequest { Text = new string('x', 3 * TestBackend.Context) }, Auth).ResponseAsync, "text", "context_length_exceeded"),
        new("Tokenize a megabyte word", c => c.TokenizeAsync(new TokenizeRequest { Text = new string('x', 1 << 20) }, Auth).ResponseAsync, "text", "context_length_exceeded"),
        new("Detokenize more ids than the context", c => c.DetokenizeAsync(new DetokenizeRequest { TokenIds = { Enumerable.Repeat(5, TestBackend.Context + 1) } }, Auth).ResponseAsync, "token_ids", "context_length_exceeded"),
    ];

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task Bad_grpc_input_gets_invalid_argument_naming_its_field_and_the_server_keeps_serving(Row row)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => row.Call(_client));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith($"{row.Field}: ", error.Status.Detail, StringComparison.Ordinal);
        Assert.True(error.Status.Detail.Length < 1024, "the detail does not echo the input");
        if (row.Code is not null) Assert.Equal(row.Code, error.Trailers.GetValue("error-code"));
        await AssertServesAsync();
    }

    /// <summary>A raw h2c call whose body is exactly <c>body</c> (a gRPC frame, whole or not), with or without the key.</summary>
    public sealed record FrameRow(string Name, string Method, byte[] Body, bool WithKey, StatusCode Expected, string Code)
    {
        public override string ToString() => Name;
    }

    private static byte[] Frame(byte[] payload, int? declaredLength = null)
    {
        var frame = new byte[5 + payload.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)(declaredLength ?? payload.Length));
        payload.CopyTo(frame, 5);
        return frame;
    }

    private static readonly byte[] BadWireType = [0x0f, 0xff, 0xff];
    private static readonly byte[] ValidTokenize = new TokenizeRequest { Text = "hello" }.ToByteArray();

    public static TheoryData<FrameRow> FrameRows() => [.. FrameRowList];

    private static readonly FrameRow[] FrameRowList =
    [
        new("a frame declaring 10 bytes that sends 3", "Tokenize", Frame([0x0a, 0x01, 0x61], declaredLength: 10), true, StatusCode.InvalidArgument, "invalid_message"),
        new("a frame header cut off after 3 bytes", "Tokenize", [0, 0, 0], true, StatusCode.InvalidArgument, "invalid_message"),
        new("no frame at all for a unary call", "Tokenize", [], true, StatusCode.InvalidArgument, "invalid_message"),
        new("a truncated Generate frame", "Generate", Frame(Ids("t").ToByteArray()[..4], declaredLength: Ids("t").CalculateSize()), true, StatusCode.InvalidArgument, "invalid_message"),
        new("a malformed message without the key", "Tokenize", Frame(BadWireType), false, StatusCode.Unauthenticated, "invalid_api_key"),
        new("a truncated frame without the key", "Generate", Frame([0x0a], declaredLength: 50), false, StatusCode.Unauthenticated, "invalid_api_key"),
        new("a cut-off header without the key", "Detokenize", [0, 0], false, StatusCode.Unauthenticated, "invalid_api_key"),
        new("a valid message without the key", "Tokenize", Frame(ValidTokenize), false, StatusCode.Unauthenticated, "invalid_api_key"),
    ];

    [Theory]
    [MemberData(nameof(FrameRows))]
    public async Task Bad_grpc_frames_get_the_client_error_and_the_key_is_checked_before_the_body(FrameRow row)
    {
        var (status, code, message) = await SendRawAsync(row.Method, row.Body, row.WithKey);
        Assert.True(status == ((int)row.Expected).ToString(System.Globalization.CultureInfo.InvariantCulture), $"grpc-status {status} ({message}), expected {row.Expected}");
        Assert.Equal(row.Code, code);
        if (!row.WithKey) Assert.DoesNotContain("message", message ?? "", StringComparison.OrdinalIgnoreCase); // no parse diagnostic for a stranger
        await AssertServesAsync();
    }

    [Fact]
    public async Task Client_mistakes_log_at_most_one_line_each_and_no_stack_trace()
    {
        var logged = new LogCapture();
        _server.App.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>().AddProvider(logged);
        await Assert.ThrowsAsync<RpcException>(() => Drain(_client.Generate(Ids(new string('r', 300)), Auth)));
        foreach (var row in FrameRowList) await SendRawAsync(row.Method, row.Body, row.WithKey);
        Assert.True(logged.Entries.Count <= 1 + FrameRowList.Length, logged.ToString());
        Assert.True(logged.Entries.All(e => e.Exception is null && e.Level < Microsoft.Extensions.Logging.LogLevel.Warning), logged.ToString());
    }

    [Fact]
    public async Task GetLoad_stays_open_without_the_key()
    {
        var (status, _, message) = await SendRawAsync("GetLoad", Frame([]), withKey: false);
        Assert.True(status == "0", $"grpc-status {status} ({message})");
    }

    private async Task<(string? Status, string? Code, string? Message)> SendRawAsync(string method, byte[] body, bool withKey)
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{_server.GrpcAddress}/deepseek.runtime.v1.Inference/{method}")
        {
            Version = System.Net.HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/grpc");
        request.Headers.TryAddWithoutValidation("TE", "trailers");
        if (withKey) request.Headers.TryAddWithoutValidation("authorization", $"Bearer {RunningServer.Key}");
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead);
        string? Get(string name) => response.TrailingHeaders.TryGetValues(name, out var t) ? t.Single()
            : response.Headers.TryGetValues(name, out var h) ? h.Single() : null;
        var message = Get("grpc-message");
        return (Get("grpc-status"), Get("error-code"), message is null ? null : Uri.UnescapeDataString(message));
    }

    public static TheoryData<string, int> FaultRows() => new()
    {
        { "LibTorch out of memory when the request is submitted", TestBackend.OutOfMemoryMarker },
        { "a LibTorch shape error escaping a step mid-stream", TestBackend.ShapeFaultMarker },
    };

    [Theory]
    [MemberData(nameof(FaultRows))]
    public async Task A_server_fault_is_internal_without_its_text_or_stack_trace(string name, int marker)
    {
        Assert.NotNull(name);
        var request = new GenerateRequest { TokenIds = new TokenIds { Ids = { 1, marker, 3 } }, Sampling = new SamplingOptions { MaxTokens = 8 } };
        var error = await Assert.ThrowsAsync<RpcException>(() => Drain(_client.Generate(request, Auth)));
        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.Equal("internal_error", error.Trailers.GetValue("error-code"));
        Assert.DoesNotContain(TestBackend.InjectedFaultText, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", error.Status.Detail, StringComparison.Ordinal);
        await AssertServesAsync();
    }

    [Fact]
    public async Task A_request_id_of_256_bytes_is_echoed_in_every_response()
    {
        var id = new string('i', InferenceService.MaxRequestIdBytes);
        using var call = _client.Generate(Ids(id), Auth);
        var responses = new List<GenerateResponse>();
        await foreach (var response in call.ResponseStream.ReadAllAsync()) responses.Add(response);
        Assert.NotEmpty(responses);
        Assert.All(responses, r => Assert.Equal(id, r.RequestId));
    }

    [Fact]
    public async Task Text_and_ids_within_the_context_still_round_trip()
    {
        var text = new string('y', TestBackend.Context / 2);
        var ids = (await _client.TokenizeAsync(new TokenizeRequest { Text = text }, Auth)).TokenIds;
        Assert.Equal(text, (await _client.DetokenizeAsync(new DetokenizeRequest { TokenIds = { ids } }, Auth)).Text);
    }

    /// <summary>The runtime generates only the server side of inference.proto; the three calls these rows need, by hand.</summary>
    public sealed class InferenceCalls(CallInvoker invoker)
    {
        private const string Service = "deepseek.runtime.v1.Inference";

        private static Method<TRequest, TResponse> Of<TRequest, TResponse>(MethodType type, string name, MessageParser<TResponse> parser)
            where TRequest : IMessage<TRequest> where TResponse : IMessage<TResponse> =>
            new(type, Service, name, Marshallers.Create<TRequest>(m => m.ToByteArray(), _ => throw new NotSupportedException()),
                Marshallers.Create(_ => throw new NotSupportedException(), parser.ParseFrom));

        public AsyncServerStreamingCall<GenerateResponse> Generate(GenerateRequest request, Metadata headers) =>
            invoker.AsyncServerStreamingCall(Of<GenerateRequest, GenerateResponse>(MethodType.ServerStreaming, "Generate", GenerateResponse.Parser), null, new CallOptions(headers), request);

        public AsyncUnaryCall<TokenizeResponse> TokenizeAsync(TokenizeRequest request, Metadata headers) =>
            invoker.AsyncUnaryCall(Of<TokenizeRequest, TokenizeResponse>(MethodType.Unary, "Tokenize", TokenizeResponse.Parser), null, new CallOptions(headers), request);

        public AsyncUnaryCall<DetokenizeResponse> DetokenizeAsync(DetokenizeRequest request, Metadata headers) =>
            invoker.AsyncUnaryCall(Of<DetokenizeRequest, DetokenizeResponse>(MethodType.Unary, "Detokenize", DetokenizeResponse.Parser), null, new CallOptions(headers), request);
    }

    private async Task AssertServesAsync()
    {
        using var call = _client.Generate(Ids("after"), Auth);
        var last = new GenerateResponse();
        await foreach (var response in call.ResponseStream.ReadAllAsync()) last = response;
        Assert.Equal("length", last.FinishReason);
        Assert.Equal(Encoding.UTF8.GetByteCount("after"), Encoding.UTF8.GetByteCount(last.RequestId));
    }
}
