using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>The checkpoint families the engine can generate with.</summary>
public enum ModelFamily
{
    Sd1,
    Sd2,
    Sdxl,
}

/// <summary>
/// Decides which family a single-file checkpoint is (the classifier's verdict, from the header only), and refuses
/// anything that is not a checkpoint the engine can run with one line that says what the file is instead.
/// </summary>
public static class ModelFamilyDetection
{
    public const string UNetPrefix = "model.diffusion_model.";
    public const string VaePrefix = "first_stage_model.";

    public static ModelFamily Detect(IModelFile file)
    {
        bool Has(string prefix) => file.Tensors.Any(t => t.Name.StartsWith(prefix, StringComparison.Ordinal));
        var verdict = ModelClassifier.Classify(file);
        if (!Has(UNetPrefix) || !Has(VaePrefix))
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
                _ => Has(UNetPrefix)
                    ? "a checkpoint without VAE weights (first_stage_model.*); a full checkpoint is needed"
                    : "not a Stable Diffusion checkpoint (no model.diffusion_model.* weights)",
            };
            throw new InvalidModelFileException(file.Path, what);
        }
        // The family is the classifier's verdict (the one `inspect` shows and the workshop checks), so the engine, the
        // merger and the report never disagree about a file.
        return verdict.Base switch
        {
            BaseFamily.SD1 => ModelFamily.Sd1,
            BaseFamily.SD2 => ModelFamily.Sd2,
            BaseFamily.SDXL => ModelFamily.Sdxl,
            BaseFamily.SDXLRefiner => throw new InvalidModelFileException(file.Path, "an SDXL refiner checkpoint; refiners are not supported yet"),
            BaseFamily family => throw new InvalidModelFileException(file.Path, $"a {family} checkpoint; the engine runs SD1.x, SD2.x and SDXL"),
            null => throw new InvalidModelFileException(file.Path, "a checkpoint without a text encoder the engine knows (cond_stage_model.* / conditioner.embedders.*)"),
        };
    }
}
