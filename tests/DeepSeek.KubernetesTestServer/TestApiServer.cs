using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DeepSeek.KubernetesTestServer;

/// <summary>
/// An in-process Kubernetes API server on 127.0.0.1 (Kestrel, plain HTTP) for the kinds an operator
/// uses: discovery, get/list/watch with resourceVersion, bookmarks and 410 Gone, create, update with
/// 409 on a stale resourceVersion, JSON merge patch, delete with owner-reference garbage collection,
/// status and scale subresources (a scale patch applies to the Scale), generation bumped on spec changes
/// only, equality field selectors on lists and watches, Secrets' stringData folded into data; RBAC
/// through an authorizer (403 in the Status shape), injected faults, outages that refuse connections,
/// and a request log.
/// </summary>
public sealed class TestApiServer : IAsyncDisposable
{
    private readonly SemaphoreSlim listening = new(1, 1);
    private WebApplication? app;
    private int port;
    private readonly List<ResourceType> types = [.. ResourceType.BuiltIn];
    private readonly List<Fault> faults = [];
    private readonly ConcurrentQueue<RequestRecord> log = new();
    private readonly TimeProvider time;

    private TestApiServer(TimeProvider time)
    {
        this.time = time;
        Store = new ObjectStore(time);
    }

    public ObjectStore Store { get; }

    public Uri BaseUri { get; private set; } = null!;

    /// <summary>Decides each request by (user, API group, resource[/subresource], verb); null allows everything.</summary>
    public Func<string, string, string, string, bool>? Authorizer { get; set; }

    /// <summary>
    /// Decides each request as RBAC does with the namespace and the object's name too (a Role's namespace, its
    /// resourceNames), after <see cref="Authorizer"/>; null allows everything.
    /// </summary>
    public Func<AccessRequest, bool>? Authorize { get; set; }

    /// <summary>Delay before every answer.</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>How often an open watch that asked for bookmarks gets one.</summary>
    public TimeSpan BookmarkInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    public IReadOnlyList<RequestRecord> Requests => [.. log];

    public static async Task<TestApiServer> StartAsync(TimeProvider? time = null)
    {
        var server = new TestApiServer(time ?? TimeProvider.System);
        await server.ListenAsync(0);
        return server;
    }

    /// <summary>
    /// An API server outage: every open watch is cut, the listening socket is closed so that new
    /// connections are refused (what a client sees while kube-apiserver restarts or its load balancer
    /// has no backend), and after <paramref name="duration"/> the server listens on the same port again
    /// with its state intact, as a restarted API server over the same etcd would.
    /// </summary>
    public async Task OutageAsync(TimeSpan duration)
    {
        await listening.WaitAsync();
        try
        {
            Store.DropWatches();
            using (var abort = new CancellationTokenSource(TimeSpan.FromSeconds(2))) await app!.StopAsync(abort.Token);
            await app.DisposeAsync();
            app = null;
            await Task.Delay(duration);
            await ListenAsync(port);
        }
        finally
        {
            listening.Release();
        }
    }

    private async Task ListenAsync(int onPort)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, onPort));
        var next = builder.Build();
        next.Run(HandleAsync);
        await next.StartAsync();
        var address = next.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUri = new Uri(address);
        port = BaseUri.Port;
        app = next;
    }

    public void Register(ResourceType type)
    {
        lock (types) types.Add(type);
    }

    /// <summary>The next <paramref name="count"/> requests with this RBAC verb on this resource ("*" matches any) fail with <paramref name="status"/>.</summary>
    public void InjectFault(string verb, string resource, int status, int count = 1)
    {
        lock (faults) faults.Add(new Fault(verb, resource, status, count));
    }

    /// <summary>A kubeconfig that points at this server, authenticating as <paramref name="user"/> (a bearer token).</summary>
    public string Kubeconfig(string user = "operator") => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: test
          cluster: {"{"}server: "{BaseUri.ToString().TrimEnd('/')}"{"}"}
        contexts:
        - name: test
          context: {"{"}cluster: test, user: {user}, namespace: default{"}"}
        current-context: test
        users:
        - name: {user}
          user: {"{"}token: {user}{"}"}
        """;

    public async ValueTask DisposeAsync()
    {
        await listening.WaitAsync();
        Store.DropWatches();
        if (app is not null)
        {
            using (var abort = new CancellationTokenSource(TimeSpan.FromSeconds(5))) await app.StopAsync(abort.Token);
            await app.DisposeAsync();
        }
        listening.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        if (Latency > TimeSpan.Zero) await Task.Delay(Latency, time, context.RequestAborted);
        var path = context.Request.Path.Value ?? "/";
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (path.TrimEnd('/') == "/version") { await Write(context, 200, VersionInfo()); return; }
        if (Discovery(segments) is { } discovery) { await Write(context, 200, discovery); return; }

        // /api/v1/... or /apis/{group}/{version}/...
        string group, version;
        int rest;
        if (segments.Length >= 2 && segments[0] == "api") (group, version, rest) = ("", segments[1], 2);
        else if (segments.Length >= 3 && segments[0] == "apis") (group, version, rest) = (segments[1], segments[2], 3);
        else { await Write(context, 404, Errors.Failure(404, "NotFound", $"the server could not find {path}", null, null).Item2); return; }
        string? ns = null;
        if (segments.Length > rest + 1 && segments[rest] == "namespaces") { ns = segments[rest + 1]; rest += 2; }
        if (segments.Length <= rest) { await Write(context, 404, Errors.Failure(404, "NotFound", path, null, null).Item2); return; }
        var plural = segments[rest];
        var name = segments.Length > rest + 1 ? segments[rest + 1] : null;
        var sub = segments.Length > rest + 2 ? segments[rest + 2] : null;
        ResourceType? type;
        lock (types) type = types.FirstOrDefault(t => t.Group == group && t.Version == version && t.Plural == plural);
        if (type is null) { await Write(context, 404, Errors.Failure(404, "NotFound", $"the server could not find the requested resource {path}", null, null).Item2); return; }

        var query = context.Request.Query;
        var watch = query["watch"] is var w && (w == "true" || w == "1");
        var verb = context.Request.Method switch
        {
            "GET" => name is null ? (watch ? "watch" : "list") : "get",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "unknown",
        };
        var resource = sub is null ? plural : $"{plural}/{sub}";
        var user = context.Request.Headers.Authorization.ToString() is { Length: > 7 } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : "anonymous";

        if ((Authorizer is { } authorize && !authorize(user, group, resource, verb))
            || (Authorize is { } check && !check(new AccessRequest(user, group, resource, verb, ns, verb is "list" or "watch" ? NameOfFieldSelector(query["fieldSelector"].ToString()) : name))))
        {
            var (code, body) = Errors.Forbidden(user, verb, group, resource, ns);
            Record(user, verb, group, resource, ns, name, code);
            await Write(context, code, body);
            return;
        }
        Fault? fault;
        lock (faults)
        {
            fault = faults.FirstOrDefault(f => f.Matches(verb, resource));
            if (fault is not null) fault.Remaining--;
        }
        if (fault is not null)
        {
            Record(user, verb, group, resource, ns, name, fault.Status);
            await Write(context, fault.Status, Errors.Injected(fault.Status).Item2);
            return;
        }
        if (watch)
        {
            Record(user, verb, group, resource, ns, name, 200);
            await WatchAsync(context, type, ns);
            return;
        }

        int status;
        JsonObject result;
        try
        {
            (status, result) = await DispatchAsync(context, type, verb, ns, name, sub);
        }
        catch (Exception e) when (e is InvalidOperationException or System.Text.Json.JsonException or NullReferenceException or KeyNotFoundException)
        {
            // A bug of this server or a malformed body: say what, as a real server's 500 would.
            (status, result) = Errors.Failure(500, "InternalError", e.ToString(), type, name);
        }
        Record(user, verb, group, resource, ns, name, status);
        await Write(context, status, result);
    }

    /// <summary>
    /// The name a list or watch is authorized for, as the API server's request info derives it: the value of a
    /// <c>metadata.name</c> equality in its field selector (so that RBAC's resourceNames can allow it), else none.
    /// </summary>
    private static string? NameOfFieldSelector(string selector) =>
        FieldSelector.Parse(selector) is { } terms && terms.Where(t => t.Path == "metadata.name").ToList() is [var only] ? only.Value : null;

    /// <summary>The Kubernetes release this server claims to be (/version), so the operator's feature checks can be tested.</summary>
    public Version KubernetesVersion { get; set; } = new(1, 34);

    /// <summary>/version with every field a real API server sends (version.Info).</summary>
    private JsonObject VersionInfo() => new()
    {
        ["major"] = KubernetesVersion.Major.ToString(CultureInfo.InvariantCulture),
        ["minor"] = KubernetesVersion.Minor.ToString(CultureInfo.InvariantCulture),
        ["gitVersion"] = $"v{KubernetesVersion.Major}.{KubernetesVersion.Minor}.0-deepseek-test",
        ["gitCommit"] = "0000000000000000000000000000000000000000",
        ["gitTreeState"] = "clean",
        ["buildDate"] = "2026-01-01T00:00:00Z",
        ["goVersion"] = "go1.24.0",
        ["compiler"] = "gc",
        ["platform"] = "linux/amd64",
    };

    private async Task<(int, JsonObject)> DispatchAsync(HttpContext context, ResourceType type, string verb, string? ns, string? name, string? sub)
    {
        var selector = context.Request.Query["labelSelector"].ToString();
        switch (verb)
        {
            case "list":
                var (items, listVersion) = Store.List(type, ns, selector);
                if (context.Request.Query["fieldSelector"].ToString() is { Length: > 0 } fields)
                {
                    if (FieldSelector.Parse(fields) is not { } terms)
                        return Errors.Failure(400, "BadRequest", $"unable to parse requirement: {fields} (only field=value and field==value are served here)", type, null);
                    items = items.Where(i => FieldSelector.Matches(terms, i)).ToList();
                }
                return (200, new JsonObject
                {
                    ["kind"] = type.Kind + "List",
                    ["apiVersion"] = type.GroupVersion,
                    ["metadata"] = new JsonObject { ["resourceVersion"] = listVersion.ToString(CultureInfo.InvariantCulture) },
                    ["items"] = new JsonArray([.. items]),
                });
            case "get":
                var found = Store.Get(type, ns ?? "default", name!);
                if (found is null) return Errors.NotFound(type, name!);
                return sub == "scale" ? (200, Scale(type, found)) : (200, found);
            case "patch" when sub == "scale":
                return PatchScale(context, type, ns ?? "default", name!, await ReadBody(context));
            case "create":
                return Store.Create(type, ns ?? "default", (await ReadBody(context))!.AsObject());
            case "update" when sub == "scale":
                var scale = (await ReadBody(context))!;
                return Store.Patch(type, ns ?? "default", name!, new JsonObject { ["spec"] = new JsonObject { ["replicas"] = scale["spec"]?["replicas"]?.DeepClone() } }, statusOnly: false) is var (code, body) && code == 200
                    ? (200, Scale(type, body)) : (code, body);
            case "update":
                return Store.Update(type, ns ?? "default", name!, (await ReadBody(context))!.AsObject(), statusOnly: sub == "status");
            case "patch":
                var contentType = context.Request.ContentType ?? "";
                if (!contentType.StartsWith("application/merge-patch+json", StringComparison.Ordinal))
                    return Errors.Failure(415, "UnsupportedMediaType", $"only application/merge-patch+json is served here, not {contentType}", type, name);
                return Store.Patch(type, ns ?? "default", name!, (await ReadBody(context))!, statusOnly: sub == "status");
            case "delete":
                List<ResourceType> all;
                lock (types) all = [.. types];
                return Store.Delete(type, ns ?? "default", name!, all);
            default:
                return Errors.Failure(405, "MethodNotAllowed", verb, type, name);
        }
    }

    /// <summary>
    /// PATCH of the scale subresource as the API server does it: the merge patch applies to the Scale
    /// (autoscaling/v1), whose <c>spec.replicas</c> then goes to the object's (the CRD's specReplicasPath,
    /// <c>.spec.replicas</c>, for every kind served here); a <c>metadata.resourceVersion</c> in the patch is a
    /// precondition on the object's. The answer is the Scale.
    /// </summary>
    private (int, JsonObject) PatchScale(HttpContext context, ResourceType type, string ns, string name, JsonNode? patch)
    {
        if (!type.HasScale) return Errors.NotFound(type, name);
        var contentType = context.Request.ContentType ?? "";
        if (!contentType.StartsWith("application/merge-patch+json", StringComparison.Ordinal))
            return Errors.Failure(415, "UnsupportedMediaType", $"only application/merge-patch+json is served here, not {contentType}", type, name);
        if (Store.Get(type, ns, name) is not { } current) return Errors.NotFound(type, name);
        var scale = JsonMergePatch.Apply(Scale(type, current), patch)!.AsObject();
        var change = new JsonObject { ["spec"] = new JsonObject { ["replicas"] = scale["spec"]?["replicas"]?.DeepClone() } };
        if ((string?)patch?["metadata"]?["resourceVersion"] is { Length: > 0 } version) change["metadata"] = new JsonObject { ["resourceVersion"] = version };
        var (code, body) = Store.Patch(type, ns, name, change, statusOnly: false);
        return code == 200 ? (200, Scale(type, body)) : (code, body);
    }

    private static JsonObject Scale(ResourceType type, JsonObject obj) => new()
    {
        ["kind"] = "Scale",
        ["apiVersion"] = "autoscaling/v1",
        ["metadata"] = new JsonObject { ["name"] = obj["metadata"]!["name"]!.DeepClone(), ["namespace"] = obj["metadata"]!["namespace"]!.DeepClone(), ["resourceVersion"] = obj["metadata"]!["resourceVersion"]!.DeepClone() },
        ["spec"] = new JsonObject { ["replicas"] = obj["spec"]?["replicas"]?.DeepClone() ?? 0 },
        ["status"] = new JsonObject
        {
            ["replicas"] = obj["status"]?["replicas"]?.DeepClone() ?? 0,
            ["selector"] = obj["status"]?["selector"]?.DeepClone()
                ?? (obj["spec"]?["selector"]?["matchLabels"] is JsonObject labels ? string.Join(",", labels.Select(kv => $"{kv.Key}={kv.Value}")) : null),
        },
    };

    private async Task WatchAsync(HttpContext context, ResourceType type, string? ns)
    {
        var query = context.Request.Query;
        long? from = long.TryParse(query["resourceVersion"], CultureInfo.InvariantCulture, out var v) ? v : null;
        var bookmarks = query["allowWatchBookmarks"] == "true";
        var timeout = int.TryParse(query["timeoutSeconds"], CultureInfo.InvariantCulture, out var t) ? TimeSpan.FromSeconds(t) : TimeSpan.FromMinutes(30);
        IReadOnlyList<(string Path, string Value)>? fields = null;
        if (query["fieldSelector"].ToString() is { Length: > 0 } fieldSelector && (fields = FieldSelector.Parse(fieldSelector)) is null)
        {
            await Write(context, 400, Errors.Failure(400, "BadRequest", $"unable to parse requirement: {fieldSelector} (only field=value and field==value are served here)", type, null).Item2);
            return;
        }
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        var watcher = Store.Watch(type, ns, query["labelSelector"].ToString(), from, fields);
        if (watcher is null)
        {
            // Real API servers answer an expired version inside the stream, as an ERROR event.
            await WriteEvent(context, "ERROR", Errors.Gone($"too old resource version: {from} ({Store.Revision})").Item2);
            return;
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(timeout);
        try
        {
            await context.Response.Body.FlushAsync(deadline.Token);
            var reader = watcher.Events.Reader;
            while (true)
            {
                var waitForEvent = reader.WaitToReadAsync(deadline.Token).AsTask();
                var tick = Task.Delay(BookmarkInterval, time, deadline.Token);
                var first = await Task.WhenAny(waitForEvent, tick);
                if (first == waitForEvent)
                {
                    if (!await waitForEvent) return; // dropped by the test
                    while (reader.TryRead(out var e)) await WriteEvent(context, e.EventType, e.Object);
                }
                else if (bookmarks)
                {
                    await WriteEvent(context, "BOOKMARK", new JsonObject
                    {
                        ["kind"] = type.Kind,
                        ["apiVersion"] = type.GroupVersion,
                        ["metadata"] = new JsonObject { ["resourceVersion"] = Store.Revision.ToString(CultureInfo.InvariantCulture) },
                    });
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            Store.Unwatch(watcher);
        }
    }

    private static async Task WriteEvent(HttpContext context, string type, JsonObject obj)
    {
        var line = new JsonObject { ["type"] = type, ["object"] = obj }.ToJsonString() + "\n";
        await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(line));
        await context.Response.Body.FlushAsync();
    }

    private JsonObject? Discovery(string[] segments)
    {
        List<ResourceType> all;
        lock (types) all = [.. types];
        if (segments is ["api"]) return new JsonObject { ["kind"] = "APIVersions", ["versions"] = new JsonArray("v1") };
        if (segments is ["apis"])
            return new JsonObject
            {
                ["kind"] = "APIGroupList",
                ["apiVersion"] = "v1",
                ["groups"] = new JsonArray([.. all.Where(t => t.Group.Length > 0).GroupBy(t => t.Group).Select(g => (JsonNode)new JsonObject
                {
                    ["name"] = g.Key,
                    ["versions"] = new JsonArray([.. g.Select(t => t.Version).Distinct().Select(ver => (JsonNode)new JsonObject { ["groupVersion"] = $"{g.Key}/{ver}", ["version"] = ver })]),
                    ["preferredVersion"] = new JsonObject { ["groupVersion"] = $"{g.Key}/{g.First().Version}", ["version"] = g.First().Version },
                })]),
            };
        string? groupVersion = segments switch
        {
            ["api", var ver] => ver,
            ["apis", var g, var ver] => $"{g}/{ver}",
            _ => null,
        };
        if (groupVersion is null) return null;
        var resources = new JsonArray();
        foreach (var t in all.Where(t => t.GroupVersion == groupVersion))
        {
            resources.Add(new JsonObject { ["name"] = t.Plural, ["kind"] = t.Kind, ["namespaced"] = t.Namespaced, ["verbs"] = new JsonArray("get", "list", "watch", "create", "update", "patch", "delete") });
            if (t.HasStatus) resources.Add(new JsonObject { ["name"] = t.Plural + "/status", ["kind"] = t.Kind, ["namespaced"] = t.Namespaced, ["verbs"] = new JsonArray("get", "update", "patch") });
            if (t.HasScale) resources.Add(new JsonObject { ["name"] = t.Plural + "/scale", ["kind"] = "Scale", ["namespaced"] = t.Namespaced, ["verbs"] = new JsonArray("get", "update", "patch") });
        }
        return new JsonObject { ["kind"] = "APIResourceList", ["apiVersion"] = "v1", ["groupVersion"] = groupVersion, ["resources"] = resources };
    }

    private void Record(string user, string verb, string group, string resource, string? ns, string? name, int status) =>
        log.Enqueue(new RequestRecord(user, verb, group, resource, ns, name, status, time.GetUtcNow()));

    private static async Task<JsonNode?> ReadBody(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        return JsonNode.Parse(await reader.ReadToEndAsync());
    }

    private static async Task Write(HttpContext context, int status, JsonObject body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString());
    }
}
