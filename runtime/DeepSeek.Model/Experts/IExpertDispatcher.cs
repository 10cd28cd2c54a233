using static TorchSharp.torch;

namespace DeepSeek.Model.Experts;

/// <summary>
/// Where routed tokens go: computes <c>Σ_k weight[t,k] · expert_{id[t,k]}(hidden[t])</c> for every
/// token, wherever the experts live. Local computation today; expert parallelism plugs in another
/// implementation (send tokens to the rank that owns each expert, combine the answers).
/// </summary>
public interface IExpertDispatcher
{
    /// <returns>The combined routed output <c>[T, hidden]</c> in the dtype of <see cref="RoutedTokens.Hidden"/>.</returns>
    Tensor Dispatch(RoutedTokens tokens);
}
