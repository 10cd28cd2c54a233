using System.Text;

namespace DeepSeek.Model.Tokenization;

/// <summary>What one piece of output became: content text, the start of call <c>Index</c> (Text: the function's name), or a piece of its arguments.</summary>
public readonly record struct ToolCallEvent(ToolCallEventKind Kind, int Index, string Text);

public enum ToolCallEventKind
{
    Content,
    CallStarted,
    Arguments,
}

/// <summary>
/// Reads a model's output, as it streams, into content and function calls of DeepSeek-V3's format
/// (<see cref="ChatTemplate"/>): text before <c>&lt;｜tool▁calls▁begin｜&gt;</c> is content; a call is
/// committed once its header is whole and names one of <paramref name="functionNames"/>, and from then
/// on its arguments are passed on as they come, up to <c>\n```&lt;｜tool▁call▁end｜&gt;</c>. Text that may
/// still become a marker is held back, so no marker reaches the content; text that turns out not to
/// be a well-formed call (another marker, an unknown function, the output ending first) is content
/// after all. Arguments are the model's text, as OpenAI's are: a call forced by the grammar is valid
/// JSON of its schema, one the model chose freely may not be. Whole and streamed output read alike:
/// a whole one is one <see cref="Feed"/> and <see cref="Finish"/>.
/// </summary>
public sealed class ToolCallParser(IReadOnlySet<string> functionNames)
{
    private const int MaxNameLength = 64;

    private enum State { Content, BlockStart, BetweenCalls, CallHeader, Arguments }

    private readonly StringBuilder _buffer = new();
    // Consumed since the last committed call: content again if the block turns out malformed.
    private readonly StringBuilder _held = new();
    private State _state;

    /// <summary>Calls committed so far (their indexes are 0 to this minus 1).</summary>
    public int CallCount { get; private set; }

    /// <summary>Reads more output; returns what is now certain, in order.</summary>
    public IReadOnlyList<ToolCallEvent> Feed(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        _buffer.Append(text);
        var events = new List<ToolCallEvent>();
        Run(events, final: false);
        return events;
    }

    /// <summary>The output ended: what was held back is content, or the last call's arguments if it was inside them.</summary>
    public IReadOnlyList<ToolCallEvent> Finish()
    {
        var events = new List<ToolCallEvent>();
        Run(events, final: true);
        return events;
    }

    private void Run(List<ToolCallEvent> events, bool final)
    {
        var s = _buffer.ToString();
        var pos = 0;
        while (true)
        {
            var rest = s.AsSpan(pos);
            switch (_state)
            {
                case State.Content:
                {
                    var at = rest.IndexOf(ChatTemplate.ToolCallsBegin, StringComparison.Ordinal);
                    if (at >= 0)
                    {
                        Emit(events, ToolCallEventKind.Content, rest[..at]);
                        _held.Append(ChatTemplate.ToolCallsBegin);
                        pos += at + ChatTemplate.ToolCallsBegin.Length;
                        _state = State.BlockStart;
                        continue;
                    }
                    var keep = final ? 0 : PartialMarker(rest, ChatTemplate.ToolCallsBegin);
                    Emit(events, ToolCallEventKind.Content, rest[..^keep]);
                    pos = s.Length - keep;
                    break;
                }
                case State.BlockStart or State.BetweenCalls:
                {
                    var between = _state == State.BetweenCalls;
                    if (between)
                    {
                        var spaces = 0;
                        while (spaces < rest.Length && char.IsWhiteSpace(rest[spaces])) spaces++;
                        _held.Append(rest[..spaces]);
                        pos += spaces;
                        rest = rest[spaces..];
                    }
                    if (rest.StartsWith(ChatTemplate.ToolCallBegin, StringComparison.Ordinal))
                    {
                        _held.Append(ChatTemplate.ToolCallBegin);
                        pos += ChatTemplate.ToolCallBegin.Length;
                        _state = State.CallHeader;
                        continue;
                    }
                    if (between && rest.StartsWith(ChatTemplate.ToolCallsEnd, StringComparison.Ordinal))
                    {
                        pos += ChatTemplate.ToolCallsEnd.Length;
                        _held.Clear();
                        _state = State.Content;
                        continue;
                    }
                    if (!final && (ChatTemplate.ToolCallBegin.AsSpan().StartsWith(rest, StringComparison.Ordinal)
                        || (between && ChatTemplate.ToolCallsEnd.AsSpan().StartsWith(rest, StringComparison.Ordinal))))
                        break;
                    // The output ended after a whole call: the separators before the missing end marker are not content.
                    if (final && between && rest.IsEmpty && _held.ToString().Trim().Length == 0) _held.Clear();
                    Fail(events);
                    continue;
                }
                case State.CallHeader:
                {
                    const string head = ChatTemplate.FunctionType + ChatTemplate.ToolSep;
                    if (rest.Length < head.Length || !rest.StartsWith(head, StringComparison.Ordinal))
                    {
                        if (!final && head.AsSpan().StartsWith(rest, StringComparison.Ordinal)) break;
                        Fail(events);
                        continue;
                    }
                    var afterHead = rest[head.Length..];
                    var opening = afterHead.IndexOf(ChatTemplate.ArgumentsOpening, StringComparison.Ordinal);
                    if (opening < 0)
                    {
                        if (!final && CouldBeHeader(afterHead)) break;
                        Fail(events);
                        continue;
                    }
                    var name = afterHead[..opening].ToString();
                    if (!functionNames.Contains(name))
                    {
                        Fail(events);
                        continue;
                    }
                    pos += head.Length + opening + ChatTemplate.ArgumentsOpening.Length;
                    _held.Clear();
                    events.Add(new ToolCallEvent(ToolCallEventKind.CallStarted, CallCount, name));
                    _state = State.Arguments;
                    continue;
                }
                default:
                {
                    var at = rest.IndexOf(ChatTemplate.ArgumentsClosing, StringComparison.Ordinal);
                    if (at >= 0)
                    {
                        Emit(events, ToolCallEventKind.Arguments, rest[..at]);
                        pos += at + ChatTemplate.ArgumentsClosing.Length;
                        CallCount++;
                        _state = State.BetweenCalls;
                        continue;
                    }
                    var keep = final ? 0 : PartialMarker(rest, ChatTemplate.ArgumentsClosing);
                    Emit(events, ToolCallEventKind.Arguments, rest[..^keep]);
                    pos = s.Length - keep;
                    if (final)
                    {
                        // Cut off inside its arguments (max_tokens, a stop string): the call stays, its arguments unfinished.
                        CallCount++;
                        _state = State.Content;
                    }
                    break;
                }
            }
            break;
        }
        _buffer.Clear().Append(s, pos, s.Length - pos);
    }

    /// <summary>The block is not a call: what was held is content, and the rest is read as content again.</summary>
    private void Fail(List<ToolCallEvent> events)
    {
        Emit(events, ToolCallEventKind.Content, _held.ToString());
        _held.Clear();
        _state = State.Content;
    }

    /// <summary>A name of an offered function may still be being written, and the text after it may still become the arguments' opening.</summary>
    private bool CouldBeHeader(ReadOnlySpan<char> afterHead)
    {
        var newline = afterHead.IndexOf('\n');
        var name = newline < 0 ? afterHead : afterHead[..newline];
        if (name.Length > MaxNameLength) return false;
        if (newline >= 0 && !ChatTemplate.ArgumentsOpening.AsSpan().StartsWith(afterHead[newline..], StringComparison.Ordinal)) return false;
        foreach (var function in functionNames)
            if (newline < 0 ? function.AsSpan().StartsWith(name, StringComparison.Ordinal) : function.AsSpan().SequenceEqual(name)) return true;
        return false;
    }

    private void Emit(List<ToolCallEvent> events, ToolCallEventKind kind, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty) return;
        var index = kind == ToolCallEventKind.Content ? -1 : CallCount;
        events.Add(new ToolCallEvent(kind, index, text.ToString()));
    }

    /// <summary>The length of the longest end of <paramref name="text"/> that begins <paramref name="marker"/> (and is shorter than it).</summary>
    private static int PartialMarker(ReadOnlySpan<char> text, string marker)
    {
        for (var k = Math.Min(text.Length, marker.Length - 1); k > 0; k--)
            if (text[^k..].SequenceEqual(marker.AsSpan(0, k))) return k;
        return 0;
    }
}
