using DeepSeek.Model.Native;

namespace DeepSeek.Model.Tests.Native;

public sealed class DecodeGraphBucketsTests
{
    [Theory]
    [InlineData(1, new[] { 1 })]
    [InlineData(3, new[] { 1, 2, 3 })]
    [InlineData(8, new[] { 1, 2, 4, 8 })]
    [InlineData(20, new[] { 1, 2, 4, 8, 16, 20 })]
    [InlineData(32, new[] { 1, 2, 4, 8, 16, 24, 32 })]
    public void Default_buckets_double_to_8_then_step_by_8_and_end_at_the_largest_batch(int maxBatch, int[] expected)
    {
        Assert.Equal(expected, DecodeGraphBuckets.UpTo(maxBatch).Sizes);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 4)]
    [InlineData(8, 8)]
    [InlineData(9, 16)]
    [InlineData(17, 24)]
    [InlineData(32, 32)]
    public void A_step_replays_the_smallest_bucket_that_holds_it(int batch, int bucket)
    {
        Assert.Equal(bucket, DecodeGraphBuckets.UpTo(32).For(batch));
    }

    [Fact]
    public void A_step_larger_than_every_bucket_runs_eagerly()
    {
        Assert.Null(DecodeGraphBuckets.UpTo(32).For(33));
        Assert.Null(new DecodeGraphBuckets([4, 1]).For(5));
    }

    [Fact]
    public void Buckets_are_captured_largest_first_so_the_shared_pool_is_sized_once()
    {
        var buckets = new DecodeGraphBuckets([8, 1, 32, 4]);

        Assert.Equal([1, 4, 8, 32], buckets.Sizes);
        Assert.Equal([32, 8, 4, 1], buckets.CaptureOrder);
        Assert.Equal(32, buckets.Largest);
    }

    [Fact]
    public void Invalid_sizes_and_batches_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new DecodeGraphBuckets([]));
        Assert.Throws<ArgumentException>(() => new DecodeGraphBuckets([0, 4]));
        Assert.Throws<ArgumentException>(() => new DecodeGraphBuckets([4, 4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => DecodeGraphBuckets.UpTo(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DecodeGraphBuckets.UpTo(8).For(0));
    }
}
