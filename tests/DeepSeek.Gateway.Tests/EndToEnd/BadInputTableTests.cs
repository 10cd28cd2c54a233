using System.Net;
using System.Net.Http.Headers;
using System.Text;
using DeepSeek.Gateway.Keys;
using DeepSeek.Gateway.Tests.Infrastructure;
using static DeepSeek.Gateway.Tests.Infrastructure.Requests;

namespace DeepSeek.Gateway.Tests.EndToEnd;

/// <summary>
/// Bad requests of every kind, each answered 4xx by the gateway itself (in OpenAI's shape) without
/// reaching the runtime, and the gateway still serving a good request after each.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class BadInputTableTests : IAsyncLifetime
{
    private const string Key = "key-team-a";
    private const string ScopedKey = "key-only-other";
    private FakeUpstream _upstream = null!;
    private RunningGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        _gateway = await RunningGateway.StartAsync($$"""
            listen: {host: 127.0.0.1, port: 8080}
            maxRequestBytes: 65536
            models:
              - {name: chat, variants: [{name: a, endpoints: ["{{_upstream.Url}}"]}]}
              - {name: other, variants: [{name: a, endpoints: ["{{_upstream.Url}}"]}]}
            keys:
              - {id: team-a, sha256: {{KeyTable.HashHex(Key)}}}
              - {id: scoped, sha256: {{KeyTable.HashHex(ScopedKey)}}, models: [other]}
            """);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private static HttpRequestMessage Raw(string path, byte[] body, string? contentType, string? key = Key, HttpMethod? method = null)
    {
        var request = new HttpRequestMessage(method ?? HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        if (contentType is not null) request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return request;
    }

    private static HttpRequestMessage Json(string body, string? key = Key) => Raw("/v1/chat/completions", Encoding.UTF8.GetBytes(body), "application/json", key);

    /// <summary>A body larger than the limit, sent chunked (no Content-Length): the gateway must stop reading at its limit.</summary>
    private sealed class ChunkedContent(int size) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var chunk = Encoding.UTF8.GetBytes("{\"model\":\"chat\",\"pad\":\"" + new string('x', 4096));
            for (var sent = 0; sent < size; sent += chunk.Length) await stream.WriteAsync(chunk);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    private static readonly string Good = Chat("chat");

    public static TheoryData<string> Cases => new(BadRequests.Keys);

    private static readonly Dictionary<string, (Func<HttpRequestMessage> Request, int Status)> BadRequests = new()
    {
        ["no Authorization header"] = (() => Json(Good, key: null), 401),
        ["unknown key"] = (() => Json(Good, key: "not-a-key"), 401),
        ["key of another case"] = (() => Json(Good, key: Key.ToUpperInvariant()), 401),
        ["Basic instead of Bearer"] = (() => { var r = Json(Good, key: null); r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Key))); return r; }, 401),
        ["empty bearer"] = (() => { var r = Json(Good, key: null); r.Headers.TryAddWithoutValidation("Authorization", "Bearer "); return r; }, 401),
        ["model outside the key's scope"] = (() => Json(Good, key: ScopedKey), 403),
        ["no Content-Type"] = (() => Raw("/v1/chat/completions", Encoding.UTF8.GetBytes(Good), null), 415),
        ["text/plain"] = (() => Raw("/v1/chat/completions", Encoding.UTF8.GetBytes(Good), "text/plain"), 415),
        ["JSON in latin-1"] = (() => Raw("/v1/chat/completions", Encoding.UTF8.GetBytes(Good), "application/json; charset=iso-8859-1"), 415),
        ["form post"] = (() => Raw("/v1/chat/completions", "model=chat"u8.ToArray(), "application/x-www-form-urlencoded"), 415),
        ["malformed JSON"] = (() => Json("{\"model\": \"chat\","), 400),
        ["empty body"] = (() => Json(""), 400),
        ["JSON array"] = (() => Json("[{\"model\":\"chat\"}]"), 400),
        ["JSON string"] = (() => Json("\"chat\""), 400),
        ["JSON null"] = (() => Json("null"), 400),
        ["trailing garbage"] = (() => Json(Good + " tail"), 400),
        ["no model"] = (() => Json("{\"messages\":[]}"), 400),
        ["model a number"] = (() => Json("{\"model\":7}"), 400),
        ["model null"] = (() => Json("{\"model\":null}"), 400),
        ["model empty"] = (() => Json("{\"model\":\"\"}"), 400),
        ["model twice"] = (() => Json("{\"model\":\"chat\",\"model\":\"other\"}"), 400),
        ["nested 100 deep"] = (() => Json("{\"model\":\"chat\",\"x\":" + new string('[', 100) + new string(']', 100) + "}"), 400),
        ["invalid UTF-8"] = (() => Raw("/v1/chat/completions", [.. "{\"model\":\"chat\",\"x\":\""u8, 0xC3, 0x28, .. "\"}"u8], "application/json"), 400),
        ["unknown model"] = (() => Json(Chat("gpt-4")), 404),
        ["model of another case"] = (() => Json(Chat("Chat")), 404),
        ["body over the limit, declared"] = (() => Json("{\"model\":\"chat\",\"pad\":\"" + new string('x', 70_000) + "\"}"), 413),
        ["body over the limit, chunked"] = (() => { var r = Json(Good); r.Content = new ChunkedContent(200_000); r.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json"); return r; }, 413),
        ["huge body of 8 MiB"] = (() => Json("{\"model\":\"chat\",\"pad\":\"" + new string('x', 8 << 20) + "\"}"), 413),
        ["unknown path under /v1"] = (() => Raw("/v1/responses", Encoding.UTF8.GetBytes(Good), "application/json"), 404),
        ["GET on a POST path"] = (() => Raw("/v1/chat/completions", [], null, method: HttpMethod.Get), 405),
        ["models without a key"] = (() => Raw("/v1/models", [], null, key: null, method: HttpMethod.Get), 401),
        ["a model the key may not see"] = (() => Raw("/v1/models/chat", [], null, key: ScopedKey, method: HttpMethod.Get), 404),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task EachIsRefusedBeforeAnyRuntimeAndTheGatewayStillServes(string name)
    {
        var (makeRequest, status) = BadRequests[name];
        var forwardedBefore = _upstream.Requests;
        using (var request = makeRequest())
        using (var response = await _gateway.Http.SendAsync(request))
        {
            Assert.Equal(status, (int)response.StatusCode);
            await ErrorAsync(response);
            if (status == 405) Assert.Contains("POST", response.Content.Headers.Allow);
            if (status == 401) Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        }
        Assert.Equal(forwardedBefore, _upstream.Requests);

        using var good = await _gateway.Http.SendAsync(Post("/v1/chat/completions", Good, Key));
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        // The gateway's key stays at the gateway.
        Assert.Equal("", _upstream.LastAuthorization);
    }
}
