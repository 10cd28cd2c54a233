namespace DeepSeek.Engine.Admission;

/// <summary>
/// An admitted request's place in the counts of <see cref="AdmissionControl"/>. <see cref="MarkRunning"/>
/// when it gets its first step (it leaves the bounded queue); dispose when it finishes, however it
/// finishes. Both are idempotent.
/// </summary>
public sealed class AdmissionTicket : IDisposable
{
    private readonly AdmissionControl _owner;
    private int _running;
    private int _done;

    internal AdmissionTicket(AdmissionControl owner) => _owner = owner;

    public void MarkRunning()
    {
        if (Volatile.Read(ref _done) == 0 && Interlocked.Exchange(ref _running, 1) == 0) _owner.LeaveQueue();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _done, 1) != 0) return;
        _owner.Complete(leftQueue: Interlocked.Exchange(ref _running, 1) == 1);
    }
}
