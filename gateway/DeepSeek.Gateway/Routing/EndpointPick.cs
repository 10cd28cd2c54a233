namespace DeepSeek.Gateway.Routing;

/// <summary>Which endpoint of a variant serves a request: a pure function of the policy, the endpoints' state, a turn counter and the prompt's prefix.</summary>
internal static class EndpointPick
{
    /// <param name="policy">How to choose.</param>
    /// <param name="endpoints">The variant's endpoints, in configuration order.</param>
    /// <param name="ticket">A number that grows by one per request (round-robin's turn, and the tie-break that spreads equal loads).</param>
    /// <param name="prefixKey">Hash of the prompt's leading characters (<see cref="PromptPrefix"/>); null when the request has none, which is then routed least-load.</param>
    /// <param name="spillInFlight">For <see cref="RoutingPolicy.Prefix"/>: the preferred endpoint at this many in flight or more is passed over for the least loaded.</param>
    /// <returns>The index of the endpoint, or null when none is eligible.</returns>
    public static int? Choose(RoutingPolicy policy, IReadOnlyList<EndpointCandidate> endpoints, long ticket, ulong? prefixKey, int spillInFlight)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (!endpoints.Any(e => e.Eligible)) return null;
        return policy switch
        {
            RoutingPolicy.RoundRobin => RoundRobin(endpoints, ticket),
            RoutingPolicy.Prefix when prefixKey is { } key => Preferred(endpoints, key, ticket, spillInFlight),
            _ => LeastLoaded(endpoints, ticket),
        };
    }

    /// <summary>The <paramref name="ticket"/>-th endpoint, skipping ineligible ones to the next eligible.</summary>
    private static int RoundRobin(IReadOnlyList<EndpointCandidate> endpoints, long ticket)
    {
        var start = (int)(Math.Abs(ticket) % endpoints.Count);
        for (var step = 0; ; step++)
        {
            var i = (start + step) % endpoints.Count;
            if (endpoints[i].Eligible) return i;
        }
    }

    /// <summary>Least load; among equals, the one the ticket's turn reaches first (so an idle pool is still spread, not all on the first).</summary>
    private static int LeastLoaded(IReadOnlyList<EndpointCandidate> endpoints, long ticket)
    {
        var start = (int)(Math.Abs(ticket) % endpoints.Count);
        var best = -1;
        for (var step = 0; step < endpoints.Count; step++)
        {
            var i = (start + step) % endpoints.Count;
            if (endpoints[i].Eligible && (best < 0 || endpoints[i].Load < endpoints[best].Load)) best = i;
        }
        return best;
    }

    private static int Preferred(IReadOnlyList<EndpointCandidate> endpoints, ulong key, long ticket, int spillInFlight)
    {
        var best = -1;
        ulong bestScore = 0;
        for (var i = 0; i < endpoints.Count; i++)
        {
            if (!endpoints[i].Eligible) continue;
            var score = RendezvousHash.Score(key, RendezvousHash.Hash(endpoints[i].Url));
            if (best < 0 || score > bestScore)
            {
                best = i;
                bestScore = score;
            }
        }
        return endpoints[best].Load >= spillInFlight ? LeastLoaded(endpoints, ticket) : best;
    }
}
