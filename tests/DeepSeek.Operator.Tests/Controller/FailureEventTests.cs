using System.Net;
using DeepSeek.Operator.Cluster;
using DeepSeek.Operator.Controller;
using DeepSeek.Operator.Desired;
using DeepSeek.Operator.Status;
using Microsoft.Extensions.Logging.Abstractions;

namespace DeepSeek.Operator.Tests.Controller;

/// <summary>
/// A write the API server refuses is one Warning Event per failure even when the status write beside it
/// fails too: under load the cache often lags the model's last status write, so that write is refused
/// (409, stale resourceVersion), and an Event tied to it was lost (a fresh-clone CI run on a loaded
/// machine waited 30 s for a fourth failure's count that never came).
/// </summary>
public sealed class FailureEventTests
{
    [Fact]
    public async Task Each_refused_write_records_its_event_even_when_the_status_write_is_refused_as_stale()
    {
        var cluster = new FakeModelCluster
        {
            Model = RecreatedModelTests.Document("uid-1"),
            ApplyFault = action => action.Object.Kind == "StatefulSet" ? FakeModelCluster.ApiError(HttpStatusCode.InternalServerError, "injected fault 500") : null,
            StatusFault = FakeModelCluster.ApiError(HttpStatusCode.Conflict, "the object has been modified"),
        };
        var reconciler = new ModelReconciler(cluster, new OperatorDefaults { RuntimeImage = "r" }, ClusterFeatures.Any, TimeProvider.System, NullLogger<ModelReconciler>.Instance);

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            await Assert.ThrowsAnyAsync<Exception>(() => reconciler.ReconcileAsync("default/ep", CancellationToken.None));
            Assert.True(cluster.StatusWrites >= attempt, "each failure tries to write it into the status");
            var failures = cluster.Events.Where(e => e.Reason == ModelConditions.ReasonReconcileFailed).ToList();
            Assert.Equal(attempt, failures.Count);
            Assert.All(failures, e =>
            {
                Assert.Equal("Warning", e.Type);
                Assert.StartsWith("Create of StatefulSet ep-g0 was refused by the API server (500)", e.Message, StringComparison.Ordinal);
            });
        }
    }
}
