using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using DeepSeek.Images.Tests.Infrastructure;

namespace DeepSeek.Images.Tests;

/// <summary>
/// <c>scripts/build-images.sh --push-only</c> (what <c>--push</c> does after building) puts the built images
/// into a real registry, a Distribution registry on loopback, which serves them back unchanged.
/// The images are the collection's build, tagged for the registry (a tag costs no rebuild).
/// </summary>
[Collection(ImagesCollection.Name)]
public sealed class RegistryPushTests(BuiltImages images)
{
    private static readonly TimeSpan PushTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Push_puts_every_image_into_the_registry_which_serves_them_back_unchanged()
    {
        await using var registry = await LocalRegistry.StartAsync();
        var prefix = $"{registry.Address}/deepseek";
        var pushed = await TagAsync(prefix);
        try
        {
            var push = (await BuildImages.RunAsync("--registry", prefix, "--push-only")).Succeeded();

            foreach (var (local, remote) in pushed)
            {
                var name = remote[(registry.Address.Length + 1)..remote.LastIndexOf(':')];
                var tag = remote[(remote.LastIndexOf(':') + 1)..];
                var id = (await Podman.RunAsync("image", "inspect", "--format", "{{.Id}}", local)).Succeeded().Output.Trim();

                using var tags = JsonDocument.Parse(await registry.Http.GetStringAsync(new Uri($"/v2/{name}/tags/list", UriKind.Relative)));
                Assert.Contains(tag, tags.RootElement.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));

                // The manifest the tag names: its digest is what the script reported and what its bytes hash to,
                // and the configuration it names is the local image's (the image ID is that configuration's digest).
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"/v2/{name}/manifests/{tag}", UriKind.Relative));
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.oci.image.manifest.v1+json"));
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.docker.distribution.manifest.v2+json"));
                using var response = await registry.Http.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var body = await response.Content.ReadAsByteArrayAsync();
                var digest = Assert.Single(response.Headers.GetValues("Docker-Content-Digest"));
                Assert.Equal($"sha256:{Convert.ToHexStringLower(SHA256.HashData(body))}", digest);
                Assert.Contains($"{remote}  pushed  digest {digest}", push.Output, StringComparison.Ordinal);
                using var manifest = JsonDocument.Parse(body);
                Assert.Equal($"sha256:{id}", manifest.RootElement.GetProperty("config").GetProperty("digest").GetString());

                // Pulled back whole (every blob fetched and checked against its digest): the same manifest and image.
                var layout = Directory.CreateTempSubdirectory("deepseek-pulled-").FullName;
                try
                {
                    (await Command.RunAsync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", $"docker://{remote}", $"oci:{layout}:{tag}"], PushTimeout)).Succeeded();
                    using var index = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(layout, "index.json")));
                    Assert.Equal(digest, index.RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString());
                    var config = Path.Combine(layout, "blobs", "sha256", id);
                    Assert.True(File.Exists(config), $"the pulled image lacks the configuration {id}");
                    Assert.Equal(id, Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(config))));
                }
                finally
                {
                    Directory.Delete(layout, recursive: true);
                }
            }
        }
        finally
        {
            await UntagAsync(pushed);
        }
    }

    [Fact]
    public async Task A_registry_that_refuses_the_upload_fails_the_push_with_one_line()
    {
        await using var registry = await LocalRegistry.StartAsync(readOnly: true);
        var prefix = $"{registry.Address}/deepseek";
        var pushed = await TagAsync(prefix);
        try
        {
            var push = await BuildImages.RunAsync("--registry", prefix, "--push-only");

            Assert.Equal(1, push.ExitCode);
            var line = Assert.Single(push.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            // podman's reason follows, on the same line: the registry's refusal (405, read-only), no Go or .NET stack.
            Assert.StartsWith($"error: pushing {pushed[0].Remote} failed: ", line, StringComparison.Ordinal);
            Assert.Contains("405", line, StringComparison.Ordinal);
        }
        finally
        {
            await UntagAsync(pushed);
        }
    }

    /// <summary>The built images tagged as <c>build-images.sh --registry PREFIX</c> names them.</summary>
    private async Task<List<(string Local, string Remote)>> TagAsync(string prefix)
    {
        var remote = await BuildImages.ListAsync("--registry", prefix);
        var pairs = new List<(string Local, string Remote)>();
        foreach (var local in new[] { images.Operator, images.Gateway, images.RuntimeCpu })
        {
            var target = Assert.Single(remote, r => r.EndsWith(local[local.IndexOf('/', StringComparison.Ordinal)..], StringComparison.Ordinal));
            (await Podman.RunAsync("tag", local, target)).Succeeded();
            pairs.Add((local, target));
        }
        return pairs;
    }

    /// <summary>Removes the registry tags again (the images keep their local tags).</summary>
    private static async Task UntagAsync(IEnumerable<(string Local, string Remote)> pushed)
    {
        foreach (var (local, remote) in pushed) await Podman.RunAsync("untag", local, remote);
    }
}
