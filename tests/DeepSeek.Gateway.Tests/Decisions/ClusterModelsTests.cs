using System.Text;
using System.Text.Json.Nodes;
using DeepSeek.Gateway.Cluster;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Keys;
using DeepSeek.Operator.Api.V1Alpha1;
using DeepSeek.Operator.Desired;
using k8s;
using k8s.Models;

namespace DeepSeek.Gateway.Tests.Decisions;

/// <summary>The cluster's models as the gateway's table (pure), and the key format of a key Secret.</summary>
public sealed class ClusterModelsTests
{
    private static readonly ModelSettings Settings = new() { HoldSeconds = 30, Routing = "prefix" };

    [Fact]
    public void ModelsSharingAServedNameAreTheWeightedVariantsOfOnePublicModelAcrossNamespaces()
    {
        var documents = new[]
        {
            Document("team-b", "chat-canary", """{"model": {"servedName": "chat"}, "runtime": {"gpusPerPod": 0}, "gateway": {"weight": 10}}"""),
            Document("team-a", "chat-main", """{"model": {"servedName": "chat"}, "runtime": {"gpusPerPod": 0}}"""),
            Document("team-a", "solo", """{"model": {}, "runtime": {"gpusPerPod": 0}, "replicas": 0}"""),
            Document("team-a", "parked", """{"model": {"servedName": "parked"}, "runtime": {"gpusPerPod": 0}, "gateway": {"weight": 0}}"""),
            Document("team-a", "broken", """{"model": {}, "runtime": {"resources": {"limits": {"cpu": "lots"}}}}"""),
        };

        var table = ClusterModels.From(documents, (_, _) => [], Settings);

        // Sorted by public name; a model whose variants all weigh 0 is not published; one whose spec cannot be read is left out.
        Assert.Equal(["chat", "solo"], table.Select(m => m.Config.Name));
        var chat = table[0];
        Assert.Equal([("team-a/chat-main", GatewaySpec.DefaultWeight), ("team-b/chat-canary", 10)], chat.Config.Variants.Select(v => (v.Name, v.Weight)));
        Assert.Equal((30.0, "prefix"), (chat.Config.HoldSeconds, chat.Config.Routing));
        Assert.Equal(["team-a/chat-main", "team-b/chat-canary"], chat.Sources.Select(s => s.Key));
        // The solo model is published under its resource name; its sources tell scale from zero it is at 0.
        var solo = Assert.Single(table[1].Sources);
        Assert.Equal(0, solo.DesiredReplicas);
        Assert.Equal("7", solo.ResourceVersion);
    }

    [Fact]
    public void EachLoraAdapterIsAPublicModelOfItsOwnOnTheModelsPods()
    {
        var documents = new[]
        {
            Document("team-a", "base", """{"model": {"servedName": "chat"}, "runtime": {"gpusPerPod": 0}, "adapters": [{"name": "sql", "source": {"pvc": {"claimName": "sql"}}}, {"name": "legal", "source": {"pvc": {"claimName": "legal"}}}]}"""),
        };
        var pods = new List<V1Pod> { Pod("base", "base-a", "10.0.0.9", ready: true) };

        var table = ClusterModels.From(documents, (_, name) => name == "base" ? pods : [], Settings);

        Assert.Equal(["chat", "legal", "sql"], table.Select(m => m.Config.Name));
        Assert.All(table, m =>
        {
            var variant = Assert.Single(m.Config.Variants);
            Assert.Equal("team-a/base", variant.Name);
            Assert.Equal(["http://10.0.0.9:8000"], variant.Endpoints);
            Assert.Equal("team-a/base", Assert.Single(m.Sources).Key);
        });
    }

    [Fact]
    public void EndpointsAreTheReadyPodsThatServeAtTheirIpAndHttpPort()
    {
        var model = Model("one", "{}");
        var pods = new List<V1Pod>
        {
            Pod("one", "one-a", "10.0.0.5", ready: true, port: 8123),
            Pod("one", "one-b", "10.0.0.6", ready: false),
            Pod("one", "one-c", "fd00::7", ready: true),
            Pod("one", "one-d", null, ready: true),
            Pod("one", "one-e", "10.0.0.8", ready: true, deleting: true),
        };

        Assert.Equal(["http://10.0.0.5:8123", "http://[fd00::7]:8000"], ClusterModels.ReadyEndpoints(model, pods));
    }

    [Fact]
    public void OfAReplicaGroupOnlyTheLeaderServesUnlessEveryRankServesWithDataParallelAttention()
    {
        var pods = new List<V1Pod>
        {
            Pod("big", "big-g0-0", "10.0.1.1", ready: true, group: 0, rank: 0),
            Pod("big", "big-g0-1", "10.0.1.2", ready: true, group: 0, rank: 1),
            Pod("big", "big-g1-0", "10.0.1.3", ready: false, group: 1, rank: 0),
            Pod("big", "big-g1-1", "10.0.1.4", ready: true, group: 1, rank: 1),
        };
        var grouped = Model("big", """{"replicas": 2, "parallelism": {"podsPerReplica": 2}}""");
        var dataParallel = Model("big", """{"replicas": 2, "parallelism": {"podsPerReplica": 2, "expertParallelSize": 2, "dataParallelAttention": true}, "runtime": {"gpusPerPod": 1}}""");

        Assert.Equal(["http://10.0.1.1:8000"], ClusterModels.ReadyEndpoints(grouped, pods));
        Assert.Equal(["http://10.0.1.1:8000", "http://10.0.1.2:8000", "http://10.0.1.4:8000"], ClusterModels.ReadyEndpoints(dataParallel, pods));
    }

    [Fact]
    public void ASecretsEntriesAreKeyListsCheckedAsTheFilesKeysAre()
    {
        var good = KeySecrets.Read(Secret(("a.yaml", $"- {{id: team-a, sha256: {KeyTable.HashHex("k1")}, models: [chat], requestsPerMinute: 60}}"),
            ("b.yaml", $"- {{id: team-b, sha256: {KeyTable.HashHex("k2")}}}")));
        Assert.Empty(good.Problems);
        Assert.Equal(["team-a", "team-b"], good.Keys.Select(k => k.Id));
        Assert.Equal(60, good.Keys[0].RequestsPerMinute);

        var bad = KeySecrets.Read(Secret(("a.yaml", "- {id: team-a, sha256: nope}"), ("b.yaml", "- {id: x, sha256: 1, color: red}")));
        Assert.Empty(bad.Keys);
        Assert.Contains(bad.Problems, p => p.StartsWith("ns/keys a.yaml[0].sha256", StringComparison.Ordinal));
        Assert.Contains(bad.Problems, p => p.StartsWith("ns/keys b.yaml: line 1", StringComparison.Ordinal));

        var twice = KeySecrets.Read(Secret(("a.yaml", $"- {{id: team-a, sha256: {KeyTable.HashHex("k1")}}}"), ("b.yaml", $"- {{id: team-a, sha256: {KeyTable.HashHex("k2")}}}")));
        Assert.Contains(twice.Problems, p => p.Contains("'team-a' is listed twice", StringComparison.Ordinal));

        var binary = KeySecrets.Read(new V1Secret { Metadata = new V1ObjectMeta { Name = "keys", NamespaceProperty = "ns" }, Data = new Dictionary<string, byte[]> { ["a"] = [0xff, 0xfe] } });
        Assert.Contains(binary.Problems, p => p.Contains("not UTF-8", StringComparison.Ordinal));
    }

    private static V1Secret Secret(params (string Entry, string Text)[] entries) => new()
    {
        Metadata = new V1ObjectMeta { Name = "keys", NamespaceProperty = "ns" },
        Data = entries.ToDictionary(e => e.Entry, e => Encoding.UTF8.GetBytes(e.Text)),
    };

    private static DeepSeekModelDocument Document(string ns, string name, string spec) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, ResourceVersion = "7" },
        Spec = JsonNode.Parse(spec),
    };

    private static V1Alpha1DeepSeekModel Model(string name, string spec) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" },
        Spec = KubernetesJson.Deserialize<DeepSeekModelSpec>(spec),
    };

    private static V1Pod Pod(string model, string name, string? ip, bool ready, int? port = null, bool deleting = false, int? group = null, int? rank = null)
    {
        var labels = ModelLabels.For(model);
        if (group is { } g) labels[ModelLabels.Group] = ObjectNames.GroupLabel(g);
        if (rank is { } r) labels[ModelLabels.PodIndex] = r.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Labels = labels, DeletionTimestamp = deleting ? DateTime.UtcNow : null },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "runtime", Ports = port is { } p ? [new V1ContainerPort { Name = "http", ContainerPort = p }] : null }] },
            Status = new V1PodStatus { PodIP = ip, Conditions = [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False" }] },
        };
    }
}
