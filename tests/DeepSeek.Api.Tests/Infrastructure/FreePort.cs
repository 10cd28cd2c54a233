using System.Net;
using System.Net.Sockets;

namespace DeepSeek.Api.Tests.Infrastructure;

/// <summary>Asks the kernel for a free loopback port (bind to 0, read it back, release it).</summary>
public static class FreePort
{
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
