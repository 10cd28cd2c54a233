using DeepSeek.Runtime.Cli;

namespace DeepSeek.Runtime.Tests.Cli;

/// <summary>Flags default from DEEPSEEK_* variables (how the operator's ConfigMap configures pods).</summary>
public sealed class EnvironmentDefaultTests
{
    // Option names no other test uses: environment variables are process-wide.
    private const string Option = "--environment-default-test-blocks";
    private const string Variable = "DEEPSEEK_ENVIRONMENT_DEFAULT_TEST_BLOCKS";

    [Fact]
    public void Variable_name_is_the_flag_in_upper_snake_case() =>
        Assert.Equal("DEEPSEEK_MAX_RUNNING_REQUESTS", EnvironmentDefault.VariableFor("--max-running-requests"));

    [Fact]
    public void A_set_variable_wins_over_the_fallback_and_an_unset_one_does_not()
    {
        Environment.SetEnvironmentVariable(Variable, "42");
        try
        {
            Assert.Equal(42, EnvironmentDefault.Get(Option, 7));
        }
        finally
        {
            Environment.SetEnvironmentVariable(Variable, null);
        }
        Assert.Equal(7, EnvironmentDefault.Get(Option, 7));
    }

    [Fact]
    public void A_malformed_variable_is_named_in_the_error()
    {
        Environment.SetEnvironmentVariable(Variable + "_BAD", "abc");
        try
        {
            var error = Assert.Throws<EnvironmentDefaultException>(() => EnvironmentDefault.Get(Option + "-bad", 7));
            Assert.Contains(Variable + "_BAD='abc'", error.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(Variable + "_BAD", null);
        }
    }
}
