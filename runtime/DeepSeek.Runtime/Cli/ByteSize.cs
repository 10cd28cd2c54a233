using System.Globalization;
using System.Text.RegularExpressions;

namespace DeepSeek.Runtime.Cli;

/// <summary>
/// A memory size as people write it on a command line: a number and a unit, <c>141GiB</c>,
/// <c>80 GB</c>, <c>79.6GiB</c>. KiB, MiB, GiB, TiB are powers of 1024; KB, MB, GB, TB powers of
/// 1000 (GPU vendors quote both); B is bytes. A bare number is refused rather than guessed at.
/// </summary>
public static partial class ByteSize
{
    [GeneratedRegex(@"^\s*(?<number>\d{1,15}(\.\d{1,6})?)\s*(?<unit>[KMGT]i?B|B)\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    /// <summary>The bytes <paramref name="text"/> names, or null with <paramref name="error"/> saying what is wrong.</summary>
    public static long? Parse(string text, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        error = null;
        var match = Pattern().Match(text);
        if (!match.Success)
        {
            error = $"'{text}' is not a memory size; write a number and a unit, e.g. 141GiB or 80GB.";
            return null;
        }
        var number = decimal.Parse(match.Groups["number"].Value, CultureInfo.InvariantCulture);
        var unit = match.Groups["unit"].Value.ToUpperInvariant();
        var bytes = number * Multiplier(unit);
        if (bytes < 1 || bytes > long.MaxValue)
        {
            error = $"'{text}' is out of range; a GPU has between a byte and 8 EiB.";
            return null;
        }
        return (long)bytes;
    }

    private static decimal Multiplier(string unit) => unit switch
    {
        "B" => 1m,
        "KIB" => 1L << 10,
        "MIB" => 1L << 20,
        "GIB" => 1L << 30,
        "TIB" => 1L << 40,
        "KB" => 1e3m,
        "MB" => 1e6m,
        "GB" => 1e9m,
        _ => 1e12m,
    };
}
