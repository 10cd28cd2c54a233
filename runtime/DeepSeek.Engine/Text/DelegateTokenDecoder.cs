namespace DeepSeek.Engine.Text;

/// <summary>An <see cref="ITokenDecoder"/> over a function, e.g. <c>ids => tokenizer.Decode(ids)</c>.</summary>
public sealed class DelegateTokenDecoder(Func<IReadOnlyList<int>, string> decode) : ITokenDecoder
{
    public string Decode(IReadOnlyList<int> tokenIds) => decode(tokenIds);
}
