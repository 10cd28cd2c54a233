using System.Text.Json;
using System.Text.RegularExpressions;

namespace DeepSeek.Model.Tokenization;

/// <summary>
/// The <c>pre_tokenizer</c> of tokenizer.json: splits text into pieces that BPE encodes one by one.
/// Supports what byte-level BPE tokenizers of DeepSeek and GPT-2 use: <c>ByteLevel</c>,
/// <c>Split</c> (regex or string, isolated/removed/merged behaviours), <c>Digits</c>, <c>Sequence</c>.
/// </summary>
public sealed class PreTokenizer
{
    /// <summary>GPT-2's pattern, which <c>ByteLevel</c> with <c>use_regex</c> applies.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly Func<List<string>, List<string>> _apply;

    private PreTokenizer(Func<List<string>, List<string>> apply) => _apply = apply;

    public IReadOnlyList<string> Split(string text) => _apply([text]);

    public static PreTokenizer None { get; } = new(pieces => pieces);

    public static PreTokenizer Parse(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Null) return None;
        var type = element.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
            {
                var steps = element.GetProperty("pretokenizers").EnumerateArray().Select(Parse).ToArray();
                return new PreTokenizer(pieces => steps.Aggregate(pieces, (current, step) => step._apply(current)));
            }
            case "ByteLevel":
            {
                var prefixSpace = element.TryGetProperty("add_prefix_space", out var p) && p.GetBoolean();
                var useRegex = !element.TryGetProperty("use_regex", out var r) || r.GetBoolean();
                var regex = new Regex(Gpt2Pattern, RegexOptions.CultureInvariant);
                return new PreTokenizer(pieces =>
                {
                    if (prefixSpace && pieces.Count > 0 && pieces[0].Length > 0 && !char.IsWhiteSpace(pieces[0][0]))
                        pieces[0] = " " + pieces[0];
                    return useRegex ? pieces.SelectMany(piece => SplitIsolated(piece, regex, invert: false)).ToList() : pieces;
                });
            }
            case "Digits":
            {
                var individual = element.TryGetProperty("individual_digits", out var d) && d.GetBoolean();
                var regex = new Regex(individual ? @"\p{N}" : @"\p{N}+", RegexOptions.CultureInvariant);
                return new PreTokenizer(pieces => pieces.SelectMany(piece => SplitIsolated(piece, regex, invert: false)).ToList());
            }
            case "Split":
            {
                var pattern = element.GetProperty("pattern");
                var regex = pattern.TryGetProperty("Regex", out var rx)
                    ? new Regex(rx.GetString()!, RegexOptions.CultureInvariant)
                    : new Regex(Regex.Escape(pattern.GetProperty("String").GetString()!), RegexOptions.CultureInvariant);
                var behavior = element.GetProperty("behavior").GetString();
                var invert = element.TryGetProperty("invert", out var inv) && inv.GetBoolean();
                return behavior switch
                {
                    "Isolated" => new PreTokenizer(pieces => pieces.SelectMany(piece => SplitIsolated(piece, regex, invert)).ToList()),
                    "Removed" => new PreTokenizer(pieces => pieces.SelectMany(piece => SplitRemoved(piece, regex, invert)).ToList()),
                    "MergedWithPrevious" => new PreTokenizer(pieces => pieces.SelectMany(piece => SplitMerged(piece, regex, invert, withPrevious: true)).ToList()),
                    "MergedWithNext" => new PreTokenizer(pieces => pieces.SelectMany(piece => SplitMerged(piece, regex, invert, withPrevious: false)).ToList()),
                    _ => throw new NotSupportedException($"tokenizer.json: Split behavior \"{behavior}\" is not supported."),
                };
            }
            default:
                throw new NotSupportedException($"tokenizer.json: pre_tokenizer type \"{type}\" is not supported (supported: ByteLevel, Split, Digits, Sequence).");
        }
    }

    /// <summary>(start, length, isMatch) runs covering the whole text.</summary>
    private static IEnumerable<(int Start, int Length, bool Match)> Runs(string text, Regex regex, bool invert)
    {
        var position = 0;
        foreach (Match match in regex.Matches(text))
        {
            if (match.Length == 0) continue;
            if (match.Index > position) yield return (position, match.Index - position, invert);
            yield return (match.Index, match.Length, !invert);
            position = match.Index + match.Length;
        }
        if (position < text.Length) yield return (position, text.Length - position, invert);
    }

    private static IEnumerable<string> SplitIsolated(string text, Regex regex, bool invert) =>
        Runs(text, regex, invert).Select(run => text.Substring(run.Start, run.Length));

    private static IEnumerable<string> SplitRemoved(string text, Regex regex, bool invert) =>
        Runs(text, regex, invert).Where(run => !run.Match).Select(run => text.Substring(run.Start, run.Length));

    private static List<string> SplitMerged(string text, Regex regex, bool invert, bool withPrevious)
    {
        var result = new List<string>();
        var pending = "";
        foreach (var (start, length, match) in Runs(text, regex, invert))
        {
            var piece = text.Substring(start, length);
            if (withPrevious)
            {
                if (match && result.Count > 0) result[^1] += piece;
                else result.Add(piece);
            }
            else if (match)
            {
                if (pending.Length > 0) result.Add(pending);
                pending = piece;
            }
            else
            {
                result.Add(pending + piece);
                pending = "";
            }
        }
        if (pending.Length > 0) result.Add(pending);
        return result;
    }
}
