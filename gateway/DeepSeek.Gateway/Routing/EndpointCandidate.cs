namespace DeepSeek.Gateway.Routing;

/// <summary>What an endpoint pick knows of one endpoint: its URL (the prefix hash's other input), its load (<c>EndpointState.Load</c>), and whether it may be used now.</summary>
internal readonly record struct EndpointCandidate(string Url, int Load, bool Eligible);
