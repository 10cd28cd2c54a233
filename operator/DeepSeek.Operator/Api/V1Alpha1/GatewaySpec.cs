using System.ComponentModel.DataAnnotations;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>How the gateway (deepseek-gateway) publishes the model: its share among the models that serve the same name.</summary>
public sealed class GatewaySpec
{
    /// <summary>This model's share of the requests for its served name, against the other models serving that name (A/B split); 0 takes it out of the split.</summary>
    [Range(0, 100)]
    public int Weight { get; set; } = DefaultWeight;

    /// <summary>A model that sets no weight takes a full share: two models without one split evenly, and a canary at 10 beside one takes 10 of 110.</summary>
    public const int DefaultWeight = 100;
}
