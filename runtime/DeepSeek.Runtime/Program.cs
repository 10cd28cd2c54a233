using System.CommandLine;
using DeepSeek.Runtime.Cli;

try
{
    var parse = RuntimeCli.Build().Parse(args);
    // A mistyped value is said in one line naming the option; the full help would bury it.
    if (parse.Action is System.CommandLine.Invocation.ParseErrorAction error) error.ShowHelp = false;
    // The host handles SIGTERM itself (drain, then stop); System.CommandLine's own handler would end the
    // process after its short termination timeout, cutting in-flight requests off mid-drain.
    return await parse.InvokeAsync(new InvocationConfiguration
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
