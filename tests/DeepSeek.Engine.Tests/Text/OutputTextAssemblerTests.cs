using DeepSeek.Engine.Requests;
using DeepSeek.Engine.Text;

namespace DeepSeek.Engine.Tests.Text;

public sealed class OutputTextAssemblerTests
{
    [Fact]
    public void A_stop_string_in_multi_byte_text_finishes_the_request_without_leaking()
    {
        var sampling = new SamplingParameters { Stop = ["世界"] };
        var assembler = new OutputTextAssembler(new ByteDecoder(), sampling, ByteDecoder.Encode("Q: "));
        var events = new List<TokenEvent>();
        foreach (var token in ByteDecoder.Encode("héllo 世界 more"))
        {
            events.Add(assembler.OnToken(token, null, null, new UsageInfo(3, events.Count + 1, 0)));
            if (assembler.StopStringHit) break;
        }

        Assert.Equal("héllo ", string.Concat(events.Select(e => e.TextDelta)));
        Assert.All(events[..^1], e => Assert.Null(e.FinishReason));
        Assert.Equal(FinishReason.Stop, events[^1].FinishReason);
        Assert.NotNull(events[^1].Usage);
        Assert.DoesNotContain(events, e => e.TextDelta.Contains('\uFFFD'));
    }

    [Fact]
    public void A_length_finish_releases_held_text_and_an_end_of_sequence_token_adds_none()
    {
        var sampling = new SamplingParameters { Stop = ["xyz"] };
        var lengthCase = new OutputTextAssembler(new ByteDecoder(), sampling, []);
        Assert.Equal("ab", lengthCase.OnToken('a', null, null, null).TextDelta + lengthCase.OnToken('b', null, null, null).TextDelta);
        Assert.Equal("", lengthCase.OnToken('x', null, null, null).TextDelta);
        var last = lengthCase.OnToken('y', null, FinishReason.Length, new UsageInfo(0, 4, 0));
        Assert.Equal("xy", last.TextDelta);
        Assert.Equal(FinishReason.Length, last.FinishReason);
        Assert.Equal(4, last.Usage!.CompletionTokens);

        var eosCase = new OutputTextAssembler(new ByteDecoder(), SamplingParameters.Greedy, []);
        eosCase.OnToken('a', null, null, null);
        var eos = eosCase.OnToken('#', null, FinishReason.Stop, new UsageInfo(0, 2, 0));
        Assert.Equal("", eos.TextDelta);
        Assert.Equal('#', eos.TokenId);
    }

    [Fact]
    public void A_request_ended_without_a_token_gets_a_closing_event()
    {
        var closing = OutputTextAssembler.OnEnd(FinishReason.Cancelled, new UsageInfo(5, 1, 0));
        Assert.Null(closing.TokenId);
        Assert.Equal(FinishReason.Cancelled, closing.FinishReason);
        Assert.Equal(6, closing.Usage!.TotalTokens);
    }
}
