namespace DeepSeek.Model.Experts;

/// <summary>How many tokens each routed expert of one MoE layer received in one forward.</summary>
public sealed record ExpertLoad(int LayerIndex, long[] TokensPerExpert);
