using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSeek.Operator.Tests.Support;

/// <summary>
/// Evaluates CEL rules with a real CEL implementation: <c>tests/clients/cel-check.mjs</c> on Node.js
/// (@bufbuild/cel, installed by <c>scripts/setup/node-clients.sh</c>). Each result is <c>"true"</c>,
/// <c>"false"</c>, <c>"error: ..."</c> or <c>"skipped: ..."</c> (a Kubernetes-only function).
/// </summary>
public static class CelEvaluator
{
    private const string Setup = "bash scripts/setup/node-clients.sh";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static async Task<IReadOnlyList<string>> EvaluateAsync(IReadOnlyList<(string Rule, JsonNode Self, JsonObject Schema)> cases)
    {
        var clients = RepositoryFiles.PathOf("tests", "clients");
        if (!Directory.Exists(Path.Combine(clients, "node_modules", "@bufbuild", "cel")))
            throw new InvalidOperationException($"npm package @bufbuild/cel is missing in tests/clients; run '{Setup}' (scripts/test.sh runs it first).");
        var input = new JsonObject
        {
            ["cases"] = new JsonArray(cases.Select(c => (JsonNode)new JsonObject
            {
                ["rule"] = c.Rule,
                ["self"] = c.Self.DeepClone(),
                ["schema"] = c.Schema.DeepClone(),
            }).ToArray()),
        };
        var start = new ProcessStartInfo(FindNode(), [Path.Combine(clients, "cel-check.mjs")])
        {
            WorkingDirectory = clients,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(input.ToJsonString());
        process.StandardInput.Close();
        using var deadline = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"node cel-check.mjs (pid {process.Id}) ran past {Timeout.TotalSeconds} s and was stopped.");
        }
        if (process.ExitCode != 0) throw new InvalidOperationException($"node cel-check.mjs exited {process.ExitCode}:\n{await stderr}");
        var results = JsonNode.Parse(await stdout)!["results"]!.AsArray();
        return results.Select(r => r!.GetValueKind() == JsonValueKind.String ? r.GetValue<string>() : r.ToJsonString()).ToList();
    }

    private static string FindNode() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "node"))
            .FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"'node' is not on PATH; install Node.js 20+ and run '{Setup}'.");
}
