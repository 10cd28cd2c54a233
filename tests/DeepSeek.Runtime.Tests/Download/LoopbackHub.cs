using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DeepSeek.Runtime.Tests.Download;

/// <summary>
/// A Hugging Face-compatible hub on 127.0.0.1 serving one repository made of a fixture folder, in the
/// hub's URL layout and JSON: <c>/api/models/{repo}/revision/{rev}</c>, the paginated recursive
/// <c>/api/models/{repo}/tree/{commit}</c> with git blob ids and LFS sha256 oids (safetensors are LFS),
/// <c>/{repo}/resolve/{commit}/{path}</c> with Range support, LFS files redirected to <c>/lfs/{oid}</c>
/// as the hub redirects to its storage. Faults: a required token, a cut connection, corrupted content.
/// </summary>
public sealed class LoopbackHub : IAsyncDisposable
{
    public const string Repository = "deepseek-ai/tiny-v2-lite";
    public const string Commit = "0123456789abcdef0123456789abcdef01234567";
    private const int PageSize = 2;

    private readonly WebApplication _app;
    private readonly Dictionary<string, byte[]> _files;

    private LoopbackHub(WebApplication app, Dictionary<string, byte[]> files)
    {
        _app = app;
        _files = files;
    }

    public Uri Endpoint => new(_app.Urls.Single());

    /// <summary>When set, the API and resolve endpoints answer 401 without <c>Authorization: Bearer {token}</c>.</summary>
    public string? RequiredToken { get; set; }

    /// <summary>Files whose next transfer is cut after this many bytes (once each).</summary>
    public ConcurrentDictionary<string, long> CutAfter { get; } = new(StringComparer.Ordinal);

    /// <summary>Files whose next transfer stops sending after this many bytes and holds the connection open (once each).</summary>
    public ConcurrentDictionary<string, long> StallAfter { get; } = new(StringComparer.Ordinal);

    /// <summary>Files served with one byte flipped.</summary>
    public ConcurrentBag<string> Corrupted { get; } = [];

    /// <summary>Files whose every transfer is cut after this many bytes (a connection that always ends early).</summary>
    public ConcurrentDictionary<string, long> AlwaysCutAfter { get; } = new(StringComparer.Ordinal);

    /// <summary>Raw listing entries (hostile ones: odd paths, no size) added to the first page of the tree.</summary>
    public List<Dictionary<string, object>> ExtraEntries { get; } = [];

    /// <summary>Content served for paths that only <see cref="ExtraEntries"/> list (not part of <see cref="Files"/>).</summary>
    public ConcurrentDictionary<string, byte[]> ExtraContent { get; } = new(StringComparer.Ordinal);

    /// <summary>Files served without a Content-Length (chunked), so that only the body's end says how long it is.</summary>
    public ConcurrentBag<string> WithoutLength { get; } = [];

    /// <summary>When set, the base URL the listing's <c>Link: rel="next"</c> names instead of this hub's own.</summary>
    public Uri? NextPageBase { get; set; }

    /// <summary>Every listing request: its URL, whether it carried the token.</summary>
    public ConcurrentQueue<(string Url, bool Authorized)> ListingRequests { get; } = new();

    /// <summary>Every content request: path, Range header, whether it carried the token.</summary>
    public ConcurrentQueue<(string Path, string? Range, bool Authorized)> ContentRequests { get; } = new();

    public IReadOnlyDictionary<string, byte[]> Files => _files;

    public static async Task<LoopbackHub> StartAsync(string fixtureFolder)
    {
        var files = Directory.EnumerateFiles(fixtureFolder, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(fixtureFolder, f).Replace('\\', '/'), File.ReadAllBytes, StringComparer.Ordinal);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var hub = new LoopbackHub(app, files);
        hub.Map(app);
        await app.StartAsync();
        return hub;
    }

    private static bool IsLfs(string path) => path.EndsWith(".safetensors", StringComparison.Ordinal);

    private static string Sha256(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    private static string GitBlobId(byte[] content)
    {
#pragma warning disable CA5350 // git's blob ids are SHA-1.
        return Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));
#pragma warning restore CA5350
    }

    private bool Authorized(HttpContext http) =>
        RequiredToken is null || http.Request.Headers.Authorization.ToString() == $"Bearer {RequiredToken}";

    private void Map(WebApplication app)
    {
        app.MapGet("/api/models/{owner}/{name}/revision/{revision}", (HttpContext http, string owner, string name, string revision) =>
        {
            if (!Authorized(http)) return Results.Json(new { error = "Invalid credentials" }, statusCode: 401);
            if ($"{owner}/{name}" != Repository || revision is not ("main" or Commit)) return Results.Json(new { error = "Repository not found" }, statusCode: 404);
            return Results.Json(new { id = Repository, sha = Commit, siblings = _files.Keys.Select(k => new { rfilename = k }) });
        });

        app.MapGet("/api/models/{owner}/{name}/tree/{revision}", (HttpContext http, string owner, string name, string revision, string? cursor) =>
        {
            ListingRequests.Enqueue(($"{http.Request.Path}{http.Request.QueryString}", http.Request.Headers.Authorization.Count > 0));
            if (!Authorized(http)) return Results.Json(new { error = "Invalid credentials" }, statusCode: 401);
            if ($"{owner}/{name}" != Repository || revision != Commit || http.Request.Query["recursive"] != "true") return Results.Json(new { error = "Not found" }, statusCode: 404);
            var start = cursor is null ? 0 : int.Parse(cursor, CultureInfo.InvariantCulture);
            var entries = _files.Keys.Order(StringComparer.Ordinal).Skip(start).Take(PageSize).Select(path => Entry(path, _files[path])).ToList();
            if (start == 0) entries.Insert(0, new Dictionary<string, object> { ["type"] = "directory", ["oid"] = GitBlobId([]), ["size"] = 0, ["path"] = "unused-dir" });
            if (start == 0) entries.AddRange(ExtraEntries);
            if (start + PageSize < _files.Count)
                http.Response.Headers.Link = $"<{NextPageBase ?? Endpoint}api/models/{Repository}/tree/{Commit}?recursive=true&cursor={start + PageSize}>; rel=\"next\"";
            return Results.Text(JsonSerializer.Serialize(entries), "application/json");
        });

        app.MapGet("/{owner}/{name}/resolve/{revision}/{**path}", (HttpContext http, string owner, string name, string revision, string path) =>
        {
            ContentRequests.Enqueue((path, http.Request.Headers.Range.ToString() is { Length: > 0 } r ? r : null, http.Request.Headers.Authorization.Count > 0));
            if (!Authorized(http)) return Results.Json(new { error = "Invalid credentials" }, statusCode: 401);
            if ($"{owner}/{name}" != Repository || revision != Commit || (!_files.TryGetValue(path, out var content) && !ExtraContent.TryGetValue(path, out content))) return Results.NotFound();
            return IsLfs(path) ? Results.Redirect($"/lfs/{Sha256(content)}") : Serve(http, path, content);
        });

        // LFS storage: no token (HttpClient drops Authorization on redirects), content by oid.
        app.MapGet("/lfs/{oid}", (HttpContext http, string oid) =>
        {
            var (path, content) = _files.Single(f => IsLfs(f.Key) && Sha256(f.Value) == oid);
            ContentRequests.Enqueue(($"lfs:{path}", http.Request.Headers.Range.ToString() is { Length: > 0 } r ? r : null, http.Request.Headers.Authorization.Count > 0));
            return Serve(http, path, content);
        });
    }

    /// <summary>A listing entry as the hub writes it for <paramref name="content"/> at <paramref name="path"/> (git blob id, or LFS sha256 for safetensors).</summary>
    public static Dictionary<string, object> Entry(string path, byte[] content)
    {
        var entry = new Dictionary<string, object> { ["type"] = "file", ["oid"] = GitBlobId(content), ["size"] = content.Length, ["path"] = path };
        if (IsLfs(path)) entry["lfs"] = new { oid = Sha256(content), size = content.Length, pointerSize = 134 };
        return entry;
    }

    private IResult Serve(HttpContext http, string path, byte[] content)
    {
        if (Corrupted.Contains(path))
        {
            content = [.. content];
            content[content.Length / 2] ^= 0xFF;
        }
        if (WithoutLength.Contains(path)) return new ChunkedResult(content);
        if (CutAfter.TryRemove(path, out var cut) || AlwaysCutAfter.TryGetValue(path, out cut)) return new CutResult(content, cut, stall: false);
        if (StallAfter.TryRemove(path, out var stall)) return new CutResult(content, stall, stall: true);
        return Results.Bytes(content, "application/octet-stream", enableRangeProcessing: true);
    }

    /// <summary>
    /// Sends the first bytes of the whole file, then drops the connection, as a network failure would
    /// (the client may lose what was still in flight), or, stalling, sends nothing more until the client gives up.
    /// </summary>
    private sealed class CutResult(byte[] content, long after, bool stall) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.ContentLength = content.Length;
            httpContext.Response.ContentType = "application/octet-stream";
            await httpContext.Response.Body.WriteAsync(content.AsMemory(0, (int)after));
            await httpContext.Response.Body.FlushAsync();
            if (stall)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, httpContext.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    // The client dropped the stalled connection.
                }
            }
            httpContext.Abort();
        }
    }

    /// <summary>The whole file in 64 KiB writes, with no Content-Length.</summary>
    private sealed class ChunkedResult(byte[] content) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.ContentType = "application/octet-stream";
            for (var at = 0; at < content.Length && !httpContext.RequestAborted.IsCancellationRequested; at += 1 << 16)
            {
                try
                {
                    await httpContext.Response.Body.WriteAsync(content.AsMemory(at, Math.Min(1 << 16, content.Length - at)), httpContext.RequestAborted);
                    await httpContext.Response.Body.FlushAsync(httpContext.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    // The client stopped reading.
                    return;
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
