using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Parallelism;

/// <summary>
/// Data-parallel attention's lockstep protocol on CPU, over a process group of threads that behaves as
/// NCCL's does: every rank decodes its own prompts at once, exchanging routed rows all-to-all with every
/// other rank, and gets the unsharded model's tokens; a rank with no prompts answers its peers; a lost
/// rank, a forward that stops half-way and ranks out of step fail with <see cref="ExpertTransportException"/>
/// instead of hanging, and a re-formed group gives the same tokens.
/// </summary>
public sealed class LockstepExpertTransportTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(Fixtures.V2LiteTiny, 3, 0, false)]
    [InlineData(Fixtures.V3Tiny, 2, 1, false)]
    [InlineData(Fixtures.V2LiteTiny, 3, 0, true)]
    [InlineData(Fixtures.V3Tiny, 3, 1, true)]
    public void Every_rank_decodes_its_own_prompts_at_once_and_gets_the_reference_tokens(string fixture, int ranks, int redundant, bool fixedDecode)
    {
        var reference = Fixtures.LoadReference(fixture);
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(fixture)), ranks, redundant);
        using var group = Ranks.Load(fixture, placement, Generous);
        group.Form(generation: 1, Generous);
        // The prompts dealt over every rank but the last, which has none: it only answers its peers.
        var prompts = Enumerable.Range(0, ranks)
            .Select(rank => reference.Prompts.Where((_, i) => rank < ranks - 1 && i % (ranks - 1) == rank).ToList()).ToList();
        // With fixedDecode each rank's decode steps propose rank + 1 rows (as graph buckets of different sizes
        // would), so the agreed capacity exceeds some ranks' one token and their rows are padded; a rank's
        // prompt (a prefill) beside its peers' decode steps makes that forward exchange with split sizes.
        var fixedForwards = new int[ranks];

        var tokens = group.RunEach(rank => prompts[rank].Select(p => group.Decode(rank, p.InputIds, p.Greedy.Length,
            fixedDecode ? rank + 1 : null, () => fixedForwards[rank] += group.Transports[rank].FixedRows is null ? 0 : 1)).ToList());

        for (var rank = 0; rank < ranks; rank++)
        {
            Assert.Equal(prompts[rank].Count, tokens[rank].Count);
            for (var i = 0; i < prompts[rank].Count; i++) Assert.Equal(prompts[rank][i].Greedy, tokens[rank][i]);
        }
        Assert.True(group.Transports[^1].RowsServed > 0, "the rank without prompts computed no rows for its peers");
        Assert.All(group.Transports, t => Assert.NotNull(t.Group));
        if (fixedDecode) Assert.All(fixedForwards.Take(ranks - 1), n => Assert.True(n > 0, "no forward exchanged at a fixed capacity"));
        else Assert.All(fixedForwards, n => Assert.Equal(0, n));
    }

    [Fact]
    public void The_fixed_capacity_is_the_largest_decode_batch_when_every_rank_decodes_one_placement()
    {
        // Per rank: tokens, offered version, decode rows, version in force.
        Assert.Equal(8, LockstepExpertTransport.FixedCapacity([1, 0, 1, 3, 0, 0, 0, 3, 5, 0, 8, 3], 3));             // one idle rank
        Assert.Null(LockstepExpertTransport.FixedCapacity([1, 0, 1, 3, 40, 0, -1, 3], 2));                           // a peer prefills
        Assert.Null(LockstepExpertTransport.FixedCapacity([1, 0, 1, 3, 1, 0, 1, 4], 2));                             // two placements
        Assert.Null(LockstepExpertTransport.FixedCapacity([0, 0, 0, 3, 0, 0, 0, 3], 2));                             // all idle
        Assert.Null(LockstepExpertTransport.FixedCapacity([1, 0, LockstepExpertTransport.MaxFixedRows + 1, 3, 0, 0, 0, 3], 2));
        Assert.Equal(LockstepExpertTransport.MaxFixedRows, LockstepExpertTransport.FixedCapacity([1, 0, LockstepExpertTransport.MaxFixedRows, 3, 0, 0, 0, 3], 2));
    }

    [Fact]
    public void A_lost_rank_fails_its_peers_forwards_and_a_reformed_group_gives_the_same_tokens()
    {
        var prompt = Fixtures.LoadReference(Fixtures.V2LiteTiny).Prompts[1];
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V2LiteTiny)), 3, 0);
        // Short waits so that the lost rank is noticed quickly; nothing is asserted about time.
        var wait = TimeSpan.FromSeconds(3);
        using var group = Ranks.Load(Fixtures.V2LiteTiny, placement, wait);
        var detached = new List<string>();
        group.Transports[0].Detached += detached.Add;
        var first = group.Form(generation: 1, wait);
        first.Members[2].Kill();

        var errors = group.RunEach(rank => Record.Exception(() =>
        {
            if (rank == 0) group.Decode(0, prompt.InputIds, prompt.Greedy.Length);
            else while (group.Transports[rank].IdleTurn()) { }
        }));

        var lost = Assert.IsType<ExpertTransportException>(errors[0]);
        Assert.Contains("generation 1", lost.Message, StringComparison.Ordinal);
        Assert.All(errors, e => Assert.IsType<ExpertTransportException>(e));
        Assert.All(group.Transports, t => Assert.Null(t.Group));
        Assert.Single(detached);
        // Until a group is attached, a forward fails at once and says why.
        var unavailable = Assert.Throws<ExpertTransportException>(() => group.Transports[0].AgreeForward(1));
        Assert.Contains("unavailable", unavailable.Message, StringComparison.Ordinal);

        group.Form(generation: 2, Generous);
        var again = group.RunEach(rank => rank == 0 ? group.Decode(0, prompt.InputIds, prompt.Greedy.Length) : Array.Empty<long>());
        Assert.Equal(prompt.Greedy, again[0]);
    }

    [Fact]
    public void A_forward_that_stops_half_way_fails_the_group_instead_of_leaving_its_peers_waiting()
    {
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny)), 2, 0);
        var wait = TimeSpan.FromSeconds(3);
        using var group = Ranks.Load(Fixtures.V3Tiny, placement, wait);
        group.Form(generation: 1, wait);
        var experts = group.Models[0].RoutedExperts[0];
        // No exchange outside an agreed forward: the peers would not know it is coming (nothing is issued).
        Assert.Throws<InvalidOperationException>(() => group.Transports[0].Dispatch(experts.LayerIndex, ExpertParallelism.VersionOf(experts), []));

        var errors = group.RunEach(rank => Record.Exception(() =>
        {
            if (rank == 1)
            {
                group.Transports[1].IdleTurn();
                return;
            }
            group.Transports[0].AgreeForward(4); // its forward then "threw" before the first MoE layer
            group.Transports[0].AgreeForward(0);
        }));

        Assert.Contains("stopped after 0 of", Assert.IsType<ExpertTransportException>(errors[0]).Message, StringComparison.Ordinal);
        Assert.IsType<ExpertTransportException>(errors[1]);
    }

    [Fact]
    public void Ranks_out_of_step_fail_with_what_each_exchanges_and_compute_nothing()
    {
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny)), 2, 0);
        using var group = Ranks.Load(Fixtures.V3Tiny, placement, Generous);
        group.Form(generation: 1, Generous);
        var experts = group.Models[0].RoutedExperts[0];

        var errors = group.RunEach(rank => Record.Exception(() =>
        {
            if (rank == 1)
            {
                group.Transports[1].IdleTurn();
                return;
            }
            group.Transports[0].AgreeForward(1);
            // Rank 0 routes by a placement rank 1 does not run.
            group.Transports[0].Dispatch(experts.LayerIndex, ExpertParallelism.VersionOf(experts) + 1, []).Combine();
        }));

        Assert.All(errors, e => Assert.Contains("out of step", Assert.IsType<ExpertTransportException>(e).Message, StringComparison.Ordinal));
        Assert.Contains($"placement {ExpertParallelism.VersionOf(experts) + 1}", errors[1]!.Message, StringComparison.Ordinal);
        Assert.Equal(0, group.Transports[1].RowsServed);
    }

    [Fact]
    public void Ranks_offering_a_placement_switch_at_different_moments_all_switch_at_one_agreement_and_keep_the_reference_tokens()
    {
        var fixture = Fixtures.V3Tiny;
        var reference = Fixtures.LoadReference(fixture);
        var (_, initial, next) = SkewedPlacements.Of(3, 4);
        using var group = Ranks.Load(fixture, initial, Generous);
        group.Form(generation: 1, Generous);
        using var checkpoint = SafetensorsCheckpoint.Open(Fixtures.Dir(fixture));
        var staged = Enumerable.Range(0, 3)
            .Select(rank => next.Layers.Select(l => ExpertParallelism.StageLayer(group.Models[rank], next, l.LayerIndex, rank, checkpoint).Staged).ToList()).ToList();
        var switchedBefore = new long[3];
        Task Offer(int rank) => group.Transports[rank].OfferSwitch(next.Version, () => ExpertParallelism.Switch(group.Models[rank], next, staged[rank]));

        // Rank 1 offers at once and then decodes; rank 2 offers and only answers its peers; rank 0 decodes a
        // prompt on the initial placement first (its peers' offers wait for its own), then offers and decodes
        // another: every exchange after the switch must find every rank on the next placement, or it fails.
        var results = group.RunEach(rank =>
        {
            var decoded = new List<long[]>();
            Task? offered = null;
            if (rank != 0) offered = Offer(rank);
            if (rank == 0)
            {
                decoded.Add(group.Decode(0, reference.Prompts[0].InputIds, reference.Prompts[0].Greedy.Length));
                switchedBefore[0] = ExpertParallelism.VersionOf(group.Models[0]);
                offered = Offer(0);
                decoded.Add(group.Decode(0, reference.Prompts[1].InputIds, reference.Prompts[1].Greedy.Length));
            }
            if (rank == 1) decoded.Add(group.Decode(1, reference.Prompts[2].InputIds, reference.Prompts[2].Greedy.Length));
            return (Decoded: decoded, Offered: offered!);
        });

        Assert.Equal(initial.Version, switchedBefore[0]);
        Assert.Equal([reference.Prompts[0].Greedy, reference.Prompts[1].Greedy], results[0].Decoded);
        Assert.Equal([reference.Prompts[2].Greedy], results[1].Decoded);
        Assert.All(results, r => Assert.True(r.Offered.IsCompletedSuccessfully));
        for (var rank = 0; rank < 3; rank++)
        {
            Assert.Equal(next.Version, ExpertParallelism.VersionOf(group.Models[rank]));
            Assert.All(group.Models[rank].RoutedExperts, e => Assert.Equal(next.Layer(e.LayerIndex).ExpertsOn(rank), e.HeldExperts));
        }
    }

    [Fact]
    public void An_offer_not_every_rank_makes_switches_nobody_and_can_be_withdrawn()
    {
        var config = DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny));
        var initial = ExpertPlacement.Initial(config, 2, 0);
        using var group = Ranks.Load(Fixtures.V3Tiny, initial, Generous);
        group.Form(generation: 1, Generous);
        var prompt = Fixtures.LoadReference(Fixtures.V3Tiny).Prompts[0];
        var switched = false;

        var results = group.RunEach(rank =>
        {
            if (rank == 1) return (Tokens: Array.Empty<long>(), Withdrawn: false, Offer: Task.CompletedTask);
            var offer = group.Transports[0].OfferSwitch(initial.Version + 1, () => switched = true);
            var tokens = group.Decode(0, prompt.InputIds, prompt.Greedy.Length);
            return (Tokens: tokens, Withdrawn: group.Transports[0].WithdrawSwitch(initial.Version + 1), Offer: offer);
        });

        Assert.False(switched);
        Assert.Equal(prompt.Greedy, results[0].Tokens);
        Assert.True(results[0].Withdrawn);
        Assert.True(results[0].Offer.IsCanceled);
        Assert.All(group.Models, m => Assert.Equal(initial.Version, ExpertParallelism.VersionOf(m)));
    }

    /// <summary>The ranks of one fixture, each sharded over its own lockstep transport, run on threads of their own.</summary>
    private sealed class Ranks : IDisposable
    {
        private Ranks(IReadOnlyList<DeepSeekForCausalLM> models, IReadOnlyList<LockstepExpertTransport> transports) => (Models, Transports) = (models, transports);

        public IReadOnlyList<DeepSeekForCausalLM> Models { get; }

        public IReadOnlyList<LockstepExpertTransport> Transports { get; }

        public static Ranks Load(string fixture, ExpertPlacement placement, TimeSpan deadline)
        {
            var directory = Fixtures.Dir(fixture);
            var config = DeepSeekConfig.Load(directory);
            using var checkpoint = SafetensorsCheckpoint.Open(directory);
            var models = new List<DeepSeekForCausalLM>();
            var transports = new List<LockstepExpertTransport>();
            for (var rank = 0; rank < placement.RankCount; rank++)
            {
                var transport = new LockstepExpertTransport(deadline);
                var model = DeepSeekForCausalLM.Build(config, ScalarType.Float64);
                ExpertParallelism.Apply(model, placement, rank, transport);
                model.Materialise(checkpoint, CPU);
                transport.Bind(model);
                models.Add(model);
                transports.Add(transport);
            }
            return new Ranks(models, transports);
        }

        public ThreadProcessGroup Form(long generation, TimeSpan unboundedWait)
        {
            var group = new ThreadProcessGroup(Models.Count, generation, unboundedWait);
            for (var rank = 0; rank < Models.Count; rank++) Transports[rank].Attach(group.Members[rank], CPU);
            return group;
        }

        /// <summary>
        /// One prompt greedily on <paramref name="rank"/>, agreeing each forward with the peers; with
        /// <paramref name="decodeRows"/> its decode steps propose that many rows for a fixed-capacity exchange.
        /// </summary>
        public long[] Decode(int rank, IReadOnlyList<long> prompt, int count, long? decodeRows = null, Action? agreed = null) =>
            GreedyDecoding.Cached(Models[rank], prompt, count, tokens =>
            {
                Transports[rank].AgreeForward(tokens, tokens == 1 && decodeRows is { } rows ? rows : LockstepExpertTransport.NotDecode);
                agreed?.Invoke();
            });

        /// <summary>
        /// Runs <paramref name="work"/> for every rank on a thread of its own; a rank whose work ends without
        /// an error then stays in idle turns until every rank is idle, so its peers' forwards still find it.
        /// </summary>
        public T[] RunEach<T>(Func<int, T> work)
        {
            var results = new T[Models.Count];
            var errors = new Exception?[Models.Count];
            var threads = Enumerable.Range(0, Models.Count).Select(rank => new Thread(() =>
            {
                try
                {
                    results[rank] = work(rank);
                    if (Transports[rank].Group is not null) while (Transports[rank].IdleTurn()) { }
                }
                catch (Exception e)
                {
                    errors[rank] = e;
                }
            }) { IsBackground = true }).ToList();
            threads.ForEach(t => t.Start());
            Assert.All(threads, t => Assert.True(t.Join(TimeSpan.FromMinutes(3)), "a rank's thread did not end"));
            Assert.All(errors, e => Assert.Null(e));
            return results;
        }

        public void Dispose()
        {
            foreach (var transport in Transports) transport.Dispose();
            foreach (var model in Models) model.Dispose();
        }
    }
}
