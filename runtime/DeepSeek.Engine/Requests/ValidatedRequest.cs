using DeepSeek.Model.Lora;

namespace DeepSeek.Engine.Requests;

/// <summary>
/// A prompt and its sampling that <see cref="RequestValidator"/> accepted, with <c>max_tokens</c>
/// resolved. Only the validator makes one, so whatever takes one (the engine's submission) knows the
/// request was checked exactly once and need not check it again.
/// </summary>
public sealed class ValidatedRequest
{
    internal ValidatedRequest(IReadOnlyList<int> promptTokenIds, SamplingParameters sampling)
    {
        PromptTokenIds = promptTokenIds;
        Sampling = sampling;
    }

    public IReadOnlyList<int> PromptTokenIds { get; }

    public SamplingParameters Sampling { get; }

    /// <summary>The LoRA adapter the request's <c>model</c> named; null: the base model.</summary>
    public LoraAdapter? Adapter { get; private init; }

    /// <summary>Choice i of <c>n</c> uses seed + i, so choices differ yet reproduce; any seed is valid, so the copy stays validated.</summary>
    public ValidatedRequest ForChoice(int choice) =>
        choice == 0 || Sampling.Seed is not { } seed ? this : new(PromptTokenIds, Sampling with { Seed = unchecked(seed + (ulong)choice) }) { Adapter = Adapter };

    /// <summary>The same request on <paramref name="adapter"/> (null: the base model); the adapter set resolved it, so it stays validated.</summary>
    public ValidatedRequest WithAdapter(LoraAdapter? adapter) =>
        adapter == Adapter ? this : new(PromptTokenIds, Sampling) { Adapter = adapter };
}
