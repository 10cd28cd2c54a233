namespace DeepSeek.Model.Tokenization;

/// <summary>
/// GPT-2's reversible byte → printable-character map used by byte-level BPE: printable Latin-1
/// bytes map to themselves, the rest to code points from U+0100 on, so every token is plain text.
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] CharOfByte = BuildCharOfByte();
    private static readonly Dictionary<char, byte> ByteOfChar = Enumerable.Range(0, 256).ToDictionary(b => CharOfByte[b], b => (byte)b);

    private static char[] BuildCharOfByte()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) chars[i] = CharOfByte[bytes[i]];
        return new string(chars);
    }

    /// <summary>Appends the bytes a byte-level token stands for; false if a character is not in the alphabet.</summary>
    public static bool TryDecode(string token, List<byte> into)
    {
        foreach (var c in token)
        {
            if (!ByteOfChar.TryGetValue(c, out var b)) return false;
            into.Add(b);
        }
        return true;
    }
}
