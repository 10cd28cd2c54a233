using System.Text;
using DeepSeek.Model.Tokenization;

namespace DeepSeek.Model.Tests.Tokenization;

/// <summary>Output text to content and calls, whole and streamed in pieces: well-formed, malformed and cut-off calls.</summary>
public sealed class ToolCallParserTests
{
    private static readonly HashSet<string> Functions = new(StringComparer.Ordinal) { "get_weather", "get_time" };

    private static string Call(string name, string arguments) => ChatTemplate.CallOpening(name) + arguments + ChatTemplate.ArgumentsClosing;

    private static string Block(params string[] calls) => ChatTemplate.ToolCallsBegin + string.Join(ChatTemplate.CallSeparator, calls) + ChatTemplate.ToolCallsEnd;

    private sealed record Parsed(string Content, List<(string Name, string Arguments)> Calls, int CallCount, List<ToolCallEvent> Events);

    private static Parsed Read(IEnumerable<string> pieces)
    {
        var parser = new ToolCallParser(Functions);
        var events = new List<ToolCallEvent>();
        foreach (var piece in pieces) events.AddRange(parser.Feed(piece));
        events.AddRange(parser.Finish());
        var content = new StringBuilder();
        var calls = new List<(string Name, StringBuilder Arguments)>();
        foreach (var e in events)
        {
            switch (e.Kind)
            {
                case ToolCallEventKind.Content: content.Append(e.Text); break;
                case ToolCallEventKind.CallStarted:
                    Assert.Equal(calls.Count, e.Index);
                    calls.Add((e.Text, new StringBuilder()));
                    break;
                default: calls[e.Index].Arguments.Append(e.Text); break;
            }
        }
        return new Parsed(content.ToString(), [.. calls.Select(c => (c.Name, c.Arguments.ToString()))], parser.CallCount, events);
    }

    /// <summary>The text whole, in pieces of every size from 1 to 7 characters: the same result each way.</summary>
    private static Parsed ReadEveryWay(string text)
    {
        var whole = Read([text]);
        for (var size = 1; size <= 7; size++)
        {
            var pieces = Enumerable.Range(0, (text.Length + size - 1) / size).Select(i => text.Substring(i * size, Math.Min(size, text.Length - (i * size))));
            var streamed = Read(pieces);
            Assert.Equal(whole.Content, streamed.Content);
            Assert.Equal(whole.Calls, streamed.Calls);
            Assert.Equal(whole.CallCount, streamed.CallCount);
        }
        return whole;
    }

    [Fact]
    public void Content_then_parallel_calls_are_read_into_content_and_calls()
    {
        var text = "Let me look." + Block(Call("get_weather", """{"city":"Paris"}"""), Call("get_time", """{"zone": "CET"}"""));
        var parsed = ReadEveryWay(text);
        Assert.Equal("Let me look.", parsed.Content);
        Assert.Equal([("get_weather", """{"city":"Paris"}"""), ("get_time", """{"zone": "CET"}""")], parsed.Calls);
        Assert.Equal(2, parsed.CallCount);
    }

    [Fact]
    public void Only_calls_leave_no_content_and_no_marker_ever_reaches_the_content()
    {
        var text = Block(Call("get_weather", """{"city":"<｜Oslo｜>\n```"}"""));
        var parsed = ReadEveryWay(text);
        Assert.Equal("", parsed.Content);
        Assert.Equal([("get_weather", """{"city":"<｜Oslo｜>\n```"}""")], parsed.Calls);
        // Streamed a character at a time, no content piece was ever emitted while a marker was being written.
        Assert.DoesNotContain(Read(text.Select(c => c.ToString())).Events, e => e.Kind == ToolCallEventKind.Content);
    }

    [Fact]
    public void A_call_is_announced_once_its_name_is_whole_and_its_arguments_stream_in_pieces()
    {
        var parser = new ToolCallParser(Functions);
        Assert.Empty(parser.Feed(ChatTemplate.ToolCallsBegin + ChatTemplate.ToolCallBegin + "function" + ChatTemplate.ToolSep + "get_wea"));
        var started = parser.Feed("ther\n```json\n{\"ci");
        Assert.Equal([new(ToolCallEventKind.CallStarted, 0, "get_weather"), new(ToolCallEventKind.Arguments, 0, "{\"ci")], started);
        // A possible start of the closing fence is held back until it is certain.
        Assert.Equal([new ToolCallEvent(ToolCallEventKind.Arguments, 0, "ty\":1}")], parser.Feed("ty\":1}\n``"));
        Assert.Empty(parser.Feed("`" + ChatTemplate.ToolCallEnd));
        Assert.Empty(parser.Feed(ChatTemplate.ToolCallsEnd));
        Assert.Empty(parser.Finish());
        Assert.Equal(1, parser.CallCount);
    }

    [Theory]
    [InlineData("unknown function", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>rm_rf\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>")]
    [InlineData("another call type", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>python<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>")]
    [InlineData("no fence after the name", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time {}<｜tool▁call▁end｜><｜tool▁calls▁end｜>")]
    [InlineData("a call outside a block", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜>")]
    [InlineData("text where a call should begin", "<｜tool▁calls▁begin｜>I will call get_time<｜tool▁calls▁end｜>")]
    [InlineData("cut off in the header", "Sure.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_ti")]
    [InlineData("a marker's start that is not one", "1 <｜ 2 <｜tool▁calls 3 <｜tool▁calls▁begin")]
    public void Output_that_is_not_a_well_formed_call_stays_content(string why, string text)
    {
        var parsed = ReadEveryWay(text);
        Assert.True(parsed.Calls.Count == 0, why);
        Assert.Equal(text, parsed.Content);
    }

    [Fact]
    public void A_malformed_call_after_a_good_one_keeps_the_good_one_and_the_rest_is_content()
    {
        var bad = ChatTemplate.ToolCallBegin + "function" + ChatTemplate.ToolSep + "nope\n```json\n{}";
        var parsed = ReadEveryWay(ChatTemplate.ToolCallsBegin + Call("get_time", "{}") + "\n" + bad);
        Assert.Equal([("get_time", "{}")], parsed.Calls);
        Assert.Equal("\n" + bad, parsed.Content);
    }

    [Fact]
    public void Output_cut_inside_the_arguments_keeps_the_call_with_what_was_written()
    {
        var parsed = ReadEveryWay(ChatTemplate.ToolCallsBegin + ChatTemplate.CallOpening("get_time") + "{\"zone\":\"C\n``");
        Assert.Equal([("get_time", "{\"zone\":\"C\n``")], parsed.Calls);
        Assert.Equal("", parsed.Content);
    }

    [Fact]
    public void Output_ending_after_a_whole_call_without_the_end_marker_is_that_call()
    {
        var parsed = ReadEveryWay(ChatTemplate.ToolCallsBegin + Call("get_time", "{}") + "\n");
        Assert.Equal([("get_time", "{}")], parsed.Calls);
        Assert.Equal("", parsed.Content);
    }

    [Fact]
    public void Text_after_the_block_is_content_again()
    {
        var parsed = ReadEveryWay("a" + Block(Call("get_time", "{}")) + "b");
        Assert.Equal("ab", parsed.Content);
        Assert.Single(parsed.Calls);
    }
}
