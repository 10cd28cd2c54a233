using DeepSeek.Operator.Cli;
using k8s;

namespace DeepSeek.Operator.Tests.Cli;

public sealed class ClusterConnectionTests
{
    [Fact]
    public void Missing_kubeconfig_file_is_named_in_the_error()
    {
        var error = Assert.Throws<ClusterUnreachableException>(() => ClusterConnection.Resolve("/definitely/not/here/kubeconfig"));
        Assert.Contains("/definitely/not/here/kubeconfig", error.Message);
    }

    [Fact]
    public async Task Unreachable_api_server_gives_a_clear_error_with_its_address()
    {
        var path = Path.GetTempFileName();
        try
        {
            // Port 1 on loopback: nothing listens there, the connection is refused at once.
            await File.WriteAllTextAsync(path, """
                apiVersion: v1
                kind: Config
                clusters:
                - name: c
                  cluster: {server: "http://127.0.0.1:1"}
                contexts:
                - name: c
                  context: {cluster: c, user: u}
                current-context: c
                users:
                - name: u
                  user: {token: test}
                """);
            var config = ClusterConnection.Resolve(path);
            using var client = new Kubernetes(config);

            var error = await Assert.ThrowsAsync<ClusterUnreachableException>(
                () => ClusterConnection.ProbeAsync(client, TimeSpan.FromSeconds(5), CancellationToken.None));
            Assert.Contains("127.0.0.1:1", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
