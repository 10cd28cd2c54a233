using DeepSeek.Engine;

namespace DeepSeek.Runtime.Hosting;

/// <summary>The model <c>serve</c> loads and the engine limits it runs with.</summary>
public sealed record EngineSettings(string ModelDirectory, string DType, EngineOptions Options, TimeSpan DrainTimeout);
