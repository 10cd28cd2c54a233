using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// The pod's <c>serve --local-ranks L</c>: starts one <c>serve</c> per local rank (<see cref="LocalRankPlan"/>),
/// each with its own rank, device and ports, and supervises them. When one exits on its own the others
/// are stopped and this process exits non-zero naming the rank and its exit code, so Kubernetes restarts
/// the pod (the group re-forms when it is back). SIGTERM and SIGINT are forwarded to every child, which
/// drains as a single-rank <c>serve</c> does; a child still running after the drain timeout and a grace
/// period is killed.
/// </summary>
public static partial class LocalRankSupervisor
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(30);
    private const int SigTerm = 15;

    /// <summary>The flags each child gets through its environment instead (a flag would win over it).</summary>
    public static readonly string[] PlannedFlags = ["--rank", "--world-size", "--peers", "--device", "--http-port", "--grpc-port", "--expert-port", "--local-ranks"];

    /// <summary><paramref name="arguments"/> (those after <c>serve</c>) without <see cref="PlannedFlags"/> and their values.</summary>
    public static IReadOnlyList<string> ChildArguments(IReadOnlyList<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var kept = new List<string>();
        for (var i = 0; i < arguments.Count; i++)
        {
            var argument = arguments[i];
            if (PlannedFlags.Contains(argument, StringComparer.Ordinal))
            {
                i++; // its value
                continue;
            }
            if (PlannedFlags.Any(flag => argument.StartsWith(flag + "=", StringComparison.Ordinal) || argument.StartsWith(flag + ":", StringComparison.Ordinal))) continue;
            kept.Add(argument);
        }
        return kept;
    }

    /// <summary>The environment that gives a child its place: the planned flags as <c>DEEPSEEK_*</c> variables.</summary>
    public static IReadOnlyDictionary<string, string> ChildEnvironment(LocalRank rank, int worldSize, string peers)
    {
        ArgumentNullException.ThrowIfNull(rank);
        return new Dictionary<string, string>
        {
            ["DEEPSEEK_RANK"] = rank.Rank.ToString(CultureInfo.InvariantCulture),
            ["DEEPSEEK_WORLD_SIZE"] = worldSize.ToString(CultureInfo.InvariantCulture),
            ["DEEPSEEK_PEERS"] = peers,
            ["DEEPSEEK_DEVICE"] = rank.Device,
            ["DEEPSEEK_HTTP_PORT"] = rank.HttpPort.ToString(CultureInfo.InvariantCulture),
            ["DEEPSEEK_GRPC_PORT"] = rank.GrpcPort.ToString(CultureInfo.InvariantCulture),
            ["DEEPSEEK_EXPERT_PORT"] = rank.ExpertPort.ToString(CultureInfo.InvariantCulture),
            ["DEEPSEEK_LOCAL_RANKS"] = "1",
        };
    }

    /// <returns>0 after a requested stop; otherwise the first child's non-zero exit code (1 if it exited 0).</returns>
    public static async Task<int> RunAsync(IReadOnlyList<LocalRank> ranks, int worldSize, string peers, IReadOnlyList<string> serveArguments, TimeSpan drainTimeout)
    {
        ArgumentNullException.ThrowIfNull(ranks);
        using var stopRequested = new CancellationTokenSource();
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true; // the children drain; this process ends when they have
            stopRequested.Cancel();
        }
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);

        var children = new List<(LocalRank Rank, Process Process)>();
        try
        {
            foreach (var rank in ranks)
            {
                var process = Start(rank, worldSize, peers, ChildArguments(serveArguments));
                children.Add((rank, process));
                Console.Error.WriteLine($"serve: local rank {rank.LocalIndex} (rank {rank.Rank} of {worldSize}, {rank.Device}, HTTP {rank.HttpPort}) started as pid {process.Id}");
            }
            var exits = children.Select(c => c.Process.WaitForExitAsync()).ToList();
            var stopped = Task.Delay(Timeout.Infinite, stopRequested.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            var first = await Task.WhenAny(exits.Append(stopped)).ConfigureAwait(false);
            if (first == stopped)
            {
                Console.Error.WriteLine("serve: stopping; forwarding SIGTERM to the local ranks");
                await StopAllAsync(children, drainTimeout + Grace).ConfigureAwait(false);
                return children.All(c => c.Process.HasExited && c.Process.ExitCode == 0) ? 0 : 1;
            }
            var (dead, deadProcess) = children[exits.IndexOf((Task)first)];
            var code = deadProcess.ExitCode;
            Console.Error.WriteLine($"serve: local rank {dead.LocalIndex} (rank {dead.Rank}, pid {deadProcess.Id}) exited with code {code}; stopping the pod's other ranks so that the pod restarts");
            await StopAllAsync(children, drainTimeout + Grace).ConfigureAwait(false);
            return code != 0 ? code : 1;
        }
        catch
        {
            await StopAllAsync(children, Grace).ConfigureAwait(false);
            throw;
        }
        finally
        {
            foreach (var (_, process) in children) process.Dispose();
        }
    }

    private static Process Start(LocalRank rank, int worldSize, string peers, IReadOnlyList<string> arguments)
    {
        var executable = Environment.ProcessPath ?? throw new InvalidOperationException("The path of this executable is unknown.");
        var start = new ProcessStartInfo(executable) { UseShellExecute = false };
        // Run as `dotnet deepseek-runtime.dll`: the children need the assembly path too.
        if (string.Equals(Path.GetFileNameWithoutExtension(executable), "dotnet", StringComparison.Ordinal))
            start.ArgumentList.Add(Environment.GetCommandLineArgs()[0]);
        start.ArgumentList.Add("serve");
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (name, value) in ChildEnvironment(rank, worldSize, peers)) start.Environment[name] = value;
        return Process.Start(start) ?? throw new InvalidOperationException($"Could not start local rank {rank.LocalIndex}.");
    }

    /// <summary>SIGTERM to every child still running, then a kill (by its id) for any still running after <paramref name="timeout"/>.</summary>
    private static async Task StopAllAsync(List<(LocalRank Rank, Process Process)> children, TimeSpan timeout)
    {
        foreach (var (_, process) in children)
            if (!process.HasExited) _ = Kill(process.Id, SigTerm);
        using var deadline = new CancellationTokenSource(timeout);
        foreach (var (rank, process) in children)
        {
            try
            {
                await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine($"serve: local rank {rank.LocalIndex} (pid {process.Id}) did not stop within {timeout.TotalSeconds:0} s; killing it");
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
