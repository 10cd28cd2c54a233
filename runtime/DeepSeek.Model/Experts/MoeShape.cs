namespace DeepSeek.Model.Experts;

/// <summary>The sizes of one MoE layer's local routed experts that decide what computing them costs.</summary>
public sealed record MoeShape(int LocalExperts, int ExpertsPerToken, long HiddenSize, long IntermediateSize, int ElementSize);
