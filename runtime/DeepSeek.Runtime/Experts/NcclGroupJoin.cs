using DeepSeek.Model.Native;
using DeepSeek.Model.Parallelism;
using static TorchSharp.torch;

namespace DeepSeek.Runtime.Experts;

/// <summary>
/// One generation of a group's NCCL communicators, the same for every member whatever its role: create (rank 0,
/// whose store it is) or join through the store (<see cref="NcclFormation.StoreEndpoint"/>), then check every
/// member runs the same model (<see cref="ExpertGroupAgreement"/>) before a token is exchanged.
/// </summary>
public static class NcclGroupJoin
{
    /// <param name="helper">The native helper, loaded.</param>
    /// <param name="group">This member's settings, model and placement.</param>
    /// <param name="device">The CUDA device of this member's model.</param>
    /// <param name="generation">Rank 0 names the generation; the others pass null and learn it from the store.</param>
    /// <param name="problem">Why there is no group: a store that did not come up, a rank that did not join in time, members that disagree.</param>
    /// <returns>The formed and agreed group, which the caller owns; null when it did not form.</returns>
    public static NcclProcessGroup? TryJoin(NativeHelper helper, ExpertGroup group, Device device, long? generation, out string problem)
    {
        ArgumentNullException.ThrowIfNull(helper);
        ArgumentNullException.ThrowIfNull(group);
        var settings = group.Settings;
        var store = NcclFormation.StoreEndpoint(settings);
        NcclProcessGroup? formed = null;
        try
        {
            formed = helper.CreateProcessGroup(store.Host, store.Port, settings.Rank, settings.WorldSize, device, NcclFormation.JoinTimeout, generation);
            if (ExpertGroupAgreement.Exchange(formed, AgreementRow(group), device, NcclFormation.JoinTimeout) is { } disagreement)
            {
                problem = $"generation {formed.Generation}: {disagreement}";
                formed.Abort();
                formed.Dispose();
                return null;
            }
            problem = "";
            return formed;
        }
        catch (Exception e) when (e is NativeHelperException or ArgumentException or InvalidOperationException or IOException)
        {
            problem = formed is null
                ? $"could not form or join the group at {store.Host}:{store.Port}: {e.Message}"
                : $"generation {formed.Generation} did not form: {e.Message}";
            formed?.Abort();
            formed?.Dispose();
            return null;
        }
    }

    /// <summary>What every member compares when a group forms.</summary>
    public static long[] AgreementRow(ExpertGroup group)
    {
        ArgumentNullException.ThrowIfNull(group);
        return ExpertGroupAgreement.Row(group.Placement.Version, group.Config.HiddenSize, group.Model.DType, group.Config.NumExpertsPerTok,
            group.Placement.Layers.Count, group.Fingerprint);
    }
}
