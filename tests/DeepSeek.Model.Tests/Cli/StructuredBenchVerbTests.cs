using System.Text.Json;
using DeepSeek.Model.Tests.Support;

namespace DeepSeek.Model.Tests.Cli;

/// <summary>
/// <c>bench --structured-share</c> (constrained decoding's cost): the plain rows, then the same batches
/// with that share of each batch under a JSON schema in the same steps, with the masks' time per step;
/// and <c>--record-margins</c>, each token's logit margin over the runner-up.
/// </summary>
public sealed class StructuredBenchVerbTests
{
    [Fact]
    public void Bench_runs_each_batch_plain_and_then_with_a_share_constrained()
    {
        var json = Path.Combine(Path.GetTempPath(), $"deepseek-structured-bench-{Guid.NewGuid():N}.json");
        try
        {
            var (code, stdout, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--batches", "1,4", "--prompt-tokens", "8", "--output-tokens", "12",
                "--structured-share", "0.5", "--record-margins", "--threads", "1", "--json", json);
            Assert.True(code == 0, $"exit {code}: {stderr}");
            Assert.Contains("mask ms/decode step", stdout, StringComparison.Ordinal);
            using var report = JsonDocument.Parse(File.ReadAllText(json));
            var rows = report.RootElement.GetProperty("rows").EnumerateArray().ToList();
            Assert.Equal(["base", "base", "50% structured (order)", "50% structured (order)"], rows.Select(r => r.GetProperty("variant").GetString()));
            // Rounded up: a batch of one is constrained whole.
            Assert.Equal([0, 0, 1, 2], rows.Select(r => r.GetProperty("constrained_requests").GetInt32()));
            Assert.All(rows.Take(2), r => Assert.Equal(0, r.GetProperty("mask_ms_per_decode_step").GetDouble()));
            Assert.All(rows.Skip(2), r => Assert.True(r.GetProperty("mask_ms_per_decode_step").GetDouble() > 0));
            Assert.All(rows, r => Assert.True(r.GetProperty("decode_tokens_per_second").GetDouble() > 0));
            foreach (var row in rows)
            {
                var ids = row.GetProperty("token_ids").EnumerateArray().ToList();
                var margins = row.GetProperty("token_margins").EnumerateArray().ToList();
                Assert.Equal(ids.Count, margins.Count);
                // Greedy: the chosen token is the most likely, so its margin over the runner-up is never negative.
                Assert.All(margins.Zip(ids), pair =>
                {
                    Assert.Equal(pair.Second.GetArrayLength(), pair.First.GetArrayLength());
                    Assert.All(pair.First.EnumerateArray(), margin => Assert.True(margin.GetSingle() >= 0));
                });
            }
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    public void A_share_outside_zero_to_one_is_refused(string share)
    {
        var (code, _, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--structured-share", share);
        Assert.Equal(1, code);
        Assert.Contains("--structured-share must be between 0 and 1.", stderr, StringComparison.Ordinal);
    }
}
