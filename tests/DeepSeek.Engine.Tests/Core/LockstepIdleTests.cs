using DeepSeek.Engine.Execution;

namespace DeepSeek.Engine.Tests.Core;

public sealed class LockstepIdleTests
{
    [Fact]
    public void A_busy_group_takes_turns_every_millisecond_a_quiet_one_every_twenty_and_none_waits_after_joining_a_peer()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(1), LockstepIdle.Wait(LockstepTurn.AllIdle, 1));
        Assert.Equal(TimeSpan.FromMilliseconds(1), LockstepIdle.Wait(LockstepTurn.AllIdle, LockstepIdle.QuietAfter - 1));
        Assert.Equal(TimeSpan.FromMilliseconds(20), LockstepIdle.Wait(LockstepTurn.AllIdle, LockstepIdle.QuietAfter));
        Assert.Equal(TimeSpan.Zero, LockstepIdle.Wait(LockstepTurn.JoinedPeers, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(100), LockstepIdle.Wait(LockstepTurn.GroupUnavailable, 0));
    }
}
