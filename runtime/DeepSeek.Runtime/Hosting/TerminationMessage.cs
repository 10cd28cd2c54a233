namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Why the process could not start, where Kubernetes reads it: the container's termination message
/// file (<c>/dev/termination-log</c>, which the kubelet creates in every container). The kubelet puts
/// it in the pod's status, and the operator quotes it in the model's Degraded condition, so nobody
/// has to find the pod's log to learn that, say, the model does not fit the GPU. Outside a pod the
/// file does not exist and nothing is written.
/// </summary>
public static class TerminationMessage
{
    public const string DefaultPath = "/dev/termination-log";

    /// <summary>The kubelet keeps at most 4 KiB of a container's message.</summary>
    public const int MaxBytes = 4096;

    /// <summary>Writes the first line of <paramref name="message"/> to <paramref name="path"/> if that file exists; never throws.</summary>
    public static void Write(string message, string path = DefaultPath)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!File.Exists(path)) return;
        var line = message.Split('\n', 2)[0].Trim();
        var bytes = System.Text.Encoding.UTF8.GetBytes(line);
        if (bytes.Length > MaxBytes) line = System.Text.Encoding.UTF8.GetString(bytes, 0, MaxBytes).TrimEnd('\uFFFD');
        try
        {
            File.WriteAllText(path, line);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The message is a courtesy; the exit code and stderr still say it.
        }
    }
}
