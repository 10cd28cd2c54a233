using System.CommandLine;

namespace DeepSeek.Operator.Cli;

/// <summary>The operator executable's verbs; <c>run</c> is also the default.</summary>
public static class OperatorCli
{
    public static RootCommand Build()
    {
        var run = RunCommand.Build();
        var root = new RootCommand("DeepSeek operator: reconciles DeepSeekModel resources into GPU workloads")
        {
            run,
            CrdCommand.Build(),
            RenderCommand.Build(),
        };
        foreach (var option in run.Options) root.Options.Add(option);
        root.Action = run.Action;
        return root;
    }
}
