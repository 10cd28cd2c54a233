using System.Text.Json.Nodes;

namespace DeepSeek.KubernetesTestServer;

/// <summary>
/// Fields of a feature gate that is off, dropped on create and update as a real API server's
/// strategies drop disabled fields, without refusing the object: with ImageVolume off (the default on
/// 1.31–1.34) a workload's pod template loses its image volumes and every mount of them, and is stored
/// without them (issue #28: its pods then start with no model).
/// </summary>
internal static class DisabledFields
{
    public static void DropImageVolumes(ResourceType type, JsonObject obj)
    {
        if (type.Group != "apps" || type.Kind is not ("Deployment" or "StatefulSet")) return;
        if (obj["spec"]?["template"]?["spec"] is not JsonObject pod || pod["volumes"] is not JsonArray volumes) return;
        var images = volumes.OfType<JsonObject>().Where(v => v["image"] is not null).ToList();
        var names = images.Select(v => (string?)v["name"]).ToHashSet();
        foreach (var volume in images) volumes.Remove(volume);
        if (volumes.Count == 0) pod.Remove("volumes");
        foreach (var list in new[] { "initContainers", "containers" })
            foreach (var container in (pod[list] as JsonArray)?.OfType<JsonObject>() ?? [])
                if (container["volumeMounts"] is JsonArray mounts)
                {
                    foreach (var mount in mounts.OfType<JsonObject>().Where(m => names.Contains((string?)m["name"])).ToList()) mounts.Remove(mount);
                    if (mounts.Count == 0) container.Remove("volumeMounts");
                }
    }
}
