using System.Reflection;
using System.Net;
using DeepSeek.Runtime.Api.Grpc;
using DeepSeek.Runtime.Api.OpenAi;
using DeepSeek.Runtime.Experts;
using DeepSeek.Runtime.Serving;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Builds the runtime's web host: HTTP/1.1 (probes, metrics, the OpenAI API) on one listener and
/// HTTP/2 cleartext (gRPC) on another, as the pods the operator creates expose them. The wiring is
/// in <see cref="HostingExtensions"/>; this is the whole shape of the process.
/// </summary>
public static class RuntimeHost
{
    public const string MeterName = "DeepSeek.Runtime";

    /// <summary>The runtime's informational version (the build's version and, where built from git, its commit).</summary>
    public static string Version { get; } =
        typeof(RuntimeHost).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(RuntimeHost).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>
    /// The serving host: with a <paramref name="backend"/> (tests) or a <paramref name="model"/>
    /// (<c>serve</c>: the <see cref="EngineService"/> over the real engine), the OpenAI API and the gRPC
    /// Inference service run on it, and <c>/ready</c> turns true only after the backend's warm-up;
    /// with neither, probes and metrics only, ready at startup. <paramref name="adapters"/>: the LoRA
    /// adapters served beside the model (<see cref="EngineService.OpenAdapters"/>).
    /// </summary>
    public static WebApplication Build(ServeConfiguration configuration, ModelFolder? model = null, IInferenceBackend? backend = null, string[]? args = null,
        DeepSeek.Model.Lora.LoraAdapterSet? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        builder.AddRuntimeHost(configuration);
        // A rank other than the leader computes experts for its leader and serves no API.
        var role = builder.AddExpertGroup(configuration, model);
        var serving = role != GroupRole.Rank && builder.AddInferenceEngine(configuration, model, backend, adapters);

        var app = builder.Build();
        app.UseApiKey();
        app.MapProbes();
        if (serving) app.MapOpenAi();
        app.MapGrpcInference(withInference: serving);
        app.MapExpertGroup(role);
        app.LogListeners(configuration, serving, rank: role == GroupRole.Rank);
        return app;
    }

    /// <summary>Accepts an IP address or <c>localhost</c>; anything else is a configuration error worth saying so.</summary>
    public static IPAddress ResolveListenAddress(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        if (IPAddress.TryParse(host, out var address)) return address;
        throw new ArgumentException($"--host '{host}' is not an IP address; use 0.0.0.0 for all interfaces or 127.0.0.1 for loopback only.", nameof(host));
    }
}
