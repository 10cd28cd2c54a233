using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;
using DeepSeek.Testing;

namespace DeepSeek.Model.Tests.Checkpoints;

public sealed class SafetensorsFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("safetensors-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Bytes<T>(T[] values) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    [Fact]
    public void Reads_each_float_dtype_into_the_requested_dtype()
    {
        var values = new float[] { 1.5f, -2.25f, 0.125f, 3f, -0.5f, 1024f };
        var path = Path.Combine(_dir, "a.safetensors");
        SafetensorsWriter.Write(path,
        [
            new("f32", "F32", [2, 3], Bytes(values)),
            new("f64", "F64", [6], Bytes(values.Select(v => (double)v).ToArray())),
            new("f16", "F16", [3, 2], Bytes(values.Select(v => (Half)v).ToArray())),
            // bfloat16 is the upper half of a float32; these values are exact in it.
            new("bf16", "BF16", [6], Bytes(values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray())),
        ]);

        using var file = SafetensorsFile.Open(path);
        using var scope = NewDisposeScope();
        Assert.Equal([2L, 3L], file.Tensors["f32"].Shape);
        foreach (var name in new[] { "f32", "f64", "f16", "bf16" })
        {
            var asFloat = file.Load(name, ScalarType.Float32, CPU);
            Assert.Equal(values, asFloat.reshape(-1).data<float>().ToArray());
        }
        var asDouble = file.Load("f32", ScalarType.Float64, CPU);
        Assert.Equal(ScalarType.Float64, asDouble.dtype);
        Assert.Equal(values.Select(v => (double)v), asDouble.reshape(-1).data<double>().ToArray());
        Assert.Equal(ScalarType.BFloat16, file.Load("f32", ScalarType.BFloat16, CPU).dtype);
    }

    [Fact]
    public void Truncated_file_fails_at_open_naming_file_and_tensor()
    {
        var path = Path.Combine(_dir, "t.safetensors");
        SafetensorsWriter.Write(path, [new("w", "F32", [4], Bytes(new float[] { 1, 2, 3, 4 }))]);
        using (var stream = new FileStream(path, FileMode.Open)) stream.SetLength(stream.Length - 5);

        var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains("t.safetensors", error.Message, StringComparison.Ordinal);
        Assert.Contains("'w'", error.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_cut_inside_the_header_fails_clearly()
    {
        var path = Path.Combine(_dir, "h.safetensors");
        SafetensorsWriter.Write(path, [new("w", "F32", [4], Bytes(new float[] { 1, 2, 3, 4 }))]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..20]);
        var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("garbage header")]
    [InlineData("length")]
    public void Corrupt_header_fails_clearly(string corruption)
    {
        var path = Path.Combine(_dir, "c.safetensors");
        SafetensorsWriter.Write(path, [new("w", "F32", [4], Bytes(new float[] { 1, 2, 3, 4 }))]);
        var bytes = File.ReadAllBytes(path);
        if (corruption == "length") BitConverter.GetBytes(-5L).CopyTo(bytes, 0);
        else bytes.AsSpan(8, 6).Fill((byte)0xFF);
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains("c.safetensors", error.Message, StringComparison.Ordinal);
        Assert.Contains("corrupt", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Shape_that_disagrees_with_byte_range_fails_naming_tensor()
    {
        var path = Path.Combine(_dir, "s.safetensors");
        SafetensorsWriter.Write(path, [new("w", "F32", [3], Bytes(new float[] { 1, 2, 3, 4 }))]);
        var error = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path));
        Assert.Contains("'w'", error.Message, StringComparison.Ordinal);
        Assert.Contains("needs 12 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_dtype_fails_on_load_naming_tensor_and_dtype()
    {
        var path = Path.Combine(_dir, "d.safetensors");
        SafetensorsWriter.Write(path, [new("scales", "F8_E4M3", [4], new byte[4])]);
        using var file = SafetensorsFile.Open(path);
        var error = Assert.Throws<CheckpointFormatException>(() => file.Load("scales", ScalarType.Float32, CPU));
        Assert.Contains("'scales'", error.Message, StringComparison.Ordinal);
        Assert.Contains("F8_E4M3", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NaN_in_weights_is_reported_as_corruption()
    {
        var path = Path.Combine(_dir, "n.safetensors");
        SafetensorsWriter.Write(path, [new("w", "F32", [2], Bytes(new[] { 1f, float.NaN }))]);
        using var file = SafetensorsFile.Open(path);
        var error = Assert.Throws<CheckpointFormatException>(() => file.Load("w", ScalarType.Float32, CPU));
        Assert.Contains("NaN", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ScalarType.Float32, 64)]  // the stored dtype on the CPU: straight from the mapping
    [InlineData(ScalarType.Float64, 64)]  // converted through the staging buffer
    [InlineData(ScalarType.Float64, 24)]  // in pieces: the buffer holds 6 of the 20 float32 values
    public void CopyTo_fills_the_target_in_its_dtype(ScalarType dtype, long stagingBytes)
    {
        var values = Enumerable.Range(0, 20).Select(i => i * 0.5f - 3f).ToArray();
        var path = Path.Combine(_dir, "c.safetensors");
        SafetensorsWriter.Write(path, [new("w", "F32", [4, 5], Bytes(values))]);
        using var file = SafetensorsFile.Open(path);
        using var staging = new HostStaging(CPU, stagingBytes);
        using var target = zeros([4, 5], dtype);
        file.CopyTo("w", target, staging);
        Assert.Equal(values.Select(v => (double)v), target.to(ScalarType.Float64).reshape(-1).data<double>().ToArray());
    }

    [Fact]
    public void CopyTo_fills_a_slice_of_a_larger_tensor_and_nothing_else()
    {
        var values = Enumerable.Range(1, 6).Select(i => (float)i).ToArray();
        var path = Path.Combine(_dir, "s.safetensors");
        SafetensorsWriter.Write(path, [new("w", "F32", [2, 3], Bytes(values))]);
        using var file = SafetensorsFile.Open(path);
        using var staging = new HostStaging(CPU);
        using var scope = NewDisposeScope();
        // As an expert's matrix is a slice of the stack of all experts.
        var stack = zeros([3, 2, 3], ScalarType.Float32);
        file.CopyTo("w", stack[1], staging);
        Assert.Equal(new float[6].Concat(values).Concat(new float[6]), stack.reshape(-1).data<float>().ToArray());
        // A strided (non-contiguous) target too.
        var columns = zeros([3, 2], ScalarType.Float32);
        file.CopyTo("w", columns.t(), staging);
        Assert.Equal(values, columns.t().contiguous().reshape(-1).data<float>().ToArray());
    }

    [Theory]
    [InlineData("BF16", 0x7FC0)]  // NaN
    [InlineData("BF16", 0xFF80)]  // -inf
    [InlineData("F16", 0x7C00)]   // +inf
    public void NaN_or_infinity_of_a_half_dtype_is_reported_wherever_it_sits(string dtype, int bits)
    {
        // Past the first vectors and in the scalar tail alike.
        foreach (var position in new[] { 0, 37, 99 })
        {
            var data = new ushort[100];
            Array.Fill(data, dtype == "BF16" ? (ushort)0x3F80 : (ushort)0x3C00);
            data[position] = (ushort)bits;
            var path = Path.Combine(_dir, $"h{position}.safetensors");
            SafetensorsWriter.Write(path, [new("w", dtype, [100], Bytes(data))]);
            using var file = SafetensorsFile.Open(path);
            using var staging = new HostStaging(CPU);
            using var target = zeros([100], ScalarType.Float32);
            var error = Assert.Throws<CheckpointFormatException>(() => file.CopyTo("w", target, staging));
            Assert.Contains("'w'", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_conversion_that_overflows_is_reported()
    {
        var path = Path.Combine(_dir, "o.safetensors");
        SafetensorsWriter.Write(path, [new("w", "F32", [2], Bytes(new[] { 1f, 70000f }))]);
        using var file = SafetensorsFile.Open(path);
        using var staging = new HostStaging(CPU);
        using var half = zeros([2], ScalarType.Float16);
        Assert.Throws<CheckpointFormatException>(() => file.CopyTo("w", half, staging));
        using var wide = zeros([2], ScalarType.Float32);
        file.CopyTo("w", wide, staging);
        Assert.Equal(70000f, wide[1].item<float>());
    }
}
