using System.CommandLine;
using System.Globalization;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Modeling;
using Spectre.Console;

namespace DeepSeek.Runtime.Cli;

/// <summary><c>inspect</c>: what a checkpoint holds, from config.json and the safetensors headers (no weights read).</summary>
public static class InspectCommand
{
    public static Command Build()
    {
        var model = ModelOptions.Model();
        var command = new Command("inspect", "Show a model's architecture, parameters, bytes per dtype, layers and experts.") { model };
        command.SetAction((parse, _) =>
        {
            try
            {
                var directory = parse.GetValue(model)!;
                var config = DeepSeekConfig.Load(directory);
                using var checkpoint = SafetensorsCheckpoint.Open(directory);
                var inventory = ModelInventory.From(config, checkpoint.TensorNames.Select(checkpoint.Info));
                AnsiConsole.Write(Render(directory, config, inventory));
                return Task.FromResult(0);
            }
            catch (Exception e) when (e is ConfigException or CheckpointFormatException)
            {
                Console.Error.WriteLine($"inspect: {e.Message}");
                return Task.FromResult(1);
            }
        });
        return command;
    }

    private static Table Render(string directory, DeepSeekConfig config, ModelInventory inventory)
    {
        static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
        var table = new Table().AddColumn("property").AddColumn("value");
        void Row(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value));
        Row("model", directory);
        Row("architecture", inventory.Architecture);
        Row("parameters", N(inventory.Parameters));
        foreach (var (dtype, bytes) in inventory.BytesPerDtype) Row($"bytes {dtype}", N(bytes));
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
