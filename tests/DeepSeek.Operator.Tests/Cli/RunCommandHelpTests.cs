using System.CommandLine;
using DeepSeek.Operator.Cli;

namespace DeepSeek.Operator.Tests.Cli;

public sealed class RunCommandHelpTests
{
    private static string Help()
    {
        using var output = new StringWriter();
        OperatorCli.Build().Parse(["run", "--help"]).Invoke(new InvocationConfiguration { Output = output });
        return output.ToString();
    }

    [Fact]
    public void Help_says_leader_election_is_on_by_default() =>
        Assert.Matches("--leader-elect[^\\n]*default: true", Help());

    [Fact]
    public void Help_lists_the_bind_address_flags()
    {
        var help = Help();
        Assert.Contains("--health-bind-address", help, StringComparison.Ordinal);
        Assert.Contains("--metrics-bind-address", help, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("257")]
    [InlineData("many")]
    public void Workers_outside_one_to_256_are_refused(string value)
    {
        var parse = OperatorCli.Build().Parse(["run", "--workers", value]);
        Assert.NotEmpty(parse.Errors);
        Assert.Contains(parse.Errors, e => e.Message.Contains("workers", StringComparison.OrdinalIgnoreCase) || e.Message.Contains(value, StringComparison.Ordinal));
    }

    [Fact]
    public void Help_gives_the_default_workers() =>
        Assert.Matches("--workers[^\\n]*default: 16", Help());

    [Fact]
    public void A_bind_address_that_is_no_ip_address_is_refused()
    {
        var parse = OperatorCli.Build().Parse(["run", "--metrics-bind-address", "localhost:8080"]);
        Assert.Contains(parse.Errors, e => e.Message.Contains("is not an IP address", StringComparison.Ordinal));
    }
}
