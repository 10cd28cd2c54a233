using System.Text.RegularExpressions;
using DeepSeek.Chart.Tests.Infrastructure;

namespace DeepSeek.Chart.Tests.Images;

/// <summary>
/// Static checks of the Dockerfiles. The operator, gateway and CPU runtime images are also built and run
/// in CI (tests/DeepSeek.Images.Tests); the CUDA runtime image pulls a PyTorch base that CI cannot reach,
/// so for it these checks are what runs: floating or missing base tags, root users, the LibTorch wiring.
/// </summary>
public sealed partial class DockerfileTests
{
    public static TheoryData<string> Dockerfiles => new("operator/Dockerfile", "gateway/Dockerfile", "runtime/Dockerfile");

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void Base_images_have_pinned_tags(string dockerfile)
    {
        var lines = Instructions(dockerfile);
        var args = DefaultArguments(lines);
        var stages = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var froms = lines.Where(l => l.Keyword == "FROM").ToList();

        Assert.NotEmpty(froms);
        foreach (var from in froms)
        {
            var parts = from.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var image = Expand(parts[0], args);
            if (!stages.Contains(image))
            {
                var tag = Tag(image);
                Assert.True(tag is not null, $"{dockerfile}: base image {image} has no tag; pin one");
                Assert.NotEqual("latest", tag);
            }

            if (parts.Length == 3 && parts[1].Equals("AS", StringComparison.OrdinalIgnoreCase))
            {
                stages.Add(parts[2]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Dockerfiles))]
    public void Final_stage_runs_as_a_numeric_non_root_user(string dockerfile)
    {
        var lines = Instructions(dockerfile);
        var args = DefaultArguments(lines);
        var finalStage = lines.Skip(lines.FindLastIndex(l => l.Keyword == "FROM")).ToList();
        var users = finalStage.Where(l => l.Keyword == "USER").ToList();

        Assert.True(users.Count > 0, $"{dockerfile}: the final stage sets no USER, so the container runs as root");
        var user = Expand(users[^1].Arguments, args).Split(':')[0];
        Assert.True(int.TryParse(user, out var uid), $"{dockerfile}: USER {user} is not numeric; runAsNonRoot cannot verify a name");
        Assert.NotEqual(0, uid);
    }

    [Fact]
    public void Operator_image_uses_the_uid_the_chart_runs_as_and_exposes_its_ports()
    {
        var lines = Instructions("operator/Dockerfile");
        var values = File.ReadAllText(Path.Combine(Repository.ChartDirectory, "values.yaml"));

        Assert.Contains(lines, l => l.Keyword == "USER" && l.Arguments == "65532:65532");
        Assert.Contains("runAsUser: 65532", values, StringComparison.Ordinal);
        Assert.Contains(lines, l => l.Keyword == "EXPOSE" && l.Arguments == "8080 8081");
    }

    [Fact]
    public void Gateway_image_uses_the_uid_the_chart_runs_as_and_exposes_the_charts_gateway_port()
    {
        var lines = Instructions("gateway/Dockerfile");
        var container = Manifests.Sequence(Manifests.Render().Of("gateway").Single("Deployment").Root, "spec", "template", "spec", "containers").Single();

        Assert.Contains(lines, l => l.Keyword == "USER" && l.Arguments == "65532:65532");
        Assert.Equal("65532", Manifests.Render().Of("gateway").Single("Deployment").ScalarAt("spec", "template", "spec", "securityContext", "runAsUser"));
        Assert.Contains(lines, l => l.Keyword == "EXPOSE" && l.Arguments == Manifests.Scalar(Manifests.Sequence(container, "ports").Single(), "containerPort"));
        Assert.Contains(lines, l => l.Keyword == "ENTRYPOINT" && l.Arguments == "[\"/app/deepseek-gateway\"]");
    }

    [Fact]
    public void Runtime_image_points_the_server_at_the_base_images_cuda_libtorch()
    {
        var lines = Instructions("runtime/Dockerfile");
        var env = lines.Where(l => l.Keyword == "ENV").Select(l => l.Arguments).ToList();

        Assert.Contains(env, e => e.Contains("DEEPSEEK_LIBTORCH_DIR=/opt/libtorch", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Keyword == "RUN" && l.Arguments.Contains("/opt/libtorch", StringComparison.Ordinal)
            && l.Arguments.Contains("libtorch_cuda.so", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Keyword == "EXPOSE" && l.Arguments == "8000 50051");
    }

    [Fact]
    public void Docker_build_context_leaves_out_build_outputs_and_tools()
    {
        var ignored = File.ReadAllLines(Repository.PathOf(".dockerignore")).Select(l => l.Trim()).ToHashSet();

        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
        Assert.Contains(".tools/", ignored);
        Assert.Contains(".git/", ignored);
    }

    private sealed record Instruction(string Keyword, string Arguments);

    /// <summary>The Dockerfile's instructions with continuation lines joined and comments dropped.</summary>
    private static List<Instruction> Instructions(string dockerfile)
    {
        var instructions = new List<Instruction>();
        var pending = "";
        foreach (var raw in File.ReadAllLines(Repository.PathOf(dockerfile)))
        {
            var line = raw.Trim();
            if (line.StartsWith('#') || line.Length == 0)
            {
                continue;
            }

            pending += line.EndsWith('\\') ? line[..^1] + " " : line;
            if (line.EndsWith('\\'))
            {
                continue;
            }

            var space = pending.IndexOf(' ', StringComparison.Ordinal);
            instructions.Add(new Instruction(pending[..space].ToUpperInvariant(), pending[(space + 1)..].Trim()));
            pending = "";
        }

        return instructions;
    }

    private static Dictionary<string, string> DefaultArguments(List<Instruction> lines) =>
        lines.Where(l => l.Keyword == "ARG" && l.Arguments.Contains('=', StringComparison.Ordinal))
            .Select(l => l.Arguments.Split('=', 2))
            .GroupBy(p => p[0])
            .ToDictionary(g => g.Key, g => g.First()[1]);

    private static string Expand(string text, Dictionary<string, string> args) =>
        ArgumentReference().Replace(text, m =>
            args.TryGetValue(m.Groups[1].Value, out var value) ? value : throw new InvalidOperationException($"ARG {m.Groups[1].Value} has no default"));

    private static string? Tag(string image)
    {
        var name = image.Split('@')[0];
        var lastSlash = name.LastIndexOf('/');
        var colon = name.IndexOf(':', lastSlash + 1);
        return colon < 0 ? null : name[(colon + 1)..];
    }

    [GeneratedRegex(@"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")]
    private static partial Regex ArgumentReference();
}
