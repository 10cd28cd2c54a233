using System.Runtime.CompilerServices;
using DeepSeek.Engine;
using DeepSeek.Engine.Requests;
using DeepSeek.Model.Lora;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Api.OpenAi;

/// <summary>
/// The sequences of one API call (<c>n</c> choices, several prompts), read straight from the
/// engine's event channels in arrival order: no task or channel in between. Disposing cancels
/// whatever is still running, so a client that goes away or a failed write frees every slot it held.
/// </summary>
internal sealed class GenerationFanOut : IDisposable
{
    private readonly CancellationTokenSource _cancel;
    private readonly IReadOnlyList<GenerationHandle> _handles;

    private GenerationFanOut(CancellationTokenSource cancel, IReadOnlyList<GenerationHandle> handles)
    {
        _cancel = cancel;
        _handles = handles;
    }

    /// <summary>
    /// Submits every sequence, on <paramref name="adapter"/> when the call's <c>model</c> named a LoRA adapter
    /// (<see cref="OpenAiEndpoints.AdapterOf"/>); if one is refused, the ones already admitted are cancelled
    /// and the refusal is thrown.
    /// </summary>
    public static GenerationFanOut Start(IInferenceBackend backend, IReadOnlyList<ValidatedRequest> sequences, CancellationToken aborted, LoraAdapter? adapter = null)
    {
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var handles = new List<GenerationHandle>(sequences.Count);
        try
        {
            foreach (var sequence in sequences) handles.Add(backend.Submit(sequence.WithAdapter(adapter), cancel.Token));
        }
        catch
        {
            cancel.Cancel();
            cancel.Dispose();
            throw;
        }
        return new GenerationFanOut(cancel, handles);
    }

    /// <summary>Each choice's events as the engine wrote them, until every stream has ended.</summary>
    public async IAsyncEnumerable<(int Choice, TokenEvent Event)> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (_handles.Count == 1)
        {
            await foreach (var item in _handles[0].Events.ReadAllAsync(cancellationToken)) yield return (0, item);
            yield break;
        }
        // Per stream: null when it may have items to drain, else its pending wait; ended once it completed.
        var waits = new Task<bool>?[_handles.Count];
        var ended = new bool[_handles.Count];
        var open = _handles.Count;
        while (open > 0)
        {
            for (var i = 0; i < waits.Length; i++)
            {
                if (ended[i] || waits[i] is not null) continue;
                while (_handles[i].Events.TryRead(out var item)) yield return (i, item);
                waits[i] = _handles[i].Events.WaitToReadAsync(cancellationToken).AsTask();
            }
            await Task.WhenAny(waits.Where((_, i) => !ended[i]).Cast<Task<bool>>()).ConfigureAwait(false);
            for (var i = 0; i < waits.Length; i++)
            {
                if (ended[i] || waits[i] is not { IsCompleted: true } done) continue;
                waits[i] = null;
                if (await done.ConfigureAwait(false)) continue;
                ended[i] = true;
                open--;
            }
        }
    }

    public void Dispose()
    {
        _cancel.Cancel();
        _cancel.Dispose();
    }
}
