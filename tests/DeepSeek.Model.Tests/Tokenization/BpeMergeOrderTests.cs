using System.Text.Json;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Model.Tests.Tokenization;

/// <summary>
/// The merge queue gives the tokens of the rule it replaces: merge the lowest-ranked adjacent pair,
/// every occurrence left to right, and start over. The reference fixtures' tokenizers have no merges,
/// so this one is made here: all 676 letter pairs, then merges of their results, in the order a
/// trainer writes them (a merge's parts always rank before it).
/// </summary>
public sealed class BpeMergeOrderTests
{
    private static readonly (string Left, string Right)[] Merges = MakeMerges();
    private static readonly BpeTokenizer Tokenizer = MakeTokenizer();

    private static (string, string)[] MakeMerges()
    {
        var random = new Random(27);
        var letters = Enumerable.Range('a', 26).Select(c => ((char)c).ToString()).ToArray();
        var pairs = letters.SelectMany(a => letters.Select(b => (a, b))).OrderBy(_ => random.Next()).ToList();
        var made = pairs.Select(p => p.a + p.b).ToList();
        // Later merges join what earlier ones made, so ranks follow creation as in a trained file.
        var seen = new HashSet<string>(made, StringComparer.Ordinal);
        for (var i = 0; i < 400; i++)
        {
            var left = made[random.Next(made.Count)];
            var right = random.Next(3) == 0 ? letters[random.Next(26)] : made[random.Next(made.Count)];
            if (!seen.Add(left + right)) continue;
            pairs.Add((left, right));
            made.Add(left + right);
        }
        return [.. pairs];
    }

    private static BpeTokenizer MakeTokenizer()
    {
        var alphabet = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.Encode([(byte)b]));
        var vocab = alphabet.Concat(Merges.Select(m => m.Left + m.Right)).Select((token, id) => (token, id)).ToDictionary(p => p.token, p => p.id);
        var json = new
        {
            normalizer = (object?)null,
            pre_tokenizer = JsonSerializer.Deserialize<JsonElement>("""{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"""),
            model = new { type = "BPE", vocab, merges = Merges.Select(m => $"{m.Left} {m.Right}").ToArray() },
        };
        return BpeTokenizer.Parse(JsonSerializer.Serialize(json));
    }

    /// <summary>The rule as the tokenizer applied it before the queue: a rescan of the word per merge.</summary>
    private static List<string> RescanOracle(string word)
    {
        var ranks = Merges.Select((m, rank) => (m, rank)).ToDictionary(p => p.m, p => p.rank);
        var symbols = word.Select(c => c.ToString()).ToList();
        while (true)
        {
            var best = symbols.Zip(symbols.Skip(1)).Select(p => ranks.TryGetValue(p, out var r) ? r : int.MaxValue).DefaultIfEmpty(int.MaxValue).Min();
            if (best == int.MaxValue) return symbols;
            var (left, right) = Merges[best];
            var merged = new List<string>(symbols.Count);
            for (var i = 0; i < symbols.Count; i++)
            {
                if (i + 1 < symbols.Count && symbols[i] == left && symbols[i + 1] == right)
                {
                    merged.Add(left + right);
                    i++;
                }
                else
                {
                    merged.Add(symbols[i]);
                }
            }
            symbols = merged;
        }
    }

    public static TheoryData<int> Seeds() => [1, 2, 3, 4, 5, 6, 7, 8];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_words_get_the_tokens_of_the_rescanning_rule(int seed)
    {
        var random = new Random(seed);
        for (var n = 0; n < 40; n++)
        {
            // Few distinct letters make long runs of equal pairs (aaaa…), where overlapping merges must resolve left first.
            var alphabet = random.Next(2) == 0 ? "ab" : "abcdefghijklmnopqrstuvwxyz";
            var word = new string(Enumerable.Range(0, random.Next(1, 600)).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
            var expected = RescanOracle(word).Select(s => Tokenizer.IdOf(s)!.Value);
            Assert.Equal(expected, Tokenizer.Encode(word));
        }
    }

    /// <summary>
    /// A 200,000-letter word once took seconds (a rescan per merge); with the queue it is one pass.
    /// Checked by its tokens, never its time: a long word against the rescanning rule, and the longest
    /// for a lossless round trip that the merges shortened.
    /// </summary>
    [Fact]
    public void Long_words_get_the_tokens_of_the_rescanning_rule()
    {
        var random = new Random(11);
        var letters = new string(Enumerable.Range(0, 200_000).Select(_ => (char)('a' + random.Next(26))).ToArray());
        Assert.Equal(RescanOracle(letters[..5_000]).Select(s => Tokenizer.IdOf(s)!.Value), Tokenizer.Encode(letters[..5_000]));
        var ids = Tokenizer.Encode(letters);
        Assert.Equal(letters, Tokenizer.Decode(ids));
        Assert.True(ids.Count < letters.Length * 3 / 4, $"{ids.Count} tokens for {letters.Length} letters: the merges did not apply");
    }

    [Fact]
    public void A_merge_outside_the_vocabulary_is_refused_at_load()
    {
        var json = """{"normalizer": null, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}""";
        var error = Assert.Throws<InvalidDataException>(() => BpeTokenizer.Parse(json));
        Assert.Contains("a b", error.Message, StringComparison.Ordinal);
    }
}
