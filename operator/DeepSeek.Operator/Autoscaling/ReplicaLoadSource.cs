using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace DeepSeek.Operator.Autoscaling;

/// <summary>Reads the load of a model's replicas; one observation per endpoint, in the same order.</summary>
public interface IReplicaLoadSource
{
    /// <summary>Never throws for a replica that fails to answer: that replica comes back Unreachable.</summary>
    Task<IReadOnlyList<ReplicaLoad>> ReadAsync(string modelKey, IReadOnlyList<ReplicaEndpoint> replicas, CancellationToken cancellationToken);

    /// <summary>Releases what is held for a model (its connections) once it is gone.</summary>
    void Forget(string modelKey);
}

/// <summary>
/// Reads each replica leader's <c>GetLoad</c> over gRPC (h2c), all replicas at once, each call
/// bounded by <paramref name="callTimeout"/>. One channel per address and model, kept between
/// polls and disposed once the address is no longer among the model's replicas.
/// </summary>
public sealed class ReplicaLoadSource(TimeSpan callTimeout) : IReplicaLoadSource, IDisposable
{
    public static readonly TimeSpan DefaultCallTimeout = TimeSpan.FromSeconds(2);

    private readonly TimeSpan callTimeout = callTimeout > TimeSpan.Zero
        ? callTimeout
        : throw new ArgumentOutOfRangeException(nameof(callTimeout), callTimeout, "The GetLoad timeout must be above zero.");
    private readonly Lock gate = new();
    private readonly Dictionary<string, Dictionary<Uri, GrpcChannel>> channels = new(StringComparer.Ordinal);
    private bool disposed;

    public ReplicaLoadSource() : this(DefaultCallTimeout)
    {
    }

    public async Task<IReadOnlyList<ReplicaLoad>> ReadAsync(
        string modelKey, IReadOnlyList<ReplicaEndpoint> replicas, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelKey);
        ArgumentNullException.ThrowIfNull(replicas);
        var modelChannels = ChannelsFor(modelKey, replicas);
        var reads = replicas.Select(replica => replica.Address is { } address
            ? ReadOneAsync(replica.Name, modelChannels[address], cancellationToken)
            : Task.FromResult(ReplicaLoad.Unreachable(replica.Name, "no address yet (the pod is not scheduled or has no IP)")));
        return await Task.WhenAll(reads);
    }

    public void Forget(string modelKey)
    {
        Dictionary<Uri, GrpcChannel>? removed;
        lock (gate)
        {
            if (!channels.Remove(modelKey, out removed)) return;
        }
        foreach (var channel in removed.Values) channel.Dispose();
    }

    public void Dispose()
    {
        List<GrpcChannel> all;
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            all = channels.Values.SelectMany(c => c.Values).ToList();
            channels.Clear();
        }
        foreach (var channel in all) channel.Dispose();
    }

    private async Task<ReplicaLoad> ReadOneAsync(string name, GrpcChannel channel, CancellationToken cancellationToken)
    {
        var client = new Inference.InferenceClient(channel);
        try
        {
            // The deadline travels to the server too, so a slow replica stops working on the answer.
            var report = await client.GetLoadAsync(
                new GetLoadRequest(), deadline: DateTime.UtcNow + callTimeout, cancellationToken: cancellationToken);
            var load = new LoadSnapshot(
                report.Waiting, report.Running, report.KvCacheUsage, report.RecentTokensPerSecond,
                report.MaxRunningRequests, report.MaxQueuedRequests);
            return report.Ready ? ReplicaLoad.Ready(name, load) : ReplicaLoad.NotReady(name, load);
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            return ReplicaLoad.Unreachable(name, Describe(e, channel.Target));
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
            // The caller's cancellation is not the replica's failure.
            throw new OperationCanceledException("Reading replica load was cancelled.", e, cancellationToken);
        }
    }

    private string Describe(RpcException e, string target) => e.StatusCode switch
    {
        StatusCode.DeadlineExceeded => $"GetLoad at {target} did not answer within {callTimeout.TotalSeconds:0.###} s",
        StatusCode.Unavailable => $"GetLoad at {target} is unavailable: {e.Status.Detail}",
        StatusCode.Unimplemented => $"the server at {target} does not implement deepseek.runtime.v1.Inference/GetLoad",
        _ => $"GetLoad at {target} failed with {e.StatusCode}: {e.Status.Detail}",
    };

    private Dictionary<Uri, GrpcChannel> ChannelsFor(string modelKey, IReadOnlyList<ReplicaEndpoint> replicas)
    {
        var wanted = replicas.Select(r => r.Address).OfType<Uri>().ToHashSet();
        var gone = new List<GrpcChannel>();
        Dictionary<Uri, GrpcChannel> current;
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (!channels.TryGetValue(modelKey, out var existing))
            {
                existing = [];
                channels.Add(modelKey, existing);
            }
            foreach (var address in existing.Keys.Where(a => !wanted.Contains(a)).ToList())
            {
                gone.Add(existing[address]);
                existing.Remove(address);
            }
            foreach (var address in wanted.Where(a => !existing.ContainsKey(a)))
            {
                existing.Add(address, CreateChannel(address));
            }
            current = new Dictionary<Uri, GrpcChannel>(existing);
        }
        foreach (var channel in gone) channel.Dispose();
        return current;
    }

    private GrpcChannel CreateChannel(Uri address) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        // A pod IP that drops packets should fail within the call's timeout, not the OS's.
        HttpHandler = new SocketsHttpHandler { ConnectTimeout = callTimeout, EnableMultipleHttp2Connections = true },
        DisposeHttpClient = true,
    });

    /// <summary>The addresses a model has an open channel to (diagnostics).</summary>
    public IReadOnlyCollection<Uri> OpenChannels(string modelKey)
    {
        lock (gate) return channels.TryGetValue(modelKey, out var c) ? [.. c.Keys] : [];
    }
}
