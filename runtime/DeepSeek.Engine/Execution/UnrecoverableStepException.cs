namespace DeepSeek.Engine.Execution;

/// <summary>
/// A model step failed in a way no later step can recover from (the device's context is lost or
/// corrupted, managed memory is exhausted): the engine fails every pending request and reports
/// itself failed so that its host turns not-ready and exits.
/// </summary>
public sealed class UnrecoverableStepException : Exception
{
    public UnrecoverableStepException() : base("The model step failed and the device cannot continue.") { }

    public UnrecoverableStepException(string message) : base(message) { }

    public UnrecoverableStepException(string message, Exception innerException) : base(message, innerException) { }
}
