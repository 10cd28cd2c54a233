using System.Net;
using System.Net.Sockets;

namespace DeepSeek.Autoscaling.Tests.Infrastructure;

internal static class FreePort
{
    /// <summary>A loopback port that nothing listens on (taken from the OS, then released).</summary>
    public static int Pick()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
