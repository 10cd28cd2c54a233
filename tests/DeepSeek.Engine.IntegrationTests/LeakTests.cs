using DeepSeek.Engine.IntegrationTests.Support;
using DeepSeek.Engine.Requests;
using TorchSharp;
using static DeepSeek.Engine.IntegrationTests.Support.EngineHarness;

namespace DeepSeek.Engine.IntegrationTests;

[Collection(EngineCollection.Name)]
public sealed class LeakTests
{
    [Fact]
    public async Task Many_requests_leave_the_live_tensor_count_flat()
    {
        var prompts = ReferenceCheckpoints.Prompts(ReferenceCheckpoints.V3Tiny);
        var engine = await StartAsync(ReferenceCheckpoints.V3Tiny, new EngineOptions { ServedModelName = "leak", KvCacheBlocks = 64, BlockSize = 4 });
        await engine.WarmUpAsync().WaitAsync(Patience);
        var sampling = new SamplingParameters { Temperature = 0.8f, TopP = 0.9f, Seed = 7, MaxTokens = 6, Logprobs = 3, IgnoreEos = true };
        await CollectAsync(engine.Submit(prompts[0].InputIds, sampling));
        var warm = torch.Tensor.TotalCount;

        for (var round = 0; round < 4; round++)
            await Task.WhenAll(prompts.Select(p => CollectAsync(engine.Submit(p.InputIds, sampling))));
        Assert.Equal(warm, torch.Tensor.TotalCount);
        await engine.StopAsync();
    }
}
