using DeepSeek.Engine.Text;

namespace DeepSeek.Engine.Tests.Text;

public sealed class IncrementalDetokenizerTests
{
    [Fact]
    public void Characters_split_over_tokens_come_out_whole_once_complete()
    {
        const string text = "héllo 😀 世界!";
        var detokenizer = new IncrementalDetokenizer(new ByteDecoder(), ByteDecoder.Encode("prompt "));
        var deltas = ByteDecoder.Encode(text).Select(detokenizer.Append).ToList();

        Assert.Equal(text, string.Concat(deltas) + detokenizer.Flush());
        Assert.DoesNotContain(deltas, d => d.Contains('\uFFFD'));
        // The emoji is 4 bytes: three tokens give nothing, the fourth gives the whole character.
        var emojiStart = ByteDecoder.Encode("héllo ").Length;
        Assert.Equal(["", "", "", "😀"], deltas.Skip(emojiStart).Take(4));
    }

    [Fact]
    public void A_tokenizer_that_merges_neighbours_gets_context()
    {
        // "▁" marks a word start, decoded as a space except at the very beginning of the text, as SentencePiece does.
        string[] vocabulary = ["▁Hello", "▁world", "!"];
        var decoder = new DelegateTokenDecoder(ids => string.Concat(ids.Select(id => vocabulary[id])).Replace("▁", " ", StringComparison.Ordinal).TrimStart());
        var detokenizer = new IncrementalDetokenizer(decoder);
        Assert.Equal("Hello", detokenizer.Append(0));
        Assert.Equal(" world", detokenizer.Append(1));
        Assert.Equal("!", detokenizer.Append(2));
    }

    [Fact]
    public void Flush_releases_an_incomplete_character_at_the_end()
    {
        var detokenizer = new IncrementalDetokenizer(new ByteDecoder());
        var bytes = ByteDecoder.Encode("a😀");
        Assert.Equal("a", detokenizer.Append(bytes[0]));
        Assert.Equal("", detokenizer.Append(bytes[1]));
        Assert.Equal("\uFFFD", detokenizer.Flush());
        Assert.Equal("", detokenizer.Flush());
    }
}
