using System.Net;
using Yarp.ReverseProxy.Forwarder;

namespace DeepSeek.Gateway.Upstream;

/// <summary>
/// YARP's header handling plus the gateway's own: the caller's key stays at the gateway, the request id
/// goes on, and the answer says which variant and endpoint served it. A runtime that answers 503 (loading,
/// draining) is not passed through while another endpoint may still take the request: nothing has
/// reached the client yet, so the caller retries elsewhere.
/// </summary>
internal sealed class ForwardTransformer(string variant, string endpoint, string requestId) : HttpTransformer
{
    public const string VariantHeader = "x-deepseek-variant";
    public const string EndpointHeader = "x-deepseek-endpoint";
    public const string CacheHeader = "x-deepseek-cache";
    public const string RequestIdHeader = "x-request-id";

    /// <summary>Set when the runtime answered 503 and the answer was held back.</summary>
    public bool UpstreamUnavailable { get; private set; }

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        // The gateway's keys are not the runtime's: a client's key never leaves the gateway.
        proxyRequest.Headers.Authorization = null;
        proxyRequest.Headers.Remove(RequestIdHeader);
        proxyRequest.Headers.TryAddWithoutValidation(RequestIdHeader, requestId);
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        if (proxyResponse?.StatusCode == HttpStatusCode.ServiceUnavailable)
        {
            UpstreamUnavailable = true;
            return false;
        }
        var proxied = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        var headers = httpContext.Response.Headers;
        headers[VariantHeader] = variant;
        headers[EndpointHeader] = endpoint;
        headers[CacheHeader] = "miss";
        return proxied;
    }
}
