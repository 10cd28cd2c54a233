using System.CommandLine;
using System.Globalization;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Quantization;
using DeepSeek.Runtime.Hosting;
using Spectre.Console;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Cli;

/// <summary><c>inspect</c>: what a checkpoint holds, from config.json and the safetensors headers (no weights read).</summary>
public static class InspectCommand
{
    public static Command Build()
    {
        var model = ModelOptions.Model();
        var dtype = ModelOptions.DType();
        var quantization = ModelOptions.Quantization();
        var command = new Command("inspect", "Show a model's architecture, parameters, bytes per dtype, quantisation, resident weight bytes, layers and experts.")
        {
            model, dtype, quantization,
        };
        command.SetAction((parse, _) =>
        {
            try
            {
                var directory = parse.GetValue(model)!;
                var config = DeepSeekConfig.Load(directory);
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
        Row("KV cache per token", $"{N((long)config.NumHiddenLayers * (config.KvLoraRank + config.QkRopeHeadDim))} values");
        return table;
    }
}
