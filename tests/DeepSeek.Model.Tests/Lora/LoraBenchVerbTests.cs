using System.Text.Json;
using DeepSeek.Model.Tests.Support;

namespace DeepSeek.Model.Tests.Lora;

/// <summary><c>bench --lora-adapters</c>: the base model's rows, then the same batch sizes with every request on its own random adapter, in one table.</summary>
public sealed class LoraBenchVerbTests
{
    [Fact]
    public void Bench_runs_each_batch_on_the_base_and_then_on_random_adapters()
    {
        var json = Path.Combine(Path.GetTempPath(), $"deepseek-lora-bench-{Guid.NewGuid():N}.json");
        try
        {
            var (code, stdout, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--batches", "1,3", "--prompt-tokens", "8", "--output-tokens", "4",
                "--lora-adapters", "2", "--lora-rank", "4", "--threads", "1", "--json", json);
            Assert.True(code == 0, $"exit {code}: {stderr}");
            Assert.Contains("2 LoRA r4", stdout, StringComparison.Ordinal);
            using var report = JsonDocument.Parse(File.ReadAllText(json));
            var rows = report.RootElement.GetProperty("rows").EnumerateArray().ToList();
            Assert.Equal(["base", "base", "2 LoRA r4", "2 LoRA r4"], rows.Select(r => r.GetProperty("variant").GetString()));
            Assert.Equal([1, 3, 1, 3], rows.Select(r => r.GetProperty("batch").GetInt32()));
            Assert.All(rows, r => Assert.True(r.GetProperty("decode_tokens_per_second").GetDouble() > 0));
            Assert.All(rows, r => Assert.All(r.GetProperty("token_ids").EnumerateArray(), ids => Assert.Equal(4, ids.GetArrayLength())));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public void A_negative_adapter_count_is_refused()
    {
        var (code, _, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--lora-adapters", "-1");
        Assert.Equal(1, code);
        Assert.Contains("--lora-adapters must be 0 or more.", stderr, StringComparison.Ordinal);
    }
}
