using System.CommandLine;
using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Previews;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Png;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>generate --preview-every N --preview PATH [--preview-method cheap|taesd]</c>: A1111's live previews written as PNG
/// while sampling (the denoised prediction; "Approximate cheap" or TAESD from <c>--models-dir</c>'s
/// <c>VAE-approx/</c>). PATH may contain <c>{step}</c> (1-based) for one file per preview, else it is overwritten.
/// <c>--decoder taesd</c> decodes the final images with the same TAESD decoder (A1111's "VAE type for decode").
/// </summary>
internal sealed class GeneratePreviews
{
    private readonly Option<int?> _every = new("--preview-every") { Description = "Write a live preview every N sampling steps (needs --preview)" };
    private readonly Option<string?> _path = new("--preview") { Description = "Preview PNG path; {step} in it gives one file per preview, else it is overwritten" };
    private readonly Option<string> _method = new("--preview-method") { Description = "cheap (A1111 'Approximate cheap') or taesd (models/VAE-approx/taesd[xl]_decoder.pth)", DefaultValueFactory = _ => "cheap" };

    private readonly Option<string?> _decoder = new("--decoder") { Description = "Final decode: vae (default) or taesd (A1111 'VAE type for decode: TAESD': fast, lower quality; models/VAE-approx/taesd[xl]_decoder.pth)" };

    public IEnumerable<Option> Options => new Option[] { _every, _path, _method, _decoder };

    /// <summary>Whether the final decode is TAESD's: <c>--decoder</c>, else a <c>--from-png</c> infotext's <c>VAE Decoder</c> (A1111 applies it on paste).</summary>
    public bool TaesdFinalDecode(ParseResult args, A1111Infotext? png) => (args.GetValue(_decoder) ?? png?["VAE Decoder"] ?? "vae").ToLowerInvariant() switch
    {
        "vae" or "full" => false,
        "taesd" => true,
        var d => throw new ArgumentException($"unknown --decoder '{d}': vae or taesd"),
    };

    /// <summary>The preview callback for this command line, or null without --preview-every; bad options are an ArgumentException.</summary>
    public Action<SamplerStep>? Create(ParseResult args, ModelArchitecture architecture, string? modelsDir, out IDisposable? resources)
    {
        resources = null;
        int? every = args.GetValue(_every);
        string? path = args.GetValue(_path);
        if (every is null && path is null) return null;
        if (every is null || path is null) throw new ArgumentException("--preview-every and --preview go together");
        if (every < 1) throw new ArgumentException($"--preview-every {every}: must be at least 1");
        var method = args.GetValue(_method)!.ToLowerInvariant() switch
        {
            "cheap" => PreviewMethod.Cheap,
            "taesd" => PreviewMethod.Taesd,
            var m => throw new ArgumentException($"unknown --preview-method '{m}': cheap or taesd"),
        };
        Taesd? decoder = null;
        if (method == PreviewMethod.Taesd)
        {
            decoder = Taesd.Load(TaesdFiles.Decoder(modelsDir, architecture, "--preview-method taesd"));
            resources = decoder;
        }
        return LatentPreview.EveryNSteps(every.Value, method, architecture, decoder, preview =>
        {
            if (preview.BatchIndex != 0) return; // A1111 previews the first image of the batch
            var target = path.Replace("{step}", (preview.Step + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            PngEncoder.Save(target, preview.Rgb, preview.Width, preview.Height);
        });
    }
}
