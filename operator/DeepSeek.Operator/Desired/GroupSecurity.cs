using System.Security.Cryptography;
using DeepSeek.Contract;
using k8s.Models;

namespace DeepSeek.Operator.Desired;

/// <summary>
/// What protects the expert port of a model whose replicas are groups of pods: a Secret holding the
/// token every rank presents to its peers, and a NetworkPolicy that admits only the model's own pods
/// to the expert port while clients keep reaching HTTP and gRPC.
/// </summary>
public static class GroupSecurity
{
    /// <summary>The Secret key holding the token.</summary>
    public const string TokenKey = "token";

    /// <summary>
    /// The token Secret as desired: without its value, which is the one thing the operator must not decide
    /// on every reconcile (a new value would split a running group). <see cref="IssueToken"/> fills it in
    /// once, when the Secret is created; it is immutable from then on, so neither a reconcile nor a user
    /// can change the token under running ranks. Deleting the Secret is how to rotate it. The operator
    /// only reads it by name and creates it (RBAC get and create): never lists, watches, updates or
    /// deletes it; its owner reference has garbage collection delete it with the model.
    /// </summary>
    public static V1Secret TokenSecret(V1ObjectMeta metadata) => new()
    {
        ApiVersion = "v1",
        Kind = "Secret",
        Metadata = metadata,
        Type = "Opaque",
        Immutable = true,
    };

    /// <summary>Gives a token Secret about to be created its value: 32 bytes from the system's CSPRNG, base64url.</summary>
    public static void IssueToken(V1Secret secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        secret.Data = new Dictionary<string, byte[]> { [TokenKey] = System.Text.Encoding.ASCII.GetBytes(token) };
    }

    /// <summary>
    /// Why a stored token Secret cannot serve as the group token of the model whose uid is
    /// <paramref name="modelUid"/>, for a person; null when it can. The operator never overwrites such a
    /// Secret (no update right): it reports the problem, and whoever deletes the Secret gets a new token.
    /// </summary>
    public static string? Defect(V1Secret stored, string? modelUid)
    {
        ArgumentNullException.ThrowIfNull(stored);
        var name = stored.Metadata?.Name;
        var owner = stored.Metadata?.OwnerReferences?.FirstOrDefault(o => o.Controller == true);
        if (!string.IsNullOrEmpty(modelUid) && owner?.Uid != modelUid)
            return owner is null
                ? $"Secret {name} exists but was not created by the operator for this model (no controller owner reference); delete it to have a new group token issued."
                : $"Secret {name} belongs to another object ({owner.Kind} {owner.Name}, uid {owner.Uid}); delete it to have a new group token issued for this model.";
        if (stored.Data?.TryGetValue(TokenKey, out var token) != true || token is null || token.Length == 0)
            return $"Secret {name} has no '{TokenKey}' value; delete it to have a new group token issued.";
        if (stored.Immutable != true)
            return $"Secret {name} is not immutable, so its token could change under running ranks; delete it to have a new, immutable one issued.";
        return null;
    }

    /// <summary>
    /// Ingress to the model's pods: from the model's own pods on any port (the expert port, and the ports
    /// NCCL and its TCPStore rendezvous pick at run time), from anywhere on HTTP and gRPC only. Egress is
    /// left alone.
    /// </summary>
    public static V1NetworkPolicy NetworkPolicy(V1ObjectMeta metadata, IDictionary<string, string> modelPods) => new()
    {
        ApiVersion = "networking.k8s.io/v1",
        Kind = "NetworkPolicy",
        Metadata = metadata,
        Spec = new V1NetworkPolicySpec
        {
            PodSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string>(modelPods) },
            PolicyTypes = ["Ingress"],
            Ingress =
            [
                new V1NetworkPolicyIngressRule
                {
                    FromProperty = [new V1NetworkPolicyPeer { PodSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string>(modelPods) } }],
                },
                new V1NetworkPolicyIngressRule
                {
                    Ports =
                    [
                        new V1NetworkPolicyPort { Port = RuntimeContract.Http, Protocol = "TCP" },
                        new V1NetworkPolicyPort { Port = RuntimeContract.Grpc, Protocol = "TCP" },
                    ],
                },
            ],
        },
    };
}
