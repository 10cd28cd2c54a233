using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace DeepSeek.KubernetesTestServer;

/// <summary>
/// The server's state: objects as JSON, one global resourceVersion counter, an event history for
/// watches to resume from (versions below the compaction mark answer 410 Gone), and live watchers.
/// </summary>
public sealed class ObjectStore(TimeProvider time)
{
    private readonly object gate = new();
    private readonly Dictionary<(ResourceType Type, string Ns, string Name), JsonObject> objects = [];
    /// <summary>The uids of the stored objects, so an owner check costs one lookup, not a scan of the store (1,000 models: 6,000 objects).</summary>
    private readonly HashSet<string> liveUids = new(StringComparer.Ordinal);
    private readonly List<(long Version, ResourceType Type, string EventType, JsonObject Object)> history = [];
    private readonly List<Watcher> watchers = [];
    private long revision = 1;
    private long compactedBelow;

    /// <summary>The ImageVolume feature gate; off, image volumes are dropped from workloads (<see cref="DisabledFields"/>).</summary>
    public bool ImageVolumeGate { get; set; } = true;

    /// <summary>One open watch: its kind, namespace (null: all), label selector and parsed field selector (null: none).</summary>
    public sealed class Watcher(ResourceType type, string? ns, string? selector, IReadOnlyList<(string Path, string Value)>? fields = null)
    {
        public ResourceType Type { get; } = type;
        public string? Namespace { get; } = ns;
        public string? Selector { get; } = selector;
        public IReadOnlyList<(string Path, string Value)>? Fields { get; } = fields;
        public Channel<(string EventType, JsonObject Object)> Events { get; } = Channel.CreateUnbounded<(string, JsonObject)>();

        public bool Wants(ResourceType type, JsonObject obj) =>
            type == Type && (Namespace is null || (string?)obj["metadata"]?["namespace"] == Namespace) && LabelSelector.Matches(Selector, obj)
            && (Fields is null || FieldSelector.Matches(Fields, obj));
    }

    public long Revision { get { lock (gate) return revision; } }

    /// <summary>Forget history up to now: watches from older versions get 410 and must list again.</summary>
    public void Compact()
    {
        lock (gate)
        {
            compactedBelow = revision + 1;
            history.Clear();
        }
    }

    /// <summary>Ends every open watch stream, as an API server restart or a load balancer timeout would.</summary>
    public void DropWatches()
    {
        lock (gate)
        {
            foreach (var w in watchers) w.Events.Writer.TryComplete();
            watchers.Clear();
        }
    }

    public int OpenWatches { get { lock (gate) return watchers.Count; } }

    public JsonObject? Get(ResourceType type, string ns, string name)
    {
        lock (gate) return objects.GetValueOrDefault((type, ns, name))?.DeepClone().AsObject();
    }

    public (List<JsonObject> Items, long Version) List(ResourceType type, string? ns, string? selector)
    {
        lock (gate)
        {
            var items = objects.Where(kv => kv.Key.Type == type && (ns is null || kv.Key.Ns == ns) && LabelSelector.Matches(selector, kv.Value))
                .OrderBy(kv => kv.Key.Ns, StringComparer.Ordinal).ThenBy(kv => kv.Key.Name, StringComparer.Ordinal)
                .Select(kv => kv.Value.DeepClone().AsObject()).ToList();
            return (items, revision);
        }
    }

    /// <summary>How many objects of <paramref name="type"/> in <paramref name="ns"/> satisfy <paramref name="where"/>, without copying them (for benches).</summary>
    public int Count(ResourceType type, string? ns, Func<JsonObject, bool>? where = null)
    {
        lock (gate) return objects.Count(kv => kv.Key.Type == type && (ns is null || kv.Key.Ns == ns) && (where is null || where(kv.Value)));
    }

    /// <summary>Opens a watch: null when <paramref name="fromVersion"/> was compacted away (410).</summary>
    public Watcher? Watch(ResourceType type, string? ns, string? selector, long? fromVersion, IReadOnlyList<(string Path, string Value)>? fields = null)
    {
        lock (gate)
        {
            var watcher = new Watcher(type, ns, selector, fields);
            if (fromVersion is null or 0)
            {
                foreach (var obj in objects.Where(kv => kv.Key.Type == type).Select(kv => kv.Value))
                    if (watcher.Wants(type, obj)) watcher.Events.Writer.TryWrite(("ADDED", obj.DeepClone().AsObject()));
            }
            else
            {
                if (fromVersion < compactedBelow - 1) return null;
                foreach (var e in history.Where(h => h.Version > fromVersion))
                    if (watcher.Wants(e.Type, e.Object)) watcher.Events.Writer.TryWrite((e.EventType, e.Object.DeepClone().AsObject()));
            }
            watchers.Add(watcher);
            return watcher;
        }
    }

    public void Unwatch(Watcher watcher)
    {
        lock (gate) watchers.Remove(watcher);
    }

    public (int Status, JsonObject Body) Create(ResourceType type, string ns, JsonObject obj)
    {
        lock (gate)
        {
            var metadata = obj["metadata"] as JsonObject ?? new JsonObject();
            obj["metadata"] = metadata;
            var name = (string?)metadata["name"];
            if (string.IsNullOrEmpty(name) && (string?)metadata["generateName"] is { } prefix)
                metadata["name"] = name = prefix + Guid.NewGuid().ToString("N")[..5];
            if (string.IsNullOrEmpty(name)) return Errors.Invalid("metadata.name: Required value");
            if (objects.ContainsKey((type, ns, name))) return Errors.AlreadyExists(type, name);
            metadata["namespace"] = ns;
            metadata["uid"] = Guid.NewGuid().ToString();
            metadata["creationTimestamp"] = Timestamp();
            metadata["generation"] = 1L;
            obj["apiVersion"] = type.GroupVersion;
            obj["kind"] = type.Kind;
            if (type.HasStatus) obj.Remove("status");
            StoredForm.Apply(type, obj);
            if (!ImageVolumeGate) DisabledFields.DropImageVolumes(type, obj);
            var created = Commit(type, ns, name, obj, "ADDED");
            // Kubernetes' garbage collector also removes a dependent whose owners are all gone, such as
            // a child a controller created just after its owner was deleted; here it happens at once.
            if (OwnersAllGone(obj))
            {
                Forget((type, ns, name));
                Publish(type, "DELETED", obj);
            }
            return (201, created);
        }
    }

    /// <summary>PUT of the object (status kept) or of its status subresource (only status taken).</summary>
    public (int Status, JsonObject Body) Update(ResourceType type, string ns, string name, JsonObject incoming, bool statusOnly)
    {
        lock (gate)
        {
            if (!objects.TryGetValue((type, ns, name), out var current)) return Errors.NotFound(type, name);
            var sentVersion = (string?)incoming["metadata"]?["resourceVersion"];
            if (!string.IsNullOrEmpty(sentVersion) && sentVersion != (string?)current["metadata"]!["resourceVersion"])
                return Errors.Conflict(type, name);
            var next = current.DeepClone().AsObject();
            if (statusOnly)
            {
                next["status"] = incoming["status"]?.DeepClone();
            }
            else
            {
                var metadata = next["metadata"]!.AsObject();
                var sent = incoming["metadata"] as JsonObject;
                foreach (var field in new[] { "labels", "annotations", "ownerReferences", "finalizers" })
                    metadata[field] = sent?[field]?.DeepClone();
                foreach (var (key, value) in incoming)
                    if (key is not ("metadata" or "status" or "apiVersion" or "kind")) next[key] = value?.DeepClone();
                foreach (var key in next.Select(kv => kv.Key).ToList())
                    if (key is not ("metadata" or "status" or "apiVersion" or "kind") && !incoming.ContainsKey(key)) next.Remove(key);
                if (!type.HasStatus && incoming["status"] is { } status) next["status"] = status.DeepClone();
                StoredForm.Apply(type, next);
                if (!ImageVolumeGate) DisabledFields.DropImageVolumes(type, next);
                if (ImmutableChange(type, current, next) is { } refused) return refused;
                BumpGenerationIfSpecChanged(current, next);
            }
            return (200, Commit(type, ns, name, next, "MODIFIED"));
        }
    }

    public (int Status, JsonObject Body) Patch(ResourceType type, string ns, string name, JsonNode patch, bool statusOnly)
    {
        lock (gate)
        {
            if (!objects.TryGetValue((type, ns, name), out var current)) return Errors.NotFound(type, name);
            var sentVersion = (string?)patch["metadata"]?["resourceVersion"];
            if (!string.IsNullOrEmpty(sentVersion) && sentVersion != (string?)current["metadata"]!["resourceVersion"])
                return Errors.Conflict(type, name);
            var patched = JsonMergePatch.Apply(current.DeepClone(), patch)!.AsObject();
            var next = current.DeepClone().AsObject();
            if (statusOnly) next["status"] = patched["status"]?.DeepClone();
            else
            {
                foreach (var (key, value) in patched)
                    if (key is not ("status" or "apiVersion" or "kind") || !type.HasStatus) next[key] = value?.DeepClone();
                // Identity fields are the server's.
                foreach (var field in new[] { "uid", "creationTimestamp", "namespace", "name", "generation", "resourceVersion" })
                    next["metadata"]![field] = current["metadata"]![field]?.DeepClone();
                StoredForm.Apply(type, next);
                if (!ImageVolumeGate) DisabledFields.DropImageVolumes(type, next);
                if (ImmutableChange(type, current, next) is { } refused) return refused;
                BumpGenerationIfSpecChanged(current, next);
            }
            return (200, Commit(type, ns, name, next, "MODIFIED"));
        }
    }

    public (int Status, JsonObject Body) Delete(ResourceType type, string ns, string name, IReadOnlyList<ResourceType> allTypes)
    {
        lock (gate)
        {
            if (Forget((type, ns, name)) is not { } current) return Errors.NotFound(type, name);
            Publish(type, "DELETED", current);
            CollectGarbage((string)current["metadata"]!["uid"]!, allTypes);
            return (200, Errors.Success(type, name));
        }
    }

    private bool OwnersAllGone(JsonObject obj)
    {
        if (obj["metadata"]?["ownerReferences"] is not JsonArray { Count: > 0 } owners) return false;
        return owners.All(o => (string?)o?["uid"] is not { } uid || !liveUids.Contains(uid));
    }

    /// <summary>Owner-reference garbage collection, foreground and immediate: dependents of a deleted uid go too, recursively.</summary>
    private void CollectGarbage(string uid, IReadOnlyList<ResourceType> allTypes)
    {
        var dependents = objects.Where(kv => kv.Value["metadata"]?["ownerReferences"] is JsonArray owners
                && owners.Any(o => (string?)o?["uid"] == uid)).ToList();
        foreach (var (key, value) in dependents)
        {
            Forget(key);
            Publish(key.Type, "DELETED", value);
            CollectGarbage((string)value["metadata"]!["uid"]!, allTypes);
        }
    }

    /// <summary>A Secret or ConfigMap marked <c>immutable: true</c> keeps its data and the mark; only metadata may change (422 otherwise).</summary>
    private static (int, JsonObject)? ImmutableChange(ResourceType type, JsonObject current, JsonObject next)
    {
        if (type.Kind is not ("Secret" or "ConfigMap") || current["immutable"]?.GetValueKind() != System.Text.Json.JsonValueKind.True) return null;
        foreach (var field in new[] { "immutable", "data", "stringData", "binaryData", "type" })
        {
            if (!JsonNode.DeepEquals(current[field], next[field]))
                return Errors.Invalid($"{type.Kind} \"{(string?)current["metadata"]!["name"]}\" is invalid: {field}: Forbidden: field is immutable when `immutable` is set");
        }
        return null;
    }

    private static void BumpGenerationIfSpecChanged(JsonObject before, JsonObject after)
    {
        static string Content(JsonObject o) => new JsonObject(o.Where(kv => kv.Key is not ("metadata" or "status" or "apiVersion" or "kind"))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone()))).ToJsonString();
        if (Content(before) != Content(after))
            after["metadata"]!["generation"] = (before["metadata"]!["generation"] is { } g ? long.Parse(g.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture) : 1L) + 1;
    }

    private JsonObject Commit(ResourceType type, string ns, string name, JsonObject obj, string eventType)
    {
        obj["metadata"]!["resourceVersion"] = (++revision).ToString(System.Globalization.CultureInfo.InvariantCulture);
        objects[(type, ns, name)] = obj;
        if ((string?)obj["metadata"]!["uid"] is { } uid) liveUids.Add(uid);
        Publish(type, eventType, obj);
        return obj.DeepClone().AsObject();
    }

    private JsonObject? Forget((ResourceType Type, string Ns, string Name) key)
    {
        if (!objects.Remove(key, out var removed)) return null;
        if ((string?)removed["metadata"]?["uid"] is { } uid) liveUids.Remove(uid);
        return removed;
    }

    private void Publish(ResourceType type, string eventType, JsonObject obj)
    {
        if (eventType == "DELETED")
            obj["metadata"]!["resourceVersion"] = (++revision).ToString(System.Globalization.CultureInfo.InvariantCulture);
        history.Add((revision, type, eventType, obj.DeepClone().AsObject()));
        foreach (var w in watchers)
            if (w.Wants(type, obj)) w.Events.Writer.TryWrite((eventType, obj.DeepClone().AsObject()));
    }

    private string Timestamp() => time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
