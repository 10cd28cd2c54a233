// yarp-floor PORT UPSTREAM: every request forwarded as it came to UPSTREAM (http://host:port) by YARP's
// IHttpForwarder over one connection pool configured as the gateway's (no proxy, redirects, decompression
// or cookies), on a Kestrel listener of 127.0.0.1:PORT. No keys, body parsing, routing, capture, metrics or
// audit: the floor under deepseek-gateway's cost per request (scripts/bench/gateway.sh).
using System.Globalization;
using System.Net;
using Yarp.ReverseProxy.Forwarder;

if (args.Length != 2 || !int.TryParse(args[0], CultureInfo.InvariantCulture, out var port) || !Uri.TryCreate(args[1], UriKind.Absolute, out var upstream))
{
    Console.Error.WriteLine("usage: yarp-floor PORT UPSTREAM_URL");
    return 2;
}

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
builder.Services.AddHttpForwarder();
var app = builder.Build();
using var invoker = new HttpMessageInvoker(new SocketsHttpHandler
{
    UseProxy = false,
    AllowAutoRedirect = false,
    AutomaticDecompression = DecompressionMethods.None,
    UseCookies = false,
});
var destination = upstream.GetLeftPart(UriPartial.Authority);
app.MapForwarder("/{**rest}", destination, ForwarderRequestConfig.Empty, HttpTransformer.Default, invoker);
await app.RunAsync();
return 0;
