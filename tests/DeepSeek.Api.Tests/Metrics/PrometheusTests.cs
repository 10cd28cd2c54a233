using System.Diagnostics;
using System.Text.Json;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Metrics;

/// <summary><c>/metrics</c> of the real <c>serve</c> process scraped by a real Prometheus server (promtool: ServeApiTests).</summary>
public sealed class PrometheusTests
{
    [Fact]
    public async Task Prometheus_scrapes_requests_waiting()
    {
        var prometheus = ExternalTool.Require("prometheus", "scripts/setup/prometheus.sh");
        await using var server = await ServeProcess.StartAsync();
        var dir = Directory.CreateTempSubdirectory("deepseek-prometheus-");
        var port = FreePort.Next();
        var config = Path.Combine(dir.FullName, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: runtime
                static_configs:
                  - targets: ["127.0.0.1:{server.HttpPort}"]
            """);
        var start = new ProcessStartInfo(prometheus,
            [$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(dir.FullName, "data")}", $"--web.listen-address=127.0.0.1:{port}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var log = process.StandardError.ReadToEndAsync();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            JsonElement? sample = null;
            for (var attempt = 0; attempt < 120 && sample is null; attempt++)
            {
                await Task.Delay(500);
                try
                {
                    var body = await client.GetStringAsync(new Uri("/api/v1/query?query=deepseek_requests_waiting", UriKind.Relative));
                    var result = JsonDocument.Parse(body).RootElement.GetProperty("data").GetProperty("result");
                    if (result.GetArrayLength() > 0) sample = result[0].Clone();
                }
                catch (HttpRequestException)
                {
                    // Prometheus is still starting.
                }
            }
            Assert.True(sample is not null, "Prometheus never returned deepseek_requests_waiting within 60 s.");
            Assert.Equal(ServeProcess.ModelName, sample.Value.GetProperty("metric").GetProperty("model").GetString());
            Assert.Equal("0", sample.Value.GetProperty("value")[1].GetString());
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            _ = await log;
            dir.Delete(recursive: true);
        }
    }
}
