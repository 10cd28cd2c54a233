namespace DeepSeek.Runtime.Hosting;

public enum ReadinessState
{
    Loading,
    Ready,
    Draining,
}
