using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// An informer-style store of one kind: the objects a watch has seen, by namespace/name, replaced
/// wholesale on each list and kept current by the watch events. Reconciles read from it instead of
/// asking the API server; a read may be a moment behind the server, which the writes handle (a stale
/// resourceVersion is refused with 409 and the key is retried).
/// </summary>
public sealed class ObjectCache<T> where T : IKubernetesObject<V1ObjectMeta>
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, T> items = new(StringComparer.Ordinal);

    public int Count { get { lock (gate) return items.Count; } }

    public T? Get(string ns, string name)
    {
        lock (gate) return items.GetValueOrDefault(ObjectKey.Of(ns, name));
    }

    /// <summary>The objects of <paramref name="ns"/> that match <paramref name="filter"/>.</summary>
    public IReadOnlyList<T> List(string ns, Func<T, bool> filter)
    {
        lock (gate) return items.Values.Where(i => (i.Metadata.NamespaceProperty ?? "default") == ns && filter(i)).ToList();
    }

    public void Apply(WatchEventType type, T item)
    {
        var key = ObjectKey.Of(item.Metadata.NamespaceProperty, item.Metadata.Name);
        lock (gate)
        {
            if (type == WatchEventType.Deleted) items.Remove(key);
            else items[key] = item;
        }
    }

    /// <summary>A fresh list replaces everything; returns what vanished meanwhile, so its owners are looked at.</summary>
    public IReadOnlyList<T> Replace(IEnumerable<T> listed)
    {
        var fresh = listed.ToDictionary(i => ObjectKey.Of(i.Metadata.NamespaceProperty, i.Metadata.Name), StringComparer.Ordinal);
        lock (gate)
        {
            var gone = items.Where(kv => !fresh.ContainsKey(kv.Key)).Select(kv => kv.Value).ToList();
            items.Clear();
            foreach (var (key, value) in fresh) items[key] = value;
            return gone;
        }
    }
}
