using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Why a model load failed, as far as the log is concerned: a checkpoint or folder the user pointed at
/// that cannot be served is said in one line (its message says what to change); anything else is a
/// bug and keeps its stack trace.
/// </summary>
public static class ModelLoadFailure
{
    public static bool IsUserError(Exception failure) =>
        failure is CheckpointFormatException or ConfigException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException
        || (failure is AggregateException { InnerExceptions.Count: 1 } aggregate && IsUserError(aggregate.InnerExceptions[0]));
}
