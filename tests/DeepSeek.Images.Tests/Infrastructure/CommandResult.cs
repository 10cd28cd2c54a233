namespace DeepSeek.Images.Tests.Infrastructure;

/// <summary>What a finished command printed and how it exited.</summary>
public sealed record CommandResult(string Command, int ExitCode, string Output, string Error)
{
    /// <summary>The result, or a failure that shows the command and everything it printed.</summary>
    public CommandResult Succeeded()
    {
        Assert.True(ExitCode == 0, $"`{Command}` exited {ExitCode}.\nstdout:\n{Output}\nstderr:\n{Error}");
        return this;
    }
}
