using System.CommandLine;
using DeepSeek.Runtime.Cli;

try
{
    // The host handles SIGTERM itself (drain, then stop); System.CommandLine's own handler would end the
    // process after its short termination timeout, cutting in-flight requests off mid-drain.
    var parse = RuntimeCli.Build().Parse(args);
    var code = await parse.InvokeAsync(new InvocationConfiguration
    {
        ProcessTerminationTimeout = null,
        EnableDefaultExceptionHandler = false,
    });
    // A flag that does not parse is a usage mistake, like a bad DEEPSEEK_* variable: System.CommandLine
    // has said which (one line on stderr, the help on stdout); exit 2 as for that.
    return parse.Errors.Count > 0 ? 2 : code;
}
catch (EnvironmentDefaultException e)
{
    // A bad DEEPSEEK_* variable is a configuration mistake: say which, without a stack trace.
    await Console.Error.WriteLineAsync($"error: {e.Message}");
    return 2;
}
