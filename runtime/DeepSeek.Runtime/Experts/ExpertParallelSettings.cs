using System.Net;

namespace DeepSeek.Runtime.Experts;

/// <summary>How experts reach each other: gRPC works everywhere (and is what CPU tests run), NCCL on GPUs.</summary>
public enum ExpertTransportKind
{
    Grpc,
    Nccl,
}

/// <summary>One rank's place in its expert-parallel group, as <c>serve</c>'s flags (or the operator's environment) give it.</summary>
public sealed record ExpertParallelSettings
{
    /// <summary>0 is the leader: it serves the APIs and runs the scheduler.</summary>
    public int Rank { get; init; }

    public int WorldSize { get; init; } = 1;

    /// <summary>Every rank's expert-transport address, in rank order (this rank's included).</summary>
    public IReadOnlyList<DnsEndPoint> Peers { get; init; } = [];

    public int ExpertPort { get; init; } = DeepSeek.Contract.RuntimeContract.ExpertPort;

    public ExpertTransportKind Transport { get; init; } = ExpertTransportKind.Grpc;

    /// <summary>The shared secret ranks present to each other; required when the group has more than one rank.</summary>
    public string? GroupToken { get; init; }

    public int RedundantExperts { get; init; }

    /// <summary>0: the placement never changes after start.</summary>
    public TimeSpan RebalanceInterval { get; init; }

    /// <summary>
    /// Every rank serves the APIs and runs its own scheduler and KV cache over the replicated attention,
    /// sending its own tokens' picks to the experts' holders and answering the others' (design §2.5.1);
    /// false: the leader shape, where rank 0 runs every request and the others only compute experts.
    /// </summary>
    public bool DataParallelAttention { get; init; }

    /// <summary>Whether this process runs an engine: alone, as the leader, or as any rank with data-parallel attention.</summary>
    public bool RunsEngine => IsLeader || DataParallelAttention;

    public bool IsLeader => Rank == 0;

    public bool IsGroup => WorldSize > 1;

    /// <summary>Every failure in one message, flag by flag, so a misconfigured pod says all that is wrong at once.</summary>
    /// <exception cref="ArgumentException">Anything inconsistent.</exception>
    public void Validate()
    {
        if (Problems() is { Count: > 0 } errors) throw new ArgumentException(string.Join(" ", errors));
    }

    /// <summary>Every inconsistency, each naming its flag; <c>serve</c> reports them with its own.</summary>
    public IReadOnlyList<string> Problems()
    {
        var errors = new List<string>();
        if (WorldSize < 1) errors.Add($"--world-size must be at least 1, got {WorldSize}.");
        if (Rank < 0 || Rank >= Math.Max(WorldSize, 1)) errors.Add($"--rank must be between 0 and {Math.Max(WorldSize, 1) - 1} (world size {WorldSize}), got {Rank}.");
        if (ExpertPort is < 0 or > 65535) errors.Add($"--expert-port must be between 0 and 65535, got {ExpertPort}.");
        if (RedundantExperts < 0) errors.Add($"--redundant-experts must be 0 or more, got {RedundantExperts}.");
        if (RebalanceInterval < TimeSpan.Zero) errors.Add($"--rebalance-interval-seconds must be 0 or more, got {RebalanceInterval.TotalSeconds}.");
        if (WorldSize > 1)
        {
            if (Peers.Count != WorldSize) errors.Add($"--peers must list {WorldSize} addresses (one per rank, in rank order), got {Peers.Count}.");
            if (string.IsNullOrWhiteSpace(GroupToken)) errors.Add("A group of more than one rank needs --group-token-file (or DEEPSEEK_GROUP_TOKEN): ranks refuse calls without the token.");
        }
        return errors;
    }

    /// <summary>Parses <c>host:port,host:port,…</c> (IPv6 as <c>[::1]:50052</c>).</summary>
    /// <exception cref="ArgumentException">An entry without a valid port.</exception>
    public static IReadOnlyList<DnsEndPoint> ParsePeers(string? peers)
    {
        if (string.IsNullOrWhiteSpace(peers)) return [];
        var list = new List<DnsEndPoint>();
        foreach (var raw in peers.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = raw.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(raw.AsSpan(colon + 1), out var port) || port is < 1 or > 65535)
                throw new ArgumentException($"--peers entry '{raw}' is not host:port.");
            var host = raw[..colon].Trim('[', ']');
            if (host.Length == 0) throw new ArgumentException($"--peers entry '{raw}' has no host.");
            list.Add(new DnsEndPoint(host, port));
        }
        return list;
    }

    /// <summary>
    /// Why the transport cannot run on <paramref name="device"/>, or null: NCCL needs CUDA, and a group
    /// over NCCL needs the native helper (<paramref name="nativeHelperPresent"/>); world size 1 exchanges nothing.
    /// </summary>
    public string? TransportProblem(string device, bool nativeHelperPresent)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (Transport != ExpertTransportKind.Nccl) return null;
        if (!device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
            return $"--expert-transport nccl needs CUDA devices (NCCL runs between GPUs), not --device {device}; on CPU use --expert-transport grpc (the default there).";
        if (IsGroup && !nativeHelperPresent)
            return "--expert-transport nccl (the default on CUDA) needs the native helper libdeepseek_native.so next to the executable: build it on the GPU host with "
                + "scripts/build-native.sh, or set --expert-transport grpc (DEEPSEEK_EXPERT_TRANSPORT=grpc).";
        if (IsGroup && Peers.Count > 0 && Peers[0].Port >= 65535)
            return $"--peers: rank 0's expert port {Peers[0].Port} leaves no port above it for the NCCL rendezvous store (expert port + 1).";
        return null;
    }

    /// <summary><c>grpc</c> or <c>nccl</c>; absent: NCCL on CUDA, gRPC on CPU.</summary>
    public static ExpertTransportKind ParseTransport(string? value, string device) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" => device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) ? ExpertTransportKind.Nccl : ExpertTransportKind.Grpc,
        "grpc" => ExpertTransportKind.Grpc,
        "nccl" => ExpertTransportKind.Nccl,
        _ => throw new ArgumentException($"--expert-transport must be grpc or nccl, got '{value}'."),
    };
}
