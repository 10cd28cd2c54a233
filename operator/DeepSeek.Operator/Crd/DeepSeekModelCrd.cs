using System.Text.Json.Nodes;
using DeepSeek.Operator.Api.V1Alpha1;

namespace DeepSeek.Operator.Crd;

/// <summary>The CustomResourceDefinition of DeepSeekModel, generated from the C# types.</summary>
public static class DeepSeekModelCrd
{
    public const string Name = V1Alpha1DeepSeekModel.Plural + "." + V1Alpha1DeepSeekModel.Group;

    /// <summary>File name under <c>crds/</c>, as kubebuilder names them.</summary>
    public const string FileName = V1Alpha1DeepSeekModel.Group + "_" + V1Alpha1DeepSeekModel.Plural + ".yaml";

    public static JsonObject Generate()
    {
        var builder = new SchemaBuilder(XmlDocumentation.For(typeof(V1Alpha1DeepSeekModel).Assembly));
        var spec = builder.ForType(typeof(DeepSeekModelSpec), withDefaults: true);
        var status = builder.ForType(typeof(DeepSeekModelStatus), withDefaults: false);
        var root = new JsonObject
        {
            ["type"] = "object",
            ["description"] = XmlDocumentation.For(typeof(V1Alpha1DeepSeekModel).Assembly).OfType(typeof(V1Alpha1DeepSeekModel)),
            ["required"] = new JsonArray("spec"),
            ["properties"] = new JsonObject
            {
                ["apiVersion"] = new JsonObject { ["type"] = "string" },
                ["kind"] = new JsonObject { ["type"] = "string" },
                ["metadata"] = new JsonObject { ["type"] = "object" },
                ["spec"] = spec,
                ["status"] = status,
            },
        };
        return new JsonObject
        {
            ["apiVersion"] = "apiextensions.k8s.io/v1",
            ["kind"] = "CustomResourceDefinition",
            ["metadata"] = new JsonObject { ["name"] = Name },
            ["spec"] = new JsonObject
            {
                ["group"] = V1Alpha1DeepSeekModel.Group,
                ["names"] = new JsonObject
                {
                    ["kind"] = V1Alpha1DeepSeekModel.KindName,
                    ["listKind"] = V1Alpha1DeepSeekModel.KindName + "List",
                    ["plural"] = V1Alpha1DeepSeekModel.Plural,
                    ["singular"] = V1Alpha1DeepSeekModel.KindName.ToLowerInvariant(),
                    ["shortNames"] = new JsonArray(V1Alpha1DeepSeekModel.ShortName),
                },
                ["scope"] = "Namespaced",
                ["versions"] = new JsonArray(new JsonObject
                {
                    ["name"] = V1Alpha1DeepSeekModel.Version,
                    ["served"] = true,
                    ["storage"] = true,
                    ["schema"] = new JsonObject { ["openAPIV3Schema"] = root },
                    ["subresources"] = new JsonObject
                    {
                        ["status"] = new JsonObject(),
                        ["scale"] = new JsonObject
                        {
                            ["specReplicasPath"] = ".spec.replicas",
                            ["statusReplicasPath"] = ".status.replicas",
                            ["labelSelectorPath"] = ".status.selector",
                        },
                    },
                    ["additionalPrinterColumns"] = new JsonArray(
                        Column("Replicas", "integer", ".status.replicas"),
                        Column("Ready", "integer", ".status.readyReplicas"),
                        Column("Queue", "number", ".status.queueDepth"),
                        Column("Available", "string", ".status.conditions[?(@.type==\"Available\")].status"),
                        Column("Age", "date", ".metadata.creationTimestamp")),
                }),
            },
        };
    }

    private static JsonObject Column(string name, string type, string path) =>
        new() { ["name"] = name, ["type"] = type, ["jsonPath"] = path };
}
