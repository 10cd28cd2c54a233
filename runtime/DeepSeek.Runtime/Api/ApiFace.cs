using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace DeepSeek.Runtime.Api;

/// <summary>
/// The listener a connection arrived on. Routes are bound to a face, never to the client-controlled
/// Host header: the OpenAI API and probes exist only on the HTTP listener and gRPC only on the gRPC
/// listener, whatever Host, port-forward or gateway rewrote the request on its way in.
/// </summary>
public enum ApiFace
{
    /// <summary>HTTP/1.1: the OpenAI API, <c>/health</c>, <c>/ready</c>, <c>/metrics</c>.</summary>
    Http,
    /// <summary>HTTP/2 cleartext: the gRPC services.</summary>
    Grpc,
    /// <summary>HTTP/2 cleartext on the expert port: <c>deepseek.runtime.v1.Experts</c> for the leader of the rank's group only.</summary>
    Experts,
}

/// <summary>Endpoint metadata: the endpoint answers only on connections of <see cref="Face"/>.</summary>
public sealed record ApiFaceMetadata(ApiFace Face);

public static class ApiFaceExtensions
{
    private static readonly object ItemKey = typeof(ApiFace);

    /// <summary>Tags every connection of this Kestrel listener with <paramref name="face"/>, before any request is read.</summary>
    public static ListenOptions UseFace(this ListenOptions listen, ApiFace face)
    {
        ArgumentNullException.ThrowIfNull(listen);
        listen.Use(next => connection =>
        {
            connection.Items[ItemKey] = face;
            return next(connection);
        });
        return listen;
    }

    /// <summary>The face of the connection <paramref name="http"/> arrived on; null for a connection no listener tagged.</summary>
    public static ApiFace? Face(this HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        return http.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(ItemKey, out var face) == true ? face as ApiFace? : null;
    }

    public static TBuilder RequireFace<TBuilder>(this TBuilder builder, ApiFace face) where TBuilder : IEndpointConventionBuilder
    {
        builder.WithMetadata(new ApiFaceMetadata(face));
        return builder;
    }
}

/// <summary>
/// Removes candidate endpoints bound to another face than the connection's, so a path on the wrong
/// listener is an empty 404 (as if the route did not exist there) rather than a match.
/// </summary>
public sealed class ApiFaceMatcherPolicy : MatcherPolicy, IEndpointSelectorPolicy
{
    // Before the HTTP method policy, so a wrong-face match never turns into a 405.
    public override int Order => -1000;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) =>
        endpoints.Any(e => e.Metadata.GetMetadata<ApiFaceMetadata>() is not null);

    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        var face = httpContext.Face();
        for (var i = 0; i < candidates.Count; i++)
        {
            if (candidates[i].Endpoint.Metadata.GetMetadata<ApiFaceMetadata>() is { } required && required.Face != face)
                candidates.SetValidity(i, false);
        }
        return Task.CompletedTask;
    }
}
