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

    /// <summary>
    /// The desired objects of every DeepSeekModel in the file, as multi-document YAML in the file's order, or
    /// the fields that are wrong (with the line and column they are on; with several models, which document).
    /// Other kinds in the file are not the operator's and are skipped.
    /// </summary>
    public static (string? Yaml, IReadOnlyList<FieldError> Errors) Render(string manifest, OperatorDefaults defaults)
    {
        List<(JsonNode Root, IReadOnlyDictionary<string, (long Line, long Column)> Positions, int Number)> models;
        try
        {
            models = YamlJson.ParseWithPositions(manifest)
                .Select((d, i) => (d.Root, d.Positions, Number: i + 1))
                .Where(d => d.Root is JsonObject o && (string?)o["kind"] == V1Alpha1DeepSeekModel.KindName)
                .Select(d => (d.Root!, d.Positions, d.Number)).ToList();
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            return (null, [new FieldError($"line {e.Start.Line}, column {e.Start.Column}", e.InnerException?.Message ?? e.Message)]);
        }
        if (models.Count == 0) return (null, [new FieldError("kind", $"the file holds no {V1Alpha1DeepSeekModel.KindName}")]);
        var rendered = new List<string>();
        var errors = new List<FieldError>();
        foreach (var (root, positions, number) in models)
        {
            var (yaml, wrong) = RenderOne(root, positions, defaults);
            if (yaml is not null) rendered.Add(yaml);
            // A second model's errors must not read as the first one's.
            errors.AddRange(models.Count == 1 ? wrong : wrong.Select(e => e with { Field = $"document {number}: {e.Field}" }));
        }
        return errors.Count > 0 ? (null, errors) : (string.Join("---\n", rendered), []);
    }

    private static (string? Yaml, IReadOnlyList<FieldError> Errors) RenderOne(JsonNode node, IReadOnlyDictionary<string, (long Line, long Column)> positions, OperatorDefaults defaults)
    {
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
        // The group token Secret first, as the reconciler creates it (before the planned objects), without its value.
        IEnumerable<IKubernetesObject<k8s.Models.V1ObjectMeta>> created = desired.GroupToken is { } token ? [token, .. desired.Objects] : desired.Objects;
        return (YamlJson.ToYamlDocuments(created.Select(o => JsonNode.Parse(KubernetesJson.Serialize(o)))), []);
    }

    public static Command Build()
    {
        var file = new Option<string>("--file", "-f") { Description = "A DeepSeekModel manifest (YAML or JSON); - reads standard input.", Required = true };
        var runtimeImage = new Option<string?>("--runtime-image")
        {
            Description = "Runtime image for models that set none.",
            DefaultValueFactory = _ => RunCommand.DefaultRuntimeImage,
        };
        var cpuRuntimeImage = RunCommand.CpuRuntimeImageOption();
        var command = new Command("render", "Print the objects the operator would create for a DeepSeekModel, as multi-document YAML, without a cluster.")
        {
            file,
            runtimeImage,
            cpuRuntimeImage,
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
            var (yaml, errors) = Render(manifest, new OperatorDefaults { RuntimeImage = parse.GetValue(runtimeImage), CpuRuntimeImage = parse.GetValue(cpuRuntimeImage) });
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
