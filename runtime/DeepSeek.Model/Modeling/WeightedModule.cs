using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSeek.Model.Modeling;

/// <summary>
/// A module whose weights are declared when the model is built, on the meta device (shape and dtype,
/// no memory), and allocated on the target device when the model is materialised. Between the two a
/// pass may reshape what is declared (expert parallelism keeps a rank's experts only), so nothing a
/// rank will not hold is ever allocated.
/// </summary>
public abstract class WeightedModule(string name) : nn.Module(name)
{
    private static readonly Device Meta = device("meta");

    /// <summary>A weight of this shape and dtype that takes no memory until <see cref="Allocate"/>.</summary>
    protected static Parameter Declare(ScalarType dtype, params long[] shape)
    {
        var declared = new Parameter(empty(shape, dtype, Meta), requires_grad: false);
        declared.DetachFromDisposeScope();
        return declared;
    }

    /// <summary>Bytes of the parameters <paramref name="module"/> declares or holds itself, not its children's (what a per-module tally adds up).</summary>
    public static long OwnBytes(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.named_parameters(recurse: false).Sum(p => p.parameter.numel() * p.parameter.element_size());
    }

    protected static bool IsDeclared(Tensor weight) => weight.device_type == DeviceType.META;

    /// <summary>Replaces every declared weight by an uninitialised tensor of its shape on <paramref name="device"/>.</summary>
    internal abstract void Allocate(Device device);

    /// <summary>The allocated replacement of <paramref name="declared"/>, registered under <paramref name="name"/>.</summary>
    protected Parameter Allocated(string name, Parameter declared, Device device)
    {
        ArgumentNullException.ThrowIfNull(declared);
        if (!IsDeclared(declared)) throw new InvalidOperationException($"{name} is already allocated.");
        var allocated = new Parameter(empty(declared.shape, declared.dtype, device), requires_grad: false);
        allocated.DetachFromDisposeScope();
        ConditionallyRegisterParameter(name, allocated);
        declared.Dispose();
        return allocated;
    }

    /// <summary>A new declared weight under <paramref name="name"/> in place of <paramref name="declared"/> (a pass reshaping this module).</summary>
    protected Parameter Redeclared(string name, Parameter declared, params long[] shape) =>
        Redeclared(name, declared, (declared ?? throw new ArgumentNullException(nameof(declared))).dtype, shape);

    /// <summary>A new declared weight of <paramref name="dtype"/> under <paramref name="name"/> in place of <paramref name="declared"/>.</summary>
    protected Parameter Redeclared(string name, Parameter declared, ScalarType dtype, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(declared);
        if (!IsDeclared(declared)) throw new InvalidOperationException($"{name} is already allocated; passes run before the model is materialised.");
        var replacement = Declare(dtype, shape);
        ConditionallyRegisterParameter(name, replacement);
        declared.Dispose();
        return replacement;
    }

    /// <summary>
    /// <paramref name="values"/> (allocated, owned by the caller until now) registered under
    /// <paramref name="name"/> in place of <paramref name="current"/>, which is freed: how a rank
    /// switches to a new set of experts after the model is materialised.
    /// </summary>
    protected Parameter Replaced(string name, Parameter current, Tensor values)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(values);
        if (IsDeclared(current)) throw new InvalidOperationException($"{name} is not allocated yet; replace it after materialising.");
        var replacement = new Parameter(values, requires_grad: false);
        replacement.DetachFromDisposeScope();
        ConditionallyRegisterParameter(name, replacement);
        current.Dispose();
        return replacement;
    }
}
