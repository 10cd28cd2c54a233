using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace DeepSeek.Runtime.Download;

/// <summary>
/// The parts of the Hugging Face Hub's HTTP API a download needs, against any compatible endpoint:
/// <c>/api/models/{repo}/revision/{rev}</c> (the commit), <c>/api/models/{repo}/tree/{commit}?recursive=true</c>
/// (files, sizes and checksums; paginated by <c>Link: rel="next"</c>) and <c>/{repo}/resolve/{commit}/{path}</c>
/// (content, with HTTP Range; LFS files redirect to storage, which gets no token).
/// </summary>
public sealed partial class HubClient(HttpClient http, Uri endpoint, string? token)
{
    private readonly Uri _endpoint = new(endpoint.ToString().TrimEnd('/') + "/");

    public Uri Endpoint => _endpoint;

    /// <summary>Repository ids as the hub spells them: <c>name</c> or <c>owner/name</c>.</summary>
    public static bool IsRepositoryId(string id) => RepositoryId().IsMatch(id);

    public async Task<HubSnapshot> GetSnapshotAsync(string repository, string revision, CancellationToken cancellationToken)
    {
        if (!IsRepositoryId(repository)) throw new HubException($"'{repository}' is not a repository id (owner/name).");
        var commit = await GetCommitAsync(repository, revision, cancellationToken).ConfigureAwait(false);

        var files = new List<HubFile>();
        Uri? page = new(_endpoint, $"api/models/{repository}/tree/{commit}?recursive=true");
        for (var pages = 0; page is not null; pages++)
        {
            if (pages == 10_000) throw new HubException($"{repository}: the file listing did not end after {pages} pages.");
            using var response = await SendAsync(page, null, cancellationToken).ConfigureAwait(false);
            await EnsureSuccessAsync(response, repository, revision).ConfigureAwait(false);
            JsonDocument listing;
            try
            {
                listing = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (JsonException e)
            {
                throw new HubException($"{repository}: the file listing ({page}) is not JSON: {e.Message}");
            }
            using (listing)
            {
                if (listing.RootElement.ValueKind != JsonValueKind.Array) throw new HubException($"{repository}: the file listing ({page}) is not a JSON array.");
                foreach (var entry in listing.RootElement.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                        throw new HubException($"{repository}: the file listing has an entry without a type: {Shown(entry.GetRawText())}.");
                    if (type.GetString() != "file") continue;
                    files.Add(FileOf(repository, entry));
                }
            }
            page = NextPage(response, page);
        }

        return new HubSnapshot(repository, commit, files);
    }

    /// <summary>The response for a file's content from byte <paramref name="offset"/> on (headers read, body not yet).</summary>
    public async Task<HttpResponseMessage> OpenAsync(HubSnapshot snapshot, HubFile file, long offset, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(file);
        var path = string.Join('/', file.Path.Split('/').Select(Uri.EscapeDataString));
        return await SendAsync(new Uri(_endpoint, $"{snapshot.Repository}/resolve/{snapshot.Commit}/{path}"), offset > 0 ? offset : null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Turns a refused request into a message a person can act on.</summary>
    public static async Task EnsureSuccessAsync(HttpResponseMessage response, string repository, string revision)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (response.IsSuccessStatusCode) return;
        var detail = (await response.Content.ReadAsStringAsync().ConfigureAwait(false)).Trim();
        if (detail.Length > 300) detail = detail[..300];
        var at = $"{repository} at {revision} ({response.RequestMessage?.RequestUri})";
        throw new HubException(response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => $"{at}: the hub wants a token (set HF_TOKEN) or refused the one given. {detail}",
            HttpStatusCode.Forbidden => $"{at}: the token has no access (a gated model's terms must be accepted on the hub). {detail}",
            HttpStatusCode.NotFound => $"{at}: no such repository, revision or file. {detail}",
            _ => $"{at}: HTTP {(int)response.StatusCode}. {detail}",
        });
    }

    private async Task<string> GetCommitAsync(string repository, string revision, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(new Uri(_endpoint, $"api/models/{repository}/revision/{Uri.EscapeDataString(revision)}"), null, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, repository, revision).ConfigureAwait(false);
        using var info = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false);
        var sha = info.RootElement.TryGetProperty("sha", out var value) ? value.GetString() : null;
        return sha is not null && CommitId().IsMatch(sha)
            ? sha
            : throw new HubException($"{repository} at {revision}: the hub named no commit for the revision.");
    }

    private async Task<HttpResponseMessage> SendAsync(Uri uri, long? rangeFrom, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        // HttpClient drops Authorization when it follows a redirect, so LFS storage never sees the token.
        // The token goes to the configured hub's origin only (NextPage refuses other origins; this holds whatever asks).
        if (token is not null && SameOrigin(uri, _endpoint)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (rangeFrom is { } from) request.Headers.Range = new RangeHeaderValue(from, null);
        return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The longest file name (one path segment, UTF-8 bytes) the listing may give: Linux's 255 less the
    /// <see cref="SnapshotDownloader.PartialSuffix"/> the file is first written under.
    /// </summary>
    public static int MaxNameBytes => 255 - SnapshotDownloader.PartialSuffix.Length;

    private static HubFile FileOf(string repository, JsonElement entry)
    {
        if (!entry.TryGetProperty("path", out var pathValue) || pathValue.ValueKind != JsonValueKind.String)
            throw new HubException($"{repository}: the file listing has an entry without a path: {Shown(entry.GetRawText())}.");
        var path = pathValue.GetString()!;
        // The listing names where files go on this machine: nothing outside the target folder, nothing the
        // file system would refuse midway (a NUL, a name too long), so a hostile listing fails here, before any transfer.
        if (path.Any(char.IsControl))
            throw new HubException($"{repository}: the hub listed a file path with a control character: '{Shown(path)}'.");
        if (path.Length == 0 || path.StartsWith('/') || path.Contains('\\', StringComparison.Ordinal) || path.Contains(':', StringComparison.Ordinal)
            || path.Split('/').Any(segment => segment is "" or "." or ".."))
            throw new HubException($"{repository}: the hub listed a file path that is not a plain relative path: '{Shown(path)}'.");
        if (path.Split('/').FirstOrDefault(segment => System.Text.Encoding.UTF8.GetByteCount(segment) > MaxNameBytes) is { } longName)
            throw new HubException($"{repository}: the hub listed a file name longer than {MaxNameBytes} bytes ({System.Text.Encoding.UTF8.GetByteCount(longName)}): '{Shown(path)}'.");
        if (!entry.TryGetProperty("size", out var sizeValue) || sizeValue.ValueKind != JsonValueKind.Number || !sizeValue.TryGetInt64(out var size) || size < 0)
            throw new HubException($"{repository}: {path}: the listing gives no usable size ({(entry.TryGetProperty("size", out var raw) ? Shown(raw.GetRawText()) : "none")}).");
        var checksum = entry.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object
            ? new FileChecksum(ChecksumKind.Sha256, StringOf(lfs, "oid"))
            : new FileChecksum(ChecksumKind.GitBlobSha1, StringOf(entry, "oid"));
        if (!HexDigest().IsMatch(checksum.Hex)) throw new HubException($"{repository}: the hub listed no usable checksum for {path}.");
        return new HubFile(path, size, checksum);
    }

    private static string StringOf(JsonElement element, string property) =>
        element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() ?? "" : "";

    /// <summary>Hub-given text fit for one line of an error: control characters escaped, at most 120 characters.</summary>
    public static string Shown(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var escaped = string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
        return escaped.Length <= 120 ? escaped : $"{escaped[..100]}…({text.Length} characters)";
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    /// <summary>
    /// The next page of the listing, which must be on the configured hub's origin (scheme, host, port).
    /// A next link elsewhere is refused rather than followed without the token: the files to write would
    /// then come from a host the user never named (a hostile or compromised hub could steer the whole
    /// listing there), and a private hub's pages need the token anyway, so following it tokenless would
    /// at best fail later with a confusing 401. Refusing names the misconfiguration at once.
    /// </summary>
    private Uri? NextPage(HttpResponseMessage response, Uri current)
    {
        if (!response.Headers.TryGetValues("Link", out var links)) return null;
        foreach (var link in links.SelectMany(l => l.Split(',')))
        {
            var match = NextLink().Match(link);
            if (!match.Success) continue;
            if (!Uri.TryCreate(current, match.Groups[1].Value, out var next))
                throw new HubException($"the file listing's next page is not a URL: '{Shown(match.Groups[1].Value)}'.");
            if (!SameOrigin(next, _endpoint))
                throw new HubException($"the file listing's next page is on another origin ({next.Scheme}://{next.Authority}) than the hub {_endpoint.Scheme}://{_endpoint.Authority}; "
                    + "refused, so that neither the token nor the file list leaves the configured hub.");
            return next;
        }
        return null;
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")]
    private static partial Regex RepositoryId();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitId();

    [GeneratedRegex("^([0-9a-f]{40}|[0-9a-f]{64})$")]
    private static partial Regex HexDigest();

    [GeneratedRegex("""<([^>]+)>\s*;\s*rel="?next"?""")]
    private static partial Regex NextLink();
}

/// <summary>A download that cannot succeed as asked (unknown repository, refused token, bad checksum); the message says why.</summary>
public sealed class HubException(string message) : Exception(message);
