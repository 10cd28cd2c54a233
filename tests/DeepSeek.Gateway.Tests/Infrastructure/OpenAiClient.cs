using System.Diagnostics;
using System.Text.Json;

namespace DeepSeek.Gateway.Tests.Infrastructure;

/// <summary>The official openai npm SDK (tests/clients/openai-client.mjs, installed by scripts/setup/node-clients.sh) run against the gateway.</summary>
internal static class OpenAiClient
{
    public static async Task<JsonElement> RunAsync(string baseUrl, string model, string apiKey, string scenario)
    {
        if (!Directory.Exists(Path.Combine(Repo.ClientsDir, "node_modules", "openai")))
            throw new InvalidOperationException("npm package openai is missing in tests/clients; run 'bash scripts/setup/node-clients.sh' (scripts/test.sh runs it first).");
        var start = new ProcessStartInfo("node", [Path.Combine(Repo.ClientsDir, "openai-client.mjs")]) { WorkingDirectory = Repo.ClientsDir };
        start.Environment["BASE_URL"] = baseUrl + "/v1";
        start.Environment["API_KEY"] = apiKey;
        start.Environment["MODEL"] = model;
        start.Environment["SCENARIO"] = scenario;
        var (exitCode, stdout, stderr) = await ChildProcess.RunAsync(start, TimeSpan.FromSeconds(60));
        if (exitCode != 0) throw new InvalidOperationException($"openai-client.mjs {scenario} exited {exitCode}:\n{stderr}\n{stdout}");
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }
}
