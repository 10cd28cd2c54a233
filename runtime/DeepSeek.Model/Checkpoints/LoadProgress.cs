using System.Globalization;

namespace DeepSeek.Model.Checkpoints;

/// <summary>
/// How far a weight load has come: tensors and checkpoint bytes copied so far out of what this process
/// loads (a rank of an expert-parallel group loads only its experts), and the time since the load began.
/// </summary>
public readonly record struct LoadProgress(int TensorsDone, int TensorsTotal, long BytesDone, long BytesTotal, TimeSpan Elapsed)
{
    public bool IsComplete => TensorsDone >= TensorsTotal;

    /// <summary>Checkpoint bytes per second so far; 0 before any time has passed.</summary>
    public double BytesPerSecond => Elapsed > TimeSpan.Zero ? BytesDone / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Load progress as log lines: what the load will read when it starts, then a line at most every
/// <c>interval</c>, and a last line with the total and the rate, so a long load shows it is moving
/// and the log of every start records how fast the weights came in.
/// </summary>
public sealed class LoadProgressLog(Action<string> write, TimeSpan? interval = null) : IProgress<LoadProgress>
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(2);

    private readonly TimeSpan _interval = interval ?? DefaultInterval;
    private TimeSpan? _lastLine;

    public void Report(LoadProgress value)
    {
        var line = LineFor(value, _lastLine, _interval);
        if (line is null) return;
        _lastLine = value.Elapsed;
        write(line);
    }

    /// <summary>
    /// The line to write for <paramref name="progress"/>, or null while the last one
    /// (<paramref name="lastLine"/>, its elapsed time) is less than <paramref name="interval"/> old.
    /// The start and the end always get theirs.
    /// </summary>
    public static string? LineFor(LoadProgress progress, TimeSpan? lastLine, TimeSpan interval)
    {
        if (progress.IsComplete) return Summary(progress);
        if (lastLine is null) return progress.TensorsDone == 0 ? Start(progress) : Line(progress);
        return progress.Elapsed - lastLine.Value >= interval ? Line(progress) : null;
    }

    public static string Start(LoadProgress progress) =>
        string.Create(CultureInfo.InvariantCulture, $"Loading weights: {progress.TensorsTotal:N0} tensors, {Gigabytes(progress.BytesTotal):0.0} GB");

    public static string Line(LoadProgress progress) =>
        string.Create(CultureInfo.InvariantCulture,
            $"Loading weights: {progress.TensorsDone:N0}/{progress.TensorsTotal:N0} tensors, {Gigabytes(progress.BytesDone):0.0}/{Gigabytes(progress.BytesTotal):0.0} GB, {progress.Elapsed.TotalSeconds:0.0} s");

    public static string Summary(LoadProgress progress) =>
        string.Create(CultureInfo.InvariantCulture,
            $"Weights loaded: {progress.TensorsDone:N0} tensors, {Gigabytes(progress.BytesDone):0.00} GB in {progress.Elapsed.TotalSeconds:0.0} s ({Gigabytes((long)progress.BytesPerSecond):0.00} GB/s)");

    /// <summary>Decimal gigabytes, as disks and checkpoint sizes are quoted.</summary>
    private static double Gigabytes(long bytes) => bytes / 1e9;
}
