using DeepSeek.Model.Native;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Support;

/// <summary>
/// A process group whose ranks are threads of this process, for CPU tests of code written against
/// <see cref="IProcessGroup"/>: every collective completes when every member has issued it (as NCCL's do),
/// members exchange plain bytes (never a tensor of another thread's dispose scope), a collective that
/// not every member joins within its wait fails, and a failed or aborted member fails every later call.
/// A member may be killed to stand for a lost rank: it stops taking part, so the others' next
/// collective times out.
/// </summary>
public sealed class ThreadProcessGroup
{
    private readonly object _lock = new();
    private readonly Dictionary<long, Posted?[]> _calls = [];
    private readonly TimeSpan _unboundedWait;

    /// <param name="worldSize">Members.</param>
    /// <param name="generation">What <see cref="IProcessGroup.Generation"/> reports.</param>
    /// <param name="unboundedWait">How long a call with wait zero (stream-only on a GPU) may block before it fails.</param>
    public ThreadProcessGroup(int worldSize, long generation, TimeSpan unboundedWait)
    {
        WorldSize = worldSize;
        _unboundedWait = unboundedWait;
        Members = [.. Enumerable.Range(0, worldSize).Select(rank => new Member(this, rank, generation))];
    }

    public int WorldSize { get; }

    public IReadOnlyList<Member> Members { get; }

    private sealed record Posted(string Kind, byte[] Data, long RowBytes, long[]? InputSplits, int Root);

    /// <summary>Posts this member's part of call <paramref name="sequence"/> and returns everyone's parts once all are in.</summary>
    private Posted[] Rendezvous(long sequence, int rank, Posted mine, TimeSpan wait)
    {
        var deadline = DateTime.UtcNow + (wait > TimeSpan.Zero ? wait : _unboundedWait);
        lock (_lock)
        {
            if (!_calls.TryGetValue(sequence, out var parts)) _calls[sequence] = parts = new Posted?[WorldSize];
            parts[rank] = mine;
            Monitor.PulseAll(_lock);
            while (parts.Any(p => p is null))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !Monitor.Wait(_lock, left) && parts.Any(p => p is null))
                    throw new NativeHelperException($"{mine.Kind} #{sequence} timed out on rank {rank}: ranks [{string.Join(", ", Enumerable.Range(0, WorldSize).Where(r => parts[r] is null))}] never joined");
            }
            if (parts.Any(p => p!.Kind != mine.Kind))
                throw new NativeHelperException($"collective #{sequence} mismatched: [{string.Join(", ", parts.Select(p => p!.Kind))}]");
            return [.. parts.Select(p => p!)];
        }
    }

    public sealed class Member(ThreadProcessGroup group, int rank, long generation) : IProcessGroup
    {
        private long _sequence;
        private volatile bool _aborted;
        private volatile bool _killed;

        public int Rank => rank;

        public int WorldSize => group.WorldSize;

        public long Generation => generation;

        public bool IsAborted => _aborted;

        /// <summary>This rank is gone: it never joins another collective, and its own calls fail.</summary>
        public void Kill() => _killed = true;

        public void Broadcast(Tensor tensor, int root, TimeSpan wait)
        {
            var parts = Run("broadcast", tensor, null, root, wait);
            if (rank != root) Write(tensor, parts[root].Data);
        }

        public void AllGather(Tensor output, Tensor input, TimeSpan wait)
        {
            var parts = Run("all_gather", input, null, 0, wait);
            Write(output, [.. parts.SelectMany(p => p.Data)]);
        }

        public void AllToAll(Tensor output, Tensor input, IReadOnlyList<long>? outputSplits, IReadOnlyList<long>? inputSplits, TimeSpan wait)
        {
            var inRows = input.shape.Length == 0 ? 1 : input.shape[0];
            var splits = inputSplits?.ToArray() ?? [.. Enumerable.Repeat(inRows / WorldSize, WorldSize)];
            var parts = Run("all_to_all", input, splits, 0, wait);
            var received = new List<byte>();
            for (var source = 0; source < WorldSize; source++)
            {
                var part = parts[source];
                var start = part.InputSplits!.Take(rank).Sum() * part.RowBytes;
                var count = part.InputSplits![rank] * part.RowBytes;
                if (outputSplits is not null && outputSplits[source] != part.InputSplits[rank])
                    Fail($"all_to_all: rank {rank} expects {outputSplits[source]} rows from rank {source}, which sends {part.InputSplits[rank]}");
                received.AddRange(part.Data.AsSpan((int)start, (int)count).ToArray());
            }
            Write(output, [.. received]);
        }

        public void Abort() => _aborted = true;

        public void Dispose() => _aborted = true;

        private Posted[] Run(string kind, Tensor input, long[]? splits, int root, TimeSpan wait)
        {
            if (_killed) throw new NativeHelperException($"rank {rank} is gone");
            if (_aborted) throw new NativeHelperException("the group was aborted after an earlier failure; form a new one");
            var host = input.cpu().contiguous();
            var data = host.bytes.ToArray();
            var rows = host.shape.Length == 0 ? 1 : host.shape[0];
            var posted = new Posted(kind, data, rows == 0 ? 0 : data.Length / rows, splits, root);
            try
            {
                return group.Rendezvous(_sequence++, rank, posted, wait);
            }
            catch
            {
                _aborted = true;
                throw;
            }
        }

        private void Write(Tensor output, byte[] data)
        {
            if (data.Length != output.NumberOfElements * output.ElementSize)
                Fail($"rank {rank}: {data.Length} bytes arrived for an output of {output.NumberOfElements * output.ElementSize}");
            if (data.Length > 0) data.AsSpan().CopyTo(output.bytes);
        }

        private void Fail(string message)
        {
            _aborted = true;
            throw new NativeHelperException(message);
        }
    }
}
