using DeepSeek.Model.Tests.Support;

namespace DeepSeek.Model.Tests.Cli;

/// <summary><c>inspect --plan</c> through the runtime executable, on config-only folders.</summary>
public sealed class InspectPlanVerbTests
{
    [Fact]
    public void V3_on_eight_h200s_fits_at_ep_8_in_fp8_while_todays_bf16_needs_16()
    {
        var (code, stdout, stderr) = RuntimeProcess.Run(null, "inspect", "--model", Fixtures.Dir(Fixtures.V3Config), "--plan", "--gpus", "8", "--gpu-memory", "141GiB");
        Assert.True(code == 0, stderr);
        // The table: fp8 at EP 8 holds 18.9 GiB replicated + 32 experts a layer (76.1 GiB), 604,166 KV tokens.
        Assert.Matches(@"\| fp8 +\| +8 \| +18\.9 \| +32 \| +76\.1 \|.*\| +604,166 \| +yes \|", stdout);
        Assert.Matches(@"\| bf16 +\| +8 \| +32\.1 \| +32 \| +152\.3 \|.*\| +0 \| +no \|", stdout);
        Assert.Contains("fp8: smallest EP that fits is 8 (95.1 GiB of weights a rank", stdout, StringComparison.Ordinal);
        Assert.Contains("bf16: smallest EP that fits is 16, more than the 8 GPUs given", stdout, StringComparison.Ordinal);
        Assert.Contains("(--quantization fp8)", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void V2_lite_fits_one_h100_in_bf16()
    {
        var (code, stdout, stderr) = RuntimeProcess.Run(null, "inspect", "--model", Fixtures.Dir(Fixtures.V2LiteConfig), "--plan", "--gpus", "1", "--gpu-memory", "80GiB");
        Assert.True(code == 0, stderr);
        Assert.Contains("bf16: smallest EP that fits is 1 (", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("141")]
    [InlineData("lots")]
    [InlineData("0GiB")]
    public void A_memory_size_that_does_not_parse_is_one_line_and_exit_code_2(string value)
    {
        var (code, _, stderr) = RuntimeProcess.Run(null, "inspect", "--model", Fixtures.Dir(Fixtures.V3Config), "--plan", "--gpu-memory", value);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("--gpu-memory", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }
}
