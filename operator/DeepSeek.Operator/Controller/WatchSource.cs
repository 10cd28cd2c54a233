using k8s;
using k8s.Autorest;
using k8s.Models;

namespace DeepSeek.Operator.Controller;

/// <summary>List and watch calls of one kind in one namespace (or all), as one list call with or without <c>watch=true</c>.</summary>
/// <param name="Description">e.g. "deployments in ns-a", for logs.</param>
/// <param name="Call">The kind's list call: resourceVersion (null: latest), watch flag.</param>
public sealed record WatchSource<T, TList>(string Description, Func<string?, bool, CancellationToken, Task<HttpOperationResponse<TList>>> Call)
    where T : IKubernetesObject<V1ObjectMeta>
    where TList : IKubernetesObject<V1ListMeta>, IItems<T>;
