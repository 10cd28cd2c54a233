namespace DeepSeek.Model.Lora;

/// <summary>
/// The adapters a server offers by name beside its base model (<c>--lora-modules</c>, and with
/// <c>--enable-lora-updates</c> those loaded and unloaded at run time). Safe from any thread: the faces
/// resolve a request's <c>model</c> here and the engine carries the <see cref="LoraAdapter"/> itself, so
/// a request admitted before an unload finishes with the adapter it started with.
/// </summary>
public sealed class LoraAdapterSet(string baseName, LoraTargets targets, int maxRank, bool updatable)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LoraAdapter> _adapters = new(StringComparer.Ordinal);

    /// <summary>The served name of the base model, which no adapter may take.</summary>
    public string BaseName { get; } = baseName;

    public LoraTargets Targets { get; } = targets;

    public int MaxRank { get; } = maxRank;

    /// <summary>Whether adapters may be loaded and unloaded at run time (<c>--enable-lora-updates</c>).</summary>
    public bool Updatable { get; } = updatable;

    /// <summary>The adapters now offered, by name.</summary>
    public IReadOnlyList<LoraAdapter> All
    {
        get
        {
            lock (_lock) return [.. _adapters.Values.OrderBy(a => a.Name, StringComparer.Ordinal)];
        }
    }

    /// <summary>
    /// The projections the device slots must cover: every adaptable one when adapters may arrive later,
    /// else those the adapters loaded at start adapt (a projection no adapter touches costs nothing).
    /// </summary>
    public IReadOnlyCollection<string> SlotModules()
    {
        if (Updatable) return [.. Targets.Supported.Keys];
        lock (_lock) return [.. _adapters.Values.SelectMany(a => a.Modules.Keys).Distinct(StringComparer.Ordinal)];
    }

    public LoraAdapter? Find(string name)
    {
        lock (_lock) return _adapters.GetValueOrDefault(name);
    }

    /// <summary>Reads, checks and adds the adapter in <paramref name="directory"/> under <paramref name="name"/>.</summary>
    /// <exception cref="LoraAdapterException">The folder is refused, or the name is taken.</exception>
    public LoraAdapter Load(string name, string directory)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new LoraAdapterException("A LoRA adapter needs a name.");
        if (name == BaseName) throw new LoraAdapterException($"The LoRA adapter name '{name}' is the base model's served name; choose another.");
        lock (_lock)
            if (_adapters.ContainsKey(name)) throw new LoraAdapterException($"The LoRA adapter '{name}' has already been loaded; unload it first.");
        // Read outside the lock: a large adapter must not hold up requests resolving their model.
        var adapter = LoraAdapter.Load(name, directory, Targets, MaxRank);
        lock (_lock)
        {
            if (!_adapters.TryAdd(name, adapter)) throw new LoraAdapterException($"The LoRA adapter '{name}' has already been loaded; unload it first.");
        }
        return adapter;
    }

    /// <summary>Adds an adapter made in memory (<see cref="LoraAdapter.FromWeights"/>: a benchmark's).</summary>
    /// <exception cref="LoraAdapterException">Its name is taken or is the base model's.</exception>
    public void Add(LoraAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        if (adapter.Name == BaseName) throw new LoraAdapterException($"The LoRA adapter name '{adapter.Name}' is the base model's served name; choose another.");
        lock (_lock)
            if (!_adapters.TryAdd(adapter.Name, adapter)) throw new LoraAdapterException($"The LoRA adapter '{adapter.Name}' has already been loaded; unload it first.");
    }

    /// <summary>Stops offering <paramref name="name"/>; requests admitted before finish with it. False when unknown.</summary>
    public bool Unload(string name)
    {
        lock (_lock) return _adapters.Remove(name);
    }
}
