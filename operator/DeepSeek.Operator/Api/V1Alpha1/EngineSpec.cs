using System.ComponentModel.DataAnnotations;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>Inference engine settings, passed to each pod through the runtime-settings ConfigMap.</summary>
public sealed class EngineSpec
{
    /// <summary>Requests decoded together in one batch.</summary>
    [Range(1, 4096)]
    public int MaxRunningRequests { get; set; } = 64;

    /// <summary>Requests waiting for a batch slot; beyond it requests are refused with 429.</summary>
    [Range(0, 100000)]
    public int MaxQueuedRequests { get; set; } = 256;

    /// <summary>Token budget of one engine step (prefill chunks plus decodes).</summary>
    [Range(16, 1048576)]
    public int MaxBatchTokens { get; set; } = 8192;

    /// <summary>Share of free device memory (the GPU's; on CPU, the memory the pod may use) given to the paged KV cache after the weights are loaded.</summary>
    [Range(0.05, 1.0)]
    public double KvCacheMemoryFraction { get; set; } = 0.9;

    /// <summary>Reuse KV-cache blocks of shared prompt prefixes.</summary>
    public bool PrefixCaching { get; set; } = true;

    /// <summary>Seconds in-flight requests may take to finish after a pod is told to stop.</summary>
    [Range(0, 3600)]
    public int DrainTimeoutSeconds { get; set; } = 30;

    /// <summary>Secret key holding the API key clients must send as a bearer token (unset: no key; key default: api-key).</summary>
    public SecretKeyReference? ApiKeySecretRef { get; set; }

    /// <summary>The Secret key read when <see cref="ApiKeySecretRef"/> names none.</summary>
    public const string DefaultApiKeyKey = "api-key";
}
