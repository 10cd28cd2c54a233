using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSeek.Testing;

/// <summary>
/// LoRA adapter folders for tests, made without the runtime: random adapters in PEFT's layout
/// (<c>adapter_config.json</c>, <c>adapter_model.safetensors</c>) over a reference checkpoint, and the
/// independent reference they are checked against: a copy of the checkpoint with each adapted weight
/// replaced by <c>W + scale·B·A</c>, computed here in float64 with plain loops (never the runtime's adapter
/// path) and stored as F64. The same adapter shapes as <c>scripts/gpu/make_lora_fixture.py</c> makes with HF.
/// </summary>
public static class LoraFolders
{
    /// <summary>An adapter to make: rank, alpha, rsLoRA, PEFT <c>target_modules</c>, and the seed of its random A and B.</summary>
    public sealed record Spec(string Name, int Seed, int Rank, double Alpha, bool UseRslora, string[] TargetModules)
    {
        public double Scale => UseRslora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;
    }

    /// <summary>Attention projections of a q-LoRA model (DeepSeek-V3), rank 4, alpha 8.</summary>
    public static Spec AttentionR4 { get; } = new("attn-r4", 101, 4, 8, false, ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "o_proj"]);

    /// <summary>The output projection, the dense MLP and the shared experts, rank 8, alpha 16, rsLoRA.</summary>
    public static Spec MlpR8Rslora { get; } = new("mlp-r8-rslora", 202, 8, 16, true, ["o_proj", "gate_proj", "up_proj", "down_proj"]);

    /// <summary>Writes <paramref name="spec"/>'s adapter over the checkpoint in <paramref name="baseDir"/> into <paramref name="outDir"/>; <paramref name="editConfig"/> changes its adapter_config.json.</summary>
    public static string WriteAdapter(string baseDir, Spec spec, string outDir, Action<JsonObject>? editConfig = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Directory.CreateDirectory(outDir);
        var random = new Random(spec.Seed);
        var tensors = new List<SafetensorsWriter.Entry>();
        foreach (var weight in SafetensorsWriter.ReadAll(Path.Combine(baseDir, "model.safetensors")).OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            if (!weight.Name.EndsWith(".weight", StringComparison.Ordinal) || weight.Shape.Length != 2) continue;
            var module = weight.Name[..^".weight".Length];
            if (module.Contains(".mlp.experts.", StringComparison.Ordinal) || module.EndsWith("kv_b_proj", StringComparison.Ordinal)) continue;
            if (!spec.TargetModules.Any(t => module == t || module.EndsWith("." + t, StringComparison.Ordinal))) continue;
            var (outFeatures, inFeatures) = (weight.Shape[0], weight.Shape[1]);
            tensors.Add(SafetensorsWriter.F32($"base_model.model.{module}.lora_A.weight", [spec.Rank, inFeatures], Gaussian(random, spec.Rank * inFeatures, 0.1)));
            tensors.Add(SafetensorsWriter.F32($"base_model.model.{module}.lora_B.weight", [outFeatures, spec.Rank], Gaussian(random, outFeatures * spec.Rank, 0.1)));
        }
        if (tensors.Count == 0) throw new InvalidOperationException($"No module of {baseDir} matches {string.Join(", ", spec.TargetModules)}.");
        SafetensorsWriter.Write(Path.Combine(outDir, "adapter_model.safetensors"), tensors);
        var config = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["r"] = spec.Rank,
            ["lora_alpha"] = spec.Alpha,
            ["use_rslora"] = spec.UseRslora,
            ["use_dora"] = false,
            ["bias"] = "none",
            ["lora_dropout"] = 0.0,
            ["target_modules"] = new JsonArray([.. spec.TargetModules.Select(t => (JsonNode)t)]),
            ["modules_to_save"] = null,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
        };
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(outDir, "adapter_config.json"), config.ToJsonString());
        return outDir;
    }

    /// <summary>
    /// A copy of the checkpoint folder <paramref name="baseDir"/> in <paramref name="outDir"/> whose adapted
    /// weights are <c>W + scale·B·A</c> (F64) for the adapter in <paramref name="adapterDir"/>, read back
    /// from its files: what a request on that adapter must equal.
    /// </summary>
    public static string WriteMerged(string baseDir, string adapterDir, string outDir)
    {
        Directory.CreateDirectory(outDir);
        foreach (var file in Directory.GetFiles(baseDir).Where(f => Path.GetFileName(f) != "model.safetensors"))
            File.Copy(file, Path.Combine(outDir, Path.GetFileName(file)), overwrite: true);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapterDir, "adapter_config.json")));
        var rank = config.RootElement.GetProperty("r").GetInt32();
        var alpha = config.RootElement.GetProperty("lora_alpha").GetDouble();
        var scale = config.RootElement.TryGetProperty("use_rslora", out var rs) && rs.GetBoolean() ? alpha / Math.Sqrt(rank) : alpha / rank;
        var lora = SafetensorsWriter.ReadAll(Path.Combine(adapterDir, "adapter_model.safetensors")).ToDictionary(t => t.Name);
        var merged = new List<SafetensorsWriter.Entry>();
        foreach (var weight in SafetensorsWriter.ReadAll(Path.Combine(baseDir, "model.safetensors")))
        {
            var module = weight.Name.EndsWith(".weight", StringComparison.Ordinal) ? weight.Name[..^".weight".Length] : weight.Name;
            if (!lora.TryGetValue($"base_model.model.{module}.lora_A.weight", out var a))
            {
                merged.Add(weight);
                continue;
            }
            var b = lora[$"base_model.model.{module}.lora_B.weight"];
            var (outFeatures, inFeatures) = ((int)weight.Shape[0], (int)weight.Shape[1]);
            var w = Doubles(weight);
            var av = Doubles(a);
            var bv = Doubles(b);
            for (var o = 0; o < outFeatures; o++)
                for (var i = 0; i < inFeatures; i++)
                {
                    var delta = 0.0;
                    for (var k = 0; k < rank; k++) delta += bv[(o * rank) + k] * av[(k * inFeatures) + i];
                    w[(o * inFeatures) + i] += scale * delta;
                }
            var bytes = new byte[w.Length * 8];
            for (var j = 0; j < w.Length; j++) BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(j * 8), w[j]);
            merged.Add(new SafetensorsWriter.Entry(weight.Name, "F64", weight.Shape, bytes));
        }
        SafetensorsWriter.Write(Path.Combine(outDir, "model.safetensors"), merged);
        return outDir;
    }

    private static double[] Doubles(SafetensorsWriter.Entry t) => t.Dtype switch
    {
        "F32" => [.. Enumerable.Range(0, t.Data.Length / 4).Select(i => (double)BinaryPrimitives.ReadSingleLittleEndian(t.Data.AsSpan(i * 4)))],
        "F64" => [.. Enumerable.Range(0, t.Data.Length / 8).Select(i => BinaryPrimitives.ReadDoubleLittleEndian(t.Data.AsSpan(i * 8)))],
        _ => throw new NotSupportedException($"{t.Name} is {t.Dtype}; these tests make F32 and F64 tensors only."),
    };

    private static float[] Gaussian(Random random, long count, double std)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            // Box-Muller: two uniforms in (0, 1] to one normal.
            var u1 = 1.0 - random.NextDouble();
            var u2 = random.NextDouble();
            values[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return values;
    }
}
