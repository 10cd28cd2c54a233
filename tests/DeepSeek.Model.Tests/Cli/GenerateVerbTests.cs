using System.Text.Json;
using DeepSeek.Model.Tests.Support;

namespace DeepSeek.Model.Tests.Cli;

/// <summary>The runtime executable's verbs, run as a real process.</summary>
public sealed class GenerateVerbTests
{
    private static (int ExitCode, string Stdout, string Stderr) RunRuntime(params string[] arguments) => RuntimeProcess.Run(null, arguments);

    private static (int ExitCode, string Stdout, string Stderr) RunRuntimeWith(IReadOnlyDictionary<string, string?>? environment, params string[] arguments) =>
        RuntimeProcess.Run(environment, arguments);

    [Fact]
    public void Greedy_json_output_matches_reference_continuation()
    {
        var prompt = Fixtures.LoadReference(Fixtures.V2LiteTiny).Prompts[1];
        var (code, stdout, stderr) = RunRuntime("generate", "--model", Fixtures.Dir(Fixtures.V2LiteTiny),
            "--prompt-ids", string.Join(',', prompt.InputIds), "--max-new-tokens", "24", "--temperature", "0",
            "--output", "json", "--logprobs", "3");
        Assert.True(code == 0, stderr);

        using var json = JsonDocument.Parse(stdout.TrimEnd().Split('\n')[^1]);
        var ids = json.RootElement.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        // generate stops after end-of-sentence (id 1); the reference continuation does not.
        var eos = Array.IndexOf(prompt.Greedy, 1L);
        var expectedLength = eos < 0 ? prompt.Greedy.Length : eos + 1;
        for (var step = 0; step < expectedLength; step++)
        {
            Assert.Equal(prompt.Greedy[step], ids[step]);
            if (prompt.GreedyMargins[step] < 1e-3) break;
        }
        var logprobs = json.RootElement.GetProperty("logprobs").EnumerateArray().ToArray();
        Assert.Equal(ids.Length, logprobs.Length);
        foreach (var (entry, id) in logprobs.Zip(ids))
        {
            Assert.Equal(id, entry.GetProperty("token_id").GetInt64());
            var top = entry.GetProperty("top").EnumerateArray().ToArray();
            Assert.Equal(3, top.Length);
            // Greedy picks the most likely token, so it heads its own top list.
            Assert.Equal(id, top[0].GetProperty("token_id").GetInt64());
            Assert.Equal(entry.GetProperty("logprob").GetDouble(), top[0].GetProperty("logprob").GetDouble(), 12);
        }
        Assert.True(json.RootElement.TryGetProperty("text", out _));
    }

    [Fact]
    public void Default_embedded_model_generates_from_text_reproducibly_with_a_seed()
    {
        string[] arguments = ["generate", "--prompt", "The quick brown fox", "--max-new-tokens", "6", "--temperature", "0.9",
            "--top-p", "0.95", "--top-k", "40", "--seed", "7", "--output", "json"];
        var first = RunRuntime(arguments);
        var second = RunRuntime(arguments);
        Assert.True(first.ExitCode == 0, first.Stderr);
        var a = JsonDocument.Parse(first.Stdout.TrimEnd().Split('\n')[^1]).RootElement.GetProperty("token_ids").GetRawText();
        var b = JsonDocument.Parse(second.Stdout.TrimEnd().Split('\n')[^1]).RootElement.GetProperty("token_ids").GetRawText();
        Assert.Equal(a, b);
        Assert.NotEqual("[]", a);
    }

    [Fact]
    public void Bad_input_fails_with_a_message_not_a_crash()
    {
        var (code, _, stderr) = RunRuntime("generate", "--prompt-ids", "1,2,999");
        Assert.Equal(1, code);
        Assert.Contains("999", stderr, StringComparison.Ordinal);
        Assert.Contains("vocabulary", stderr, StringComparison.Ordinal);

        var both = RunRuntime("generate", "--prompt", "x", "--prompt-ids", "1");
        Assert.NotEqual(0, both.ExitCode);
        Assert.Contains("exactly one", both.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_reports_parameters_and_active_parameters()
    {
        var (code, stdout, stderr) = RunRuntime("inspect", "--model", Fixtures.Dir(Fixtures.V3Tiny));
        Assert.True(code == 0, stderr);
        Assert.Contains("deepseek_v3", stdout, StringComparison.Ordinal);
        // 207,968 in the file; 2 MoE layers × 6 unused experts × 6,144 parameters are inactive per token.
        Assert.Contains("207,968", stdout, StringComparison.Ordinal);
        Assert.Contains("134,240", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_reads_the_published_fp8_layout_and_continues_as_the_reference()
    {
        // The issue's starting point: generate refused F8_E4M3 tensors.
        var prompt = Fixtures.LoadReference(Fixtures.V3TinyFp8Sharded).Prompts[0];
        var (code, stdout, stderr) = RunRuntime("generate", "--model", Fixtures.Dir(Fixtures.V3TinyFp8Sharded),
            "--prompt-ids", string.Join(',', prompt.InputIds), "--max-new-tokens", "8", "--temperature", "0", "--output", "json");
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout.TrimEnd().Split('\n')[^1]);
        var ids = json.RootElement.GetProperty("token_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var nearTie = Array.FindIndex(prompt.GreedyMargins, m => m < 1e-3);
        var compared = nearTie < 0 ? 8 : Math.Min(8, nearTie + 1);
        Assert.Equal(prompt.Greedy[..compared], ids[..compared]);
    }

    [Fact]
    public void Int4_runs_in_bf16_and_is_refused_with_float32_from_the_flag_or_the_environment()
    {
        var prompt = Fixtures.LoadReference(Fixtures.V2LiteTiny).Prompts[0].InputIds;
        string[] arguments = ["generate", "--model", Fixtures.Dir(Fixtures.V2LiteTiny), "--prompt-ids", string.Join(',', prompt), "--max-new-tokens", "4"];

        var refused = RunRuntime([.. arguments, "--quantization", "int4", "--dtype", "float32"]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("--quantization int4 computes with bf16 activations", refused.Stderr, StringComparison.Ordinal);
        Assert.Contains("--dtype bfloat16", refused.Stderr, StringComparison.Ordinal);

        var fromEnvironment = RunRuntimeWith(new Dictionary<string, string?> { ["DEEPSEEK_QUANTIZATION"] = "int4" }, arguments);
        Assert.Equal(1, fromEnvironment.ExitCode);
        Assert.Contains("--quantization int4 computes with bf16 activations", fromEnvironment.Stderr, StringComparison.Ordinal);

        var (code, stdout, stderr) = RunRuntime([.. arguments, "--quantization", "int4", "--dtype", "bfloat16", "--output", "json"]);
        Assert.True(code == 0, stderr);
        using var json = JsonDocument.Parse(stdout.TrimEnd().Split('\n')[^1]);
        Assert.Equal(4, json.RootElement.GetProperty("token_ids").GetArrayLength());
    }

    [Fact]
    public void Fp8_resident_generates_the_tokens_of_the_checkpoint_dequantised_at_load_and_inspect_counts_its_bytes()
    {
        var prompt = Fixtures.LoadReference(Fixtures.V3TinyFp8Sharded).Prompts[0].InputIds;
        string[] arguments = ["generate", "--model", Fixtures.Dir(Fixtures.V3TinyFp8Sharded), "--prompt-ids", string.Join(',', prompt), "--max-new-tokens", "8",
            "--dtype", "float32", "--output", "json"];
        int[] Tokens(params string[] extra)
        {
            var (code, stdout, stderr) = RunRuntime([.. arguments, .. extra]);
            Assert.True(code == 0, stderr);
            using var json = JsonDocument.Parse(stdout.TrimEnd().Split('\n')[^1]);
            return [.. json.RootElement.GetProperty("token_ids").EnumerateArray().Select(t => t.GetInt32())];
        }
        Assert.Equal(Tokens("--quantization", "none"), Tokens("--quantization", "fp8"));

        var none = RunRuntime("inspect", "--model", Fixtures.Dir(Fixtures.V3TinyFp8), "--dtype", "bfloat16");
        var fp8 = RunRuntime("inspect", "--model", Fixtures.Dir(Fixtures.V3TinyFp8), "--dtype", "bfloat16", "--quantization", "fp8");
        Assert.True(fp8.ExitCode == 0, fp8.Stderr);
        long Resident(string stdout) => long.Parse(System.Text.RegularExpressions.Regex.Match(stdout, @"resident weight bytes\s*│\s*([\d,]+)").Groups[1].Value.Replace(",", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Resident(fp8.Stdout) < Resident(none.Stdout), fp8.Stdout);
    }

    [Fact]
    public void Inspect_shows_the_checkpoint_quantisation_and_resident_bytes()
    {
        var (code, stdout, stderr) = RunRuntime("inspect", "--model", Fixtures.Dir(Fixtures.V3TinyFp8), "--dtype", "bfloat16");
        Assert.True(code == 0, stderr);
        Assert.Contains("fp8 e4m3, 128×128 blocks", stdout, StringComparison.Ordinal);
        Assert.Contains("bytes F8_E4M3", stdout, StringComparison.Ordinal);
        Assert.Contains("resident weight bytes", stdout, StringComparison.Ordinal);

        var plain = RunRuntime("inspect", "--model", Fixtures.Dir(Fixtures.V3Tiny), "--dtype", "bfloat16");
        Assert.True(plain.ExitCode == 0, plain.Stderr);
        Assert.Matches(@"checkpoint quantisation\s*│\s*none", plain.Stdout);

        var int4 = RunRuntime("inspect", "--model", Fixtures.Dir(Fixtures.V3Tiny), "--quantization", "int4");
        Assert.Equal(1, int4.ExitCode);
        Assert.Contains("--dtype bfloat16", int4.Stderr, StringComparison.Ordinal);
    }
}
