namespace DeepSeek.Engine.Text;

/// <summary>
/// Finds stop strings in streamed text without letting any of one reach the client: text that could
/// be the start of a stop string is held back until the next delta decides. On a match, the text
/// before it is released and the rest dropped.
/// </summary>
public sealed class StopStringMatcher
{
    private readonly string[] _stops;
    private string _held = "";

    public StopStringMatcher(IReadOnlyList<string> stopStrings)
    {
        ArgumentNullException.ThrowIfNull(stopStrings);
        if (stopStrings.Any(string.IsNullOrEmpty)) throw new ArgumentException("Stop strings must not be empty.", nameof(stopStrings));
        _stops = [.. stopStrings];
    }

    public bool Stopped { get; private set; }

    /// <summary>Text safe to emit after adding <paramref name="delta"/>; sets <see cref="Stopped"/> on a match.</summary>
    public string Append(string delta)
    {
        ArgumentNullException.ThrowIfNull(delta);
        if (Stopped) return "";
        var text = _held + delta;
        if (_stops.Length == 0) return text;

        var stopAt = -1;
        foreach (var stop in _stops)
        {
            var index = text.IndexOf(stop, StringComparison.Ordinal);
            if (index >= 0 && (stopAt < 0 || index < stopAt)) stopAt = index;
        }
        if (stopAt >= 0)
        {
            Stopped = true;
            _held = "";
            return text[..stopAt];
        }

        var holdFrom = EarliestPossibleStopStart(text);
        _held = text[holdFrom..];
        return text[..holdFrom];
    }

    /// <summary>At the end of the stream for another reason: the held text was not a stop string after all.</summary>
    public string Flush()
    {
        var text = _held;
        _held = "";
        return Stopped ? "" : text;
    }

    /// <summary>The first position from which the rest of <paramref name="text"/> is a proper prefix of some stop string.</summary>
    private int EarliestPossibleStopStart(string text)
    {
        var longest = _stops.Max(s => s.Length) - 1;
        for (var start = Math.Max(0, text.Length - longest); start < text.Length; start++)
        {
            var tail = text.AsSpan(start);
            foreach (var stop in _stops)
                if (stop.Length > tail.Length && stop.AsSpan().StartsWith(tail, StringComparison.Ordinal)) return start;
        }
        return text.Length;
    }
}
