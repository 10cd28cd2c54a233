using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using DeepSeek.Model.Devices;
using DeepSeek.Model.Native;
using DeepSeek.Runtime.Bench;
using Spectre.Console;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Cli;

/// <summary>
/// <c>bench native</c>: the native GPU helper's functions proven and timed from TorchSharp (CUDA graphs,
/// grouped expert GEMM, int4 weight-only matmul, NCCL), at DeepSeek-V2-Lite's shapes.
/// </summary>
public static class NativeBenchCommand
{
    private static readonly string[] Sections = ["graphs", "grouped-mm", "int4", "fp8", "nccl"];

    public static Command Build()
    {
        var device = new Option<string>("--device") { Description = "CUDA device (cuda or cuda:N).", DefaultValueFactory = _ => "cuda" };
        var helperDirectory = new Option<string?>("--helper-dir") { Description = $"Folder holding {NativeHelper.LibraryFileName} (default: next to the executable)." };
        var only = new Option<string>("--sections") { Description = $"Comma-separated sections to run: {string.Join(", ", Sections)}.", DefaultValueFactory = _ => string.Join(",", Sections) };
        var graphBatches = new Option<string>("--graph-batches") { Description = "Batch-size buckets captured into one shared graph pool.", DefaultValueFactory = _ => "1,8,32" };
        var tokens = new Option<string>("--tokens") { Description = "Token counts for the grouped expert GEMM.", DefaultValueFactory = _ => "1,8,32,256,2048" };
        var int4Rows = new Option<string>("--int4-rows") { Description = "Activation rows for the int4 matmul.", DefaultValueFactory = _ => "1,32" };
        var fp8Rows = new Option<string>("--fp8-rows") { Description = "Activation rows (projections) and tokens (routed experts) for FP8.", DefaultValueFactory = _ => "1,8,32,256" };
        var rank = new Option<int>("--nccl-rank") { Description = "This process's rank in the NCCL group.", DefaultValueFactory = _ => 0 };
        var worldSize = new Option<int>("--nccl-world-size") { Description = "Processes in the NCCL group (one per GPU; start each with its own --nccl-rank).", DefaultValueFactory = _ => 1 };
        var store = new Option<string?>("--nccl-store") { Description = "host:port of the rendezvous store rank 0 serves (default with one rank: a free loopback port)." };
        var json = new Option<string?>("--json") { Description = "Also write the results as JSON to this file." };

        var command = new Command("native", "Native GPU helper: CUDA graph replay vs eager, grouped expert GEMM vs padded bmm, int4 vs bf16 matmul, FP8 kernels vs bf16, NCCL collectives.")
        {
            device, helperDirectory, only, graphBatches, tokens, int4Rows, fp8Rows, rank, worldSize, store, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var sections = parse.GetValue(only)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                if (sections.FirstOrDefault(s => !Sections.Contains(s)) is { } unknown)
                    throw new ArgumentException($"--sections: \"{unknown}\" is not one of {string.Join(", ", Sections)}.");
                var (ncclRank, ncclWorld) = (parse.GetValue(rank), parse.GetValue(worldSize));
                if (ncclWorld < 1 || ncclRank < 0 || ncclRank >= ncclWorld)
                    throw new ArgumentException($"--nccl-rank {ncclRank} is not a rank of --nccl-world-size {ncclWorld}.");
                var (storeHost, storePort) = ParseStore(parse.GetValue(store), ncclWorld);
                var deviceName = parse.GetValue(device)!;
                if (!deviceName.StartsWith("cuda", StringComparison.Ordinal)) throw new ArgumentException("bench native needs a CUDA --device.");

                var torchDevice = TorchRuntime.Resolve(ncclWorld > 1 && deviceName == "cuda" ? $"cuda:{ncclRank % cuda.device_count()}" : deviceName);
                var helper = NativeHelper.TryLoad(out var reason, parse.GetValue(helperDirectory))
                    ?? throw new InvalidOperationException(reason);
                AnsiConsole.MarkupLine($"[grey]{Markup.Escape(reason)}; device {Markup.Escape(torchDevice.ToString())}[/]");
                var benchmark = new NativeBenchmark(helper, torchDevice, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"));
                if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 220;

                var report = new NativeBenchReport(torchDevice.ToString(), [], [], [], [], null);
                if (sections.Contains("graphs"))
                {
                    report = report with { Graphs = benchmark.Graphs(BenchCommand.ParseBatches(parse.GetValue(graphBatches)!)) };
                    AnsiConsole.Write(RenderGraphs(report.Graphs));
                }
                if (sections.Contains("grouped-mm"))
                {
                    report = report with { GroupedMm = benchmark.GroupedMm(BenchCommand.ParseBatches(parse.GetValue(tokens)!)) };
                    AnsiConsole.Write(RenderGroupedMm(report.GroupedMm));
                }
                if (sections.Contains("int4"))
                {
                    report = report with { Int4 = benchmark.Int4(BenchCommand.ParseBatches(parse.GetValue(int4Rows)!)) };
                    AnsiConsole.Write(RenderInt4(report.Int4));
                }
                if (sections.Contains("fp8"))
                {
                    report = report with { Fp8 = benchmark.Fp8(BenchCommand.ParseBatches(parse.GetValue(fp8Rows)!)) };
                    AnsiConsole.Write(RenderFp8(report.Fp8));
                }
                if (sections.Contains("nccl"))
                {
                    report = report with { Nccl = benchmark.Nccl(storeHost, storePort, ncclRank, ncclWorld) };
                    AnsiConsole.Write(RenderNccl(report.Nccl));
                }
                if (parse.GetValue(json) is { } path)
                    await File.WriteAllTextAsync(path, JsonSerializer.Serialize(report, NativeBenchJsonContext.Default.NativeBenchReport), cancellationToken);
                return report.AllChecksPass ? 0 : 2;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                Console.Error.WriteLine($"bench native: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    private static (string Host, int Port) ParseStore(string? text, int worldSize)
    {
        if (text is null)
        {
            if (worldSize > 1) throw new ArgumentException("--nccl-store host:port is needed when the group has more than one rank.");
            return ("127.0.0.1", NativeBenchmark.FreeLoopbackPort());
        }
        var colon = text.LastIndexOf(':');
        return colon > 0 && int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536
            ? (text[..colon], port)
            : throw new ArgumentException($"--nccl-store must be host:port, not \"{text}\".");
    }

    private static string F(double value, string format = "N2") => value.ToString(format, CultureInfo.InvariantCulture);

    private static string Check(bool ok) => ok ? "yes" : "[red]NO[/]";

    private static Table RenderGraphs(IEnumerable<GraphResult> rows)
    {
        var table = new Table().Title("CUDA graph replay vs eager: layers × (1×2048 · 2048² bf16 matmul, tanh), buckets sharing one pool")
            .AddColumn("batch").AddColumn("layers").AddColumn("eager ms").AddColumn("replay ms").AddColumn("speedup")
            .AddColumn("bit-identical (captured input)").AddColumn("bit-identical (new input)");
        foreach (var r in rows)
            table.AddRow($"{r.Batch}", $"{r.Layers}", F(r.EagerMs, "N3"), F(r.ReplayMs, "N3"), F(r.Speedup, "N1") + "×", Check(r.IdenticalOnCapturedInput), Check(r.IdenticalOnNewInput));
        return table;
    }

    private static Table RenderGroupedMm(IEnumerable<GroupedMmResult> rows)
    {
        var table = new Table().Title("routed experts of one MoE layer (64 experts, top-6, hidden 2048, inter 1408): gate/up + SwiGLU + down, bf16 three ways and int4 fused")
            .AddColumn("tokens").AddColumn("experts touched").AddColumn("busiest expert rows").AddColumn("_grouped_mm ms").AddColumn("padded bmm ms")
            .AddColumn("per-expert loop ms").AddColumn("_grouped_mm in graph ms").AddColumn("padded bmm in graph ms").AddColumn("grouped vs loop rel. error")
            .AddColumn("grouped weight GB/s (graph)").AddColumn("int4 fused ms").AddColumn("int4 fused in graph ms").AddColumn("int4 fused vs dequantised (f32) rel. error")
            .AddColumn("dequantised in bf16 vs f32 rel. error");
        foreach (var r in rows)
            table.AddRow($"{r.Tokens}", $"{r.ExpertsTouched}", $"{r.BusiestExpertRows}", F(r.GroupedMs, "N3"), F(r.PaddedBmmMs, "N3"), F(r.PerExpertLoopMs, "N3"),
                F(r.GroupedGraphMs, "N3"), F(r.PaddedBmmGraphMs, "N3"),
                (r.GroupedVsLoopRelativeError <= 1e-2 ? "" : "[red]") + r.GroupedVsLoopRelativeError.ToString("E2", CultureInfo.InvariantCulture) + (r.GroupedVsLoopRelativeError <= 1e-2 ? "" : "[/]"),
                F(r.GroupedWeightGbs, "N0"), F(r.Int4FusedMs, "N3"), F(r.Int4FusedGraphMs, "N3"),
                (r.Int4FusedRelativeError <= 1e-2 ? "" : "[red]") + r.Int4FusedRelativeError.ToString("E2", CultureInfo.InvariantCulture) + (r.Int4FusedRelativeError <= 1e-2 ? "" : "[/]"),
                r.Int4DequantisedBf16RelativeError.ToString("E2", CultureInfo.InvariantCulture));
        return table;
    }

    private static Table RenderInt4(IEnumerable<Int4Result> rows)
    {
        var table = new Table().Title(Markup.Escape("int4 weight-only (group 128) vs bf16: x[M, K] · Wᵀ"))
            .AddColumn("weight").AddColumn("N × K").AddColumn("M").AddColumn("bf16 µs").AddColumn("int4 µs").AddColumn("bf16 in graph µs").AddColumn("int4 in graph µs")
            .AddColumn("speedup (graph)").AddColumn("kernel vs dequantised rel. error").AddColumn("int4 vs bf16 rel. error").AddColumn("bf16 GB/s (graph)").AddColumn("int4 GB/s (graph)");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Weight), $"{r.OutFeatures} × {r.InFeatures}", $"{r.Rows}", F(r.Bf16Us, "N1"), F(r.Int4Us, "N1"), F(r.Bf16GraphUs, "N1"), F(r.Int4GraphUs, "N1"),
                F(r.Bf16GraphUs / r.Int4GraphUs, "N2") + "×",
                r.KernelRelativeError.ToString("E2", CultureInfo.InvariantCulture), r.QuantizationRelativeError.ToString("E2", CultureInfo.InvariantCulture),
                F(r.Bf16WeightGbs, "N0"), F(r.Int4WeightGbs, "N0"));
        return table;
    }

    private static Table RenderFp8(IEnumerable<Fp8Result> rows)
    {
        var table = new Table().Title(Markup.Escape("FP8-resident (128×128 blocks) through the helper's kernels vs bf16 holding the same values, replayed from graphs"))
            .AddColumn("weight").AddColumn("N × K").AddColumn("M / tokens").AddColumn("bf16 µs").AddColumn("fp8 µs").AddColumn("speedup")
            .AddColumn("fp8 vs f32 rel. error").AddColumn("bf16 vs f32 rel. error").AddColumn("bf16 GB/s").AddColumn("fp8 GB/s");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Weight), $"{r.OutFeatures} × {r.InFeatures}", $"{r.Rows}", F(r.Bf16GraphUs, "N1"), F(r.Fp8GraphUs, "N1"),
                F(r.Bf16GraphUs / r.Fp8GraphUs, "N2") + "×",
                (r.KernelRelativeError <= 1e-2 ? "" : "[red]") + r.KernelRelativeError.ToString("E2", CultureInfo.InvariantCulture) + (r.KernelRelativeError <= 1e-2 ? "" : "[/]"),
                r.Bf16RelativeError.ToString("E2", CultureInfo.InvariantCulture), F(r.Bf16WeightGbs, "N0"), F(r.Fp8WeightGbs, "N0"));
        return table;
    }

    private static Table RenderNccl(NcclResult r)
    {
        var table = new Table().Title($"NCCL process group (c10d ProcessGroupNCCL, TCPStore rendezvous), rank {r.Rank} of {r.WorldSize}")
            .AddColumn("init + first collective ms").AddColumn("all-to-all equal splits").AddColumn("all-to-all uneven splits").AddColumn("all-gather")
            .AddColumn("broadcast").AddColumn("host-bounded wait").AddColumn("captured all-to-all").AddColumn("lost rank fails in time").AddColumn("64 MiB all-to-all ms");
        table.AddRow(F(r.InitMs, "N1"), Check(r.AllToAllEqualSplits), Check(r.AllToAllUnevenSplits), Check(r.AllGather), Check(r.Broadcast), Check(r.BoundedWait),
            Check(r.CapturedAllToAll), r.LostRankFails is { } lost ? Check(lost) : r.CapturedAllToAll ? "n/a (one rank)" : "n/a (capture failed)", F(r.LargeAllToAllMs, "N3"));
        return table;
    }
}

/// <summary>What <c>bench native --json</c> writes.</summary>
public sealed record NativeBenchReport(
    string Device,
    IReadOnlyList<GraphResult> Graphs,
    IReadOnlyList<GroupedMmResult> GroupedMm,
    IReadOnlyList<Int4Result> Int4,
    IReadOnlyList<Fp8Result> Fp8,
    NcclResult? Nccl)
{
    /// <summary>Graph replays bit-identical to eager, grouped GEMM and int4 kernels within bf16 tolerance, every collective exact.</summary>
    [JsonIgnore]
    public bool AllChecksPass =>
        Graphs.All(g => g.IdenticalOnCapturedInput && g.IdenticalOnNewInput)
        && GroupedMm.All(g => g.GroupedVsLoopRelativeError <= 1e-2 && g.Int4FusedRelativeError <= 1e-2)
        && Int4.All(i => i.KernelRelativeError <= 1e-2)
        && Fp8.All(f => f.KernelRelativeError <= 1e-2)
        && (Nccl is null || (Nccl.AllToAllEqualSplits && Nccl.AllToAllUnevenSplits && Nccl.AllGather && Nccl.Broadcast && Nccl.BoundedWait && Nccl.CapturedAllToAll && Nccl.LostRankFails != false));
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(NativeBenchReport))]
internal sealed partial class NativeBenchJsonContext : JsonSerializerContext;
