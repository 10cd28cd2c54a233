using k8s;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>
/// An informer-style store of one kind: the objects its watches have seen, by namespace/name, each
/// watched namespace replaced on its list and kept current by the watch events. Reconciles read from it instead of
/// asking the API server; a read may be a moment behind the server, which the writes handle (a stale
/// resourceVersion is refused with 409 and the key is retried).
/// </summary>
/// <param name="indexBy">An index (client-go's Indexer): the value an object is found by with
/// <see cref="ByIndex"/>, or null for none; here namespace/model, so a reconcile finds its children
/// without scanning every object of the kind.</param>
public sealed class ObjectCache<T>(Func<T, string?>? indexBy = null) : IObjectCache where T : IKubernetesObject<V1ObjectMeta>
{
    private readonly Lock gate = new();
    private readonly Dictionary<string, T> items = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> index = new(StringComparer.Ordinal);

    public int Count { get { lock (gate) return items.Count; } }

    public T? Get(string ns, string name)
    {
        lock (gate) return items.GetValueOrDefault(ObjectKey.Of(ns, name));
    }

    /// <summary>Every object held, in no particular order (client-go's <c>List()</c>).</summary>
    public IReadOnlyList<T> Items()
    {
        lock (gate) return [.. items.Values];
    }

    /// <summary>The objects whose index value is <paramref name="value"/>.</summary>
    public IReadOnlyList<T> ByIndex(string value)
    {
        lock (gate) return index.TryGetValue(value, out var keys) ? keys.Select(k => items[k]).ToList() : [];
    }

    IEnumerable<IKubernetesObject<V1ObjectMeta>> IObjectCache.ByIndex(string value) => ByIndex(value).Cast<IKubernetesObject<V1ObjectMeta>>();

    public void Apply(WatchEventType type, T item)
    {
        var key = ObjectKey.Of(item.Metadata.NamespaceProperty, item.Metadata.Name);
        lock (gate)
        {
            Unindex(key);
            if (type == WatchEventType.Deleted) items.Remove(key);
            else Put(key, item);
        }
    }

    private void Put(string key, T item)
    {
        items[key] = item;
        if (indexBy?.Invoke(item) is not { } value) return;
        if (!index.TryGetValue(value, out var keys)) index[value] = keys = new HashSet<string>(StringComparer.Ordinal);
        keys.Add(key);
    }

    private void Unindex(string key)
    {
        if (indexBy is null || !items.TryGetValue(key, out var old) || indexBy(old) is not { } value || !index.TryGetValue(value, out var keys)) return;
        keys.Remove(key);
        if (keys.Count == 0) index.Remove(value);
    }

    /// <summary>
    /// A fresh list of <paramref name="ns"/> (null: every namespace) replaces that namespace's objects and
    /// no other's: with several watched namespaces, one cache holds them all and each lists on its own.
    /// Returns what vanished meanwhile, so its owners are looked at.
    /// </summary>
    public IReadOnlyList<T> Replace(IEnumerable<T> listed, string? ns = null)
    {
        var fresh = listed.ToDictionary(i => ObjectKey.Of(i.Metadata.NamespaceProperty, i.Metadata.Name), StringComparer.Ordinal);
        lock (gate)
        {
            var gone = items.Where(kv => (ns is null || ObjectKey.Split(kv.Key).Namespace == ns) && !fresh.ContainsKey(kv.Key)).ToList();
            foreach (var (key, _) in gone)
            {
                Unindex(key);
                items.Remove(key);
            }
            foreach (var (key, value) in fresh)
            {
                Unindex(key);
                Put(key, value);
            }
            return [.. gone.Select(kv => kv.Value)];
        }
    }
}

/// <summary>A cache of any kind, for code that iterates <see cref="WatchedKinds.All"/>.</summary>
public interface IObjectCache
{
    IEnumerable<IKubernetesObject<V1ObjectMeta>> ByIndex(string value);
}
