using System.Diagnostics;
using DeepSeek.Runtime.Download;

namespace DeepSeek.Runtime.Tests.Download;

/// <summary>
/// <c>download</c> against a hub on loopback that serves the tiny DeepSeek-V2-Lite fixture in the hub's
/// layout: every file lands byte for byte, broken transfers resume with Range, bad content is refused.
/// </summary>
public sealed class DownloadTests : IAsyncLifetime
{
    private const string Token = "hf_loopback_token";
    private readonly string _target = Path.Combine(Path.GetTempPath(), $"deepseek-download-{Guid.NewGuid():N}");
    private LoopbackHub _hub = null!;
    private LoopbackHub? _other;
    private HttpClient _http = null!;

    private static string Fixture
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                var fixture = Path.Combine(directory.FullName, "tests", "fixtures", "deepseek-v2-lite-tiny");
                if (Directory.Exists(fixture)) return fixture;
            }
            throw new InvalidOperationException("tests/fixtures/deepseek-v2-lite-tiny not found above the test output.");
        }
    }

    private const string Weights = "model.safetensors";

    public async Task InitializeAsync()
    {
        _hub = await LoopbackHub.StartAsync(Fixture);
        _hub.RequiredToken = Token;
        _http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _hub.DisposeAsync();
        if (_other is not null) await _other.DisposeAsync();
        if (Directory.Exists(_target)) Directory.Delete(_target, recursive: true);
    }

    [Fact]
    public async Task Downloads_every_listed_file_through_pages_and_lfs_redirects_without_sending_the_token_to_storage()
    {
        Assert.Contains(Weights, _hub.Files.Keys);
        var progress = await DownloadAsync();

        AssertSameFiles();
        Assert.Equal(_hub.Files.Count, progress.Done.Count);
        Assert.All(_hub.ContentRequests.Where(r => !r.Path.StartsWith("lfs:", StringComparison.Ordinal)), r => Assert.True(r.Authorized));
        Assert.All(_hub.ContentRequests.Where(r => r.Path.StartsWith("lfs:", StringComparison.Ordinal)), r => Assert.False(r.Authorized));
        Assert.Contains(_hub.ContentRequests, r => r.Path == $"lfs:{Weights}");
    }

    [Fact]
    public async Task A_cut_connection_resumes_where_it_stopped()
    {
        var half = _hub.Files[Weights].Length / 2;
        _hub.CutAfter[Weights] = half;

        var progress = await DownloadAsync();

        // Where it resumes depends on how much arrived before the reset; the file must be whole either way.
        AssertSameFiles();
        Assert.Contains(progress.Retries, r => r.StartsWith(Weights, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_stalled_connection_is_dropped_and_resumed_where_it_stopped()
    {
        var half = _hub.Files[Weights].Length / 2;
        _hub.StallAfter[Weights] = half;

        var progress = await DownloadAsync(stallTimeout: TimeSpan.FromSeconds(5));

        AssertSameFiles();
        Assert.Contains(progress.Retries, r => r.StartsWith(Weights, StringComparison.Ordinal) && r.Contains("no data", StringComparison.Ordinal));
        Assert.Contains(_hub.ContentRequests, r => r.Path == $"lfs:{Weights}" && r.Range == $"bytes={half}-");
    }

    [Fact]
    public async Task A_partial_file_of_an_earlier_run_is_continued_with_a_range_request()
    {
        Directory.CreateDirectory(_target);
        await File.WriteAllBytesAsync(Path.Combine(_target, Weights + SnapshotDownloader.PartialSuffix), _hub.Files[Weights][..1000]);

        await DownloadAsync();

        AssertSameFiles();
        Assert.Contains(_hub.ContentRequests, r => r.Path == $"lfs:{Weights}" && r.Range == "bytes=1000-");
    }

    [Fact]
    public async Task Content_that_does_not_match_the_hubs_checksum_is_refused_and_removed()
    {
        _hub.Corrupted.Add("config.json");
        _hub.Corrupted.Add(Weights);

        var error = await Assert.ThrowsAsync<HubException>(() => DownloadAsync(parallelism: 1));

        Assert.Matches("(config.json|model.safetensors): got .* the hub lists", error.Message);
        Assert.False(File.Exists(Path.Combine(_target, "config.json")));
        Assert.False(File.Exists(Path.Combine(_target, "config.json" + SnapshotDownloader.PartialSuffix)));
        Assert.False(File.Exists(Path.Combine(_target, Weights)));
    }

    [Fact]
    public async Task Files_already_in_place_are_checked_and_kept()
    {
        await DownloadAsync();
        _hub.ContentRequests.Clear();
        var progress = await DownloadAsync();

        AssertSameFiles();
        Assert.Empty(_hub.ContentRequests);
        Assert.All(progress.Done, d => Assert.True(d.AlreadyPresent));
    }

    [Fact]
    public async Task A_missing_token_and_an_unknown_repository_say_what_is_wrong()
    {
        var noToken = await Assert.ThrowsAsync<HubException>(() => new HubClient(_http, _hub.Endpoint, null).GetSnapshotAsync(LoopbackHub.Repository, "main", CancellationToken.None));
        Assert.Contains("HF_TOKEN", noToken.Message, StringComparison.Ordinal);

        var unknown = await Assert.ThrowsAsync<HubException>(() => new HubClient(_http, _hub.Endpoint, Token).GetSnapshotAsync("deepseek-ai/no-such-model", "main", CancellationToken.None));
        Assert.Contains("no such repository", unknown.Message, StringComparison.Ordinal);

        var badRevision = await Assert.ThrowsAsync<HubException>(() => new HubClient(_http, _hub.Endpoint, Token).GetSnapshotAsync(LoopbackHub.Repository, "v9", CancellationToken.None));
        Assert.Contains("v9", badRevision.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_download_verb_fetches_the_model_with_the_token_from_HF_TOKEN()
    {
        var (code, stdout, stderr) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", _hub.Endpoint.ToString(), "--output", _target, "--revision", "main");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains(LoopbackHub.Commit, stdout, StringComparison.Ordinal);
        AssertSameFiles();

        var (refused, _, message) = await RunDownloadVerbAsync("hf_wrong", LoopbackHub.Repository, "--endpoint", _hub.Endpoint.ToString(), "--output", _target);
        Assert.Equal(1, refused);
        Assert.Contains("HF_TOKEN", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_skip_if_complete_a_second_run_on_a_complete_folder_needs_neither_the_hub_nor_a_hash()
    {
        var (code, stdout, stderr) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", _hub.Endpoint.ToString(), "--output", _target, "--skip-if-complete");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var stamp = CompletedDownload.Read(_target);
        Assert.NotNull(stamp);
        Assert.Equal((LoopbackHub.Repository, "main", LoopbackHub.Commit), (stamp.Repository, stamp.Revision, stamp.Commit));
        Assert.Equal(_hub.Files.Keys.Order(StringComparer.Ordinal), stamp.Files.Select(f => f.Path).Order(StringComparer.Ordinal));
        File.Delete(Path.Combine(_target, CompletedDownload.FileName));
        AssertSameFiles();
        stamp.Write(_target);

        // The hub unreachable (a port nothing listens on): the stamp alone answers, for the revision as asked or as its commit.
        const string nowhere = "http://127.0.0.1:9/";
        (code, stdout, stderr) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", nowhere, "--output", _target, "--skip-if-complete");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Contains("already complete", stdout, StringComparison.Ordinal);
        (code, _, _) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", nowhere, "--output", _target, "--skip-if-complete", "--revision", LoopbackHub.Commit);
        Assert.Equal(0, code);

        // Another revision, a truncated file, or no flag: the hub is asked again (and, unreachable here, the run fails).
        (code, _, _) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", nowhere, "--output", _target, "--skip-if-complete", "--revision", "v2");
        Assert.Equal(1, code);
        (code, _, _) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", nowhere, "--output", _target);
        Assert.Equal(1, code);
        var weights = Path.Combine(_target, Weights);
        var content = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, content[..^1]);
        (code, _, _) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", nowhere, "--output", _target, "--skip-if-complete");
        Assert.Equal(1, code);

        // With the hub back, the truncated file is fetched again and the stamp rewritten.
        (code, stdout, stderr) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", _hub.Endpoint.ToString(), "--output", _target, "--skip-if-complete");
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.Equal(content, File.ReadAllBytes(weights));
    }

    [Fact]
    public async Task A_file_longer_than_listed_stops_at_the_listed_size_and_is_refused_and_removed()
    {
        ListOversizeFile();
        var progress = new RecordingProgress();

        var error = await Assert.ThrowsAsync<HubException>(() => DownloadAsync(parallelism: 1, progress: progress));

        Assert.Contains(OversizeFile, error.Message, StringComparison.Ordinal);
        Assert.Contains("more than the 10 bytes", error.Message, StringComparison.Ordinal);
        Assert.True(progress.Bytes.GetValueOrDefault(OversizeFile) <= 10, $"{progress.Bytes.GetValueOrDefault(OversizeFile)} bytes of a file listed at 10 were taken in");
        Assert.False(File.Exists(Path.Combine(_target, OversizeFile)));
        Assert.False(File.Exists(Path.Combine(_target, OversizeFile + SnapshotDownloader.PartialSuffix)));
    }

    [Fact]
    public async Task A_file_longer_than_listed_without_a_content_length_stops_reading_at_the_listed_size()
    {
        ListOversizeFile();
        _hub.WithoutLength.Add(OversizeFile);
        var progress = new RecordingProgress();

        var error = await Assert.ThrowsAsync<HubException>(() => DownloadAsync(parallelism: 1, progress: progress));

        Assert.Contains($"{OversizeFile}: the hub sent more than the 10 bytes", error.Message, StringComparison.Ordinal);
        Assert.True(progress.Bytes.GetValueOrDefault(OversizeFile) <= 10, $"{progress.Bytes.GetValueOrDefault(OversizeFile)} bytes of a file listed at 10 were taken in");
        Assert.False(File.Exists(Path.Combine(_target, OversizeFile)));
        Assert.False(File.Exists(Path.Combine(_target, OversizeFile + SnapshotDownloader.PartialSuffix)));
    }

    [Fact]
    public async Task A_next_page_on_another_origin_is_refused_and_that_origin_never_sees_a_request()
    {
        _other = await LoopbackHub.StartAsync(Fixture);
        _hub.NextPageBase = _other.Endpoint;

        var error = await Assert.ThrowsAsync<HubException>(() => new HubClient(_http, _hub.Endpoint, Token).GetSnapshotAsync(LoopbackHub.Repository, "main", CancellationToken.None));

        Assert.Contains(_other.Endpoint.Authority, error.Message, StringComparison.Ordinal);
        Assert.Contains("another origin", error.Message, StringComparison.Ordinal);
        Assert.Empty(_other.ListingRequests);
    }

    private const string OversizeFile = "oversize.bin";

    /// <summary>A file the listing gives as 10 bytes (with the checksum of 10 bytes) that the hub serves at 1 MB.</summary>
    private void ListOversizeFile()
    {
        var served = new byte[1 << 20];
        Random.Shared.NextBytes(served);
        _hub.ExtraEntries.Add(LoopbackHub.Entry(OversizeFile, served[..10]));
        _hub.ExtraContent[OversizeFile] = served;
    }

    /// <summary>
    /// The bad-input table of <c>download</c>: what a hostile hub (or a broken mirror) can put in a listing or a
    /// transfer. Each case ends the verb with exit 1 and one line on standard error naming the file and the
    /// problem, never a .NET stack trace, and leaves no file (and no completion stamp) claimed complete.
    /// </summary>
    [Theory]
    [InlineData("nul-in-path", "control character")]
    [InlineData("long-name", "longer than")]
    [InlineData("dot-dot", "../escape.json")]
    [InlineData("absolute", "/tmp/escape.json")]
    [InlineData("backslash", "not a plain relative path")]
    [InlineData("no-size", "nosize.json: the listing gives no usable size")]
    [InlineData("bad-size", "badsize.json: the listing gives no usable size")]
    [InlineData("oversize", "oversize.bin: the hub sent more than the 10 bytes")]
    [InlineData("always-ends-early", "config.json: the connection ended early")]
    [InlineData("next-page-elsewhere", "another origin")]
    [InlineData("path-not-a-string", "an entry without a path")]
    public async Task The_download_verb_refuses_hostile_hub_input_with_one_line_and_exit_1(string hostile, string expected)
    {
        string? notComplete = null;
        switch (hostile)
        {
            case "nul-in-path":
                Serve("bad\0name.json", [1, 2, 3]);
                break;
            case "long-name":
                Serve(new string('a', 300) + ".json", [1, 2, 3]);
                break;
            case "dot-dot":
                _hub.ExtraEntries.Add(LoopbackHub.Entry("../escape.json", [1, 2, 3]));
                break;
            case "absolute":
                _hub.ExtraEntries.Add(LoopbackHub.Entry("/tmp/escape.json", [1, 2, 3]));
                break;
            case "backslash":
                _hub.ExtraEntries.Add(LoopbackHub.Entry("dir\\..\\..\\escape.json", [1, 2, 3]));
                break;
            case "no-size":
                Serve("nosize.json", [1, 2, 3]).Remove("size");
                break;
            case "bad-size":
                Serve("badsize.json", [1, 2, 3])["size"] = -5;
                break;
            case "oversize":
                ListOversizeFile();
                notComplete = OversizeFile;
                break;
            case "always-ends-early":
                _hub.AlwaysCutAfter["config.json"] = 100;
                notComplete = "config.json";
                break;
            case "next-page-elsewhere":
                _other = await LoopbackHub.StartAsync(Fixture);
                _hub.NextPageBase = _other.Endpoint;
                break;
            case "path-not-a-string":
                _hub.ExtraEntries.Add(new Dictionary<string, object> { ["type"] = "file", ["path"] = 17 });
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(hostile), hostile, null);
        }

        var (code, stdout, stderr) = await RunDownloadVerbAsync(Token, LoopbackHub.Repository, "--endpoint", _hub.Endpoint.ToString(), "--output", _target, "--skip-if-complete");

        Assert.True(code == 1, $"exit {code}\n{stdout}\n{stderr}");
        // One line says why; before it, only the retry notices of a transfer that broke off (each one line too).
        var lines = stderr.Trim().Split('\n');
        Assert.All(lines[..^1], notice => Assert.Matches(@"^download: .*; resuming \(attempt \d+\)$", notice));
        var line = lines[^1];
        Assert.StartsWith("download: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_target, CompletedDownload.FileName)));
        if (notComplete is not null) Assert.False(File.Exists(Path.Combine(_target, notComplete)));
        if (_other is not null) Assert.Empty(_other.ListingRequests);
    }

    /// <summary>Lists <paramref name="path"/> (the entry returned, to spoil) and serves <paramref name="content"/> for it.</summary>
    private Dictionary<string, object> Serve(string path, byte[] content)
    {
        var entry = LoopbackHub.Entry(path, content);
        _hub.ExtraEntries.Add(entry);
        _hub.ExtraContent[path] = content;
        return entry;
    }

    private async Task<RecordingProgress> DownloadAsync(int parallelism = 4, TimeSpan? stallTimeout = null, RecordingProgress? progress = null)
    {
        var client = new HubClient(_http, _hub.Endpoint, Token);
        var snapshot = await client.GetSnapshotAsync(LoopbackHub.Repository, "main", CancellationToken.None);
        Assert.Equal(LoopbackHub.Commit, snapshot.Commit);
        progress ??= new RecordingProgress();
        await new SnapshotDownloader(client, progress, parallelism, stallTimeout: stallTimeout).DownloadAsync(snapshot, _target, CancellationToken.None);
        return progress;
    }

    private void AssertSameFiles()
    {
        var downloaded = Directory.EnumerateFiles(_target, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(_target, f).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(_hub.Files.Keys.Order(StringComparer.Ordinal), downloaded);
        foreach (var (path, content) in _hub.Files) Assert.Equal(content, File.ReadAllBytes(Path.Combine(_target, path)));
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunDownloadVerbAsync(string token, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "deepseek-runtime.dll"));
        start.ArgumentList.Add("download");
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["HF_TOKEN"] = token;
        start.Environment.Remove("HF_ENDPOINT");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException("deepseek-runtime download did not finish within 3 minutes.");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    private sealed class RecordingProgress : IDownloadProgress
    {
        public System.Collections.Concurrent.ConcurrentBag<string> Retries { get; } = [];
        public System.Collections.Concurrent.ConcurrentBag<(string Path, bool AlreadyPresent)> Done { get; } = [];

        public void FileStarted(HubFile file, long resumedAt) { }
        public System.Collections.Concurrent.ConcurrentDictionary<string, long> Bytes { get; } = new(StringComparer.Ordinal);

        public void BytesReceived(HubFile file, long count) => Bytes.AddOrUpdate(file.Path, count, (_, total) => total + count);
        public void FileRetrying(HubFile file, int attempt, string reason) => Retries.Add($"{file.Path}: {reason}");
        public void FileDone(HubFile file, bool alreadyPresent) => Done.Add((file.Path, alreadyPresent));
    }
}
