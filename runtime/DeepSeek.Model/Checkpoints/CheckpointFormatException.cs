namespace DeepSeek.Model.Checkpoints;

/// <summary>A checkpoint file or folder that cannot be read as it is; the message names the file and tensor.</summary>
public sealed class CheckpointFormatException : Exception
{
    public CheckpointFormatException() { }
    public CheckpointFormatException(string message) : base(message) { }
    public CheckpointFormatException(string message, Exception innerException) : base(message, innerException) { }
}
