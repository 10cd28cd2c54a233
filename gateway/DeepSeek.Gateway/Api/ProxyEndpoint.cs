using DeepSeek.Gateway.Audit;
using DeepSeek.Gateway.Caching;
using DeepSeek.Gateway.Cluster;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Keys;
using DeepSeek.Gateway.Routing;
using DeepSeek.Gateway.Telemetry;
using DeepSeek.Gateway.Upstream;
using Yarp.ReverseProxy.Forwarder;

namespace DeepSeek.Gateway.Api;

/// <summary>
/// POST /v1/chat/completions, /v1/completions and /v1/embeddings: key, body, model, limits, cache, then
/// forward to one endpoint (another on a connection failure or a 503 before anything reached the client,
/// holding while none is ready, and in a cluster scaling a model at zero replicas up), and at the end one
/// audit line and the metrics.
/// </summary>
internal sealed partial class ProxyEndpoint(
    GatewayConfig config,
    KeyTable keys,
    KeyLimits limits,
    ModelTable models,
    IHttpForwarder forwarder,
    UpstreamClient upstream,
    ReadinessProbe probe,
    AuditLog audit,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger<ProxyEndpoint> logger,
    ScaleFromZero? scaler = null)
{
    /// <summary>How often a held request asks the model's endpoints whether one is ready.</summary>
    public static readonly TimeSpan HoldPoll = TimeSpan.FromMilliseconds(250);

    /// <summary>The most of a JSON answer kept for its usage and the cache; a larger one is passed through uncounted.</summary>
    private const int CaptureLimit = 8 * 1024 * 1024;

    /// <summary>The last bytes of a stream kept to find its usage chunk.</summary>
    private const int StreamTail = 16 * 1024;

    private long _tickets;

    public async Task HandleAsync(HttpContext context)
    {
        var record = new RequestRecord(RequestIds.From(context.Request), time.GetTimestamp());
        context.Response.Headers[ForwardTransformer.RequestIdHeader] = record.RequestId;
        try
        {
            if (await RefusalAsync(context, record) is { } error) await error.WriteAsync(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client left; nothing to answer. 499 is what the audit says of it (nginx's "client closed request").
            context.Response.StatusCode = 499;
        }
        finally
        {
            Finish(context, record);
        }
    }

    /// <summary>The request's whole handling; an error to answer, or null when the response was written.</summary>
    private async Task<GatewayError?> RefusalAsync(HttpContext context, RequestRecord record)
    {
        record.Key = KeyCheck.Identify(keys, context.Request.Headers.Authorization);
        if (record.Key.Verdict == KeyVerdict.Missing) return GatewayError.MissingKey();
        if (record.Key.Verdict == KeyVerdict.Unknown) return GatewayError.UnknownKey();

        var (body, bodyError) = await RequestBody.ReadAsync(context.Request, config.MaxRequestBytes);
        if (bodyError is not null) return bodyError;
        using var _ = body;
        var model = models.Find(body!.Model);
        if (model is null) return GatewayError.UnknownModel(body.Model);
        if (!KeyCheck.Allows(record.Key.Key, model.Name)) return GatewayError.NotInScope(model.Name);
        record.Model = model.Name;

        var (allowed, what, retryAfter) = limits.TryAcquire(record.Key.Key);
        if (!allowed)
        {
            metrics.RateLimited(record.Key.Label);
            return GatewayError.RateLimited(what!, retryAfter);
        }

        var cacheKey = model.Cache is not null && CacheKey.IsCacheable(body.Json)
            ? CacheKey.For(record.Key.Label, context.Request.Path.Value ?? "", body.Json)
            : null;
        if (cacheKey is not null && model.Cache!.Get(cacheKey) is { } hit)
        {
            await WriteHitAsync(context, record, hit);
            return null;
        }
        record.Cache = "miss";
        return await ForwardAsync(context, record, model, body, cacheKey);
    }

    private async Task WriteHitAsync(HttpContext context, RequestRecord record, CachedResponse hit)
    {
        metrics.CacheHit(record.Model!);
        record.Cache = "hit";
        record.Variant = hit.Variant;
        if (hit.Usage is { } usage) (record.PromptTokens, record.CompletionTokens) = (usage.PromptTokens, usage.CompletionTokens);
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = hit.ContentType;
        response.ContentLength = hit.Body.Length;
        response.Headers[ForwardTransformer.VariantHeader] = hit.Variant;
        response.Headers[ForwardTransformer.CacheHeader] = "hit";
        await response.Body.WriteAsync(hit.Body, context.RequestAborted);
    }

    private async Task<GatewayError?> ForwardAsync(HttpContext context, RequestRecord record, GatewayModel model, RequestBody body, string? cacheKey)
    {
        var streamed = body.Json.TryGetProperty("stream", out var stream) && stream.ValueKind == System.Text.Json.JsonValueKind.True;
        var prefix = model.Routing == RoutingPolicy.Prefix && PromptPrefix.From(body.Json) is { } text ? RendezvousHash.Hash(text) : (ulong?)null;
        var holdUntil = time.GetUtcNow() + TimeSpan.FromSeconds(model.Config.HoldSeconds);
        var tried = new HashSet<EndpointState>();
        var requestConfig = new ForwarderRequestConfig { ActivityTimeout = TimeSpan.FromSeconds(model.Config.TimeoutSeconds) };
        var ticket = Interlocked.Increment(ref _tickets);
        var attempts = 0;
        var woken = false;
        while (true)
        {
            // Discovered models change under a request (a pod turned ready, a variant appeared): route on the table as it is now.
            model = models.Find(model.Name) ?? model;
            // A bound on attempts besides the hold: an endpoint whose /ready says yes while its API fails must not loop a request forever.
            if (attempts++ >= 3 * model.Endpoints.Count() + 3) break;
            if (RouteSelection.Choose(model, tried, Random.Shared.NextDouble(), ticket, prefix) is not var (variant, endpoint))
            {
                // Nothing usable. A model scaled to zero is asked to scale up, once per hold; then hold, asking
                // the endpoints until one is ready or the hold is over.
                if (!woken && scaler is not null)
                {
                    woken = true;
                    await scaler.WakeAsync(model.Name, context.RequestAborted);
                }
                if (!await WaitForReadyAsync(model.Name, holdUntil, context.RequestAborted)) break;
                tried.Clear();
                continue;
            }
            tried.Add(endpoint);
            record.Variant = variant.Name;
            record.Endpoint = endpoint.Url;
            var outcome = await SendAsync(context, record, model, variant, endpoint, body, requestConfig, streamed, cacheKey);
            switch (outcome)
            {
                case Outcome.Done:
                    return null;
                case Outcome.TimedOut:
                    metrics.UpstreamError(model.Name, endpoint.Url, "timeout");
                    return GatewayError.Timeout(model.Name, model.Config.TimeoutSeconds);
                case Outcome.Unreachable or Outcome.Unavailable:
                    metrics.UpstreamError(model.Name, endpoint.Url, outcome == Outcome.Unreachable ? "connection" : "unavailable");
                    LogRetry(logger, record.RequestId, endpoint.Url, outcome.ToString());
                    endpoint.MarkReady(false);
                    continue;
            }
        }
        record.Variant = null;
        record.Endpoint = null;
        return GatewayError.NothingReady(model.Name, model.Config.HoldSeconds);
    }

    private enum Outcome { Done, Unreachable, Unavailable, TimedOut }

    /// <summary>One attempt on one endpoint; the body goes from memory, so it can be sent again on another.</summary>
    private async Task<Outcome> SendAsync(HttpContext context, RequestRecord record, GatewayModel model, GatewayVariant variant, EndpointState endpoint,
        RequestBody body, ForwarderRequestConfig requestConfig, bool streamed, string? cacheKey)
    {
        // A stream the client did not ask the usage of is asked it all the same, so that its tokens count
        // (the key's tokens per minute, the audit line); the usage chunk is then held back from the client.
        var askUsage = body.NeedsUsageAsked();
        var bytes = body.Forwarded(variant.ServedName, askUsage);
        context.Request.Body = new MemoryStream(bytes, writable: false);
        context.Request.ContentLength = bytes.Length;
        var clientBody = context.Response.Body;
        // A stream is kept whole only when it may become a cache entry; otherwise its tail has the usage.
        var tailOnly = streamed && cacheKey is null;
        using var capture = new ResponseCapture(clientBody, tailOnly, tailOnly ? StreamTail : CaptureLimit);
        using var filter = askUsage ? new UsageChunkFilter(capture) : null;
        context.Response.Body = (Stream?)filter ?? capture;
        var transformer = new ForwardTransformer(variant.Name, endpoint.Url, record.RequestId);
        ForwarderError error;
        try
        {
            using (endpoint.Enter())
                error = await forwarder.SendAsync(context, endpoint.Url, upstream.Invoker, requestConfig, transformer);
            if (filter is not null && error == ForwarderError.None) await filter.CompleteAsync(context.RequestAborted);
        }
        finally
        {
            context.Response.Body = clientBody;
        }

        var untouched = !context.Response.HasStarted && capture.BytesWritten == 0;
        if (transformer.UpstreamUnavailable && untouched) return Reset(context, record, Outcome.Unavailable);
        if (error == ForwarderError.Request && untouched) return Reset(context, record, Outcome.Unreachable);
        if (error == ForwarderError.RequestTimedOut && untouched) return Reset(context, record, Outcome.TimedOut);
        if (error != ForwarderError.None)
        {
            if (error is ForwarderError.RequestTimedOut) metrics.UpstreamError(model.Name, endpoint.Url, "timeout");
            else if (error is not (ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient or ForwarderError.RequestBodyClient))
                metrics.UpstreamError(model.Name, endpoint.Url, error.ToString());
            LogForwardError(logger, record.RequestId, endpoint.Url, error.ToString());
            if (context.RequestAborted.IsCancellationRequested) context.Response.StatusCode = 499;
            return Outcome.Done;
        }
        Account(context, record, model, variant, capture, filter?.Usage, streamed, cacheKey);
        return Outcome.Done;
    }

    /// <summary>Clears what the failed attempt set on the response (nothing was sent), keeping the request id.</summary>
    private static Outcome Reset(HttpContext context, RequestRecord record, Outcome outcome)
    {
        context.Response.Clear();
        context.Response.Headers[ForwardTransformer.RequestIdHeader] = record.RequestId;
        return outcome;
    }

    /// <summary>A finished answer's tokens (audit, the key's tokens per minute) and, for a deterministic 200, its cache entry.</summary>
    private void Account(HttpContext context, RequestRecord record, GatewayModel model, GatewayVariant variant, ResponseCapture capture, TokenUsage? askedUsage,
        bool streamed, string? cacheKey)
    {
        // askedUsage: the usage chunk held back from a stream whose usage the gateway asked (null otherwise).
        var usage = askedUsage ?? (!capture.Complete ? null : streamed ? UsageReader.FromEventStreamTail(capture.Kept) : UsageReader.FromJson(capture.Kept));
        if (usage is { } u)
        {
            (record.PromptTokens, record.CompletionTokens) = (u.PromptTokens, u.CompletionTokens);
            limits.AddTokens(record.Key.Key, u.Total);
        }
        if (cacheKey is not null && context.Response.StatusCode == StatusCodes.Status200OK && capture.Complete && CacheKey.IsKeepable(streamed, capture.Kept))
            model.Cache!.Put(cacheKey, context.Response.ContentType ?? (streamed ? "text/event-stream" : "application/json"), capture.Captured(), variant.Name, usage);
    }

    /// <summary>
    /// True once an endpoint of the model answers ready; false when <paramref name="until"/> passes first (after
    /// one round at least). Each round reads the table again, and a change to it (a discovered pod turned ready)
    /// starts the next round at once.
    /// </summary>
    private async Task<bool> WaitForReadyAsync(string name, DateTimeOffset until, CancellationToken cancellation)
    {
        while (true)
        {
            var changed = models.Changed;
            // Only endpoints that can take the request: a variant weighing 0 is out of the split, ready or not.
            var endpoints = models.Find(name)?.Variants.Where(v => v.Weight > 0).SelectMany(v => v.Endpoints).Distinct().ToList() ?? [];
            var answers = await Task.WhenAll(endpoints.Select(e => probe.ProbeAsync(e, cancellation)));
            if (answers.Any(ready => ready)) return true;
            var left = until - time.GetUtcNow();
            if (left <= TimeSpan.Zero) return false;
            await Task.WhenAny(changed, Task.Delay(left < HoldPoll ? left : HoldPoll, time, cancellation));
            cancellation.ThrowIfCancellationRequested();
        }
    }

    private void Finish(HttpContext context, RequestRecord record)
    {
        var elapsed = time.GetElapsedTime(record.StartedAt);
        var status = context.Response.StatusCode;
        metrics.Request(record.Model ?? "unknown", record.Variant ?? "", record.Key.Label, status, elapsed);
        audit.Write(new AuditEntry(time.GetUtcNow(), record.RequestId, record.Key.Label, record.Model, record.Variant, record.Endpoint, status,
            record.PromptTokens, record.CompletionTokens, (long)elapsed.TotalMilliseconds, record.Cache));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Request {RequestId}: {Endpoint} failed before answering ({Outcome}); trying another endpoint")]
    private static partial void LogRetry(ILogger logger, string requestId, string endpoint, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Request {RequestId}: forwarding to {Endpoint} ended with {Error}")]
    private static partial void LogForwardError(ILogger logger, string requestId, string endpoint, string error);
}
