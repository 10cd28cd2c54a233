using System.Globalization;
using System.Net;

namespace DeepSeek.Runtime.Hosting;

/// <summary>One rank a pod's <c>serve</c> starts: its rank in the group, its device and its own ports.</summary>
public sealed record LocalRank(int LocalIndex, int Rank, string Device, int HttpPort, int GrpcPort, int ExpertPort);

/// <summary>
/// A pod with several GPUs runs one rank per GPU, each a <c>serve</c> process of its own, started and
/// supervised by the pod's <c>serve --local-ranks L</c> (a pure plan here; <see cref="LocalRankSupervisor"/>
/// runs it). With <c>L</c> local ranks:
/// <list type="bullet">
/// <item><c>--world-size</c> counts ranks (all pods together), <c>--rank</c> is the pod's index in the
/// group, and the pod's ranks are <c>rank·L … rank·L + L − 1</c>;</item>
/// <item><c>--peers</c> lists one address per pod (its expert port); local rank <c>i</c> of a pod listens
/// on every base port + <see cref="PortStride"/>·i (HTTP, gRPC and expert alike), so local rank 0 keeps the
/// pod's ports (its probes, its Service) and the NCCL store (rank 0's expert port + 1) collides with none;</item>
/// <item><c>--device cuda</c> gives local rank <c>i</c> <c>cuda:i</c>; <c>cpu</c> stays <c>cpu</c> (tests).</item>
/// </list>
/// </summary>
public static class LocalRankPlan
{
    /// <summary>Port distance between a pod's local ranks.</summary>
    public const int PortStride = 10;

    /// <exception cref="ArgumentException">Everything inconsistent, in one message.</exception>
    public static IReadOnlyList<LocalRank> For(int localRanks, int podIndex, int worldSize, string device, int httpPort, int grpcPort, int expertPort)
    {
        ArgumentNullException.ThrowIfNull(device);
        var errors = new List<string>();
        if (localRanks < 2) errors.Add($"--local-ranks plans two ranks or more, got {localRanks}.");
        else if (worldSize < localRanks || worldSize % localRanks != 0)
            errors.Add($"--world-size {worldSize} must be a multiple of --local-ranks {localRanks} (every pod runs the same number of ranks).");
        else if (podIndex < 0 || podIndex >= worldSize / localRanks)
            errors.Add($"--rank is the pod's index with --local-ranks: 0 … {(worldSize / localRanks) - 1}, got {podIndex}.");
        var cuda = device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase);
        if (cuda && device.Contains(':', StringComparison.Ordinal))
            errors.Add($"--device {device}: with --local-ranks give plain cuda (local rank i gets cuda:i).");
        else if (!cuda && device != "cpu") errors.Add($"--device must be cpu or cuda, got {device}.");
        foreach (var (name, port) in new[] { ("--http-port", httpPort), ("--grpc-port", grpcPort), ("--expert-port", expertPort) })
            if (port < 1 || port + (PortStride * (long)(Math.Max(localRanks, 1) - 1)) > 65535)
                errors.Add($"{name} {port}: local ranks listen on it + {PortStride}·i, so it must be a fixed port with room for {localRanks} ranks.");
        if (errors.Count > 0) throw new ArgumentException(string.Join(" ", errors));
        return [.. Enumerable.Range(0, localRanks).Select(i => new LocalRank(i, (podIndex * localRanks) + i,
            cuda ? string.Create(CultureInfo.InvariantCulture, $"cuda:{i}") : "cpu",
            httpPort + (PortStride * i), grpcPort + (PortStride * i), expertPort + (PortStride * i)))];
    }

    /// <summary>Every rank's expert address from one address per pod: rank <c>p·L + i</c> at pod p's host, its port + stride·i.</summary>
    /// <exception cref="ArgumentException">Not one address per pod.</exception>
    public static string RankPeers(IReadOnlyList<DnsEndPoint> pods, int localRanks, int worldSize)
    {
        ArgumentNullException.ThrowIfNull(pods);
        var podCount = worldSize / localRanks;
        if (pods.Count != podCount)
            throw new ArgumentException($"--peers lists one address per pod with --local-ranks: {podCount} for {worldSize} ranks of {localRanks} per pod, got {pods.Count}.");
        return string.Join(",", pods.SelectMany(pod => Enumerable.Range(0, localRanks).Select(i =>
            string.Create(CultureInfo.InvariantCulture, $"{(pod.Host.Contains(':', StringComparison.Ordinal) ? $"[{pod.Host}]" : pod.Host)}:{pod.Port + (PortStride * i)}"))));
    }
}
