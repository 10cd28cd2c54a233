using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Model.Tests.Support;

namespace DeepSeek.Model.Tests.Cli;

/// <summary>
/// <c>bench --teacher-tokens</c>: a model decodes a reference run's prompts and tokens step by step and
/// counts the steps whose greedy token is the reference's (how FP8 is compared with bf16 of the same
/// weights on a GPU, docs/quantization.md).
/// </summary>
public sealed class TeacherForcedBenchTests
{
    [Fact]
    public void The_same_model_chooses_its_own_tokens_at_every_step_and_a_changed_token_is_found_where_it_was_changed()
    {
        var folder = Directory.CreateTempSubdirectory("deepseek-teacher-");
        try
        {
            var reference = Path.Combine(folder.FullName, "reference.json");
            var (code, _, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--batches", "1,3", "--prompt-tokens", "8", "--output-tokens", "6",
                "--record-margins", "--threads", "1", "--json", reference);
            Assert.True(code == 0, $"exit {code}: {stderr}");

            // The engine's own greedy tokens, decoded again outside the engine: every step agrees.
            var same = Path.Combine(folder.FullName, "same.json");
            (code, var stdout, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--teacher-tokens", reference, "--threads", "1", "--json", same);
            Assert.True(code == 0, $"exit {code}: {stderr}");
            Assert.Contains("greedy tokens on the reference's tokens", stdout, StringComparison.Ordinal);
            var rows = Rows(same);
            Assert.Equal([1, 3], rows.Select(r => r.GetProperty("requests").GetInt32()));
            Assert.Equal([6, 18], rows.Select(r => r.GetProperty("steps").GetInt32()));
            Assert.Equal([6, 18], rows.Select(r => r.GetProperty("equal_steps").GetInt32()));
            Assert.All(rows, r => Assert.Equal(0, r.GetProperty("disagreements").GetArrayLength()));

            // One token of request 1 of the batch of 3 changed at step 2: that step disagrees, naming the token the model chose.
            var edited = JsonNode.Parse(File.ReadAllText(reference))!;
            var tokens = edited["rows"]![1]!["token_ids"]![1]!.AsArray();
            var original = tokens[2]!.GetValue<int>();
            var replaced = (original + 1) % 256;
            tokens[2] = replaced;
            var changed = Path.Combine(folder.FullName, "changed.json");
            File.WriteAllText(changed, edited.ToJsonString());
            var result = Path.Combine(folder.FullName, "changed-result.json");
            (code, _, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--teacher-tokens", changed, "--threads", "1", "--json", result);
            Assert.True(code == 0, $"exit {code}: {stderr}");
            rows = Rows(result);
            Assert.Equal(0, rows[0].GetProperty("disagreements").GetArrayLength());
            var first = rows[1].GetProperty("disagreements").EnumerateArray().First();
            Assert.Equal(1, first.GetProperty("request").GetInt32());
            Assert.Equal(2, first.GetProperty("step").GetInt32());
            Assert.Equal(replaced, first.GetProperty("reference_token").GetInt32());
            Assert.Equal(original, first.GetProperty("chosen_token").GetInt32());
            Assert.True(first.GetProperty("margin").GetSingle() > 0);
            // Steps before the change, and the other requests, are untouched.
            Assert.All(rows[1].GetProperty("disagreements").EnumerateArray(), d => Assert.Equal(1, d.GetProperty("request").GetInt32()));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_reference_without_prompts_is_refused_with_how_to_make_one()
    {
        var folder = Directory.CreateTempSubdirectory("deepseek-teacher-");
        try
        {
            var reference = Path.Combine(folder.FullName, "plain.json");
            var (code, _, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--batches", "1", "--prompt-tokens", "4", "--output-tokens", "2",
                "--threads", "1", "--json", reference);
            Assert.True(code == 0, $"exit {code}: {stderr}");
            (code, _, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--teacher-tokens", reference, "--threads", "1");
            Assert.Equal(1, code);
            Assert.Contains("has no rows with prompts; make it with `bench --record-margins --json`", stderr, StringComparison.Ordinal);

            File.WriteAllText(reference, "{ not json");
            (code, _, stderr) = RuntimeProcess.Run(null, "bench", "--shape", "tiny", "--teacher-tokens", reference, "--threads", "1");
            Assert.Equal(1, code);
            Assert.Contains("is not a `bench --json` report", stderr, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static List<JsonElement> Rows(string path)
    {
        using var report = JsonDocument.Parse(File.ReadAllText(path));
        return [.. report.RootElement.GetProperty("rows").EnumerateArray().Select(r => r.Clone())];
    }
}
