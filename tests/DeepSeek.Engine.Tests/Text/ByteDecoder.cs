using System.Text;
using DeepSeek.Engine.Text;

namespace DeepSeek.Engine.Tests.Text;

/// <summary>A byte-level vocabulary as byte-level BPE has at its base: token id = one byte; incomplete UTF-8 decodes to U+FFFD.</summary>
internal sealed class ByteDecoder : ITokenDecoder
{
    public string Decode(IReadOnlyList<int> tokenIds) => Encoding.UTF8.GetString([.. tokenIds.Select(id => (byte)id)]);

    public static int[] Encode(string text) => [.. Encoding.UTF8.GetBytes(text).Select(b => (int)b)];
}
