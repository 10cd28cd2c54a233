using System.Text.Json;
using DeepSeek.Model.Tests.Support;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Model.Tests.Tokenization;

public sealed class BpeTokenizerTests
{
    private static BpeTokenizer Fixture(string name) => BpeTokenizer.Load(Path.Combine(Fixtures.Dir(name), "tokenizer.json"));

    [Theory]
    [InlineData("Hello, world! The quick brown fox.")]
    [InlineData("  leading spaces and\ttabs\n\nnew lines  ")]
    [InlineData("Ünïcödé — 中文 — emoji 🦊 — 12345")]
    [InlineData("<｜begin▁of▁sentence｜>system<｜User｜>hi<｜Assistant｜>ok<｜end▁of▁sentence｜>")]
    [InlineData("")]
    public void Decode_of_encode_is_the_text(string text)
    {
        var tokenizer = Fixture(Fixtures.V3Tiny);
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
    }

    [Fact]
    public void Special_tokens_are_single_ids_and_skippable_on_decode()
    {
        var tokenizer = Fixture(Fixtures.V3Tiny);
        var ids = tokenizer.Encode("<｜User｜>hi<｜Assistant｜>");
        Assert.Equal(2, ids[0]);
        Assert.Equal(3, ids[^1]);
        Assert.Equal("hi", tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    /// <summary>A hand-made tokenizer whose merges and pre-tokenisation have one right answer.</summary>
    private static BpeTokenizer Handmade(string preTokenizer)
    {
        var alphabet = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.Encode([(byte)b])).ToList();
        string[] merged = ["Ġ" + "w", "Ġw" + "o", "l" + "o", "lo" + "w", "1" + "2"];
        var vocab = alphabet.Concat(merged).Select((token, id) => (token, id)).ToDictionary(p => p.token, p => p.id + 1);
        var json = new
        {
            added_tokens = new[] { new { id = 0, content = "<s>", special = true } },
            normalizer = (object?)null,
            pre_tokenizer = JsonSerializer.Deserialize<JsonElement>(preTokenizer),
            model = new { type = "BPE", vocab, merges = new[] { "Ġ w", "Ġw o", "l o", "lo w", "1 2" } },
        };
        return BpeTokenizer.Parse(JsonSerializer.Serialize(json));
    }

    [Fact]
    public void Merges_apply_by_rank_within_gpt2_pieces()
    {
        var tokenizer = Handmade("""{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}""");
        var ids = tokenizer.Encode("<s>low wow");
        Assert.Equal(new int?[] { 0, tokenizer.IdOf("low"), tokenizer.IdOf("Ġwo"), tokenizer.IdOf("w") }, ids.Select(i => (int?)i));
    }

    [Fact]
    public void Deepseek_v3_style_split_sequence_groups_digits_by_three()
    {
        var tokenizer = Handmade("""
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """);
        // "12345" → "123" | "45": the "1 2" merge applies inside "123" only.
        var ids = tokenizer.Encode("12345");
        Assert.Equal(new int?[] { tokenizer.IdOf("12"), tokenizer.IdOf("3"), tokenizer.IdOf("4"), tokenizer.IdOf("5") }, ids.Select(i => (int?)i));
    }

    /// <summary>
    /// Request handlers encode concurrently through one tokenizer; its word cache must survive that
    /// (a plain Dictionary here once corrupted under load and failed every later request).
    /// </summary>
    [Fact]
    public void Concurrent_encoding_gives_the_same_ids_as_sequential_encoding()
    {
        var texts = Enumerable.Range(0, 20_000).Select(i => $"w{i} v{i * 7919} {i % 97}x{i}").ToArray();
        var sequential = Fixture(Fixtures.V3Tiny);
        var expected = texts.Select(t => sequential.Encode(t).ToArray()).ToArray();

        // Several fresh tokenizers so the cache fills under contention more than once.
        var actual = new int[texts.Length][];
        for (var round = 0; round < 5; round++)
        {
            var shared = Fixture(Fixtures.V3Tiny);
            Parallel.For(0, texts.Length, new ParallelOptions { MaxDegreeOfParallelism = 16 }, i => actual[i] = shared.Encode(texts[i]).ToArray());
        }

        for (var i = 0; i < texts.Length; i++) Assert.Equal(expected[i], actual[i]);
    }

    private sealed record ReferenceCase(string Tokenizer, string Text, int[] Ids, string Decoded);

    private sealed record ReferenceFile(List<ReferenceCase> Cases);

    /// <summary>Encodings and decodings by the Hugging Face tokenizers library (tests/fixtures/README.md).</summary>
    [Fact]
    public void Matches_hugging_face_tokenizers_encodings()
    {
        var path = Path.Combine(Fixtures.Root, "tokenizer-reference.json");
        var reference = JsonSerializer.Deserialize<ReferenceFile>(File.ReadAllText(path), Fixtures.SnakeCase)!;
        Assert.NotEmpty(reference.Cases);
        foreach (var c in reference.Cases)
        {
            var tokenizer = Fixture(c.Tokenizer);
            Assert.Equal(c.Ids, tokenizer.Encode(c.Text));
            Assert.Equal(c.Decoded, tokenizer.Decode(c.Ids));
        }
    }
}
