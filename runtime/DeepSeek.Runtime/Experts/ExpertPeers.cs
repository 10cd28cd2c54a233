using DeepSeek.Model.Experts;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The leader's connections to the other ranks of its group: one HTTP/2 channel each, the group
/// token on every call, a Status poll that keeps <see cref="Readiness"/> current (a lost rank is
/// noticed within one poll, a returning one within one backoff), the Compute calls of a step and the
/// placement calls of a rebalance. A rank that runs another placement than the group (it restarted
/// with the initial one after a rebalance) is not ready until the rebalancer brings it up to date.
/// </summary>
public sealed partial class ExpertPeers : IAsyncDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);
    // Generous: a busy rank (a long prefill on its share) must not count as lost.
    private static readonly TimeSpan StatusDeadline = TimeSpan.FromSeconds(10);

    private readonly ExpertParallelSettings _settings;
    private readonly ExpertGroup _group;
    private readonly string _fingerprint;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Metadata _auth;
    private readonly Dictionary<int, (GrpcChannel Channel, Grpc.V1.Experts.ExpertsClient Client, string Address)> _peers = [];
    private readonly Dictionary<int, RankState> _states = [];
    private readonly Dictionary<int, long?> _versions = [];
    private readonly Lock _lock = new();
    private GroupReadiness _readiness;

    public ExpertPeers(ExpertGroup group, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(group);
        var settings = group.Settings;
        _group = group;
        _settings = settings;
        _fingerprint = group.Fingerprint;
        _time = time;
        _logger = logger;
        _auth = new Metadata { { "authorization", $"Bearer {settings.GroupToken}" } };
        for (var rank = 0; rank < settings.WorldSize; rank++)
        {
            if (rank == settings.Rank) continue;
            var peer = settings.Peers[rank];
            var address = $"{peer.Host}:{peer.Port}";
            var channel = GrpcChannel.ForAddress($"http://{address}", new GrpcChannelOptions
            {
                // A step's hidden states: up to max-batch-tokens × hidden × 4 bytes per call.
                MaxReceiveMessageSize = 512 * 1024 * 1024,
                MaxSendMessageSize = 512 * 1024 * 1024,
                HttpHandler = new SocketsHttpHandler
                {
                    ConnectTimeout = TimeSpan.FromSeconds(2),
                    KeepAlivePingDelay = TimeSpan.FromSeconds(10),
                    KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                    EnableMultipleHttp2Connections = true,
                },
            });
            _peers[rank] = (channel, new Grpc.V1.Experts.ExpertsClient(channel), address);
            _states[rank] = new RankState(rank, address, false, "not contacted yet");
            _versions[rank] = null;
        }
        _readiness = GroupReadiness.Of(_states.Values);
    }

    public GroupReadiness Readiness
    {
        get { lock (_lock) return _readiness; }
    }

    /// <summary>Raised (on a pool thread) whenever <see cref="Readiness"/> changes; two ranks' events may arrive out of order, so read <see cref="Readiness"/> for the state now.</summary>
    public event Action<GroupReadiness>? Changed;

    /// <summary>Polls every rank until cancelled; each rank on its own loop with backoff while it fails.</summary>
    public Task RunAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(_peers.Keys.Select(rank => PollAsync(rank, cancellationToken)));

    private async Task PollAsync(int rank, CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var (_, client, address) = _peers[rank];
            string? problem;
            try
            {
                var status = await client.StatusAsync(new RankStatusRequest { WorldSize = _settings.WorldSize }, _auth,
                    _time.GetUtcNow().UtcDateTime + StatusDeadline, cancellationToken);
                problem = StatusProblem(rank, status);
                lock (_lock) _versions[rank] = status.Ready && status.Rank == rank ? status.PlacementVersion : null;
            }
            catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
            {
                problem = $"{e.StatusCode}: {e.Status.Detail}";
                // Unknown until it answers again (it may come back with another placement).
                lock (_lock) _versions[rank] = null;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            Record(new RankState(rank, address, problem is null, problem));
            failures = problem is null ? 0 : failures + 1;
            try
            {
                await Task.Delay(problem is null ? PollInterval : Backoff.Delay(failures), _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private string? StatusProblem(int rank, RankStatus status)
    {
        if (status.Rank != rank || status.WorldSize != _settings.WorldSize)
            return $"it says it is rank {status.Rank} of {status.WorldSize}, expected rank {rank} of {_settings.WorldSize} (check --peers order)";
        if (!string.Equals(status.ModelFingerprint, _fingerprint, StringComparison.Ordinal))
            return $"it serves a different checkpoint (fingerprint {status.ModelFingerprint}, the leader's {_fingerprint})";
        if (!status.Ready) return "loading its experts";
        return _group.Runs(status.PlacementVersion) ? null
            : $"it runs expert placement {status.PlacementVersion}, the group {_group.Placement.Version} (being brought up to date)";
    }

    /// <summary>
    /// Ranks that answered ready with another placement than the one in force here: a restarted rank after
    /// a rebalance, or a data-parallel rank that missed its commit (its peers still answer its version from
    /// the experts they retired, so it counts as ready, but it must still be brought up to date).
    /// </summary>
    public IReadOnlyList<int> RanksOnOtherPlacements()
    {
        var current = _group.Placement.Version;
        lock (_lock) return [.. _versions.Where(v => v.Value is { } version && version != current).Select(v => v.Key).Order()];
    }

    /// <summary>The ranks other than this one.</summary>
    public IReadOnlyCollection<int> Ranks => _peers.Keys;

    /// <summary>Asks <paramref name="rank"/> to load the experts <paramref name="request"/> gives it, beside those in force.</summary>
    /// <exception cref="ExpertTransportException">The rank refused (it cannot load them) or did not answer.</exception>
    public Task<PlacementReply> PrepareAsync(int rank, PreparePlacementRequest request, TimeSpan deadline, CancellationToken cancellationToken) =>
        PlacementCallAsync(rank, "prepare", client => client.PreparePlacementAsync(request, _auth, _time.GetUtcNow().UtcDateTime + deadline, cancellationToken));

    /// <summary>Asks <paramref name="rank"/> to put the placement <paramref name="version"/> it prepared in force.</summary>
    /// <exception cref="ExpertTransportException">The rank refused or did not answer.</exception>
    public Task<PlacementReply> CommitAsync(int rank, long version, TimeSpan deadline, CancellationToken cancellationToken) =>
        PlacementCallAsync(rank, "commit", client => client.CommitPlacementAsync(new PlacementVersionRequest { PlacementVersion = version }, _auth, _time.GetUtcNow().UtcDateTime + deadline, cancellationToken));

    /// <summary>Tells <paramref name="rank"/> to free the placement <paramref name="version"/> it prepared.</summary>
    /// <exception cref="ExpertTransportException">The rank refused or did not answer.</exception>
    public Task<PlacementReply> AbandonAsync(int rank, long version, TimeSpan deadline, CancellationToken cancellationToken) =>
        PlacementCallAsync(rank, "abandon", client => client.AbandonPlacementAsync(new PlacementVersionRequest { PlacementVersion = version }, _auth, _time.GetUtcNow().UtcDateTime + deadline, cancellationToken));

    /// <summary>The picks <paramref name="rank"/>'s own forwards routed since the last call (data-parallel attention).</summary>
    /// <exception cref="ExpertTransportException">The rank refused or did not answer.</exception>
    /// <exception cref="FormatException">The rank answered something that is not a load of this model.</exception>
    public async Task<IReadOnlyList<ExpertLoad>> ExpertLoadAsync(int rank, TimeSpan deadline, CancellationToken cancellationToken)
    {
        var reply = await PlacementCallAsync(rank, "report the expert load of", client => client.ExpertLoadAsync(new ExpertLoadRequest(), _auth, _time.GetUtcNow().UtcDateTime + deadline, cancellationToken));
        return PlacementMessages.FromReply(reply, [.. _group.MoeLayers], _group.Config.NRoutedExperts);
    }

    // A refused placement call says nothing about the rank's health (the Status poll does): it only fails the rebalance.
    private async Task<T> PlacementCallAsync<T>(int rank, string what, Func<Grpc.V1.Experts.ExpertsClient, AsyncUnaryCall<T>> call)
    {
        var (_, client, address) = _peers[rank];
        try
        {
            return await call(client);
        }
        catch (RpcException e)
        {
            throw new ExpertTransportException($"Rank {rank} ({address}) did not {what} the placement: {e.StatusCode}: {e.Status.Detail}", e);
        }
    }

    private void Record(RankState state)
    {
        GroupReadiness? changed = null;
        lock (_lock)
        {
            var before = _states[state.Rank];
            _states[state.Rank] = state;
            if (before.Ready != state.Ready || before.Problem != state.Problem)
            {
                _readiness = GroupReadiness.Of(_states.Values);
                changed = _readiness;
            }
        }
        if (changed is null) return;
        if (state.Ready) LogRankReady(_logger, state.Rank, state.Address);
        else LogRankNotReady(_logger, state.Rank, state.Address, state.Problem);
        Changed?.Invoke(changed);
    }

    /// <summary>One rank's share of a MoE layer. A failed call marks the rank lost before it throws.</summary>
    /// <exception cref="ExpertTransportException">The rank did not answer, or answered with an error; the step that needed it fails with this.</exception>
    public async Task<ComputeReply> ComputeAsync(int rank, ComputeRequest request, TimeSpan deadline, CancellationToken cancellationToken)
    {
        var (_, client, address) = _peers[rank];
        try
        {
            return await client.ComputeAsync(request, _auth, _time.GetUtcNow().UtcDateTime + deadline, cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode != StatusCode.Cancelled || !cancellationToken.IsCancellationRequested)
        {
            var reason = $"{e.StatusCode}: {e.Status.Detail}";
            Record(new RankState(rank, address, false, reason));
            throw new ExpertTransportException($"Expert-parallel rank {rank} ({address}) is unavailable: {reason}", e);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Expert-parallel rank {Rank} ({Address}) is ready")]
    private static partial void LogRankReady(ILogger logger, int rank, string address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Expert-parallel rank {Rank} ({Address}) is not ready: {Problem}")]
    private static partial void LogRankNotReady(ILogger logger, int rank, string address, string? problem);

    public async ValueTask DisposeAsync()
    {
        foreach (var (channel, _, _) in _peers.Values)
        {
            await channel.ShutdownAsync();
            channel.Dispose();
        }
    }
}

/// <summary>Reconnect delays: 200 ms doubling to 5 s, so a restarted rank is found within seconds without hammering a dead address.</summary>
public static class Backoff
{
    public static TimeSpan Delay(int failures) =>
        TimeSpan.FromMilliseconds(Math.Min(5000, 200 * Math.Pow(2, Math.Clamp(failures - 1, 0, 10))));
}
