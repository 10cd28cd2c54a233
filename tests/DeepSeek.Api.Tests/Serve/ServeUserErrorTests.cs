using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// Mistakes in how <c>serve</c> is started, through the real process: each is one line saying what to
/// change and exit code 1 or 2, never an unhandled exception or a stack trace (those are for bugs).
/// </summary>
public sealed class ServeUserErrorTests
{
    private static string FixtureDir => Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", "deepseek-v3-tiny");

    [Fact]
    public async Task A_port_that_is_not_a_number_is_one_line_naming_the_flag()
    {
        var (exitCode, stdout, stderr) = await ServeAsync("--http-port", "abc", "--grpc-port", $"{FreePort.Next()}");

        AssertOneLine(exitCode, stdout, stderr, "--http-port");
        Assert.Contains("abc", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_in_use_is_one_line_naming_the_flag_to_change()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var taken = ((IPEndPoint)listener.LocalEndpoint).Port;

        var (exitCode, stdout, stderr) = await ServeAsync("--http-port", $"{taken}", "--grpc-port", $"{FreePort.Next()}");

        AssertOneLine(exitCode, stdout, stderr, $"--http-port {taken}");
        Assert.Contains("address already in use", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_device_is_one_line_before_anything_loads()
    {
        var (exitCode, stdout, stderr) = await ServeAsync("--http-port", $"{FreePort.Next()}", "--grpc-port", $"{FreePort.Next()}", "--device", "gpu");

        AssertOneLine(exitCode, stdout, stderr, "--device gpu");
        Assert.Contains("cpu, cuda or cuda:N", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0", "--threads must be at least 1, not 0.")]
    [InlineData("-3", "--threads must be at least 1, not -3.")]
    [InlineData("many", "Cannot parse argument 'many' for option '--threads'")]
    public async Task A_thread_count_that_is_not_a_positive_number_is_one_line_and_exit_2(string value, string expected)
    {
        var (exitCode, stdout, stderr) = await ServeAsync("--http-port", $"{FreePort.Next()}", "--grpc-port", $"{FreePort.Next()}", "--threads", value);

        AssertOneLine(exitCode, stdout, stderr, expected);
        Assert.True(exitCode == 2, $"exit code {exitCode}: {stderr}");
    }

    [Fact]
    public async Task An_fp8_checkpoint_missing_a_scale_says_which_without_a_stack_trace()
    {
        using var folder = new Fp8FolderWithoutScale(FixtureDir);

        var (exitCode, stdout, stderr) = await ServeAsync("--http-port", $"{FreePort.Next()}", "--grpc-port", $"{FreePort.Next()}", "--model", folder.Path);

        var output = stdout + stderr;
        Assert.True(exitCode == 1, $"exit code {exitCode}:\n{output}");
        Assert.Contains($"{Fp8FolderWithoutScale.Weight}_scale_inv", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_model_its_device_cannot_hold_is_refused_before_loading_with_the_plan()
    {
        // DeepSeek-V3's published config.json and no weights: the plan needs config.json alone, and the refusal comes before any weight is read.
        var v3 = Path.Combine(ExternalTool.RepoRoot, "tests", "fixtures", "deepseek-v3-config");

        var (exitCode, stdout, stderr) = await ServeAsync("--http-port", $"{FreePort.Next()}", "--grpc-port", $"{FreePort.Next()}", "--model", v3, "--device", "cpu");

        Assert.True(exitCode == 1 && stdout.Trim().Length == 0, $"exit code {exitCode}:\n{stdout}\n{stderr}");
        Assert.StartsWith("serve: deepseek_v3 does not fit cpu (", stderr, StringComparison.Ordinal);
        Assert.Contains("| fp8 ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lora_adapter_folder_that_cannot_be_served_is_one_line_naming_it_before_the_model_loads()
    {
        var root = Directory.CreateTempSubdirectory("deepseek-lora-refusal-").FullName;
        try
        {
            var dora = DeepSeek.Testing.LoraFolders.WriteAdapter(FixtureDir, DeepSeek.Testing.LoraFolders.AttentionR4, Path.Combine(root, "dora"), c => c["use_dora"] = true);
            var (exitCode, stdout, stderr) = await ServeAsync("--http-port", $"{FreePort.Next()}", "--grpc-port", $"{FreePort.Next()}", "--lora-modules", $"tuned={dora}");

            AssertOneLine(exitCode, stdout, stderr, $"LoRA adapter 'tuned' ({dora})");
            Assert.Contains("DoRA adapters are not supported", stderr, StringComparison.Ordinal);
            (exitCode, stdout, stderr) = await ServeAsync("--http-port", $"{FreePort.Next()}", "--grpc-port", $"{FreePort.Next()}", "--lora-modules", "tuned");
            AssertOneLine(exitCode, stdout, stderr, "--lora-modules takes NAME=DIR entries");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> ServeAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet", [ServeProcess.RuntimeDll, "serve", "--host", "127.0.0.1", .. arguments]);
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("DEEPSEEK_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(name);
        return await ExternalTool.RunAsync(start, null, TimeSpan.FromSeconds(300));
    }

    /// <summary>Exit code 1 or 2 and one line on stderr naming <paramref name="expected"/>; no trace, no log lines.</summary>
    private static void AssertOneLine(int exitCode, string stdout, string stderr, string expected)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(exitCode is 1 or 2 && lines.Length == 1 && stdout.Trim().Length == 0, $"exit code {exitCode}:\n{stdout}\n{stderr}");
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
    }
}
