using System.CommandLine;
using System.Globalization;
using DeepSeek.Runtime.Download;
using Spectre.Console;

namespace DeepSeek.Runtime.Cli;

/// <summary>
/// <c>download REPO</c>: a model from a Hugging Face-compatible hub into a folder that <c>serve --model</c>
/// reads; resumable and checksummed (see <see cref="SnapshotDownloader"/>).
/// </summary>
public static class DownloadCommand
{
    public const string DefaultEndpoint = "https://huggingface.co";

    public static Command Build()
    {
        var repository = new Argument<string>("repository") { Description = "Repository id on the hub, e.g. deepseek-ai/DeepSeek-V2-Lite." };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit.", DefaultValueFactory = _ => "main" };
        var endpoint = new Option<string>("--endpoint")
        {
            Description = $"Hub base URL (a mirror or a private hub). Env: HF_ENDPOINT. Default: {DefaultEndpoint}.",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("HF_ENDPOINT") is { Length: > 0 } fromEnvironment ? fromEnvironment : DefaultEndpoint,
        };
        var output = new Option<string?>("--output") { Description = "Folder to download into. Default: the repository's name in the current folder." };
        var parallel = new Option<int>("--parallel") { Description = "Files transferred at once.", DefaultValueFactory = _ => 4 };
        var skipIfComplete = new Option<bool>("--skip-if-complete")
        {
            Description = $"After a verified download leave a stamp ({CompletedDownload.FileName}); when the folder already has the stamp of this repository and revision "
                + "and every file at its size, exit at once without the hub or re-hashing (a pod's init step). Without it every file is checked again.",
        };
        var command = new Command("download",
            "Download a model from a Hugging Face-compatible hub (token from HF_TOKEN): resumable, every file checked against the hub's checksum.")
        {
            repository, revision, endpoint, output, parallel, skipIfComplete,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var repo = parse.GetValue(repository)!;
            if (!HubClient.IsRepositoryId(repo)) return Fail($"'{repo}' is not a repository id (owner/name).");
            if (!Uri.TryCreate(parse.GetValue(endpoint), UriKind.Absolute, out var hub) || (hub.Scheme != Uri.UriSchemeHttps && hub.Scheme != Uri.UriSchemeHttp))
                return Fail($"--endpoint {parse.GetValue(endpoint)} is not an http(s) URL.");
            var workers = parse.GetValue(parallel);
            if (workers < 1) return Fail("--parallel must be at least 1.");
            var folder = Path.GetFullPath(parse.GetValue(output) ?? repo[(repo.LastIndexOf('/') + 1)..]);
            var token = Environment.GetEnvironmentVariable("HF_TOKEN") is { Length: > 0 } value ? value.Trim() : null;
            var stamped = parse.GetValue(skipIfComplete);
            if (stamped && CompletedDownload.Read(folder) is { } done && done.Covers(repo, parse.GetValue(revision)!, folder))
            {
                Console.WriteLine($"{repo} at {done.Commit} is already complete in {folder}: {done.Files.Count} files, each at its size, verified when downloaded.");
                return 0;
            }

            // No overall timeout: weights run to hundreds of GB; stalls are caught per read.
            using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
            http.DefaultRequestHeaders.UserAgent.ParseAdd($"deepseek-runtime/{typeof(DownloadCommand).Assembly.GetName().Version?.ToString(3)}");
            var client = new HubClient(http, hub, token);
            try
            {
                var snapshot = await client.GetSnapshotAsync(repo, parse.GetValue(revision)!, cancellationToken);
                AnsiConsole.MarkupLine($"[grey]{Markup.Escape(repo)} at {snapshot.Commit} from {Markup.Escape(client.Endpoint.ToString())}: {snapshot.Files.Count} files, {Size(snapshot.TotalBytes)} → {Markup.Escape(folder)}[/]");
                var present = 0;
                await AnsiConsole.Progress()
                    .HideCompleted(true)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                    .StartAsync(async context =>
                    {
                        var progress = new ConsoleDownloadProgress(context, snapshot);
                        await new SnapshotDownloader(client, progress, workers).DownloadAsync(snapshot, folder, cancellationToken);
                        present = progress.AlreadyPresent;
                    });
                if (stamped) CompletedDownload.Of(snapshot, parse.GetValue(revision)!).Write(folder);
                Console.WriteLine($"Downloaded {repo} at {snapshot.Commit} into {folder}: {snapshot.Files.Count} files, {Size(snapshot.TotalBytes)}, "
                    + $"{present} already present; every file matched the hub's checksum.");
                return 0;
            }
            catch (HubException e)
            {
                return Fail(e.Message);
            }
            catch (HttpRequestException e)
            {
                return Fail($"{client.Endpoint}: {e.Message}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The folder, not the hub: a full disk, no permission. One line, as every failure of the verb.
                return Fail($"{folder}: {e.Message}");
            }
        });
        return command;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"download: {message.ReplaceLineEndings(" ")}");
        return 1;
    }

    private static string Size(long bytes) => bytes >= 1 << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1 << 30):0.0} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1 << 20):0.0} MiB");
}
