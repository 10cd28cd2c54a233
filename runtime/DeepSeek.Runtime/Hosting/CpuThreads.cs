using System.Globalization;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// How many intra-op threads LibTorch gets (<c>torch.set_num_threads</c>). LibTorch's default is one per
/// core it sees online, not the CPUs the process may use: under a container's CPU limit, or beside other
/// busy processes, its parallel regions wait on threads the kernel throttles or schedules late. On a
/// shared machine the tiny model decoded 45.8 / 368 tok/s at batch 1 / 32 with the default and 617 / 11,228
/// with one thread (issue #27 item 8). <see cref="Choose"/> is the decision, from inputs alone;
/// <see cref="ForThisProcess"/> reads them.
/// </summary>
/// <remarks>
/// The same choice applies on CUDA: there the kernels run on the GPU and the pool serves only host-side
/// tensor work (loading and converting weights, CPU-side copies), which gains nothing from threads the
/// container may not run, so the same limit holds.
/// </remarks>
public sealed record CpuThreads(int Threads, string Reason)
{
    /// <summary>
    /// <paramref name="requested"/> (<c>--threads</c> or <c>DEEPSEEK_THREADS</c>) wins; else a cgroup CPU
    /// quota of Q CPUs gives ⌊Q⌋ threads (at least 1, at most <paramref name="processorCount"/>); else
    /// <paramref name="processorCount"/>. ⌊Q⌋, not ⌈Q⌉: with 1.5 CPUs two busy threads use up the quota in
    /// two thirds of each period and are then both stopped until the next, and every parallel region waits for
    /// its slowest thread; one thread runs unthrottled and leaves the rest of the quota to the host (Kestrel,
    /// tokenization, the garbage collector).
    /// </summary>
    /// <param name="requested">The override, or null.</param>
    /// <param name="quotaCpus">The cgroup CPU quota in CPUs (quota ÷ period), or null when there is none.</param>
    /// <param name="processorCount">
    /// <see cref="Environment.ProcessorCount"/>: .NET already honours both the affinity mask and the cgroup
    /// quota there (the quota rounded up), so it is the truth for "CPUs this process may run on"; only the
    /// rounding of a fractional quota is decided here.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="requested"/> is below 1.</exception>
    public static CpuThreads Choose(int? requested, double? quotaCpus, int processorCount)
    {
        processorCount = Math.Max(1, processorCount);
        if (requested is { } wanted)
        {
            return wanted >= 1
                ? new(wanted, $"--threads {wanted}; {processorCount} CPUs available to the process")
                : throw new ArgumentOutOfRangeException(nameof(requested), wanted, $"--threads must be at least 1, not {wanted}.");
        }
        if (quotaCpus is { } quota && double.IsFinite(quota) && quota > 0)
        {
            var threads = Math.Clamp((int)Math.Floor(quota), 1, processorCount);
            return new(threads, string.Create(CultureInfo.InvariantCulture, $"cgroup CPU quota {quota:0.0##} CPUs, {processorCount} CPUs available to the process"));
        }
        return new(processorCount, $"no cgroup CPU quota, {processorCount} CPUs available to the process");
    }

    /// <summary>The choice for this process: <paramref name="requested"/>, its cgroup's quota and <see cref="Environment.ProcessorCount"/>.</summary>
    public static CpuThreads ForThisProcess(int? requested) => Choose(requested, CgroupCpuQuota.Read(), Environment.ProcessorCount);

    /// <summary>Sets LibTorch's intra-op pool; before the engine thread's first parallel region, which fixes that thread's count.</summary>
    public void Apply()
    {
        DeepSeek.Model.Devices.TorchRuntime.EnsureLoaded(); // a GPU bundle's LibTorch comes from DEEPSEEK_LIBTORCH_DIR
        TorchSharp.torch.set_num_threads(Threads);
    }

    public override string ToString() => $"CPU intra-op threads: {Threads} ({Reason})";
}

/// <summary>The CPU quota of the cgroup this process runs in, in CPUs; null when it has none.</summary>
public static class CgroupCpuQuota
{
    /// <summary>cgroup v2 <c>cpu.max</c> (<c>"150000 100000"</c> or <c>"max 100000"</c>) in CPUs, or null for no limit or no file.</summary>
    public static double? ParseCpuMax(string? text)
    {
        var parts = text?.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts is not { Length: >= 1 } || parts[0] == "max") return null;
        var period = parts.Length >= 2 ? parts[1] : "100000";
        return FromMicroseconds(parts[0], period);
    }

    /// <summary>cgroup v1 <c>cpu.cfs_quota_us</c> ÷ <c>cpu.cfs_period_us</c> in CPUs, or null for -1 (no limit) or no file.</summary>
    public static double? ParseCfs(string? quota, string? period) => quota is null || period is null ? null : FromMicroseconds(quota.Trim(), period.Trim());

    private static double? FromMicroseconds(string quota, string period) =>
        long.TryParse(quota, NumberStyles.Integer, CultureInfo.InvariantCulture, out var q) && q > 0
        && long.TryParse(period, NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) && p > 0
            ? (double)q / p
            : null;

    /// <summary>
    /// The smallest quota on this process's cgroup path (a parent's limit binds its children too): v2 at
    /// <c>/sys/fs/cgroup/&lt;path&gt;/cpu.max</c>, v1 under the <c>cpu</c> controller's mount. Inside a
    /// container the path is <c>/</c> and the container's own limit is at the mount's root.
    /// </summary>
    public static double? Read()
    {
        try
        {
            var lines = File.Exists("/proc/self/cgroup") ? File.ReadAllLines("/proc/self/cgroup") : [];
            double? smallest = null;
            void Consider(double? quota)
            {
                if (quota is { } q && (smallest is null || q < smallest)) smallest = q;
            }
            // v2: "0::/path".
            if (lines.FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal)) is { } unified)
                foreach (var directory in Ancestors("/sys/fs/cgroup", unified[3..]))
                    Consider(ParseCpuMax(ReadOrNull(Path.Combine(directory, "cpu.max"))));
            // v1: "N:cpu,cpuacct:/path", mounted at /sys/fs/cgroup/cpu (or cpu,cpuacct).
            if (lines.Select(l => l.Split(':', 3)).FirstOrDefault(p => p.Length == 3 && p[1].Split(',').Contains("cpu")) is { } v1)
                foreach (var mount in new[] { "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct" }.Where(Directory.Exists))
                    foreach (var directory in Ancestors(mount, v1[2]))
                        Consider(ParseCfs(ReadOrNull(Path.Combine(directory, "cpu.cfs_quota_us")), ReadOrNull(Path.Combine(directory, "cpu.cfs_period_us"))));
            return smallest;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary><paramref name="mount"/>/<paramref name="path"/> and each parent up to <paramref name="mount"/>.</summary>
    private static IEnumerable<string> Ancestors(string mount, string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var depth = parts.Length; depth >= 0; depth--) yield return Path.Combine([mount, .. parts.Take(depth)]);
    }

    private static string? ReadOrNull(string file) => File.Exists(file) ? File.ReadAllText(file) : null;
}
