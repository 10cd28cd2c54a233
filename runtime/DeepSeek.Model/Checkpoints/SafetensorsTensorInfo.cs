namespace DeepSeek.Model.Checkpoints;

/// <summary>One tensor's entry in a safetensors header: dtype code, shape, and byte range in the data section.</summary>
public sealed record SafetensorsTensorInfo(string Name, string Dtype, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (product, size) => product * size);

    public long ByteLength => End - Begin;
}
