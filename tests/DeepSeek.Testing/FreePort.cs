using System.Net;
using System.Net.Sockets;

namespace DeepSeek.Testing;

/// <summary>A loopback port nothing listens on right now (the OS picks it, then it is released; the caller binds it soon after).</summary>
public static class FreePort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
