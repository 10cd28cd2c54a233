using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Parallelism;

/// <summary>
/// The leader's side of the NCCL transport. Per MoE layer, while the group is formed:
/// <list type="number">
/// <item>broadcast an <see cref="ExpertExchangeHeader"/> (layer, placement version, k, rows per rank), so
/// every rank knows which collectives follow and their sizes;</item>
/// <item>dispatch: three all-to-alls (hidden states, expert ids, weights) in which only the leader
/// sends, each rank receiving exactly its own rows (split sizes <c>[0, n₁, …]</c>);</item>
/// <item>the leader computes its own share while the ranks compute theirs;</item>
/// <item>combine: one all-to-all back, each rank sending its <c>[nᵣ, hidden]</c> weighted sums.</item>
/// </list>
/// Device tensors only: no host copy of hidden states; the host reads nothing but the ranks' header.
/// Dispatch returns once the collectives are queued; Combine blocks the host until the answers are in,
/// at most the deadline: a rank lost or stuck fails the step with <see cref="ExpertTransportException"/>,
/// aborts the group and detaches it, and steps fail fast until a new group is attached.
/// <para>
/// One exchange is in flight at a time, from <see cref="IExpertTransport.Dispatch"/> to
/// <see cref="IExpertCombine.Combine"/>; a lock serialises both halves with the idle
/// <see cref="Heartbeat"/> and with <see cref="Attach"/>, which come from another thread, and a
/// heartbeat never goes between the halves: a collective issued inside another exchange would
/// desynchronise the ranks.
/// </para>
/// </summary>
public sealed class NcclExpertTransport : IExpertTransport, IGroupBoundTransport, IDisposable
{
    private readonly SemaphoreSlim _exchange = new(1, 1);
    private readonly ManualResetEventSlim _firstAttach = new(false);
    private readonly TimeSpan _firstFormationWait;
    private readonly TimeSpan _deadline;
    private readonly TimeProvider _time;
    private IProcessGroup? _group;
    private Device _device = CPU;
    private string _detachedBecause = "the NCCL group has not formed yet";
    private long _lastExchange;
    private bool _inFlight;

    /// <param name="deadline">How long Combine (and a heartbeat) waits for the ranks before the group counts as failed.</param>
    /// <param name="time">The clock of the heartbeat's idle interval.</param>
    /// <param name="firstFormationWait">
    /// How long the first exchange waits for the first group (the engine's warm-up may run while the ranks
    /// still load); once a group was attached, an exchange without one fails at once.
    /// </param>
    public NcclExpertTransport(TimeSpan deadline, TimeProvider time, TimeSpan firstFormationWait = default)
    {
        _firstFormationWait = firstFormationWait;
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(deadline, TimeSpan.Zero);
        _deadline = deadline;
        _time = time;
    }

    /// <summary>Raised (on the failing thread) when a failure detaches the group; the argument says why.</summary>
    public event Action<string>? Detached;

    /// <summary>The group in use, or null while none is formed.</summary>
    public IProcessGroup? Group => Volatile.Read(ref _group);

    /// <summary>Why no group is attached (the last failure), for readiness messages.</summary>
    public string DetachedBecause => Volatile.Read(ref _detachedBecause);

    /// <summary>Starts using <paramref name="group"/> (formed and agreed) on <paramref name="device"/>; an earlier one is disposed.</summary>
    public void Attach(IProcessGroup group, Device device)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(device);
        _exchange.Wait();
        try
        {
            var previous = _group;
            _group = group;
            _device = device;
            _inFlight = false;
            _lastExchange = _time.GetTimestamp();
            previous?.Dispose();
            _firstAttach.Set();
        }
        finally
        {
            _exchange.Release();
        }
    }

    /// <summary>Records why no group is attached (a formation that failed), for readiness messages.</summary>
    public void Detach(string reason) => Volatile.Write(ref _detachedBecause, reason);

    /// <remarks><paramref name="placementVersion"/> travels in the header; a rank running another placement refuses the exchange.</remarks>
    public IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches)
    {
        ArgumentNullException.ThrowIfNull(batches);
        if (batches.Count == 0) return new CompletedCombine([]);
        if (_firstFormationWait > TimeSpan.Zero) _firstAttach.Wait(_firstFormationWait);
        _exchange.Wait();
        try
        {
            var group = _group ?? throw new ExpertTransportException($"Expert-parallel NCCL group unavailable: {DetachedBecause}");
            if (_inFlight)
            {
                // The previous exchange was dispatched and never combined (its step threw in between):
                // the ranks are waiting inside it, so this group cannot be used again.
                throw Fail(group, "an exchange was abandoned half-way (a step failed between dispatch and combine)", null);
            }
            var rows = new long[group.WorldSize];
            foreach (var batch in batches)
            {
                if (batch.Rank <= 0 || batch.Rank >= group.WorldSize || rows[batch.Rank] != 0)
                    throw new ArgumentException($"Batches go to ranks 1..{group.WorldSize - 1}, at most one each; got rank {batch.Rank}.", nameof(batches));
                rows[batch.Rank] = batch.Hidden.shape[0];
            }
            var ordered = batches.OrderBy(b => b.Rank).ToList();
            var first = ordered[0];
            var k = (int)first.ExpertIds.shape[1];
            var device = first.Hidden.device;
            var header = new ExpertExchangeHeader(ExchangeCommand.Layer, layerIndex, placementVersion, k, rows);
            var none = new long[group.WorldSize];
            try
            {
                group.Broadcast(tensor(header.ToValues(), device: device), 0, TimeSpan.Zero);
                var hidden = cat(ordered.Select(b => b.Hidden).ToList(), 0).contiguous();
                var ids = cat(ordered.Select(b => b.ExpertIds.to(ScalarType.Int64)).ToList(), 0).contiguous();
                var weights = cat(ordered.Select(b => b.Weights.to(ScalarType.Float32)).ToList(), 0).contiguous();
                group.AllToAll(empty([0, hidden.shape[1]], hidden.dtype, device), hidden, none, rows, TimeSpan.Zero);
                group.AllToAll(empty([0, k], ScalarType.Int64, device), ids, none, rows, TimeSpan.Zero);
                group.AllToAll(empty([0, k], ScalarType.Float32, device), weights, none, rows, TimeSpan.Zero);
            }
            catch (Exception e) when (e is not ExpertTransportException)
            {
                throw Fail(group, $"dispatch of layer {layerIndex} failed: {e.Message}", e);
            }
            // Until Combine, heartbeats stay away and another Dispatch means this one was abandoned.
            _inFlight = true;
            return new PendingExchange(this, group, layerIndex, batches, rows, first.Hidden.shape[1], first.Hidden.dtype, device);
        }
        finally
        {
            _exchange.Release();
        }
    }

    /// <summary>
    /// Keeps the ranks' idle wait alive: when no exchange ran for <paramref name="interval"/>, broadcasts a
    /// heartbeat header. Does nothing while an exchange is in flight or no group is attached. Any thread.
    /// </summary>
    public void Heartbeat(TimeSpan interval)
    {
        if (!_exchange.Wait(0)) return;
        try
        {
            var group = _group;
            if (group is null || _inFlight || _time.GetElapsedTime(_lastExchange) < interval) return;
            Broadcast(group, ExpertExchangeHeader.Heartbeat(group.WorldSize), "heartbeat");
        }
        catch (ExpertTransportException)
        {
            // Detached with the reason; readiness reports it.
        }
        finally
        {
            _exchange.Release();
        }
    }

    /// <summary>Tells the ranks the leader leaves (they go back to waiting for a new group) and disposes the group.</summary>
    public void Stop()
    {
        if (!_exchange.Wait(_deadline)) return;
        try
        {
            if (_group is { } group && !_inFlight)
            {
                try
                {
                    Broadcast(group, ExpertExchangeHeader.Stop(group.WorldSize), "stop");
                }
                catch (ExpertTransportException)
                {
                    // The ranks notice a silent leader by themselves.
                }
            }
            _group?.Dispose();
            _group = null;
            _detachedBecause = "the leader is stopping";
        }
        finally
        {
            _exchange.Release();
        }
    }

    /// <summary>A header alone, on a device tensor of its own (the only tensor work off the engine thread).</summary>
    private void Broadcast(IProcessGroup group, ExpertExchangeHeader header, string what)
    {
        try
        {
            using var scope = NewDisposeScope();
            group.Broadcast(tensor(header.ToValues(), device: _device), 0, _deadline);
            _lastExchange = _time.GetTimestamp();
        }
        catch (Exception e)
        {
            throw Fail(group, $"{what} failed: {e.Message}", e);
        }
    }

    /// <summary>Aborts and detaches <paramref name="group"/> (called with the exchange held), and says why as the step's error.</summary>
    private ExpertTransportException Fail(IProcessGroup group, string reason, Exception? inner)
    {
        var message = $"Expert-parallel NCCL group (generation {group.Generation}) failed: {reason}. Steps fail until the group re-forms.";
        group.Abort();
        if (ReferenceEquals(_group, group))
        {
            _group = null;
            Volatile.Write(ref _detachedBecause, reason);
        }
        _inFlight = false;
        group.Dispose();
        Detached?.Invoke(reason);
        return new ExpertTransportException(message, inner);
    }

    public void Dispose()
    {
        _group?.Dispose();
        _group = null;
        _exchange.Dispose();
        _firstAttach.Dispose();
    }

    private sealed class PendingExchange(NcclExpertTransport transport, IProcessGroup group, int layerIndex, IReadOnlyList<ExpertBatch> batches,
        long[] rows, long hiddenSize, ScalarType dtype, Device device) : IExpertCombine
    {
        private bool _done;

        public IReadOnlyList<Tensor> Combine()
        {
            if (_done) throw new InvalidOperationException("This exchange was already combined.");
            _done = true;
            transport._exchange.Wait();
            try
            {
                if (!ReferenceEquals(transport._group, group))
                    throw new ExpertTransportException($"Expert-parallel NCCL group unavailable: {transport.DetachedBecause}");
                var received = empty([rows.Sum(), hiddenSize], dtype, device);
                var none = new long[rows.Length];
                try
                {
                    group.AllToAll(received, empty([0, hiddenSize], dtype, device), rows, none, transport._deadline);
                }
                catch (Exception e)
                {
                    throw transport.Fail(group, $"combine of layer {layerIndex} failed: {e.Message}", e);
                }
                transport._inFlight = false;
                transport._lastExchange = transport._time.GetTimestamp();
                // Rows arrive in rank order; hand them back in the order dispatched.
                var offsets = new long[rows.Length];
                for (var rank = 1; rank < rows.Length; rank++) offsets[rank] = offsets[rank - 1] + rows[rank - 1];
                return [.. batches.Select(b => received.narrow(0, offsets[b.Rank], rows[b.Rank]))];
            }
            finally
            {
                transport._exchange.Release();
            }
        }
    }
}
