using DeepSeek.Model.Tests.Support;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Model.Tests.Tokenization;

/// <summary>
/// Issue #27: the word cache counted entries, so a few megabyte-long words pinned gigabytes for good.
/// These probes measure the cache's own byte count (what it keeps alive), never time.
/// </summary>
public sealed class WordCacheTests
{
    private static string Json => File.ReadAllText(Path.Combine(Fixtures.Dir(Fixtures.V3Tiny), "tokenizer.json"));

    private static string UniqueWord(int index, int length)
    {
        var prefix = index.ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
        return string.Concat(prefix.Select(c => (char)('a' + (c <= '9' ? c - '0' : c - 'a' + 10)))) + new string('q', length - prefix.Length);
    }

    [Fact]
    public void Unique_megabyte_words_leave_the_cache_as_it_was()
    {
        var tokenizer = BpeTokenizer.Parse(Json);
        tokenizer.Encode("warm the cache with ordinary words");
        var before = tokenizer.WordCacheBytes;
        Assert.True(before > 0, "ordinary words are cached");
        for (var i = 0; i < 20; i++)
        {
            var word = UniqueWord(i, 1 << 20);
            Assert.Equal(word, tokenizer.Decode(tokenizer.Encode(word)));
            Assert.Equal(before, tokenizer.WordCacheBytes);
        }
        Assert.True(tokenizer.WordCacheBytes <= tokenizer.WordCacheCapacityBytes);
    }

    [Fact]
    public void The_cache_stops_at_its_byte_bound_and_its_words_still_encode_the_same()
    {
        const long capacity = 64 * 1024;
        var tokenizer = BpeTokenizer.Parse(Json, capacity);
        var reference = BpeTokenizer.Parse(Json, 0);
        var words = Enumerable.Range(0, 2_000).Select(i => UniqueWord(i, 200)).ToList();
        foreach (var word in words)
        {
            Assert.Equal(reference.Encode(word), tokenizer.Encode(word));
            Assert.True(tokenizer.WordCacheBytes <= capacity, $"{tokenizer.WordCacheBytes} bytes cached over a bound of {capacity}");
        }
        Assert.True(tokenizer.WordCacheBytes > capacity / 2, "the cache filled up to near its bound");
        Assert.InRange(tokenizer.WordCacheCount, 1, words.Count - 1);
        // Cached and uncached words alike give the same ids the second time.
        foreach (var word in words) Assert.Equal(reference.Encode(word), tokenizer.Encode(word));
        Assert.Equal(0, reference.WordCacheBytes);
    }

    [Fact]
    public void Words_longer_than_the_limit_are_not_cached()
    {
        var tokenizer = BpeTokenizer.Parse(Json);
        tokenizer.Encode(UniqueWord(1, WordCache.MaxWordLength + 1));
        Assert.Equal(0, tokenizer.WordCacheCount);
        tokenizer.Encode(UniqueWord(2, WordCache.MaxWordLength));
        Assert.Equal(1, tokenizer.WordCacheCount);
    }

    [Fact]
    public void Concurrent_writers_never_take_the_cache_past_its_bound()
    {
        const long capacity = 32 * 1024;
        var tokenizer = BpeTokenizer.Parse(Json, capacity);
        Parallel.For(0, 4_000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => tokenizer.Encode(UniqueWord(i, 100)));
        Assert.InRange(tokenizer.WordCacheBytes, capacity / 2, capacity);
    }
}
