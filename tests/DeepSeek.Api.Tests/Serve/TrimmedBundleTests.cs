using System.Diagnostics;
using System.Net;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// The trimmed, self-contained publish that scripts/publish-gpu-bundle.sh makes (the same trimming
/// flags; with the CPU LibTorch so it can load the tiny model here) serves its probes and its API:
/// everything it serializes goes through source-generated JSON contexts, which trimming keeps.
/// The publish runs on a copy of the sources, so it never rewrites the build output that other
/// tests' <c>serve</c> processes run from.
/// </summary>
public sealed class TrimmedBundleTests
{
    private static readonly TimeSpan PublishDeadline = TimeSpan.FromMinutes(15);

    [Fact]
    public async Task The_trimmed_bundle_answers_health_ready_and_the_api()
    {
        var scratch = Path.Combine(Path.GetTempPath(), $"deepseek-trimmed-{Guid.NewGuid():N}");
        var output = Path.Combine(scratch, "bundle");
        try
        {
            var sources = Path.Combine(scratch, "src");
            foreach (var item in new[] { ".editorconfig", "global.json", "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "build", "runtime", Path.Combine("tests", "fixtures", "deepseek-v3-tiny") })
                CopySources(Path.Combine(ExternalTool.RepoRoot, item), Path.Combine(sources, item));
            var publish = new ProcessStartInfo("dotnet",
            [
                "publish", Path.Combine(sources, "runtime", "DeepSeek.Runtime"), "-c", "Release", "-r", "linux-x64", "--self-contained",
                "-p:PublishTrimmed=true", "-p:TrimMode=partial", "-p:SuppressTrimAnalysisWarnings=true", "-o", output,
            ]);
            var (exitCode, stdout, stderr) = await ExternalTool.RunAsync(publish, null, PublishDeadline);
            Assert.True(exitCode == 0, $"dotnet publish failed:\n{stdout}\n{stderr}");

            var httpPort = FreePort.Next();
            var grpcPort = FreePort.Next();
            var start = new ProcessStartInfo(Path.Combine(output, "deepseek-runtime"),
                ["serve", "--host", "127.0.0.1", "--http-port", $"{httpPort}", "--grpc-port", $"{grpcPort}",
                 "--model", Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", "deepseek-v3-tiny")])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("DEEPSEEK_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(name);
            using var process = Process.Start(start)!;
            var log = new System.Text.StringBuilder();
            process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}") };
                // /health answers while the model loads; /ready once it has.
                var health = await PollAsync(async () =>
                {
                    try
                    {
                        using var response = await http.GetAsync(new Uri("/health", UriKind.Relative));
                        return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
                    }
                    catch (HttpRequestException)
                    {
                        return (StatusCode: (HttpStatusCode)0, Body: "");
                    }
                }, r => r.StatusCode != 0 || process.HasExited, TimeSpan.FromSeconds(120));
                Assert.True(health.StatusCode == HttpStatusCode.OK, $"/health: {(int)health.StatusCode} {health.Body}\n{log}");
                Assert.Equal("{\"status\":\"up\"}", health.Body);

                var ready = await PollAsync(async () =>
                {
                    using var response = await http.GetAsync(new Uri("/ready", UriKind.Relative));
                    return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
                }, r => r.StatusCode != HttpStatusCode.ServiceUnavailable || process.HasExited, TimeSpan.FromSeconds(180));
                Assert.True(ready.StatusCode == HttpStatusCode.OK, $"/ready: {(int)ready.StatusCode} {ready.Body}\n{log}");
                Assert.Equal("{\"status\":\"ready\"}", ready.Body);

                using var completion = await http.PostAsync(new Uri("/v1/completions", UriKind.Relative),
                    ServeClients.Json($$"""{"model":"{{ServeProcess.ModelName}}","prompt":[1,2,3],"max_tokens":2}"""));
                Assert.True(completion.StatusCode == HttpStatusCode.OK, $"{await completion.Content.ReadAsStringAsync()}\n{log}");
                using var error = await http.PostAsync(new Uri("/v1/completions", UriKind.Relative), ServeClients.Json("""{"model":"nope","prompt":[1]}"""));
                Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
                Assert.Contains("model_not_found", await error.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            finally
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }
        }
        finally
        {
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>A file, or a folder without its build outputs (bin, obj).</summary>
    private static void CopySources(string from, string to)
    {
        if (File.Exists(from))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(from, to);
            return;
        }
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var folder in Directory.GetDirectories(from))
        {
            var name = Path.GetFileName(folder);
            if (name is "bin" or "obj") continue;
            CopySources(folder, Path.Combine(to, name));
        }
    }

    /// <summary>Polls until <paramref name="done"/> holds or the deadline passes; returns the last result either way.</summary>
    private static async Task<T> PollAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        var result = await probe();
        while (!done(result) && clock.Elapsed < deadline)
        {
            await Task.Delay(200);
            result = await probe();
        }
        return result;
    }
}
