using System.Threading.Channels;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>
/// Runs the sequences of one API call (<c>n</c> choices, several prompts) and merges their events in
/// arrival order. Disposing cancels whatever is still running, so a client that goes away or a
/// failed write frees every slot it held.
/// </summary>
internal sealed class GenerationFanOut : IAsyncDisposable
{
    private readonly CancellationTokenSource _cancel;
    private readonly Channel<(int Choice, GenerationEvent Event)> _merged = Channel.CreateUnbounded<(int, GenerationEvent)>();
    private readonly Task _pumps;

    private GenerationFanOut(CancellationTokenSource cancel, IReadOnlyList<GenerationHandle> handles)
    {
        _cancel = cancel;
        _pumps = Task.WhenAll(handles.Select((handle, choice) => PumpAsync(choice, handle)))
            .ContinueWith(_ => _merged.Writer.TryComplete(), TaskScheduler.Default);
    }

    /// <exception cref="InferenceRejectedException">A request was refused; the ones already admitted are cancelled.</exception>
    public static GenerationFanOut Start(IInferenceBackend backend, IReadOnlyList<GenerationRequest> requests, CancellationToken aborted)
    {
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var handles = new List<GenerationHandle>(requests.Count);
        try
        {
            foreach (var request in requests) handles.Add(backend.Submit(request, cancel.Token));
        }
        catch
        {
            cancel.Cancel();
            cancel.Dispose();
            throw;
        }
        return new GenerationFanOut(cancel, handles);
    }

    public IAsyncEnumerable<(int Choice, GenerationEvent Event)> ReadAllAsync(CancellationToken cancellationToken) =>
        _merged.Reader.ReadAllAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _cancel.CancelAsync();
        await _pumps;
        _cancel.Dispose();
    }

    private async Task PumpAsync(int choice, GenerationHandle handle)
    {
        try
        {
            await foreach (var generationEvent in handle.Events.ReadAllAsync(_cancel.Token))
                _merged.Writer.TryWrite((choice, generationEvent));
        }
        catch (OperationCanceledException)
        {
            // The caller is gone or finished; the backend sees the same token.
        }
    }
}
