using System.CommandLine;
using DeepSeek.Runtime.Cli;

try
{
    var parse = RuntimeCli.Build().Parse(args);
    // A mistyped value is said in one line naming the option; the full help would bury it.
    if (parse.Action is System.CommandLine.Invocation.ParseErrorAction error) error.ShowHelp = false;
    // The host handles SIGTERM itself (drain, then stop); System.CommandLine's own handler would end the
    // process after its short termination timeout, cutting in-flight requests off mid-drain.
    var code = await parse.InvokeAsync(new InvocationConfiguration
    {
        ProcessTerminationTimeout = null,
        EnableDefaultExceptionHandler = false,
    });
    // A flag that does not parse is a usage mistake, like a bad DEEPSEEK_* variable: System.CommandLine
    // has said which, in one line on stderr; exit 2 as for that.
    return parse.Errors.Count > 0 ? 2 : code;
}
catch (EnvironmentDefaultException e)
{
    // A bad DEEPSEEK_* variable is a configuration mistake: say which, without a stack trace.
    await Console.Error.WriteLineAsync($"error: {e.Message}");
    return 2;
}
