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

    private async Task<RecordingProgress> DownloadAsync(int parallelism = 4, TimeSpan? stallTimeout = null)
    {
        var client = new HubClient(_http, _hub.Endpoint, Token);
        var snapshot = await client.GetSnapshotAsync(LoopbackHub.Repository, "main", CancellationToken.None);
        Assert.Equal(LoopbackHub.Commit, snapshot.Commit);
        var progress = new RecordingProgress();
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
        public void BytesReceived(HubFile file, long count) { }
        public void FileRetrying(HubFile file, int attempt, string reason) => Retries.Add($"{file.Path}: {reason}");
        public void FileDone(HubFile file, bool alreadyPresent) => Done.Add((file.Path, alreadyPresent));
    }
}
