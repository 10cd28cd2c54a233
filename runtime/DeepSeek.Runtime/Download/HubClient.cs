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
            using var listing = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var entry in listing.RootElement.EnumerateArray())
            {
                if (entry.GetProperty("type").GetString() != "file") continue;
                files.Add(FileOf(repository, entry));
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
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (rangeFrom is { } from) request.Headers.Range = new RangeHeaderValue(from, null);
        return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
    }

    private static HubFile FileOf(string repository, JsonElement entry)
    {
        var path = entry.GetProperty("path").GetString() ?? "";
        // The listing names where files go on this machine: nothing outside the target folder.
        if (path.Length == 0 || path.StartsWith('/') || path.Contains('\\', StringComparison.Ordinal) || path.Contains(':', StringComparison.Ordinal)
            || path.Split('/').Any(segment => segment is "" or "." or ".."))
            throw new HubException($"{repository}: the hub listed a file path that is not a plain relative path: '{path}'.");
        var size = entry.GetProperty("size").GetInt64();
        var checksum = entry.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object
            ? new FileChecksum(ChecksumKind.Sha256, lfs.GetProperty("oid").GetString() ?? "")
            : new FileChecksum(ChecksumKind.GitBlobSha1, entry.GetProperty("oid").GetString() ?? "");
        if (!HexDigest().IsMatch(checksum.Hex)) throw new HubException($"{repository}: the hub listed no usable checksum for {path}.");
        return new HubFile(path, size, checksum);
    }

    private static Uri? NextPage(HttpResponseMessage response, Uri current)
    {
        if (!response.Headers.TryGetValues("Link", out var links)) return null;
        foreach (var link in links.SelectMany(l => l.Split(',')))
        {
            var match = NextLink().Match(link);
            if (match.Success) return new Uri(current, match.Groups[1].Value);
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
