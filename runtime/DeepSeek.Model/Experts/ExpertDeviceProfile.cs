using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// Rough speeds of a device for <see cref="ExpertCostModel"/>: memory bandwidth, matmul throughput
/// (16-bit and 32/64-bit), the host cost of one op launch (TorchSharp through libtorch), the cost of
/// one host synchronisation (it drains the queue the host had run ahead to fill), and a cap on the
/// temporaries of the dense path and of one expert chunk of the grouped path.
/// </summary>
public sealed record ExpertDeviceProfile(
    double BytesPerSecond,
    double HalfFlopsPerSecond,
    double FullFlopsPerSecond,
    double SecondsPerLaunch,
    double SecondsPerSync,
    long MaxDenseTemporaryBytes,
    long MaxGroupedTemporaryBytes = 512L << 20)
{
    /// <summary>An H100-class GPU: ~3 TB/s HBM, ~400 TFLOP/s bf16, ~50 fp32; ~12 µs per launch as measured.</summary>
    public static ExpertDeviceProfile Cuda { get; } = new(3e12, 4e14, 5e13, 12e-6, 100e-6, 256L << 20);

    /// <summary>A server CPU: memory-bound matmuls, cheap op dispatch, a free "synchronisation".</summary>
    public static ExpertDeviceProfile Cpu { get; } = new(2e10, 1e11, 1e11, 5e-6, 0, 256L << 20);

    public static ExpertDeviceProfile For(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return device.type == DeviceType.CUDA ? Cuda : Cpu;
    }

    public double FlopsPerSecond(int elementSize) => elementSize <= 2 ? HalfFlopsPerSecond : FullFlopsPerSecond;
}
