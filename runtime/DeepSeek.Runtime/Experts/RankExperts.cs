using System.Collections.Concurrent;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Grpc.V1;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// A non-leader rank's work: its shard of the model answers the leader's Compute calls, one at a
/// time, on the rank's own tensor thread (dispose scopes are per thread, and one thread keeps the
/// device's work in order). gRPC handlers only queue work and await it.
/// </summary>
public sealed class RankExperts : IRankExperts, IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;
    private readonly int _rank;
    private readonly int _worldSize;
    private readonly string _fingerprint;
    private DeepSeekForCausalLM? _model;
    private readonly long _placementVersion;

    public RankExperts(int rank, int worldSize, string fingerprint, long placementVersion)
    {
        _rank = rank;
        _worldSize = worldSize;
        _fingerprint = fingerprint;
        _placementVersion = placementVersion;
        _thread = new Thread(Run) { IsBackground = true, Name = $"rank-{rank}-experts" };
        _thread.Start();
    }

    /// <summary>Loads the shard on the tensor thread (the model is created and materialised there).</summary>
    public Task LoadAsync(Func<DeepSeekForCausalLM> load) => RunAsync(() =>
    {
        _model = load();
        return true;
    }, CancellationToken.None);

    public bool IsReady => Volatile.Read(ref _model) is not null;

    /// <summary>Runs <paramref name="work"/> with the loaded shard on the tensor thread (the NCCL transport's follower loop lives there).</summary>
    public Task<T> RunWithModelAsync<T>(Func<DeepSeekForCausalLM, T> work, CancellationToken cancellationToken) =>
        RunAsync(() => work(_model ?? throw new InvalidOperationException($"Rank {_rank} has not loaded its experts yet.")), cancellationToken);

    public RankStatus Status()
    {
        var status = new RankStatus
        {
            Rank = _rank,
            WorldSize = _worldSize,
            Ready = IsReady,
            ModelFingerprint = _fingerprint,
            PlacementVersion = _placementVersion,
        };
        if (Volatile.Read(ref _model) is { } model) status.LocalExperts.AddRange(model.RoutedExperts.Select(e => e.HeldExperts.Count));
        return status;
    }

    public Task<ComputeReply> ComputeAsync(ComputeRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.PlacementVersion != _placementVersion)
            throw new InvalidOperationException($"Rank {_rank} runs placement {_placementVersion}, the leader sent layer {request.Layer} for placement {request.PlacementVersion}.");
        return RunAsync(() =>
        {
            var model = _model ?? throw new InvalidOperationException($"Rank {_rank} has not loaded its experts yet.");
            var experts = model.RoutedExperts.FirstOrDefault(e => e.LayerIndex == request.Layer)
                ?? throw new ArgumentException($"Layer {request.Layer} is not a MoE layer of this model.");
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var device = model.Device;
            var hidden = WireTensors.Decode(request.Hidden, device);
            var ids = WireTensors.Decode(request.ExpertIds, device);
            var weights = WireTensors.Decode(request.Weights, device);
            if (hidden.shape.Length != 2 || hidden.shape[1] != experts.HiddenSize)
                throw new ArgumentException($"Hidden states must be [n, {experts.HiddenSize}], got [{string.Join(", ", hidden.shape)}].");
            if (ids.dtype != ScalarType.Int64 || ids.shape.Length != 2 || ids.shape[0] != hidden.shape[0] || !weights.shape.SequenceEqual(ids.shape))
                throw new ArgumentException($"Expert ids (int64) and weights must both be [{hidden.shape[0]}, k], got [{string.Join(", ", ids.shape)}] {ids.dtype} and [{string.Join(", ", weights.shape)}].");
            if (ids.numel() > 0 && (ids.max().item<long>() >= experts.ExpertCount || ids.min().item<long>() < -1))
                throw new ArgumentException($"Expert ids must be in [-1, {experts.ExpertCount}).");
            var output = experts.ComputeHeld(new ExpertBatch(_rank, hidden.to(model.DType), ids, weights.to(ScalarType.Float32)));
            return new ComputeReply { Output = WireTensors.Encode(output) };
        }, cancellationToken);
    }

    private Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            if (cancellationToken.IsCancellationRequested)
            {
                completion.TrySetCanceled(cancellationToken);
                return;
            }
            try
            {
                completion.TrySetResult(work());
            }
            catch (Exception e)
            {
                completion.TrySetException(e);
            }
        }, CancellationToken.None);
        return completion.Task;
    }

    private void Run()
    {
        foreach (var work in _work.GetConsumingEnumerable()) work();
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
        _work.Dispose();
        _model?.Dispose();
    }
}
