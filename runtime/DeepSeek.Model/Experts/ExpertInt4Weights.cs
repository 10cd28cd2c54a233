using DeepSeek.Model.Quantization;

namespace DeepSeek.Model.Experts;

/// <summary>One held routed expert as int4: gate and up rows as one <c>[2·inter, hidden]</c> weight, and down <c>[hidden, inter]</c>.</summary>
public sealed record ExpertInt4Weights(Int4Weight GateUp, Int4Weight Down) : IDisposable
{
    public void Dispose()
    {
        GateUp.Dispose();
        Down.Dispose();
    }
}
