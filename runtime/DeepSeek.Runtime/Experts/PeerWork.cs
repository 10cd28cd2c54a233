using System.Collections.Concurrent;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// The other ranks' expert work for this rank's engine thread, with data-parallel attention. A rank
/// answers its peers' Compute calls with the model its engine runs, so the work must run on the
/// engine thread (dispose scopes are per thread, and one thread keeps the device's work in order);
/// but that thread may be inside its own step, waiting for those same peers' answers at the same MoE
/// layer. So the work runs whichever comes first: the engine between steps (or idle), or the
/// engine's own wait for its peers (<see cref="Wait"/>), which would otherwise wait on ranks waiting on it.
/// </summary>
public sealed class PeerWork : IDisposable
{
    private readonly ConcurrentQueue<Action> _queue = new();
    private readonly AutoResetEvent _posted = new(false);

    /// <summary>Queues <paramref name="work"/>; the task ends with its result once a thread that runs the model ran it.</summary>
    public Task<T> Post<T>(Func<T> work)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Enqueue(() =>
        {
            try
            {
                completion.TrySetResult(work());
            }
            catch (Exception e)
            {
                completion.TrySetException(e);
            }
        });
        _posted.Set();
        return completion.Task;
    }

    /// <summary>Runs what is queued, on the calling (engine) thread; how many items ran.</summary>
    public int RunPending()
    {
        var ran = 0;
        while (_queue.TryDequeue(out var work))
        {
            work();
            ran++;
        }
        return ran;
    }

    /// <summary>Waits for <paramref name="task"/> on the engine thread, running the peers' work that arrives meanwhile.</summary>
    public void Wait(Task task)
    {
        ArgumentNullException.ThrowIfNull(task);
        var done = ((IAsyncResult)task).AsyncWaitHandle;
        while (!task.IsCompleted)
        {
            if (RunPending() > 0) continue;
            WaitHandle.WaitAny([done, _posted]);
        }
    }

    public void Dispose() => _posted.Dispose();
}
