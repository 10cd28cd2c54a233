using System.CommandLine;

namespace DeepSeek.Runtime.Cli;

/// <summary>The runtime executable's verbs.</summary>
public static class RuntimeCli
{
    public static RootCommand Build() => new("DeepSeek mixture-of-experts inference runtime")
    {
        ServeCommand.Build(),
        GenerateCommand.Build(),
        InspectCommand.Build(),
        BenchCommand.Build(),
        DownloadCommand.Build(),
    };
}
