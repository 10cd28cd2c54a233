using System.Runtime.CompilerServices;
using System.Text;

namespace DeepSeek.Runtime.Bench;

/// <summary>
/// Client side of server-sent events as OpenAI-compatible servers stream them: the <c>data</c> field
/// of each event (several <c>data:</c> lines joined by a newline), ending at <c>data: [DONE]</c>
/// (not yielded) or the end of the stream. Comments and other fields are skipped. Lines may arrive
/// split across any number of reads.
/// </summary>
public static class ServerSentEventReader
{
    public const string DoneMarker = "[DONE]";

    /// <summary>The events' data in order; <paramref name="onDone"/> runs when <c>[DONE]</c> arrives.</summary>
    public static async IAsyncEnumerable<string> ReadDataAsync(Stream stream, Action onDone, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        var data = new StringBuilder();
        var hasData = false;
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                // A blank line ends an event.
                if (!hasData) continue;
                var payload = data.ToString();
                data.Clear();
                hasData = false;
                if (payload == DoneMarker)
                {
                    onDone();
                    yield break;
                }
                yield return payload;
                continue;
            }
            if (!line.StartsWith("data:", StringComparison.Ordinal)) continue; // ": comment", "event:", "id:", "retry:"
            var value = line.AsSpan(5);
            if (value.Length > 0 && value[0] == ' ') value = value[1..];
            if (hasData) data.Append('\n');
            data.Append(value);
            hasData = true;
        }
        // A stream cut off without its blank line still delivers the last event, as browsers do not;
        // the caller then sees no [DONE] and counts the request as failed.
        if (hasData)
        {
            var payload = data.ToString();
            if (payload == DoneMarker) onDone();
            else yield return payload;
        }
    }
}
