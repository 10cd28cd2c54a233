using DeepSeek.Gateway.Routing;

namespace DeepSeek.Gateway.Upstream;

/// <summary>Joins the live endpoint state to the pure picks: which variant, then which of its endpoints.</summary>
internal static class RouteSelection
{
    /// <summary>
    /// Variants with no usable endpoint (not ready, or already tried by this request) weigh 0, so the split
    /// moves to the others rather than failing; null when no endpoint of the model is usable.
    /// </summary>
    public static (GatewayVariant Variant, EndpointState Endpoint)? Choose(GatewayModel model, IReadOnlySet<EndpointState> tried, double sample, long ticket, ulong? prefixKey)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tried);
        bool Usable(EndpointState e) => e.Ready && !tried.Contains(e);
        var weights = model.Variants.Select(v => v.Endpoints.Any(Usable) ? v.Weight : 0).ToList();
        if (VariantPick.Choose(weights, sample) is not { } v) return null;
        var variant = model.Variants[v];
        var candidates = variant.Endpoints.Select(e => new EndpointCandidate(e.Url, e.Load, Usable(e))).ToList();
        if (EndpointPick.Choose(model.Routing, candidates, ticket, prefixKey, model.Config.PrefixSpillInFlight) is not { } e) return null;
        return (variant, variant.Endpoints[e]);
    }
}
