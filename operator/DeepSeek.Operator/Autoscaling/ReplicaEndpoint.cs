namespace DeepSeek.Operator.Autoscaling;

/// <summary>
/// Where to read one replica's load: its leader pod's gRPC address (<c>http://IP:port</c>, h2c),
/// or none while the pod has no IP yet.
/// </summary>
public sealed record ReplicaEndpoint(string Name, Uri? Address)
{
    /// <summary>The address of a pod's <c>grpc</c> port; IPv6 addresses get their brackets.</summary>
    public static ReplicaEndpoint ForPod(string name, string? podIp, int grpcPort)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThan(grpcPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(grpcPort, 65535);
        if (string.IsNullOrEmpty(podIp)) return new ReplicaEndpoint(name, null);
        if (!System.Net.IPAddress.TryParse(podIp, out var ip))
            throw new ArgumentException($"Pod {name} has IP '{podIp}', which is not an IP address.", nameof(podIp));
        return new ReplicaEndpoint(name, new UriBuilder(Uri.UriSchemeHttp, ip.ToString(), grpcPort).Uri);
    }
}
