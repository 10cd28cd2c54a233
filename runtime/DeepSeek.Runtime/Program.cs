using System.CommandLine;
using DeepSeek.Runtime.Cli;

// The host handles SIGTERM itself (drain, then stop); System.CommandLine's own handler would end the
// process after its short termination timeout, cutting in-flight requests off mid-drain.
return await RuntimeCli.Build().Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
