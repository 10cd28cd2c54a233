using System.Net;
using System.Net.Sockets;

namespace DeepSeek.Testing;

/// <summary>
/// A loopback port nothing listens on right now (the OS picks it, then it is released; the caller binds
/// it soon after). The OS may pick a port again once it is released, so one process never gets the same
/// port twice from here: two servers of one test given the same port would collide.
/// </summary>
public static class FreePort
{
    private static readonly HashSet<int> Given = [];

    public static int Next()
    {
        lock (Given)
        {
            for (var attempt = 0; attempt < 100; attempt++)
            {
                using var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                listener.Stop();
                if (Given.Add(port)) return port;
            }
            throw new InvalidOperationException("No loopback port that was not given out before in 100 attempts.");
        }
    }
}
