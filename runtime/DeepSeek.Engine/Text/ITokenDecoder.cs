namespace DeepSeek.Engine.Text;

/// <summary>
/// Token ids to text, as the model's tokenizer does it. Incomplete UTF-8 at the end must come out as
/// U+FFFD (what byte-level BPE decoders do), which is how <see cref="IncrementalDetokenizer"/> knows to wait.
/// </summary>
public interface ITokenDecoder
{
    string Decode(IReadOnlyList<int> tokenIds);
}

/// <summary>An <see cref="ITokenDecoder"/> over a function, e.g. <c>ids => tokenizer.Decode(ids)</c>.</summary>
public sealed class DelegateTokenDecoder(Func<IReadOnlyList<int>, string> decode) : ITokenDecoder
{
    public string Decode(IReadOnlyList<int> tokenIds) => decode(tokenIds);
}
