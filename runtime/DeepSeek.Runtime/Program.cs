using System.CommandLine;
using DeepSeek.Runtime.Cli;

try
{
    // The host handles SIGTERM itself (drain, then stop); System.CommandLine's own handler would end the
    // process after its short termination timeout, cutting in-flight requests off mid-drain.
    return await RuntimeCli.Build().Parse(args).InvokeAsync(new InvocationConfiguration
    {
        ProcessTerminationTimeout = null,
        EnableDefaultExceptionHandler = false,
    });
}
catch (EnvironmentDefaultException e)
{
    // A bad DEEPSEEK_* variable is a configuration mistake: say which, without a stack trace.
    await Console.Error.WriteLineAsync($"error: {e.Message}");
    return 2;
}
