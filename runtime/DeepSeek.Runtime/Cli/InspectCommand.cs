using System.CommandLine;
using System.Globalization;
using DeepSeek.Engine;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Planning;
using DeepSeek.Model.Quantization;
using DeepSeek.Runtime.Hosting;
using Spectre.Console;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Cli;

/// <summary>
/// <c>inspect</c>: what a checkpoint holds, from config.json and the safetensors headers (no weights
/// read); with <c>--plan</c>, how it fits GPUs (<see cref="InspectPlan"/>), from config.json alone.
/// </summary>
public static class InspectCommand
{
    public static Command Build()
    {
        var model = ModelOptions.Model();
        var dtype = ModelOptions.DType();
        var quantization = ModelOptions.Quantization();
        var plan = new Option<bool>("--plan")
        {
            Description = "Instead, plan one GPU's memory per expert-parallel size (weights in bf16 as loaded today, int4, and FP8 as the target), "
                + "with the KV cache tokens left; needs config.json only.",
        };
        var gpus = new Option<int>("--gpus") { Description = "GPUs to plan for (--plan).", DefaultValueFactory = _ => 8 };
        gpus.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1) result.AddError($"--gpus must be at least 1, not {result.GetValueOrDefault<int>()}.");
        });
        var gpuMemory = new Option<long>("--gpu-memory")
        {
            Description = "Memory of each GPU (--plan): a number and a unit, 80GiB (H100), 141GB (H200); GiB are 1024³ bytes, GB 1000³.",
            DefaultValueFactory = _ => 80L << 30,
            CustomParser = result =>
            {
                var bytes = ByteSize.Parse(result.Tokens.Count > 0 ? result.Tokens[0].Value : "", out var error);
                if (error is not null) result.AddError($"--gpu-memory {error}");
                return bytes ?? 0;
            },
        };
        var redundant = new Option<int>("--redundant-experts")
        {
            Description = "Extra routed-expert copies per MoE layer to plan for (--plan), as serve's flag of that name.",
            DefaultValueFactory = _ => 0,
        };
        redundant.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 0) result.AddError($"--redundant-experts must be 0 or more, not {result.GetValueOrDefault<int>()}.");
        });
        var command = new Command("inspect", "Show a model's architecture, parameters, bytes per dtype, quantisation, resident weight bytes, layers and experts.")
        {
            model, dtype, quantization, plan, gpus, gpuMemory, redundant,
        };
        command.SetAction((parse, _) =>
        {
            try
            {
                var directory = parse.GetValue(model)!;
                var config = DeepSeekConfig.Load(directory);
                if (parse.GetValue(plan))
                {
                    // serve's defaults decide the KV share and the context one request may reach.
                    var defaults = EngineOptions.Defaults;
                    var options = new MemoryPlanOptions(parse.GetValue(redundant), defaults.KvCacheMemoryFraction, defaults.ContextTokens(config.MaxPositionEmbeddings));
                    foreach (var line in InspectPlan.Lines(config, parse.GetValue(gpuMemory), parse.GetValue(gpus), options)) Console.WriteLine(line);
                    return Task.FromResult(0);
                }
                using var checkpoint = SafetensorsCheckpoint.Open(directory);
                var inventory = ModelInventory.From(config, checkpoint.TensorNames.Select(checkpoint.Info));
                var scalar = DTypeNames.Parse(parse.GetValue(dtype)!);
                var weights = WeightQuantization.Parse(parse.GetValue(quantization)!);
                weights.CheckDType(scalar);
                var resident = Int4Quantization.ResidentBytesFor(config, scalar, weights);
                AnsiConsole.Write(Render(directory, config, inventory, scalar, weights, resident));
                return Task.FromResult(0);
            }
            catch (Exception e) when (e is ConfigException or CheckpointFormatException or ArgumentException)
            {
                Console.Error.WriteLine($"inspect: {e.Message}");
                return Task.FromResult(1);
            }
        });
        return command;
    }

    private static Table Render(string directory, DeepSeekConfig config, ModelInventory inventory, ScalarType dtype, WeightQuantization weights, long resident)
    {
        static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
        var table = new Table().AddColumn("property").AddColumn("value");
        void Row(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value));
        Row("model", directory);
        Row("architecture", inventory.Architecture);
        Row("parameters", N(inventory.Parameters));
        foreach (var (stored, bytes) in inventory.BytesPerDtype) Row($"bytes {stored}", N(bytes));
        Row("checkpoint quantisation", config.Quantization is { } fp8
            ? $"{fp8} (weight_scale_inv per block); dequantised to the run dtype at load"
            : "none");
        var run = dtype.ToString().ToLowerInvariant();
        Row("resident weight bytes", weights.IsInt4
            ? $"{N(resident)} ({weights}, bf16 activations)"
            : $"{N(resident)} ({run})");
        Row("layers", $"{inventory.Layers} ({inventory.DenseLayers} dense, {inventory.MoeLayers} MoE)");
        Row("hidden size", N(config.HiddenSize));
        Row("attention", $"MLA, {config.NumAttentionHeads} heads, kv_lora_rank {config.KvLoraRank}, q_lora_rank {config.QLoraRank?.ToString(CultureInfo.InvariantCulture) ?? "none"}, rope {config.Rope.Type}");
        Row("experts", $"{inventory.RoutedExperts} routed + {inventory.SharedExperts} shared, {inventory.ExpertsPerToken} routed per token");
        Row("routing", $"{config.ScoringFunc}, {config.TopkMethod}, norm_topk_prob {config.NormTopkProb}, scaling {config.RoutedScalingFactor.ToString(CultureInfo.InvariantCulture)}");
        Row("parameters per routed expert", N(inventory.ParametersPerRoutedExpert));
        Row("active parameters per token", N(inventory.ActiveParametersPerToken));
        if (inventory.ParametersOutsideModelLayers > 0) Row("parameters not run (MTP layers)", N(inventory.ParametersOutsideModelLayers));
        Row("KV cache per token", $"{N(MlaKvCache.ValuesPerToken(config))} values");
        return table;
    }
}
