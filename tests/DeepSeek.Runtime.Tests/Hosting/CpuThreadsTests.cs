using System.CommandLine;
using DeepSeek.Runtime.Cli;
using DeepSeek.Runtime.Hosting;

namespace DeepSeek.Runtime.Tests.Hosting;

/// <summary>
/// Issue #27 item 8: LibTorch's intra-op threads follow the CPUs the process may use, not the cores
/// online; <c>--threads</c> (or DEEPSEEK_THREADS) wins, and a count below 1 is refused.
/// </summary>
public sealed class CpuThreadsTests
{
    [Theory]
    [InlineData(1.5, 16, 1)] // rounded down: two threads would be throttled for a third of every period
    [InlineData(1.5, 2, 1)]  // what .NET reports for 1.5 CPUs (the quota rounded up) changes nothing
    [InlineData(2.0, 16, 2)]
    [InlineData(0.5, 16, 1)] // under one CPU is still one thread
    [InlineData(8.0, 4, 4)]  // a quota above the affinity mask: the mask binds
    public void A_cgroup_quota_gives_its_whole_cpus(double quota, int processorCount, int expected)
    {
        var choice = CpuThreads.Choose(requested: null, quotaCpus: quota, processorCount: processorCount);
        Assert.Equal(expected, choice.Threads);
        Assert.Contains("cgroup CPU quota", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_quota_every_available_cpu()
    {
        var choice = CpuThreads.Choose(requested: null, quotaCpus: null, processorCount: 16);
        Assert.Equal(16, choice.Threads);
        Assert.Contains("no cgroup CPU quota", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_override_wins_over_quota_and_cores()
    {
        Assert.Equal(3, CpuThreads.Choose(requested: 3, quotaCpus: 1.5, processorCount: 16).Threads);
        Assert.Equal(32, CpuThreads.Choose(requested: 32, quotaCpus: null, processorCount: 16).Threads);
        Assert.StartsWith("CPU intra-op threads: 3 (--threads 3", CpuThreads.Choose(3, null, 16).ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-2)]
    public void An_override_below_one_is_refused(int requested)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CpuThreads.Choose(requested, null, 16));
        Assert.Contains("--threads must be at least 1", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("150000 100000", 1.5)]
    [InlineData("200000 100000\n", 2.0)]
    [InlineData("max 100000", null)]
    [InlineData("", null)]
    [InlineData(null, null)]
    public void Cgroup_v2_cpu_max_is_read_in_cpus(string? text, double? expected) => Assert.Equal(expected, CgroupCpuQuota.ParseCpuMax(text));

    [Theory]
    [InlineData("150000", "100000", 1.5)]
    [InlineData("-1", "100000", null)]
    [InlineData("50000\n", "100000\n", 0.5)]
    [InlineData(null, null, null)]
    public void Cgroup_v1_cfs_quota_is_read_in_cpus(string? quota, string? period, double? expected) => Assert.Equal(expected, CgroupCpuQuota.ParseCfs(quota, period));

    public static TheoryData<string> Verbs => new() { "serve", "generate", "bench" };

    private static Command Verb(string name) => name switch
    {
        "serve" => ServeCommand.Build(),
        "generate" => GenerateCommand.Build(),
        _ => BenchCommand.Build(),
    };

    private static string[] Required(string verb) => verb == "generate" ? ["--prompt-ids", "1"] : [];

    [Theory]
    [MemberData(nameof(Verbs))]
    public void Every_model_verb_takes_threads_with_its_variable(string verb)
    {
        var command = Verb(verb);
        var option = command.Options.Single(o => o.Name == "--threads");
        Assert.Contains("DEEPSEEK_THREADS", option.Description, StringComparison.Ordinal);
        Assert.Null(command.Parse(Required(verb)).GetValue<int?>("--threads"));
        Assert.Equal(2, command.Parse([.. Required(verb), "--threads", "2"]).GetValue<int?>("--threads"));
    }

    [Theory]
    [InlineData("serve", "0")]
    [InlineData("serve", "-1")]
    [InlineData("serve", "abc")]
    [InlineData("generate", "0")]
    [InlineData("bench", "x2")]
    public void A_bad_thread_count_is_a_parse_error_naming_the_flag(string verb, string value)
    {
        var parse = Verb(verb).Parse([.. Required(verb), "--threads", value]);
        Assert.Contains(parse.Errors, e => e.Message.Contains("--threads", StringComparison.Ordinal) || e.Message.Contains(value, StringComparison.Ordinal));
    }
}
