using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Crd;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Serialization;
using DeepSeek.Operator.Validation;
using k8s;

namespace DeepSeek.Operator.Cli;

/// <summary><c>render -f FILE</c>: the objects the operator would create for a DeepSeekModel, without a cluster.</summary>
public static class RenderCommand
{
    public const int ExitInvalid = 1;

    /// <summary>The desired objects as multi-document YAML, or the fields that are wrong (with the line and column they are on).</summary>
    public static (string? Yaml, IReadOnlyList<FieldError> Errors) Render(string manifest, OperatorDefaults defaults)
    {
        JsonNode node;
        IReadOnlyDictionary<string, (long Line, long Column)> positions;
        try
        {
            var documents = YamlJson.ParseWithPositions(manifest).Where(d => d.Root is not null).ToList();
            var found = documents.FirstOrDefault(d => d.Root is JsonObject o && (string?)o["kind"] == V1Alpha1DeepSeekModel.KindName);
            if (found.Root is null) return (null, [new FieldError("kind", $"the file holds no {V1Alpha1DeepSeekModel.KindName}")]);
            (node, positions) = (found.Root, found.Positions);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            return (null, [new FieldError($"line {e.Start.Line}, column {e.Start.Column}", e.InnerException?.Message ?? e.Message)]);
        }
        string At(string field) => positions.TryGetValue(field, out var p) ? $" (line {p.Line}, column {p.Column})" : "";
        if ((string?)node["apiVersion"] != V1Alpha1DeepSeekModel.GroupVersion)
            return (null, [new FieldError("apiVersion", $"must be {V1Alpha1DeepSeekModel.GroupVersion}{At("apiVersion")}")]);

        // As the API server's strict field validation: a misspelt field is an error, not a default.
        var schema = DeepSeekModelCrd.Generate()["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!.AsObject();
        var unknown = UnknownFields.Find(node, schema);
        if (unknown.Count > 0) return (null, unknown.Select(f => new FieldError(f, $"unknown field \"{f[(f.LastIndexOf('.') + 1)..]}\"{At(f)}")).ToList());
        var quantities = ModelValidator.ValidateQuantities(node["spec"]);
        if (quantities.Count > 0) return (null, quantities.Select(e => e with { Message = e.Message + At(e.Field) }).ToList());

        V1Alpha1DeepSeekModel model;
        try
        {
            model = KubernetesJson.Deserialize<V1Alpha1DeepSeekModel>(node.ToJsonString());
        }
        catch (JsonException e)
        {
            var field = e.Path is { } path ? path.TrimStart('$', '.') : "spec";
            return (null, [new FieldError(field, $"has a value of the wrong type{At(field)}")]);
        }
        model.Metadata.NamespaceProperty ??= "default";
        var errors = ModelValidator.Validate(model, defaults);
        if (errors.Count > 0) return (null, errors.Select(e => e with { Message = e.Message + At(e.Field) }).ToList());
        var desired = DesiredStateBuilder.Build(model, defaults);
        return (YamlJson.ToYamlDocuments(desired.Objects.Select(o => JsonNode.Parse(KubernetesJson.Serialize(o)))), []);
    }

    public static Command Build()
    {
        var file = new Option<string>("--file", "-f") { Description = "A DeepSeekModel manifest (YAML or JSON); - reads standard input.", Required = true };
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
            string manifest;
            if (path == "-")
            {
                manifest = await Console.In.ReadToEndAsync(cancellationToken);
            }
            else if (!File.Exists(path))
            {
                await Console.Error.WriteLineAsync($"error: {Path.GetFullPath(path)} does not exist.");
                return ExitInvalid;
            }
            else
            {
                manifest = await File.ReadAllTextAsync(path, cancellationToken);
            }
            var (yaml, errors) = Render(manifest, new OperatorDefaults { RuntimeImage = parse.GetValue(runtimeImage) });
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
