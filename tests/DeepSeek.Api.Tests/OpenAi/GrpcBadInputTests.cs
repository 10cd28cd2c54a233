using System.Text;
using DeepSeek.Api.Tests.Backend;
using DeepSeek.Api.Tests.Infrastructure;
using DeepSeek.Runtime.Api.Grpc;
using DeepSeek.Runtime.Grpc.V1;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

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
