using DeepSeek.Model.Configuration;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Planning;
using DeepSeek.Model.Tests.Support;

namespace DeepSeek.Model.Tests.Planning;

/// <summary>The memory plan's arithmetic against sums written out by hand from the published configs.</summary>
public sealed class MemoryPlanTests
{
    private const long GiB = 1L << 30;

    private static readonly DeepSeekConfig V3 = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Config));
    private static readonly DeepSeekConfig V2Lite = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V2LiteConfig));

    /// <summary>serve's defaults: 0.9 of the memory after the weights to the KV cache, one whole 163,840-token context.</summary>
    private static MemoryPlanOptions Serve(int contextTokens, int redundant = 0) => new(redundant, 0.9, contextTokens);

    // DeepSeek-V3, hidden 7168, by hand. One FP8 [out, in] weight: out·in bytes + ⌈out/128⌉·⌈in/128⌉ float32 scales.
    // Attention per layer (params): q_a 7168·1536 = 11,010,048; q_a norm 1536; q_b 1536·(128·192) = 37,748,736;
    // kv_a 7168·576 = 4,128,768; kv_a norm 512; kv_b 512·(128·256) = 16,777,216; o 16384·7168 = 117,440,512: 187,107,328.
    private const long V3AttentionParams = 11_010_048 + 1_536 + 37_748_736 + 4_128_768 + 512 + 16_777_216 + 117_440_512;
    private const long V3DenseMlpParams = 3L * 7168 * 18432;                  // 396,361,728, layers 0–2
    private const long V3ExpertParams = 3L * 7168 * 2048;                     // 44,040,192, routed or shared
    private const long V3RouterParams = (256L * 7168) + 256;                  // gate + e_score_correction_bias, float32
    private const long V3EmbeddingParams = 129_280L * 7168;                   // embed_tokens, and lm_head again

    // Everything but the routed experts: embeddings, LM head, final norm, 61 × (attention + 2 norms),
    // 3 dense MLPs, 58 × (shared expert + router).
    private const long V3ReplicatedParams = (2 * V3EmbeddingParams) + 7168 + (61 * (V3AttentionParams + (2 * 7168)))
        + (3 * V3DenseMlpParams) + (58 * (V3ExpertParams + V3RouterParams));

    [Fact]
    public void V3_counts_671_billion_parameters_without_its_multi_token_prediction_layer()
    {
        var bf16 = WeightBytes.Of(V3, WeightFormat.Bf16);
        // 17,117,648,384 replicated + 58 layers × 256 experts × 44,040,192: the 671 B of the model card;
        // layer 61 (MTP, about 14 B more in the checkpoint) is not built, so not counted.
        Assert.Equal(17_117_648_384, V3ReplicatedParams);
        Assert.Equal(671_026_419_200, V3ReplicatedParams + (58L * 256 * V3ExpertParams));
        Assert.Equal(671_026_419_200, bf16.Parameters);
        Assert.Equal(256, bf16.RoutedExperts);
    }

    [Fact]
    public void V3_in_bf16_is_two_bytes_a_weight_and_four_for_the_float32_router()
    {
        var bf16 = WeightBytes.Of(V3, WeightFormat.Bf16);
        Assert.Equal((2 * V3ReplicatedParams) + (2 * 58 * V3RouterParams), bf16.Replicated);   // 34,448,187,392 ≈ 32.1 GiB
        Assert.Equal(2 * 58 * V3ExpertParams, bf16.PerRoutedExpert);                        // 5,108,662,272 per expert id
    }

    [Fact]
    public void V3_in_fp8_is_one_byte_a_projection_weight_plus_a_float32_scale_per_block()
    {
        var fp8 = WeightFormat.Fp8(V3.Quantization);
        var bytes = WeightBytes.Of(V3, fp8);
        // Attention: q_a 11,010,048 + 12·56 scales, q_b 37,748,736 + 192·12, kv_a 4,128,768 + 5·56 (576 rows: a
        // partial block), kv_b 2 · 16,777,216 (held bf16: absorbed attention reads it as a matrix), o 117,440,512 + 56·128; norms bf16.
        const long attention = 11_010_048 + (4 * 12 * 56) + (2 * 1_536) + 37_748_736 + (4 * 192 * 12) + 4_128_768 + (4 * 5 * 56)
            + (2 * 512) + (2 * 16_777_216) + 117_440_512 + (4 * 56 * 128);
        const long dense = 3 * ((7168L * 18432) + (4 * 56 * 144));   // gate, up [18432, 7168]; down [7168, 18432]
        const long expert = 3 * ((7168L * 2048) + (4 * 16 * 56));   // 44,050,944
        Assert.Equal(203_928_288, attention);
        Assert.Equal(44_050_944, expert);
        // Embeddings, LM head and norms stay bf16; the router is held in float32.
        const long replicated = (2 * 2 * V3EmbeddingParams) + (2 * 7168) + (61 * (attention + (2 * 2 * 7168))) + (3 * dense)
            + (58 * (expert + (4 * V3RouterParams)));
        Assert.Equal(20_318_216_544, replicated);                    // ≈ 18.9 GiB
        Assert.Equal(replicated, bytes.Replicated);
        Assert.Equal(58 * expert, bytes.PerRoutedExpert);            // 2,554,954,752
        Assert.True(fp8.ResidentToday);
    }

    [Fact]
    public void V3_fits_eight_h200s_at_ep_8_in_fp8_but_not_in_bf16()
    {
        var gpu = 141 * GiB;
        var context = Serve(V3.MaxPositionEmbeddings);
        var fp8 = MemoryPlan.For(V3, WeightBytes.Of(V3, WeightFormat.Fp8(V3.Quantization)), gpu, 8, context);
        // 256 / 8 = 32 experts a layer: 20,318,216,544 + 32 × 2,554,954,752 = 102,076,768,608 bytes (95.1 GiB).
        Assert.Equal(32, fp8.ExpertsPerRankPerLayer);
        Assert.Equal(102_076_768_608, fp8.WeightBytes);
        // Free after a 2 GiB overhead: 151,397,597,184 − 2,147,483,648 − 102,076,768,608 = 47,173,344,928;
        // a tenth of it (rounded up) reserved, the rest cached at 61 × 576 × 2 = 70,272 bytes a token.
        const long free = 151_397_597_184 - 2_147_483_648 - 102_076_768_608;
        Assert.Equal(2_147_483_648 + 4_717_334_493, fp8.ReserveBytes);
        Assert.Equal(free - 4_717_334_493, fp8.KvCacheBytes);
        Assert.Equal(70_272, fp8.KvBytesPerToken);
        Assert.Equal((free - 4_717_334_493) / 70_272, fp8.KvTokens);   // 604,166: 3.7 full contexts
        Assert.True(fp8.Fits);

        var bf16 = MemoryPlan.For(V3, WeightBytes.Of(V3, WeightFormat.Bf16), gpu, 8, context);
        // 34,448,187,392 + 32 × 5,108,662,272 = 197,925,380,096 bytes (184.3 GiB): more than the GPU.
        Assert.Equal(197_925_380_096, bf16.WeightBytes);
        Assert.Equal(0, bf16.KvTokens);
        Assert.False(bf16.Fits);
        // Today's bf16 needs twice the ranks: 16 × 141 GiB (two nodes).
        Assert.Equal(16, MemoryPlan.Smallest(V3, WeightBytes.Of(V3, WeightFormat.Bf16), gpu, context)!.ExpertParallelSize);
    }

    [Fact]
    public void On_eight_h100s_v3_fits_in_int4_only_fp8_needs_sixteen_ranks()
    {
        var gpu = 80 * GiB;
        var context = Serve(V3.MaxPositionEmbeddings);
        int Smallest(WeightFormat format) => MemoryPlan.Smallest(V3, WeightBytes.Of(V3, format), gpu, context)?.ExpertParallelSize ?? 0;
        // fp8 at EP 8 needs 94.1 GiB of weights; at 16: 19,295,056,224 + 16 × 2,554,954,752 = 60,174,332,256 (56.0 GiB).
        Assert.Equal(16, Smallest(WeightFormat.Fp8(V3.Quantization)));
        Assert.Equal(8, Smallest(WeightFormat.Int4()));
        // bf16 at 32: 34,448,187,392 + 8 × 5,108,662,272 = 75.3 GiB leaves 2.7 GB: under one 11.5 GB context.
        Assert.Equal(64, Smallest(WeightFormat.Bf16));
    }

    [Fact]
    public void V2_lite_fits_one_gpu_in_bf16()
    {
        var bf16 = WeightBytes.Of(V2Lite, WeightFormat.Bf16);
        // 2 × 102400·2048 embeddings + final norm + 27 × (attention without q LoRA: q 2048·3072, kv_a 2048·576,
        // kv_a norm 512, kv_b 512·4096, o 2048·2048; 2 norms) + 1 dense MLP 3·2048·10944
        // + 26 × (64 routed + 2 shared experts of 3·2048·1408, router 64·2048): 15.7 B.
        const long v2Params = (2L * 102_400 * 2048) + 2048 + (27L * ((2048 * 3072) + (2048 * 576) + 512 + (512 * 4096) + (2048 * 2048) + (2 * 2048)))
            + (3L * 2048 * 10944) + (26L * ((66 * 3 * 2048 * 1408) + (64 * 2048)));
        Assert.Equal(15_706_484_224, v2Params);
        Assert.Equal(v2Params, bf16.Parameters);
        Assert.Equal((2 * v2Params) + (2 * 26 * 64 * 2048), bf16.Total);   // the router float32

        var plan = MemoryPlan.Smallest(V2Lite, bf16, 80 * GiB, Serve(V2Lite.MaxPositionEmbeddings))!;
        Assert.Equal(1, plan.ExpertParallelSize);
        // 27 × 576 × 2 = 31,104 bytes a token.
        Assert.Equal(31_104, plan.KvBytesPerToken);
        Assert.True(plan.KvTokens > V2Lite.MaxPositionEmbeddings);
    }

    [Theory]
    [InlineData(8, 0)]
    [InlineData(8, 8)]
    [InlineData(16, 12)]
    [InlineData(32, 3)]
    public void Experts_a_rank_holds_are_the_placements_slots(int ranks, int redundant)
    {
        var plan = MemoryPlan.For(V3, WeightBytes.Of(V3, WeightFormat.Bf16), 141 * GiB, ranks, Serve(4096, redundant));
        var placement = ExpertPlacement.Initial(V3, ranks, redundant);
        var most = placement.Layers.Max(layer => Enumerable.Range(0, ranks).Max(rank => layer.ExpertsOn(rank).Count));
        Assert.Equal(most, plan.ExpertsPerRankPerLayer);
        Assert.Equal(redundant, plan.RedundantExperts);
    }

    [Fact]
    public void Redundant_copies_are_capped_at_one_copy_of_an_expert_per_rank()
    {
        // One rank cannot hold a second copy; two ranks hold at most 256 extra.
        var weights = WeightBytes.Of(V3, WeightFormat.Bf16);
        Assert.Equal(0, MemoryPlan.For(V3, weights, 141 * GiB, 1, Serve(4096, redundant: 32)).RedundantExperts);
        Assert.Equal(256, MemoryPlan.For(V3, weights, 141 * GiB, 2, Serve(4096, redundant: 1000)).ExpertsPerRankPerLayer);
    }

    [Fact]
    public void Expert_parallel_sizes_are_powers_of_two_up_to_the_expert_count()
    {
        Assert.Equal([1, 2, 4, 8, 16, 32, 64, 128, 256], MemoryPlan.ExpertParallelSizes(V3));
        Assert.Equal([1, 2, 4, 8, 16, 32, 64], MemoryPlan.ExpertParallelSizes(V2Lite));
    }

    [Fact]
    public void A_model_too_large_for_every_size_has_no_smallest_plan()
    {
        Assert.Null(MemoryPlan.Smallest(V3, WeightBytes.Of(V3, WeightFormat.Bf16), 16 * GiB, Serve(V3.MaxPositionEmbeddings)));
    }
}
