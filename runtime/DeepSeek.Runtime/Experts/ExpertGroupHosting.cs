using System.Diagnostics.Metrics;
using DeepSeek.Model.Devices;
using DeepSeek.Model.Parallelism;
using DeepSeek.Runtime.Api;
using DeepSeek.Runtime.Api.Auth;
using DeepSeek.Runtime.Hosting;
using DeepSeek.Runtime.Serving;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace DeepSeek.Runtime.Experts;

/// <summary>What a process is in its expert-parallel group.</summary>
public enum GroupRole
{
    /// <summary>World size 1: the whole model here, no group.</summary>
    Alone,
    /// <summary>Rank 0: serves the APIs, runs the scheduler, dispatches routed tokens to its ranks.</summary>
    Leader,
    /// <summary>Rank 1 … N−1: holds a shard of the experts and answers the leader's Compute calls.</summary>
    Rank,
    /// <summary>Any rank with data-parallel attention: serves the APIs with its own engine, dispatches its own tokens and answers its peers'.</summary>
    DataParallel,
}

/// <summary>The group's wiring: <c>serve</c>'s host with <see cref="ServeConfiguration.Parallel"/> set.</summary>
public static partial class ExpertGroupHosting
{
    /// <summary>How long the leader's first step (its warm-up) waits for its ranks (and, over NCCL, the first group): they may still be loading.</summary>
    private static readonly TimeSpan FirstFormationWait = TimeSpan.FromMinutes(15);

    /// <summary>
    /// A leader gets the peer connections, the transport its engine's model is sharded with, and
    /// readiness that follows the group; a rank gets the expert listener, its shard (loaded on its
    /// tensor thread) and the Experts service behind the group token.
    /// </summary>
    public static GroupRole AddExpertGroup(this WebApplicationBuilder builder, ServeConfiguration configuration, ModelFolder? model)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configuration);
        var parallel = configuration.Parallel;
        if (!parallel.IsGroup) return GroupRole.Alone;
        var group = new ExpertGroup(parallel, model ?? throw new InvalidOperationException("An expert-parallel group needs a model (--model)."));
        var engine = configuration.Engine;
        var services = builder.Services;
        services.AddSingleton(group);
        services.AddSingleton(provider => new ExpertParallelMetrics(engine.ServedModelName, group, provider.GetRequiredService<IMeterFactory>()));

        if (parallel.DataParallelAttention)
        {
            services.AddSingleton(provider => new ExpertPeers(group, TimeProvider.System, provider.GetRequiredService<ILogger<ExpertPeers>>()));
            services.AddSingleton(new PeerWork());
            if (parallel.Transport == ExpertTransportKind.Nccl)
            {
                // Lockstep: every forward agreed with the peers, all-to-all per MoE layer (LockstepExpertTransport).
                services.AddSingleton(_ => new LockstepExpertTransport(ExpertGroup.ComputeDeadline, FirstFormationWait));
                services.AddSingleton<IExpertTransport>(provider => provider.GetRequiredService<LockstepExpertTransport>());
                services.AddNcclGroupFormation<LockstepExpertTransport>(group, engine.Device);
            }
            else
            {
                services.AddSingleton<IExpertTransport>(provider => new GrpcExpertTransport(provider.GetRequiredService<ExpertPeers>(), ExpertGroup.ComputeDeadline, FirstFormationWait,
                    provider.GetRequiredService<PeerWork>()));
            }
            services.AddHostedService(provider => new LeaderGroupMonitor(provider.GetRequiredService<ExpertPeers>(), provider.GetRequiredService<Readiness>(),
                provider.GetService<NcclGroupFormation>()));
            builder.AddExpertListener(configuration, group);
            // Over NCCL the ranks switch together at a forward agreement; over gRPC each between its own steps.
            services.AddSingleton(provider => new PlacementStaging(group, new EngineModelThread(provider.GetRequiredService<EngineService>()), retire: true,
                provider.GetService<LockstepExpertTransport>()));
            // Every rank observes its own forwards' picks; rank 0 sums them and leads the rebalance.
            services.AddRebalancing(group);
            services.AddSingleton<IRankExperts>(provider => new EngineRankExperts(group, provider.GetRequiredService<EngineService>(), provider.GetRequiredService<PeerWork>(),
                provider.GetRequiredService<PlacementStaging>(), provider.GetService<ObservedExpertLoad>()));
            return GroupRole.DataParallel;
        }

        if (parallel.IsLeader)
        {
            services.AddSingleton(provider => new ExpertPeers(group, TimeProvider.System, provider.GetRequiredService<ILogger<ExpertPeers>>()));
            if (parallel.Transport == ExpertTransportKind.Nccl)
            {
                services.AddSingleton(_ => new NcclExpertTransport(ExpertGroup.ComputeDeadline, TimeProvider.System, FirstFormationWait));
                services.AddSingleton<IExpertTransport>(provider => provider.GetRequiredService<NcclExpertTransport>());
                services.AddNcclGroupFormation<NcclExpertTransport>(group, engine.Device);
            }
            else
            {
                services.AddSingleton<IExpertTransport>(provider => new GrpcExpertTransport(provider.GetRequiredService<ExpertPeers>(), ExpertGroup.ComputeDeadline, FirstFormationWait));
            }
            services.AddHostedService(provider => new LeaderGroupMonitor(provider.GetRequiredService<ExpertPeers>(), provider.GetRequiredService<Readiness>(), provider.GetService<NcclGroupFormation>()));
            services.AddSingleton(provider => new PlacementStaging(group, new EngineModelThread(provider.GetRequiredService<EngineService>()), retire: false));
            services.AddRebalancing(group);
            return GroupRole.Leader;
        }

        builder.AddExpertListener(configuration, group);
        services.AddSingleton(new RankExperts(group));
        services.AddSingleton<IRankExperts>(provider => provider.GetRequiredService<RankExperts>());
        services.AddHostedService(provider => new RankLoader(engine.Device, group, provider.GetRequiredService<RankExperts>(),
            provider.GetRequiredService<Readiness>(), provider.GetRequiredService<IHostApplicationLifetime>(), provider.GetRequiredService<ILogger<RankLoader>>()));
        if (parallel.Transport == ExpertTransportKind.Nccl)
            services.AddHostedService(provider => new NcclGroupRank(group, provider.GetRequiredService<RankExperts>(), provider.GetRequiredService<Readiness>(),
                provider.GetRequiredService<IHostApplicationLifetime>(), TimeProvider.System, provider.GetRequiredService<ILogger<NcclGroupRank>>()));
        return GroupRole.Rank;
    }

    /// <summary>
    /// With <c>--rebalance-interval-seconds</c> above 0: this member observes its expert load, and the
    /// member that leads rebalancing (rank 0: the leader, or a data-parallel group's first rank) runs the rebalancer.
    /// </summary>
    private static void AddRebalancing(this IServiceCollection services, ExpertGroup group)
    {
        if (group.Settings.RebalanceInterval <= TimeSpan.Zero) return;
        services.AddSingleton(provider => new ObservedExpertLoad(provider.GetRequiredService<IMeterFactory>(),
            group.MoeLayers, group.Config.NRoutedExperts));
        if (!group.Settings.IsLeader) return;
        services.AddHostedService(provider => new Rebalancer(group, provider.GetRequiredService<ExpertPeers>(), provider.GetRequiredService<ObservedExpertLoad>(),
            provider.GetRequiredService<PlacementStaging>(), provider.GetRequiredService<EngineService>(), provider.GetRequiredService<ExpertParallelMetrics>(),
            TimeProvider.System, provider.GetRequiredService<ILogger<Rebalancer>>()));
    }

    /// <summary>The NCCL group's formation over the transport the engine's model is sharded with (registered as <typeparamref name="TTransport"/>).</summary>
    private static void AddNcclGroupFormation<TTransport>(this IServiceCollection services, ExpertGroup group, string device)
        where TTransport : class, IGroupBoundTransport
    {
        services.AddSingleton(provider => new NcclGroupFormation(group, device, provider.GetRequiredService<ExpertPeers>(), provider.GetRequiredService<TTransport>(),
            provider.GetRequiredService<Readiness>(), provider.GetRequiredService<IHostApplicationLifetime>(), TimeProvider.System,
            provider.GetRequiredService<ILogger<NcclGroupFormation>>()));
        services.AddHostedService(provider => provider.GetRequiredService<NcclGroupFormation>());
    }

    /// <summary>The expert port (HTTP/2, the Experts service behind the group token), on ranks that answer Compute calls.</summary>
    private static void AddExpertListener(this WebApplicationBuilder builder, ServeConfiguration configuration, ExpertGroup group)
    {
        var parallel = configuration.Parallel;
        var services = builder.Services;
        var address = RuntimeHost.ResolveListenAddress(configuration.Host);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(address, parallel.ExpertPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.UseFace(ApiFace.Experts);
            });
        });
        // The token is checked, and the larger body allowed, by GroupTokenGate on the expert listener only;
        // the other listeners of a rank (probes, gRPC health) keep the framework's limits.
        var maxMessageBytes = ExpertMessageLimit.For(group.Config, configuration.Engine.MaxBatchTokens);
        services.AddSingleton(new ExpertListener(new ApiKey(parallel.GroupToken!), maxMessageBytes));
        services.AddGrpc().AddServiceOptions<ExpertsService>(grpc =>
        {
            grpc.MaxReceiveMessageSize = maxMessageBytes;
            grpc.MaxSendMessageSize = maxMessageBytes;
        });
    }

    /// <summary>The Experts service on the expert listener (ranks only); the metrics of every member.</summary>
    public static WebApplication MapExpertGroup(this WebApplication app, GroupRole role)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (role == GroupRole.Alone) return app;
        // Created now so the series exist before the first scrape.
        _ = app.Services.GetRequiredService<ExpertParallelMetrics>();
        if (role is GroupRole.Rank or GroupRole.DataParallel)
        {
            var listener = app.Services.GetRequiredService<ExpertListener>();
            app.UseWhen(http => http.Face() == ApiFace.Experts, experts => experts.UseMiddleware<GroupTokenGate>(listener.GroupToken, listener.MaxMessageBytes));
            app.MapGrpcService<ExpertsService>().RequireFace(ApiFace.Experts);
        }
        return app;
    }

    /// <summary>What a rank's expert listener admits: members' calls, up to one layer's exchange.</summary>
    private sealed record ExpertListener(ApiKey GroupToken, int MaxMessageBytes);

    /// <summary>
    /// Keeps the leader's readiness in step with its ranks: not ready while one is missing (or, over NCCL,
    /// while the group is not formed), ready again when it returns.
    /// </summary>
    private sealed class LeaderGroupMonitor(ExpertPeers peers, Readiness readiness, NcclGroupFormation? nccl) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            // The current state, not the event's: events of two ranks may arrive out of order.
            void Follow(GroupReadiness _)
            {
                var group = nccl?.Readiness(peers.Readiness) ?? peers.Readiness;
                readiness.SetMissingRanks(group.Ready ? null : group.Message);
            }
            void FollowNccl() => Follow(peers.Readiness);
            peers.Changed += Follow;
            if (nccl is not null) nccl.Changed += FollowNccl;
            Follow(peers.Readiness);
            try
            {
                await peers.RunAsync(stoppingToken).ConfigureAwait(false);
            }
            finally
            {
                peers.Changed -= Follow;
                if (nccl is not null) nccl.Changed -= FollowNccl;
            }
        }
    }

    /// <summary>Loads this rank's shard when the host starts; a rank that cannot load says why and exits non-zero.</summary>
    private sealed partial class RankLoader(string device, ExpertGroup group, RankExperts experts, Readiness readiness,
        IHostApplicationLifetime lifetime, ILogger<RankLoader> logger) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            try
            {
                var started = TimeProvider.System.GetTimestamp();
                await experts.LoadAsync(() => group.Model.Load(TorchRuntime.Resolve(device), model => group.Shard(model, new ExpertGroup.NoDispatch()),
                    line => LogRankLoad(logger, line))).ConfigureAwait(false);
                var seconds = TimeProvider.System.GetElapsedTime(started).TotalSeconds;
                var held = group.Placement.Layers.Sum(l => l.ExpertsOn(group.Settings.Rank).Count);
                LogRankLoaded(logger, group.Settings.Rank, group.Settings.WorldSize, held, group.Placement.Layers.Count, seconds, group.Settings.ExpertPort);
                readiness.MarkReady();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                if (ModelLoadFailure.IsUserError(e)) LogRankLoadRefused(logger, e.Message);
                else LogRankLoadFailed(logger, e);
                readiness.MarkFailed();
                Environment.ExitCode = 1;
                lifetime.StopApplication();
            }
        }

        /// <summary>The load's own lines: its progress and what quantisation did.</summary>
        [LoggerMessage(Level = LogLevel.Information, Message = "{Line}")]
        private static partial void LogRankLoad(ILogger logger, string line);

        [LoggerMessage(Level = LogLevel.Information, Message = "Rank {Rank} of {WorldSize} loaded {Experts} routed experts over {Layers} MoE layers in {Seconds:0.0} s; serving the Experts service on port {Port}")]
        private static partial void LogRankLoaded(ILogger logger, int rank, int worldSize, int experts, int layers, double seconds, int port);

        [LoggerMessage(Level = LogLevel.Critical, Message = "Loading this rank's experts failed; the process stops")]
        private static partial void LogRankLoadFailed(ILogger logger, Exception exception);

        [LoggerMessage(Level = LogLevel.Critical, Message = "Loading this rank's experts failed; the process stops: {Reason}")]
        private static partial void LogRankLoadRefused(ILogger logger, string reason);
    }
}
