using System.CommandLine;
using DeepSeek.Operator.Crd;
using DeepSeek.Operator.Serialization;

namespace DeepSeek.Operator.Cli;

/// <summary><c>crd</c>: prints the DeepSeekModel CRD generated from the C# types (what <c>crds/</c> holds).</summary>
public static class CrdCommand
{
    public static string Render() => YamlJson.ToYaml(DeepSeekModelCrd.Generate());

    public static Command Build()
    {
        var command = new Command("crd", "Print the DeepSeekModel CustomResourceDefinition as YAML (kubectl apply -f -).");
        command.SetAction(async (ParseResult _, CancellationToken cancellationToken) =>
        {
            await Console.Out.WriteAsync(Render().AsMemory(), cancellationToken);
            return 0;
        });
        return command;
    }
}
