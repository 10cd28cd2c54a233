using System.CommandLine;
using DeepSeek.Contract;
using DeepSeek.Runtime.Cli;

namespace DeepSeek.Runtime.Tests.Cli;

/// <summary>
/// The runtime's side of runtime/Contract/RuntimeContract.cs: every flag the operator sets on a
/// runtime pod is a <c>serve</c> option, and its DEEPSEEK_* variable is the one serve reads when the
/// flag is absent. (The operator's tests check that it sets nothing outside the contract.)
/// </summary>
public sealed class RuntimeContractTests
{
    private static Command Serve => ServeCommand.Build();

    public static TheoryData<string> FlagsSetByOperator() => [.. RuntimeContract.FlagsSetByOperator];

    [Theory]
    [MemberData(nameof(FlagsSetByOperator))]
    public void Every_flag_the_operator_sets_is_a_serve_option_whose_variable_serve_reads(string flag)
    {
        var option = Serve.Options.SingleOrDefault(o => o.Name == flag);
        Assert.True(option is not null, $"serve has no option {flag}, which the operator sets");
        Assert.Equal(RuntimeContract.VariableFor(flag), EnvironmentDefault.VariableFor(flag));
        Assert.Contains(RuntimeContract.VariableFor(flag), option!.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void The_download_init_step_the_operator_renders_uses_flags_the_download_verb_has()
    {
        var download = DownloadCommand.Build();
        Assert.Equal(RuntimeContract.DownloadVerb, download.Name);
        foreach (var flag in new[] { RuntimeContract.DownloadFlags.Revision, RuntimeContract.DownloadFlags.Endpoint, RuntimeContract.DownloadFlags.Output, RuntimeContract.DownloadFlags.SkipIfComplete })
            Assert.Contains(download.Options, o => o.Name == flag);
        Assert.Contains(RuntimeContract.HubTokenVariable, download.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Ports_prefix_and_verb_agree_with_the_runtime()
    {
        Assert.Equal("serve", Serve.Name);
        Assert.Equal(RuntimeContract.ServeVerb, Serve.Name);
        Assert.Equal(RuntimeContract.EnvironmentPrefix + "HTTP_PORT", EnvironmentDefault.VariableFor("--http-port"));
        var parse = Serve.Parse([]);
        Assert.Equal(RuntimeContract.Http, parse.GetValue<int>("--http-port"));
        Assert.Equal(RuntimeContract.Grpc, parse.GetValue<int>("--grpc-port"));
        Assert.Equal(RuntimeContract.ExpertPort, parse.GetValue<int>("--expert-port"));
    }
}
