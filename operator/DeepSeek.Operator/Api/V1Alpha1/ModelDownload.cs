using System.ComponentModel.DataAnnotations;
using DeepSeek.Operator.Crd;

namespace DeepSeek.Operator.Api.V1Alpha1;

/// <summary>
/// A Hugging Face-compatible hub repository that an init container of every runtime pod downloads
/// into the claim (the runtime's download verb) before the runtime starts. Every file is checked
/// against the hub's checksum once; later pod starts find the verb's completion stamp and skip the hub.
/// </summary>
public sealed class ModelDownload
{
    /// <summary>Repository id on the hub (owner/name), e.g. deepseek-ai/DeepSeek-V2-Lite.</summary>
    [Required]
    [MinLength(1)]
    [MaxLength(256)]
    [CelRule("self.matches('" + RepositoryPattern + "')",
        "model.source.pvc.download.repo and adapters[*].source.pvc.download.repo must be a hub repository id such as deepseek-ai/DeepSeek-V2-Lite: letters, digits, '_', '.' or '-', with at most one '/'")]
    public string Repo { get; set; } = "";

    /// <summary>Branch, tag or commit of the repository.</summary>
    [MinLength(1)]
    [MaxLength(256)]
    public string Revision { get; set; } = "main";

    /// <summary>Base URL of the hub, for a mirror or a private hub (default: the runtime's, https://huggingface.co).</summary>
    [MaxLength(2048)]
    [CelRule("self.matches('^https?://[^/?# ]+')",
        "model.source.pvc.download.endpoint and adapters[*].source.pvc.download.endpoint must be an http(s) URL such as https://huggingface.co")]
    public string? Endpoint { get; set; }

    /// <summary>Secret key holding the hub's access token, for gated or private repositories (key default: token).</summary>
    public SecretKeyReference? TokenSecretRef { get; set; }

    /// <summary>What the runtime's download verb accepts as a repository id.</summary>
    public const string RepositoryPattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$";

    /// <summary>The Secret key read when <see cref="TokenSecretRef"/> names none.</summary>
    public const string DefaultTokenKey = "token";
}
