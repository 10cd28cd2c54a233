using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>One <c>serve</c> process on the embedded tiny model, shared by the tests of a class.</summary>
public sealed class SharedServe : IAsyncLifetime
{
    public ServeProcess Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await ServeProcess.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
