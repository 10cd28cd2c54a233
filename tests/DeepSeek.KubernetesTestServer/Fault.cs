namespace DeepSeek.KubernetesTestServer;

/// <summary>An injected failure: the next <see cref="Remaining"/> requests matching verb and resource get <see cref="Status"/>.</summary>
public sealed class Fault(string verb, string resource, int status, int count)
{
    public string Verb { get; } = verb;
    public string Resource { get; } = resource;
    public int Status { get; } = status;
    public int Remaining { get; set; } = count;

    public bool Matches(string verb, string resource) =>
        Remaining > 0 && (Verb == "*" || Verb == verb) && (Resource == "*" || Resource == resource);
}
