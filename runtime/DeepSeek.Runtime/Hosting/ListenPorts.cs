using System.Net;
using System.Net.Sockets;

namespace DeepSeek.Runtime.Hosting;

/// <summary>
/// Whether <c>serve</c>'s ports are free, asked before the host starts: Kestrel reports a port in use
/// only as a failed host start, with its stack traces, after the model folder was opened.
/// </summary>
public static class ListenPorts
{
    /// <summary>The first of <paramref name="ports"/> (flag and port; 0 picks a free one) that cannot be bound on <paramref name="address"/>, said as what to change; null when all are free.</summary>
    public static string? FirstInUse(IPAddress address, IEnumerable<(string Flag, int Port)> ports)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(ports);
        foreach (var (flag, port) in ports.Where(p => p.Port != 0))
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(address, port));
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
            {
                var why = e.SocketErrorCode == SocketError.AddressAlreadyInUse ? "address already in use" : "permission denied";
                return $"{flag} {port}: {address}:{port} cannot be bound ({why}); stop what listens there or choose another {flag}.";
            }
        }
        return null;
    }
}
