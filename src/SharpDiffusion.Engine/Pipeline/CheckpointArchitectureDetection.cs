using SharpDiffusion.Architectures;
using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>
/// Decides which architecture a checkpoint is (the classifier's verdict, from the header only, looked up in the
/// registry), and refuses anything the engine cannot run with one line that says what the file is instead.
/// </summary>
public static class CheckpointArchitectureDetection
{
    public static ModelArchitecture Detect(IModelFile file)
    {
        bool Has(string prefix) => file.Tensors.Any(t => t.Name.StartsWith(prefix, StringComparison.Ordinal));
        var verdict = ModelClassifier.Classify(file);
        if (!Has(LdmPrefixes.Unet) || !Has(LdmPrefixes.Vae))
        {
            string what = verdict.Kind switch
            {
                ModelKind.Lora => "a LoRA, not a checkpoint: use it in the prompt as <lora:name:weight>",
                ModelKind.Vae => "a VAE, not a checkpoint: pass it with --vae",
                ModelKind.Embedding => "a textual-inversion embedding, not a checkpoint",
                ModelKind.Hypernetwork => "a hypernetwork, not a checkpoint: use it in the prompt as <hypernet:name:weight>",
                ModelKind.ControlNet => "a ControlNet, not a checkpoint",
                ModelKind.Upscaler => "an upscaler, not a checkpoint",
                ModelKind.Unet => "a U-Net without text encoder and VAE; a full checkpoint is needed",
                ModelKind.TextEncoder => "a text encoder only; a full checkpoint is needed",
                _ => Has(LdmPrefixes.Unet)
                    ? $"a checkpoint without VAE weights ({LdmPrefixes.Vae}*); a full checkpoint is needed"
                    : $"not a Stable Diffusion checkpoint (no {LdmPrefixes.Unet}* weights)",
            };
            throw new InvalidModelFileException(file.Path, what);
        }
        // The architecture is the classifier's verdict (the one `inspect` shows and the workshop checks), so the engine,
        // the merger and the report never disagree about a file.
        if (verdict.Base == null)
        {
            throw new InvalidModelFileException(file.Path, "a checkpoint without a text encoder the engine knows ("
                + string.Join(" / ", ModelArchitectures.Families.Where(a => a.CanGenerate).SelectMany(a => a.TextEncoders).Select(e => e.Prefix + "*").Distinct()) + ")");
        }
        var architecture = ModelArchitectures.Of(verdict)
            ?? throw new InvalidModelFileException(file.Path, $"a {verdict.Base.Value.DisplayName()} checkpoint with {verdict.InputChannels} input channels, a variant the engine does not know");
        if (!architecture.CanGenerate)
        {
            throw new InvalidModelFileException(file.Path, $"a {architecture.DisplayName} checkpoint; the engine runs "
                + string.Join(", ", ModelArchitectures.All.Where(a => a.CanGenerate).Select(a => a.DisplayName)) + " so far");
        }
        return architecture;
    }
}
