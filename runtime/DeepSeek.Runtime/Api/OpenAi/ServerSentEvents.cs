using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>OpenAI's streaming framing: one <c>data: {json}</c> event per chunk, flushed at once, then <c>data: [DONE]</c>.</summary>
internal sealed class ServerSentEvents(HttpResponse response, CancellationToken cancellationToken)
{
    private static readonly byte[] Prefix = "data: "u8.ToArray();
    private static readonly byte[] Separator = "\n\n"u8.ToArray();
    private static readonly byte[] Done = Encoding.UTF8.GetBytes("data: [DONE]\n\n");

    public async Task StartAsync()
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        // Proxies such as nginx otherwise buffer the stream and the client sees nothing until the end.
        response.Headers["X-Accel-Buffering"] = "no";
        await response.StartAsync(cancellationToken);
    }

    public async Task WriteAsync<T>(T chunk, JsonTypeInfo<T> typeInfo)
    {
        await response.Body.WriteAsync(Prefix, cancellationToken);
        await response.Body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(chunk, typeInfo), cancellationToken);
        await response.Body.WriteAsync(Separator, cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    /// <summary>
    /// A failure after the stream began, as OpenAI-compatible servers send it: an event whose data is
    /// the error body (the openai SDKs raise it as an API error), then the end of the stream.
    /// </summary>
    public async Task WriteErrorAsync(ApiError error)
    {
        await WriteAsync(OpenAiErrors.Body(error), OpenAiJsonContext.Default.ErrorResponse);
        await WriteDoneAsync();
    }

    public async Task WriteDoneAsync()
    {
        await response.Body.WriteAsync(Done, cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }
}
