using System.Text;
using DeepSeek.Gateway.Configuration;
using DeepSeek.Gateway.Keys;
using DeepSeek.Operator.Controller;
using k8s;
using k8s.Models;

namespace DeepSeek.Gateway.Cluster;

/// <summary>
/// The keys of <c>cluster.keySecrets</c>, kept current: each Secret is listed and watched by its name (the
/// operator's <see cref="ResourceWatcher{T,TList}"/> with a <c>metadata.name</c> field selector, what RBAC's
/// resourceNames allows), and every change replaces the <see cref="KeyTable"/> at once. Every data entry
/// of a Secret is a YAML list in the shape of the file's <c>keys:</c> (id, sha256, models, limits; never a
/// key's text). A Secret whose new content has problems keeps its last good keys (the problems are logged);
/// a Secret that is deleted, or never existed, contributes none. The table is closed from the start, so
/// until the Secrets are read, and when they hold no key, every caller is refused.
/// </summary>
internal sealed partial class KeySecrets(IKubernetes client, ClusterConfig cluster, KeyTable table, TimeProvider time, ILogger<KeySecrets> logger) : BackgroundService
{
    private static readonly WatchedKind<V1Secret, V1SecretList> SecretKind = new("", "v1", "Secret", "secrets", Owned: false, ["list", "watch"]) { LabelSelector = null };

    private readonly Lock _gate = new();
    private readonly Dictionary<string, IReadOnlyList<KeyConfig>> _keys = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once every Secret has been listed (found or not) and the table holds its keys.</summary>
    public Task Synced => _synced.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var watchers = cluster.KeySecrets.Select(secret =>
        {
            // A cache each: a list of one name replaces its namespace's objects in the cache it fills.
            var cache = new ObjectCache<V1Secret>();
            return (IResourceWatcher)new ResourceWatcher<V1Secret, V1SecretList>(client, SecretKind, secret.Namespace, cache,
                (_, _) => Reload(secret, cache.Get(secret.Namespace, secret.Name)), time, logger, fieldSelector: "metadata.name=" + secret.Name);
        }).ToList();
        var runs = watchers.Select(w => w.RunAsync(stoppingToken)).ToList();
        try
        {
            await Task.WhenAny(Task.WhenAll(watchers.Select(w => w.Synced)), Task.Delay(Timeout.Infinite, stoppingToken));
            if (!stoppingToken.IsCancellationRequested)
            {
                lock (_gate)
                {
                    Publish();
                    _synced.TrySetResult();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await Task.WhenAll(runs);
        }
    }

    /// <summary>
    /// The keys of one Secret, or the problems that keep it from being used, each naming the Secret and entry
    /// (<c>deepseek-system/gateway-keys keys.yaml[1].sha256: …</c>). No data: no keys.
    /// </summary>
    public static (IReadOnlyList<KeyConfig> Keys, IReadOnlyList<string> Problems) Read(V1Secret secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var name = $"{secret.Metadata?.NamespaceProperty}/{secret.Metadata?.Name}";
        var keys = new List<KeyConfig>();
        var problems = new List<string>();
        foreach (var (entry, bytes) in (secret.Data ?? new Dictionary<string, byte[]>()).OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            var at = $"{name} {entry}";
            List<KeyConfig?>? listed;
            try
            {
                listed = ConfigFile.Deserialize<List<KeyConfig?>?>(new UTF8Encoding(false, true).GetString(bytes ?? []), at);
            }
            catch (GatewayConfigException e)
            {
                problems.Add(e.Message);
                continue;
            }
            catch (DecoderFallbackException)
            {
                problems.Add($"{at}: not UTF-8 text");
                continue;
            }
            KeyConfig.CheckList(at, listed, modelNames: null, problems);
            keys.AddRange(listed?.OfType<KeyConfig>() ?? []);
        }
        // Within one Secret an id or hash may not repeat across its entries either.
        if (problems.Count == 0) KeyConfig.CheckList(name, keys, modelNames: null, problems);
        if (problems.Count > 0) return (Array.Empty<KeyConfig>(), problems);
        return (keys, Array.Empty<string>());
    }

    private void Reload(SecretName name, V1Secret? secret)
    {
        var key = name.ToString();
        lock (_gate)
        {
            if (secret is null)
            {
                if (_keys.Remove(key)) LogGone(logger, key);
            }
            else
            {
                var (keys, problems) = Read(secret);
                if (problems.Count > 0)
                {
                    var said = string.Join("; ", problems);
                    LogRefused(logger, key, said);
                    return;
                }
                _keys[key] = keys;
                LogRead(logger, key, keys.Count);
            }
            if (_synced.Task.IsCompleted) Publish();
        }
    }

    /// <summary>The union of the Secrets' keys, in the order of <c>cluster.keySecrets</c>; an id or hash already taken by an earlier Secret is left out. Called holding the lock.</summary>
    private void Publish()
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var hashes = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var union = new List<KeyConfig>();
        foreach (var secret in cluster.KeySecrets)
        {
            var name = secret.ToString();
            foreach (var key in _keys.GetValueOrDefault(name) ?? [])
            {
                if (ids.Add(key.Id) && hashes.Add(key.Sha256)) union.Add(key);
                else LogDuplicate(logger, name, key.Id);
            }
        }
        table.Replace(union);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Keys from Secret {Secret}: {Count}")]
    private static partial void LogRead(ILogger logger, string secret, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Keys from Secret {Secret} not used, its last good keys are kept: {Problems}")]
    private static partial void LogRefused(ILogger logger, string secret, string problems);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Secret {Secret} is gone: its keys are revoked")]
    private static partial void LogGone(ILogger logger, string secret);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Secret {Secret}: key {Id} has an id or hash an earlier key Secret already has; left out")]
    private static partial void LogDuplicate(ILogger logger, string secret, string id);
}
