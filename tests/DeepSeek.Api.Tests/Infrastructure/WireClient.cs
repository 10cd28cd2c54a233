using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DeepSeek.Api.Tests.Infrastructure;

/// <summary>Which listener a request is sent to.</summary>
public enum Listener
{
    Http,
    Grpc,
}

/// <summary>One request as a hostile client would shape it: any listener, HTTP/1.1 or h2c prior knowledge, any Host, headers and bytes.</summary>
public sealed record WireRequest(string Method, string Path, byte[]? Body = null)
{
    public Listener Listener { get; init; } = Listener.Http;
    /// <summary>2.0: HTTP/2 cleartext with prior knowledge, as <c>curl --http2-prior-knowledge</c>.</summary>
    public Version Version { get; init; } = HttpVersion.Version11;
    /// <summary>Null: no Content-Type header at all.</summary>
    public string? ContentType { get; init; } = "application/json";
    /// <summary>Null: no Authorization header.</summary>
    public string? Authorization { get; init; }
    /// <summary>Null: the address the client connects to.</summary>
    public string? Host { get; init; }

    public static WireRequest Post(string path, string json) => new("POST", path, Encoding.UTF8.GetBytes(json));

    public static WireRequest Get(string path) => new("GET", path);
}

/// <summary>
/// What came back: a status and body, or no HTTP answer at all (the listener does not speak that protocol);
/// <c>Allow</c> is that header's methods, comma-separated, or null without one.
/// </summary>
public sealed record WireResponse(int Status, string Body, string? MediaType, string? Failure, string? Allow = null)
{
    public bool Answered => Failure is null;
}

/// <summary>Sends <see cref="WireRequest"/>s to a running server over real sockets on loopback.</summary>
public sealed class WireClient(int httpPort, int grpcPort) : IDisposable
{
    private readonly HttpClient _client = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false }) { Timeout = TimeSpan.FromSeconds(60) };

    public async Task<WireResponse> SendAsync(WireRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var port = request.Listener == Listener.Http ? httpPort : grpcPort;
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), new Uri($"http://127.0.0.1:{port}{request.Path}"))
        {
            Version = request.Version,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (request.Body is { } body)
        {
            var content = new ByteArrayContent(body);
            if (request.ContentType is { } type) content.Headers.TryAddWithoutValidation("Content-Type", type);
            message.Content = content;
        }
        if (request.Authorization is { } authorization) message.Headers.TryAddWithoutValidation("Authorization", authorization);
        if (request.Host is { } host) message.Headers.Host = host;
        try
        {
            using var response = await _client.SendAsync(message);
            var allow = response.Content.Headers.Allow;
            return new WireResponse((int)response.StatusCode, await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.MediaType, null,
                allow.Count == 0 ? null : string.Join(", ", allow));
        }
        catch (HttpRequestException e)
        {
            return new WireResponse(0, "", null, e.Message);
        }
    }

    /// <summary>
    /// Raw bytes on a fresh connection to the HTTP listener; returns what the server wrote until it
    /// closed the connection or <paramref name="readFor"/> passed.
    /// </summary>
    public async Task<string> SendRawAsync(byte[] bytes, TimeSpan readFor, bool closeAfterSending = false)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, httpPort);
        await socket.SendAsync(bytes);
        if (closeAfterSending)
        {
            socket.Shutdown(SocketShutdown.Both);
            return "";
        }
        var received = new StringBuilder();
        var buffer = new byte[8192];
        using var deadline = new CancellationTokenSource(readFor);
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, deadline.Token)) > 0) received.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }
        catch (OperationCanceledException)
        {
            // The server kept the connection open; what it wrote so far is the answer.
        }
        catch (SocketException)
        {
            // Reset by the server after its answer.
        }
        return received.ToString();
    }

    public void Dispose() => _client.Dispose();
}
