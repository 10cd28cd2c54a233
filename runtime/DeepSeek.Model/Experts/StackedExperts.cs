using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// This rank's routed experts of one MoE layer, stored stacked so they can be computed with a few
/// batched matrix products instead of one matmul chain per expert: <c>gate_up_proj</c>
/// <c>[E_local, 2·inter, hidden]</c> (each expert's gate rows, then its up rows) and
/// <c>down_proj</c> <c>[E_local, hidden, inter]</c>. Slot <c>j</c> holds expert
/// <see cref="ExpertIds"/>[j]. Checkpoints keep one tensor per expert and matrix; see
/// <see cref="CheckpointSlices"/>.
/// </summary>
public sealed class StackedExperts : nn.Module
{
    private readonly Parameter gate_up_proj;
    private readonly Parameter down_proj;

    public StackedExperts(string name, IReadOnlyList<int> expertIds, long hiddenSize, long intermediateSize, ScalarType dtype, Device device) : base(name)
    {
        ExpertIds = [.. expertIds];
        IntermediateSize = intermediateSize;
        HiddenSize = hiddenSize;
        gate_up_proj = new Parameter(empty([ExpertIds.Count, 2 * intermediateSize, hiddenSize], dtype, device), requires_grad: false);
        down_proj = new Parameter(empty([ExpertIds.Count, hiddenSize, intermediateSize], dtype, device), requires_grad: false);
        RegisterComponents();
    }

    /// <summary>Global expert id of each slot, ascending.</summary>
    public IReadOnlyList<int> ExpertIds { get; }

    public long IntermediateSize { get; }

    public long HiddenSize { get; }

    /// <summary><c>[E_local, 2·inter, hidden]</c>: gate rows <c>[0, inter)</c>, up rows <c>[inter, 2·inter)</c>.</summary>
    public Tensor GateUp => gate_up_proj;

    /// <summary><c>[E_local, hidden, inter]</c>.</summary>
    public Tensor Down => down_proj;

    /// <summary>
    /// Where each per-expert checkpoint tensor goes: views into the stacked parameters named as the
    /// checkpoint names them (<c>{prefix}.{expert}.gate_proj.weight</c> …), so loading copies each
    /// expert into its slice and a missing or misshapen tensor is reported by its own name.
    /// </summary>
    public IEnumerable<(string Name, Tensor Target)> CheckpointSlices(string prefix)
    {
        for (var slot = 0; slot < ExpertIds.Count; slot++)
        {
            var expert = $"{prefix}.{ExpertIds[slot].ToString(CultureInfo.InvariantCulture)}";
            yield return ($"{expert}.gate_proj.weight", gate_up_proj[slot].narrow(0, 0, IntermediateSize));
            yield return ($"{expert}.up_proj.weight", gate_up_proj[slot].narrow(0, IntermediateSize, IntermediateSize));
            yield return ($"{expert}.down_proj.weight", down_proj[slot]);
        }
    }

    /// <summary>One expert's SwiGLU on <c>[n, hidden]</c> rows: <c>down(silu(gate(x)) · up(x))</c>.</summary>
    public Tensor ForwardSlot(int slot, Tensor input)
    {
        using var scope = NewDisposeScope();
        var gateUp = nn.functional.linear(input, gate_up_proj[slot]);
        var activated = nn.functional.silu(gateUp.narrow(-1, 0, IntermediateSize)) * gateUp.narrow(-1, IntermediateSize, IntermediateSize);
        return nn.functional.linear(activated, down_proj[slot]).MoveToOuterDisposeScope();
    }
}
