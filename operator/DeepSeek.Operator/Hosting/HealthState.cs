namespace DeepSeek.Operator.Hosting;

/// <summary>What /healthz and /readyz report: alive while the process runs; ready once the API server answered.</summary>
public sealed class HealthState
{
    private volatile bool ready;
    private volatile bool leading;

    public bool Ready => ready;
    public bool Leading => leading;

    public void MarkReady() => ready = true;

    public void SetLeading(bool value) => leading = value;
}
