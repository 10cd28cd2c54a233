using System.Net;

namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// The one connection pool to the runtimes, as YARP advises for <c>IHttpForwarder</c>: no proxy, no
/// redirects, no decompression, no cookies (the gateway passes bytes through as they come), and a short
/// connect timeout so that an unreachable endpoint is given up quickly for another.
/// </summary>
internal sealed class UpstreamClient : IDisposable
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    public HttpMessageInvoker Invoker { get; } = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        ConnectTimeout = ConnectTimeout,
        EnableMultipleHttp2Connections = true,
    });

    public void Dispose() => Invoker.Dispose();
}
