using DeepSeek.Runtime.Cli;

namespace DeepSeek.Runtime.Tests.Cli;

/// <summary><c>--gpu-memory</c>'s sizes: binary and decimal units, nothing guessed.</summary>
public sealed class ByteSizeTests
{
    [Theory]
    [InlineData("141GiB", 141L << 30)]
    [InlineData("80 GB", 80_000_000_000L)]
    [InlineData("79.6gib", 85_469_849_190L)]   // ⌊79.6 × 2³⁰⌋
    [InlineData("512MiB", 512L << 20)]
    [InlineData("1TB", 1_000_000_000_000L)]
    [InlineData("4096B", 4096L)]
    public void Sizes_with_a_unit_parse(string text, long bytes)
    {
        Assert.Equal(bytes, ByteSize.Parse(text, out var error));
        Assert.Null(error);
    }

    [Theory]
    [InlineData("141")]
    [InlineData("GiB")]
    [InlineData("-1GiB")]
    [InlineData("0GiB")]
    [InlineData("1e3GB")]
    [InlineData("99999999999999TiB")]
    public void Anything_else_is_refused_with_a_reason(string text)
    {
        Assert.Null(ByteSize.Parse(text, out var error));
        Assert.Contains(text, error, StringComparison.Ordinal);
    }
}
