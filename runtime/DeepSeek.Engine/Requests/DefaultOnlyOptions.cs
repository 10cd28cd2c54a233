namespace DeepSeek.Engine.Requests;

/// <summary>
/// Options of OpenAI's API that this server implements only at the value that changes nothing, as a
/// face read them. Common clients send them on every call, so that value passes; any other would
/// change the answer or promise something this server does not do, and
/// <see cref="RequestValidator.CheckDefaultOnly"/> refuses it naming the field rather than ignoring it.
/// </summary>
public sealed record DefaultOnlyOptions
{
    /// <summary>Nothing sent: every option at its default.</summary>
    public static DefaultOnlyOptions None { get; } = new();

    /// <summary>How many tokens <c>logit_bias</c> biases: 0 when it is absent, null or <c>{}</c>.</summary>
    public int LogitBiasCount { get; init; }

    /// <summary><c>store</c>; null when absent.</summary>
    public bool? Store { get; init; }

    /// <summary><c>service_tier</c>; null when absent.</summary>
    public string? ServiceTier { get; init; }
}
