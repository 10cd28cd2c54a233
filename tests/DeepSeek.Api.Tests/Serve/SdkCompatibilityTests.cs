using System.Text.Json;
using DeepSeek.Api.Tests.Infrastructure;

namespace DeepSeek.Api.Tests.Serve;

/// <summary>
/// The official openai SDK against a real <c>serve</c> whose served name has a slash, as Hugging Face
/// names models: the SDK escapes it in <c>models.retrieve</c>'s path, and sends the fields common
/// clients add to every chat call.
/// </summary>
public sealed class SdkCompatibilityTests(SdkCompatibilityTests.SlashedNameServe shared) : IClassFixture<SdkCompatibilityTests.SlashedNameServe>
{
    public const string ServedName = "deepseek-ai/DeepSeek-V3";

    /// <summary>One <c>serve</c> of the embedded tiny model under <see cref="ServedName"/>.</summary>
    public sealed class SlashedNameServe : IAsyncLifetime
    {
        public ServeProcess Server { get; private set; } = null!;

        public async Task InitializeAsync() => Server = await ServeProcess.StartAsync("--served-name", ServedName);

        public async Task DisposeAsync() => await Server.DisposeAsync();
    }

    private ServeProcess Server => shared.Server;

    private Task<JsonElement> SdkAsync(string scenario) => ServeClients.OpenAiAsync(Server.HttpUrl, ServedName, "unused", scenario);

    [Fact]
    public async Task Openai_sdk_retrieves_a_served_name_with_a_slash()
    {
        var result = await SdkAsync("retrieve");
        Assert.Equal(ServedName, result.GetProperty("id").GetString());
        Assert.Equal(404, result.GetProperty("missing").GetProperty("status").GetInt32());
    }

    [Theory]
    [InlineData("deepseek-ai/DeepSeek-V3")]
    [InlineData("deepseek-ai%2FDeepSeek-V3")]
    [InlineData("deepseek-ai%2fDeepSeek-V3")]
    public async Task Models_retrieve_takes_the_slash_raw_or_escaped(string path)
    {
        using var wire = new WireClient(Server.HttpPort, Server.GrpcPort);
        var response = await wire.SendAsync(WireRequest.Get("/v1/models/" + path));
        Assert.True(response.Status == 200, $"{path}: {response.Status}: {response.Body}");
        Assert.Equal(ServedName, JsonDocument.Parse(response.Body).RootElement.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Openai_sdk_chat_with_the_fields_clients_add_generates_as_without_them_and_refuses_what_it_cannot_honour()
    {
        var result = await SdkAsync("lenientChat");

        Assert.False(string.IsNullOrEmpty(result.GetProperty("plain").GetString()));
        Assert.Equal(result.GetProperty("plain").GetString(), result.GetProperty("lenient").GetString());
        foreach (var field in new[] { "response_format", "store", "logit_bias" })
        {
            var refused = result.GetProperty("refused").GetProperty(field);
            Assert.True(refused.ValueKind == JsonValueKind.Object, $"{field} was accepted: {result}");
            Assert.Equal(400, refused.GetProperty("status").GetInt32());
            Assert.StartsWith(field, refused.GetProperty("param").GetString(), StringComparison.Ordinal);
            Assert.Equal("unsupported_value", refused.GetProperty("code").GetString());
        }
    }
}
