using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace DeepSeek.Engine.KvCache;

/// <summary>
/// Identity of a full block's contents: a hash of (parent block's hash, this block's token ids), so
/// equal hashes mean equal whole prefixes, not just equal blocks. 128 bits of SHA-256: collisions
/// (which would serve wrong KV) are not a practical concern.
/// </summary>
public readonly record struct BlockHash(UInt128 Value)
{
    public static BlockHash Of(BlockHash? parent, ReadOnlySpan<int> blockTokenIds)
    {
        Span<byte> input = stackalloc byte[17 + (blockTokenIds.Length * sizeof(int))];
        input[0] = parent.HasValue ? (byte)1 : (byte)0;
        if (parent is { } p)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(input[1..], (ulong)(p.Value >> 64));
            BinaryPrimitives.WriteUInt64LittleEndian(input[9..], (ulong)p.Value);
        }
        var tokens = MemoryMarshal.AsBytes(blockTokenIds);
        if (BitConverter.IsLittleEndian) tokens.CopyTo(input[17..]);
        else
        {
            for (var i = 0; i < blockTokenIds.Length; i++)
                BinaryPrimitives.WriteInt32LittleEndian(input[(17 + (4 * i))..], blockTokenIds[i]);
        }
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(input, digest);
        return new BlockHash(new UInt128(
            BinaryPrimitives.ReadUInt64LittleEndian(digest),
            BinaryPrimitives.ReadUInt64LittleEndian(digest[8..])));
    }

    /// <summary>A value no token id takes (they are never negative): what marks an adapter's root.</summary>
    private const int AdapterMark = -0x4C6F5241;

    /// <summary>
    /// What the first block of a request on LoRA adapter <paramref name="adapterId"/> chains from (the base
    /// model's first blocks chain from nothing): the same tokens under two adapters, or under an adapter and
    /// the base, hash apart, so they never share KV blocks (an adapter changes the latents).
    /// </summary>
    public static BlockHash ForAdapter(long adapterId) =>
        Of(null, [AdapterMark, unchecked((int)adapterId), (int)(adapterId >> 32)]);

    public override string ToString() => Value.ToString("x32");
}
