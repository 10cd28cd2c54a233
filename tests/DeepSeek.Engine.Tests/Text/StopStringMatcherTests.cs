using DeepSeek.Engine.Text;

namespace DeepSeek.Engine.Tests.Text;

public sealed class StopStringMatcherTests
{
    [Fact]
    public void A_stop_string_split_over_deltas_never_leaks()
    {
        var matcher = new StopStringMatcher(["STOP"]);
        Assert.Equal("hello ", matcher.Append("hello S"));
        Assert.Equal("", matcher.Append("TO"));
        Assert.Equal("", matcher.Append("P and more"));
        Assert.True(matcher.Stopped);
        Assert.Equal("", matcher.Append("after"));
        Assert.Equal("", matcher.Flush());
    }

    [Fact]
    public void Held_text_is_released_when_it_turns_out_not_to_be_a_stop_string()
    {
        var matcher = new StopStringMatcher(["STOP"]);
        Assert.Equal("ab ", matcher.Append("ab ST"));
        Assert.Equal("STAR", matcher.Append("AR"));
        Assert.Equal("", matcher.Append("S"));
        Assert.Equal("S", matcher.Flush());
        Assert.False(matcher.Stopped);
    }

    [Fact]
    public void The_earliest_of_several_stop_strings_wins()
    {
        var matcher = new StopStringMatcher(["world", "lo w"]);
        Assert.Equal("hel", matcher.Append("hello world"));
        Assert.True(matcher.Stopped);
    }

    [Fact]
    public void Every_split_of_the_text_gives_the_same_output()
    {
        const string text = "one two <|end|> three";
        for (var cut1 = 0; cut1 <= text.Length; cut1++)
        {
            for (var cut2 = cut1; cut2 <= text.Length; cut2++)
            {
                var matcher = new StopStringMatcher(["<|end|>", "xyz"]);
                var output = matcher.Append(text[..cut1]) + matcher.Append(text[cut1..cut2]) + matcher.Append(text[cut2..]) + matcher.Flush();
                Assert.Equal("one two ", output);
            }
        }
    }

    [Fact]
    public void Without_stop_strings_text_passes_through()
    {
        var matcher = new StopStringMatcher([]);
        Assert.Equal("abc", matcher.Append("abc"));
    }
}
