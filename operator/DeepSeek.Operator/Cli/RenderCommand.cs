using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Serialization;
using DeepSeek.Operator.Validation;
using k8s;

namespace DeepSeek.Operator.Cli;

/// <summary><c>render -f FILE</c>: the objects the operator would create for a DeepSeekModel, without a cluster.</summary>
public static class RenderCommand
{
    public const int ExitInvalid = 1;

    /// <summary>The desired objects as multi-document YAML, or the fields that are wrong.</summary>
    public static (string? Yaml, IReadOnlyList<FieldError> Errors) Render(string manifest, OperatorDefaults defaults)
    {
        V1Alpha1DeepSeekModel model;
        try
        {
            var documents = YamlJson.ParseAll(manifest).Where(d => d is not null).ToList();
            var node = documents.FirstOrDefault(d => (string?)d!["kind"] == V1Alpha1DeepSeekModel.KindName);
            if (node is null) return (null, [new FieldError("kind", $"the file holds no {V1Alpha1DeepSeekModel.KindName}")]);
            if ((string?)node["apiVersion"] != V1Alpha1DeepSeekModel.GroupVersion)
                return (null, [new FieldError("apiVersion", $"must be {V1Alpha1DeepSeekModel.GroupVersion}")]);
            model = KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(node.ToJsonString());
        }
        catch (Exception e) when (e is JsonException or YamlDotNet.Core.YamlException or FormatException or InvalidOperationException)
        {
            return (null, [new FieldError(e is JsonException j && j.Path is { } path ? path.TrimStart('$', '.') : "(file)", e.Message)]);
        }
        model.Metadata.NamespaceProperty ??= "default";
        var errors = ModelValidator.Validate(model, defaults);
        if (errors.Count > 0) return (null, errors);
        var desired = DesiredStateBuilder.Build(model, defaults);
        return (YamlJson.ToYamlDocuments(desired.Objects.Select(o => JsonNode.Parse(KubernetesJson.Serialize(o)))), []);
    }

    public static Command Build()
    {
        var file = new Option<FileInfo>("--file", "-f") { Description = "A DeepSeekModel manifest (YAML or JSON).", Required = true };
        var runtimeImage = new Option<string?>("--runtime-image")
        {
            Description = "Runtime image for models that set none.",
            DefaultValueFactory = _ => RunCommand.DefaultRuntimeImage,
        };
        var command = new Command("render", "Print the objects the operator would create for a DeepSeekModel, as multi-document YAML, without a cluster.")
        {
            file,
            runtimeImage,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(file)!;
            if (!path.Exists)
            {
                await Console.Error.WriteLineAsync($"error: {path.FullName} does not exist.");
                return ExitInvalid;
            }
            var (yaml, errors) = Render(await File.ReadAllTextAsync(path.FullName, cancellationToken), new OperatorDefaults { RuntimeImage = parse.GetValue(runtimeImage) });
            if (yaml is null)
            {
                foreach (var error in errors) await Console.Error.WriteLineAsync($"error: {error}");
                return ExitInvalid;
            }
            await Console.Out.WriteAsync(yaml.AsMemory(), cancellationToken);
            return 0;
        });
        return command;
    }
}
