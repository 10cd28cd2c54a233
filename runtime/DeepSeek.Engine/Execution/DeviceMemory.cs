using System.Runtime.InteropServices;

namespace DeepSeek.Engine.Execution;

/// <summary>
/// Free memory of the device the KV cache goes to. CUDA: the driver's <c>cuMemGetInfo</c> on the
/// device's primary context (TorchSharp exposes no memory query). CPU: the memory the runtime may
/// still use (physical memory or the container limit, minus what this process holds, the weights
/// included), so a fraction of it is a share of what is left after loading.
/// </summary>
public static partial class DeviceMemory
{
    public static long FreeBytes(string device)
    {
        ArgumentException.ThrowIfNullOrEmpty(device);
        if (device == "cpu")
        {
            var info = GC.GetGCMemoryInfo();
            using var process = System.Diagnostics.Process.GetCurrentProcess();
            return Math.Max(0, info.TotalAvailableMemoryBytes - process.WorkingSet64);
        }
        var ordinal = device.Contains(':', StringComparison.Ordinal) ? int.Parse(device[(device.IndexOf(':', StringComparison.Ordinal) + 1)..], System.Globalization.CultureInfo.InvariantCulture) : 0;
        return CudaFreeBytes(ordinal);
    }

    private static long CudaFreeBytes(int ordinal)
    {
        Check(CuInit(0), "cuInit");
        Check(CuDeviceGet(out var device, ordinal), "cuDeviceGet");
        Check(CuDevicePrimaryCtxRetain(out var context, device), "cuDevicePrimaryCtxRetain");
        try
        {
            Check(CuCtxPushCurrent(context), "cuCtxPushCurrent");
            try
            {
                Check(CuMemGetInfo(out var free, out _), "cuMemGetInfo");
                return (long)free;
            }
            finally
            {
                _ = CuCtxPopCurrent(out _);
            }
        }
        finally
        {
            _ = CuDevicePrimaryCtxRelease(device);
        }
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
            throw new InvalidOperationException($"The CUDA driver's {call} failed with error {result}; give the KV cache size as --kv-cache-blocks instead.");
    }

    private const string Driver = "libcuda.so.1";

    [LibraryImport(Driver, EntryPoint = "cuInit")]
    private static partial int CuInit(uint flags);

    [LibraryImport(Driver, EntryPoint = "cuDeviceGet")]
    private static partial int CuDeviceGet(out int device, int ordinal);

    [LibraryImport(Driver, EntryPoint = "cuDevicePrimaryCtxRetain")]
    private static partial int CuDevicePrimaryCtxRetain(out IntPtr context, int device);

    [LibraryImport(Driver, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
    private static partial int CuDevicePrimaryCtxRelease(int device);

    [LibraryImport(Driver, EntryPoint = "cuCtxPushCurrent_v2")]
    private static partial int CuCtxPushCurrent(IntPtr context);

    [LibraryImport(Driver, EntryPoint = "cuCtxPopCurrent_v2")]
    private static partial int CuCtxPopCurrent(out IntPtr context);

    [LibraryImport(Driver, EntryPoint = "cuMemGetInfo_v2")]
    private static partial int CuMemGetInfo(out nuint free, out nuint total);
}
