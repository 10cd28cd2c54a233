using System.CommandLine;
using DeepSeek.Model.Quantization;
using Flags = DeepSeek.Contract.RuntimeContract.Flags;

namespace DeepSeek.Runtime.Cli;

/// <summary>Options shared by the verbs that read a model folder.</summary>
public static class ModelOptions
{
    /// <summary>The tiny DeepSeek-V3 checkpoint copied into the build output (see the csproj).</summary>
    public static string EmbeddedModelDirectory => Path.Combine(AppContext.BaseDirectory, "models", "deepseek-v3-tiny");

    public static Option<string> Model() => new(Flags.Model)
    {
        Description = "Hugging Face-layout model folder (config.json, *.safetensors, tokenizer.json). "
            + "Default: the embedded tiny DeepSeek-V3. Env: DEEPSEEK_MODEL.",
        DefaultValueFactory = _ => EnvironmentDefault.GetString(Flags.Model) ?? EmbeddedModelDirectory,
    };

    public static Option<string> Device() => new(Flags.Device)
    {
        Description = "cpu or cuda (cuda:N). Env: DEEPSEEK_DEVICE.",
        DefaultValueFactory = _ => EnvironmentDefault.GetString(Flags.Device) ?? "cpu",
    };

    public static Option<string> DType() => new(Flags.Dtype)
    {
        Description = "Weights and activations: float32, bfloat16, float16 or float64. Env: DEEPSEEK_DTYPE.",
        DefaultValueFactory = _ => EnvironmentDefault.GetString(Flags.Dtype) ?? "float32",
    };

    public static Option<string> Quantization()
    {
        var option = new Option<string>(Flags.Quantization)
        {
            Description = "How weights are held: none (the --dtype; an FP8 checkpoint is dequantised to it at load) or int4 "
                + "(weight-only, group 128, quantised at load; needs --dtype bfloat16, and the native helper on CUDA). Env: DEEPSEEK_QUANTIZATION.",
            DefaultValueFactory = _ => EnvironmentDefault.GetString(Flags.Quantization) ?? "none",
        };
        option.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string>();
            if (!WeightQuantization.Names.Contains(value))
                result.AddError($"--quantization {value} is not supported; use {string.Join(" or ", WeightQuantization.Names)}.");
        });
        return option;
    }

    public static Option<bool> CudaGraphs() => new(Flags.CudaGraphs)
    {
        Description = "Replay decode steps as CUDA graphs (true or false); on CUDA with the native helper and bf16 or int4 weights, "
            + "elsewhere it has no effect. Env: DEEPSEEK_CUDA_GRAPHS.",
        DefaultValueFactory = _ => EnvironmentDefault.Get(Flags.CudaGraphs, true),
    };

    /// <summary>
    /// <c>--threads N</c> (env <c>DEEPSEEK_THREADS</c>): LibTorch's intra-op threads; absent, <see cref="Hosting.CpuThreads"/>
    /// chooses from the CPUs the process may use. Below 1 is a usage error (exit 2), from the flag or the variable.
    /// </summary>
    public static Option<int?> Threads()
    {
        var option = new Option<int?>(Flags.Threads)
        {
            Description = "LibTorch intra-op threads (CPU work, and host-side work on CUDA). Default: the CPUs available to the process "
                + "(its cgroup CPU quota rounded down, else its affinity mask). Env: DEEPSEEK_THREADS.",
            DefaultValueFactory = _ => ThreadsFromEnvironment(),
        };
        option.Validators.Add(result =>
        {
            // On the token itself: one that is not a number already has its parse error, and reading the value would throw.
            if (result.Tokens is [var token] && int.TryParse(token.Value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var threads) && threads < 1)
                result.AddError($"{Flags.Threads} must be at least 1, not {threads}.");
        });
        return option;
    }

    private static int? ThreadsFromEnvironment()
    {
        if (EnvironmentDefault.GetString(Flags.Threads) is null) return null;
        var threads = EnvironmentDefault.Get(Flags.Threads, 0);
        return threads >= 1 ? threads
            : throw new EnvironmentDefaultException($"Environment variable {EnvironmentDefault.VariableFor(Flags.Threads)}={threads} must be at least 1 for {Flags.Threads}.");
    }
}
