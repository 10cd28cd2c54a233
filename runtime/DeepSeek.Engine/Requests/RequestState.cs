namespace DeepSeek.Engine.Requests;

public enum RequestState
{
    /// <summary>Admitted, waiting for its first step.</summary>
    Waiting,

    /// <summary>Holds KV blocks and is scheduled in steps.</summary>
    Running,

    /// <summary>Its blocks were taken back under memory pressure; it waits at the front of the queue to be recomputed.</summary>
    Preempted,

    Finished,
}
