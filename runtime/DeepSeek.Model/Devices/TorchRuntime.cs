using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSeek.Model.Devices;

/// <summary>
/// Picks the tensor device. CUDA comes from a PyTorch installation's LibTorch (NuGet here has no
/// TorchSharp CUDA package): when <c>DEEPSEEK_LIBTORCH_DIR</c> names its <c>torch/lib</c>, LibTorch is
/// loaded from there, in dependency order, before TorchSharp's own native library — for <c>cpu</c> too,
/// since a bundle published for GPU hosts carries no CPU LibTorch of its own.
/// </summary>
public static class TorchRuntime
{
    public const string LibTorchDirVariable = "DEEPSEEK_LIBTORCH_DIR";

    private static readonly string[] CudaLibraries = ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];
    private static readonly Lock Gate = new();
    private static bool _cudaReady;
    private static bool _libTorchLoaded;

    /// <summary>Returns the device for "cpu" or "cuda" (optionally "cuda:N"), initialising CUDA on first use.</summary>
    public static Device Resolve(string device)
    {
        if (device == "cpu")
        {
            EnsureLoaded();
            return CPU;
        }
        if (!device.StartsWith("cuda", StringComparison.Ordinal))
            throw new ArgumentException($"Device \"{device}\" is not supported; use cpu or cuda.", nameof(device));
        EnsureCuda();
        return torch.device(device);
    }

    /// <summary>
    /// Loads LibTorch (from <c>DEEPSEEK_LIBTORCH_DIR</c> when set) before a first use of <c>torch</c>
    /// that is not about a device, such as setting its thread count: TorchSharp's static constructor
    /// would otherwise look for a CPU LibTorch beside itself, which a GPU bundle does not carry.
    /// </summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
            if (LoadLibTorch()) InitializeDeviceType(DeviceType.CPU);
    }

    private static void EnsureCuda()
    {
        lock (Gate)
        {
            if (_cudaReady) return;
            if (LoadLibTorch()) InitializeDeviceType(DeviceType.CUDA);
            if (!cuda.is_available())
                throw new InvalidOperationException(
                    $"CUDA was asked for but is not available. Set {LibTorchDirVariable} to the torch/lib folder of a CUDA-enabled PyTorch installation, or use --device cpu.");
            _cudaReady = true;
        }
    }

    /// <summary>Loads LibTorch from <c>DEEPSEEK_LIBTORCH_DIR</c> once, when it is set; false when it is not (TorchSharp's own package then serves).</summary>
    private static bool LoadLibTorch()
    {
        var directory = Environment.GetEnvironmentVariable(LibTorchDirVariable);
        if (string.IsNullOrWhiteSpace(directory)) return false;
        if (_libTorchLoaded) return true;
        foreach (var library in CudaLibraries)
        {
            var path = Path.Combine(directory, library);
            if (!File.Exists(path))
                throw new InvalidOperationException($"{LibTorchDirVariable}={directory} has no {library}; point it at a PyTorch installation's torch/lib.");
            NativeLibrary.Load(path);
        }
        var torchSharpNative = new[] { Path.Combine("runtimes", "linux-x64", "native"), "" }
            .Select(folder => Path.Combine(AppContext.BaseDirectory, folder, "libLibTorchSharp.so"))
            .FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"libLibTorchSharp.so is not next to {AppContext.BaseDirectory}; rebuild or republish the runtime.");
        NativeLibrary.Load(torchSharpNative);
        _libTorchLoaded = true;
        return true;
    }
}
