namespace DeepSeek.Operator.Hosting;

/// <summary>
/// What /readyz reports. Ready: the API server has answered (a lease read, or the first list of every
/// watch) and, while this process leads, every watch of the controller has listed once, so its
/// reconciles see the whole cluster. A standby that follows the lease is ready: it is healthy and
/// takes over when the leader stops. /healthz only says the process serves HTTP.
/// </summary>
public sealed class HealthState
{
    private readonly Lock gate = new();
    private bool connected;
    private bool leading;
    private bool synced;
    private string? leaseProblem;

    public bool Ready
    {
        get { lock (gate) return connected && leaseProblem is null && (!leading || synced); }
    }

    /// <summary>Why the last lease call failed (null: it succeeded), so /readyz says what it waits for instead of guessing.</summary>
    public void SetLeaseProblem(string? problem)
    {
        lock (gate)
        {
            leaseProblem = problem;
            if (problem is null) connected = true;
        }
    }

    public bool Leading
    {
        get { lock (gate) return leading; }
    }

    public bool Synced
    {
        get { lock (gate) return synced; }
    }

    /// <summary>The API server answered (the lease was read or written).</summary>
    public void MarkConnected()
    {
        lock (gate) connected = true;
    }

    /// <summary>Leadership changed; a new term starts unsynced.</summary>
    public void SetLeading(bool value)
    {
        lock (gate)
        {
            leading = value;
            synced = false;
        }
    }

    /// <summary>Every watch of the controller has listed once in this term.</summary>
    public void MarkSynced()
    {
        lock (gate)
        {
            synced = true;
            connected = true;
        }
    }

    /// <summary>What /readyz says, for people reading it.</summary>
    public string Describe()
    {
        lock (gate)
        {
            // Not ready while the lease cannot be renewed, leader or not: the body says why, not "watches synced".
            if (leaseProblem is not null) return (leading ? "leader: renewing the lease fails: " : "waiting for the leader lease: ") + leaseProblem;
            if (!connected) return "waiting for the API server";
            if (!leading) return "standby: following the leader lease";
            return synced ? "leader: watches synced" : "leader: waiting for the watches to list";
        }
    }
}
