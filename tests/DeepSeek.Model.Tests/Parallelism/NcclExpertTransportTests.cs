using System.Collections.Concurrent;
using DeepSeek.Model.Checkpoints;
using DeepSeek.Model.Configuration;
using DeepSeek.Model.Experts;
using DeepSeek.Model.Modeling;
using DeepSeek.Model.Parallelism;
using DeepSeek.Model.Tests.Support;
using static TorchSharp.torch;

namespace DeepSeek.Model.Tests.Parallelism;

/// <summary>
/// The NCCL transport's protocol on CPU, over a process group of threads that behaves as NCCL's does
/// (every collective completes when every rank issued it; a rank that never joins makes it time out):
/// the leader's exchange and the ranks' follower loop give the unsharded model's tokens, a lost rank
/// fails the step with <see cref="ExpertTransportException"/> and detaches the group, and a re-formed
/// group gives the same tokens again.
/// </summary>
public sealed class NcclExpertTransportTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Fact]
    public void Header_round_trips_and_refuses_what_is_not_a_header()
    {
        var header = new ExpertExchangeHeader(ExchangeCommand.Layer, 3, 7, 6, [0, 5, 0, 2]);
        var parsed = ExpertExchangeHeader.Parse(header.ToValues(), 4);
        Assert.Equal((header.Command, header.Layer, header.PlacementVersion, header.ExpertsPerToken), (parsed.Command, parsed.Layer, parsed.PlacementVersion, parsed.ExpertsPerToken));
        Assert.Equal(header.RowsPerRank, parsed.RowsPerRank);
        Assert.Equal(ExchangeCommand.Heartbeat, ExpertExchangeHeader.Parse(ExpertExchangeHeader.Heartbeat(2).ToValues(), 2).Command);

        Assert.Throws<FormatException>(() => ExpertExchangeHeader.Parse(header.ToValues(), 3));
        Assert.Throws<FormatException>(() => ExpertExchangeHeader.Parse([9, 0, 0, 0, 0, 0], 2));
        Assert.Throws<FormatException>(() => ExpertExchangeHeader.Parse([2, 1, 1, 6, 4, 0], 2)); // rows for the leader
        Assert.Throws<FormatException>(() => ExpertExchangeHeader.Parse([2, 1, 1, 0, 0, 3], 2)); // k = 0
    }

    [Fact]
    public void Agreement_names_each_rank_that_differs_and_in_what()
    {
        var leader = ExpertGroupAgreement.Row(1, 2048, ScalarType.BFloat16, 6, 26, "0123456789abcdef");
        Assert.Null(ExpertGroupAgreement.Check([leader, leader, leader]));
        var otherDtype = ExpertGroupAgreement.Row(1, 2048, ScalarType.Float32, 6, 26, "0123456789abcdef");
        var otherModel = ExpertGroupAgreement.Row(1, 2048, ScalarType.BFloat16, 6, 26, "ffff456789abcdef");
        var problem = ExpertGroupAgreement.Check([leader, leader, otherDtype, otherModel]);
        Assert.NotNull(problem);
        Assert.DoesNotContain("rank 1", problem, StringComparison.Ordinal);
        Assert.Contains("rank 2: dtype", problem, StringComparison.Ordinal);
        Assert.Contains("rank 3: checkpoint fingerprint", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Fixtures.V2LiteTiny, 3, 0)]
    [InlineData(Fixtures.V3Tiny, 2, 1)]
    public void Group_over_the_transport_gives_the_reference_tokens_and_the_ranks_serve_their_rows(string fixture, int ranks, int redundant)
    {
        var reference = Fixtures.LoadReference(fixture);
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(fixture)), ranks, redundant);
        using var transport = new NcclExpertTransport(Generous, TimeProvider.System);
        using var group = Group.Load(fixture, placement, transport);
        var followers = group.Form(generation: 1, idleDeadline: Generous, unboundedWait: Generous);

        foreach (var prompt in reference.Prompts)
            Assert.Equal(prompt.Greedy, GreedyDecoding.Cached(group.Leader, prompt.InputIds, prompt.Greedy.Length));
        // Idle: a heartbeat goes through and changes nothing.
        transport.Heartbeat(TimeSpan.Zero);
        Assert.Equal(reference.Prompts[0].Greedy, GreedyDecoding.Cached(group.Leader, reference.Prompts[0].InputIds, reference.Prompts[0].Greedy.Length));

        transport.Stop();
        foreach (var follower in followers)
        {
            var outcome = follower.Join();
            Assert.Equal(FollowEnd.Stopped, outcome.End);
            Assert.True(outcome.RowsServed > 0, "a rank computed no rows");
        }
    }

    [Fact]
    public void Lost_rank_fails_the_step_detaches_the_group_and_a_reformed_group_gives_the_same_tokens()
    {
        var reference = Fixtures.LoadReference(Fixtures.V2LiteTiny);
        var prompt = reference.Prompts[0];
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V2LiteTiny)), 3, 0);
        // Short waits so that the lost rank is noticed quickly; nothing is asserted about time.
        var wait = TimeSpan.FromSeconds(3);
        using var transport = new NcclExpertTransport(wait, TimeProvider.System);
        var detached = new List<string>();
        transport.Detached += reason => detached.Add(reason);
        using var group = Group.Load(Fixtures.V2LiteTiny, placement, transport);

        var followers = group.Form(generation: 1, idleDeadline: wait, unboundedWait: wait);
        Assert.Equal(prompt.Greedy, GreedyDecoding.Cached(group.Leader, prompt.InputIds, prompt.Greedy.Length));
        group.Current!.Members[2].Kill();

        var lost = Assert.Throws<ExpertTransportException>(() => GreedyDecoding.Cached(group.Leader, prompt.InputIds, 2));
        Assert.Contains("generation 1", lost.Message, StringComparison.Ordinal);
        Assert.Null(transport.Group);
        Assert.Single(detached);
        // Until a group is attached, steps fail at once and say why.
        var unavailable = Assert.Throws<ExpertTransportException>(() => GreedyDecoding.Cached(group.Leader, prompt.InputIds, 1));
        Assert.Contains("unavailable", unavailable.Message, StringComparison.Ordinal);
        // The surviving rank's wait ended too, with the group aborted; the killed one failed on its next call.
        Assert.All(followers, f => Assert.Equal(FollowEnd.Failed, f.Join().End));

        var again = group.Form(generation: 2, idleDeadline: Generous, unboundedWait: Generous);
        Assert.Equal(2, transport.Group!.Generation);
        Assert.Equal(prompt.Greedy, GreedyDecoding.Cached(group.Leader, prompt.InputIds, prompt.Greedy.Length));
        transport.Stop();
        Assert.All(again, f => Assert.Equal(FollowEnd.Stopped, f.Join().End));
    }

    [Fact]
    public void A_rank_of_another_placement_aborts_the_group_instead_of_computing()
    {
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny)), 2, 0);
        using var transport = new NcclExpertTransport(TimeSpan.FromSeconds(3), TimeProvider.System);
        using var group = Group.Load(Fixtures.V3Tiny, placement, transport);
        var followers = group.Form(generation: 1, idleDeadline: Generous, unboundedWait: TimeSpan.FromSeconds(3));
        var layer = group.Leader.RoutedExperts[0];
        var held = placement.Layer(layer.LayerIndex).ExpertsOn(1)[0];
        var batch = new ExpertBatch(1, zeros([2, layer.HiddenSize], ScalarType.Float64),
            full([2, layer.ExpertsPerToken], HeldScalars.MinusOne, ScalarType.Int64).index_put_(tensor(held), TensorIndex.Colon, TensorIndex.Single(0)), ones([2, layer.ExpertsPerToken], ScalarType.Float64));
        // The leader routes by a placement the rank does not run (the rank holds the initial one).
        Assert.Throws<ExpertTransportException>(() => transport.Dispatch(layer.LayerIndex, ExpertPlacement.InitialVersion + 1, [batch]).Combine());
        var outcome = followers[0].Join();
        Assert.Equal(FollowEnd.Failed, outcome.End);
        Assert.Contains($"placement {ExpertPlacement.InitialVersion + 1}", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_exchange_abandoned_between_dispatch_and_combine_fails_the_next_one_instead_of_hanging()
    {
        var placement = ExpertPlacement.Initial(DeepSeekConfig.Load(Fixtures.Dir(Fixtures.V3Tiny)), 2, 0);
        using var transport = new NcclExpertTransport(TimeSpan.FromSeconds(3), TimeProvider.System);
        using var group = Group.Load(Fixtures.V3Tiny, placement, transport);
        var followers = group.Form(generation: 1, idleDeadline: Generous, unboundedWait: TimeSpan.FromSeconds(3), followerDeadline: TimeSpan.FromSeconds(3));
        var layer = group.Leader.RoutedExperts[0];
        var held = placement.Layer(layer.LayerIndex).ExpertsOn(1)[0];
        ExpertBatch Batch() => new(1, zeros([2, layer.HiddenSize], ScalarType.Float64), full([2, layer.ExpertsPerToken], HeldScalars.MinusOne, ScalarType.Int64).index_put_(tensor(held), TensorIndex.Colon, TensorIndex.Single(0)),
            ones([2, layer.ExpertsPerToken], ScalarType.Float64));

        _ = transport.Dispatch(layer.LayerIndex, ExpertPlacement.InitialVersion, [Batch()]); // its step "threw" before Combine
        var abandoned = Assert.Throws<ExpertTransportException>(() => transport.Dispatch(layer.LayerIndex, ExpertPlacement.InitialVersion, [Batch()]));
        Assert.Contains("abandoned", abandoned.Message, StringComparison.Ordinal);
        Assert.Null(transport.Group);
        Assert.Equal(FollowEnd.Failed, followers[0].Join().End);
    }

    [Fact]
    public void Ranks_change_placement_between_the_leaders_headers_and_the_group_keeps_the_reference_tokens()
    {
        var fixture = Fixtures.V3Tiny;
        var reference = Fixtures.LoadReference(fixture);
        var (_, initial, next) = SkewedPlacements.Of(3, 4);
        using var transport = new NcclExpertTransport(Generous, TimeProvider.System);
        using var group = Group.Load(fixture, initial, transport);
        var followers = group.Form(generation: 1, idleDeadline: Generous, unboundedWait: Generous);
        var prompt = reference.Prompts[0];
        Assert.Equal(prompt.Greedy, GreedyDecoding.Cached(group.Leader, prompt.InputIds, prompt.Greedy.Length));

        // Every member stages the next placement beside its own: the ranks on their threads, between the
        // leader's headers (heartbeats while it idles), the leader on its own.
        var staged = new IReadOnlyList<StagedExperts>[initial.RankCount];
        group.OnEveryRank(transport, (rank, model) => staged[rank] = Stage(model, next, rank));
        staged[0] = Stage(group.Leader, next, 0);
        // Between two of the leader's steps: the ranks switch, then the leader.
        group.OnEveryRank(transport, (rank, model) => ExpertParallelism.Switch(model, next, staged[rank]));
        ExpertParallelism.Switch(group.Leader, next, staged[0]);

        foreach (var p in reference.Prompts) Assert.Equal(p.Greedy, GreedyDecoding.Cached(group.Leader, p.InputIds, p.Greedy.Length));
        for (var rank = 0; rank < initial.RankCount; rank++)
            foreach (var experts in group.Models[rank].RoutedExperts)
                Assert.Equal(next.Layer(experts.LayerIndex).ExpertsOn(rank), experts.HeldExperts);
        Assert.NotEqual(initial.Layer(1).ExpertsOn(1), next.Layer(1).ExpertsOn(1));
        transport.Stop();
        Assert.All(followers, f => Assert.Equal(FollowEnd.Stopped, f.Join().End));

        static IReadOnlyList<StagedExperts> Stage(DeepSeekForCausalLM model, ExpertPlacement next, int rank)
        {
            using var checkpoint = SafetensorsCheckpoint.Open(Fixtures.Dir(Fixtures.V3Tiny));
            return [.. SkewedPlacements.Stage(model, next, rank, checkpoint).Select(l => l.Staged)];
        }
    }

    /// <summary>A leader sharded over the NCCL transport and its ranks' models, each rank following on a thread of its own.</summary>
    private sealed class Group : IDisposable
    {
        private readonly NcclExpertTransport _transport;
        private readonly IReadOnlyList<DeepSeekForCausalLM> _ranks;

        // Work for each rank's thread, run by its follower loop between the leader's headers.
        private readonly ConcurrentQueue<Action>[] _queued;

        private Group(NcclExpertTransport transport, IReadOnlyList<DeepSeekForCausalLM> ranks) =>
            (_transport, _ranks, _queued) = (transport, ranks, [.. ranks.Select(_ => new ConcurrentQueue<Action>())]);

        public DeepSeekForCausalLM Leader => _ranks[0];

        public IReadOnlyList<DeepSeekForCausalLM> Models => _ranks;

        /// <summary>
        /// Runs <paramref name="work"/> on every rank but the leader, each on its own thread between two headers,
        /// sending heartbeats until all have run (bounded); rethrows a rank's failure.
        /// </summary>
        public void OnEveryRank(NcclExpertTransport transport, Action<int, DeepSeekForCausalLM> work)
        {
            using var done = new CountdownEvent(_ranks.Count - 1);
            var errors = new Exception?[_ranks.Count];
            for (var rank = 1; rank < _ranks.Count; rank++)
            {
                var r = rank;
                _queued[r].Enqueue(() =>
                {
                    try
                    {
                        work(r, _ranks[r]);
                    }
                    catch (Exception e)
                    {
                        errors[r] = e;
                    }
                    done.Signal();
                });
            }
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!done.Wait(TimeSpan.FromMilliseconds(10)))
            {
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1), "a rank did not run its queued work between headers");
                transport.Heartbeat(TimeSpan.Zero);
            }
            Assert.All(errors, e => Assert.Null(e));
        }

        public ThreadProcessGroup? Current { get; private set; }

        public static Group Load(string fixture, ExpertPlacement placement, NcclExpertTransport transport)
        {
            var directory = Fixtures.Dir(fixture);
            var config = DeepSeekConfig.Load(directory);
            using var checkpoint = SafetensorsCheckpoint.Open(directory);
            var ranks = new List<DeepSeekForCausalLM>();
            for (var rank = 0; rank < placement.RankCount; rank++)
            {
                var model = DeepSeekForCausalLM.Build(config, ScalarType.Float64);
                ExpertParallelism.Apply(model, placement, rank, rank == 0 ? transport : new NoDispatch());
                model.Materialise(checkpoint, CPU);
                ranks.Add(model);
            }
            return new Group(transport, ranks);
        }

        /// <summary>Forms a group (agreement included, on every rank's thread), attaches the leader's end and starts the followers.</summary>
        public List<RankThread> Form(long generation, TimeSpan idleDeadline, TimeSpan unboundedWait, TimeSpan? followerDeadline = null)
        {
            var group = new ThreadProcessGroup(_ranks.Count, generation, unboundedWait);
            Current = group;
            string? Agree(int rank)
            {
                var model = _ranks[rank];
                var experts = model.RoutedExperts[0];
                return ExpertGroupAgreement.Exchange(group.Members[rank], ExpertGroupAgreement.Row(1, experts.HiddenSize, model.DType, experts.ExpertsPerToken,
                    model.RoutedExperts.Count, "abc"), CPU, Generous);
            }
            var followers = Enumerable.Range(1, _ranks.Count - 1).Select(rank => new RankThread(() =>
            {
                var problem = Agree(rank);
                return problem is not null
                    ? new FollowOutcome(FollowEnd.Failed, problem, 0)
                    : NcclExpertFollower.Follow(group.Members[rank], _ranks[rank], idleDeadline, followerDeadline ?? Generous, CancellationToken.None, () =>
                    {
                        while (_queued[rank].TryDequeue(out var queued)) queued();
                    });
            })).ToList();
            Assert.Null(Agree(0));
            _transport.Attach(group.Members[0], CPU);
            return followers;
        }

        public void Dispose()
        {
            foreach (var rank in _ranks) rank.Dispose();
        }
    }

    /// <summary>A rank's tensor thread; <see cref="Join"/> waits (bounded) for how its loop ended.</summary>
    private sealed class RankThread
    {
        private readonly Thread _thread;
        private FollowOutcome? _outcome;
        private Exception? _error;

        public RankThread(Func<FollowOutcome> follow)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    _outcome = follow();
                }
                catch (Exception e)
                {
                    _error = e;
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public FollowOutcome Join()
        {
            Assert.True(_thread.Join(TimeSpan.FromMinutes(2)), "the rank's loop did not end");
            return _error is null ? _outcome! : throw new InvalidOperationException("The rank's loop threw.", _error);
        }
    }

    private sealed class NoDispatch : IExpertTransport
    {
        public IExpertCombine Dispatch(int layerIndex, long placementVersion, IReadOnlyList<ExpertBatch> batches) => throw new InvalidOperationException("Only the leader dispatches.");
    }
}
