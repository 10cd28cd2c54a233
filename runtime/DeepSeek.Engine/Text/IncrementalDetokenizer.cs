namespace DeepSeek.Engine.Text;

/// <summary>
/// Turns a growing list of token ids into text deltas. A character whose UTF-8 bytes are split over
/// several tokens is held back until complete; decoding a short window (from a few tokens before
/// the last emitted text) keeps tokenizers that change a token's text by its neighbours (leading
/// spaces) right, at constant cost per token. The windowed scheme is vLLM's.
/// </summary>
public sealed class IncrementalDetokenizer
{
    private const int InitialContextTokens = 5;
    private const char Replacement = '\uFFFD';
    private readonly ITokenDecoder _decoder;
    private readonly List<int> _tokens = [];
    private int _prefixOffset;
    private int _readOffset;

    /// <param name="decoder">The tokenizer's decoding.</param>
    /// <param name="promptTokenIds">The prompt's last tokens give the first output token its context (never emitted).</param>
    public IncrementalDetokenizer(ITokenDecoder decoder, IReadOnlyList<int>? promptTokenIds = null)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        _decoder = decoder;
        if (promptTokenIds is { Count: > 0 })
        {
            var from = Math.Max(0, promptTokenIds.Count - InitialContextTokens);
            for (var i = from; i < promptTokenIds.Count; i++) _tokens.Add(promptTokenIds[i]);
            _readOffset = _tokens.Count;
        }
    }

    /// <summary>The text this token completes (possibly empty while bytes of a character are outstanding).</summary>
    public string Append(int tokenId)
    {
        _tokens.Add(tokenId);
        var prefixText = Decode(_prefixOffset, _readOffset);
        var newText = Decode(_prefixOffset, _tokens.Count);
        if (newText.Length <= prefixText.Length || newText[^1] == Replacement) return "";
        _prefixOffset = _readOffset;
        _readOffset = _tokens.Count;
        return newText[prefixText.Length..];
    }

    /// <summary>At the end of the stream: whatever is still held back, incomplete characters as U+FFFD.</summary>
    public string Flush()
    {
        if (_readOffset == _tokens.Count) return "";
        var prefixText = Decode(_prefixOffset, _readOffset);
        var newText = Decode(_prefixOffset, _tokens.Count);
        _prefixOffset = _readOffset = _tokens.Count;
        return newText.Length > prefixText.Length ? newText[prefixText.Length..] : "";
    }

    private string Decode(int from, int to) => from >= to ? "" : _decoder.Decode(_tokens.GetRange(from, to - from));
}
