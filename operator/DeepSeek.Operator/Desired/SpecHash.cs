using System.Security.Cryptography;
using System.Text;
using k8s;

namespace DeepSeek.Operator.Desired;

/// <summary>A short content hash of an object as the operator would send it.</summary>
public static class SpecHash
{
    public static string Of(object value)
    {
        var json = KubernetesJson.Serialize(value);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(json)))[..16];
    }
}
