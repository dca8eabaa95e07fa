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
/// Decides, from key names only, which family a single-file checkpoint is, and refuses anything that is not a
/// checkpoint the engine can run with one line that says what the file is instead.
/// </summary>
public static class ModelFamilyDetection
{
    public const string UNetPrefix = "model.diffusion_model.";
    public const string VaePrefix = "first_stage_model.";

    public static ModelFamily Detect(IModelFile file)
    {
        bool Has(string prefix) => file.Tensors.Any(t => t.Name.StartsWith(prefix, StringComparison.Ordinal));
        if (!Has(UNetPrefix) || !Has(VaePrefix))
        {
            var verdict = ModelClassifier.Classify(file);
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
        if (Has("cond_stage_model.transformer.")) return ModelFamily.Sd1;
        if (Has("cond_stage_model.model.")) return ModelFamily.Sd2;
        if (Has("conditioner.embedders.0.transformer.") && Has("conditioner.embedders.1.model.")) return ModelFamily.Sdxl;
        if (Has("conditioner.embedders.0.model."))
            throw new InvalidModelFileException(file.Path, "an SDXL refiner checkpoint; refiners are not supported yet");
        throw new InvalidModelFileException(file.Path, "a checkpoint without a text encoder the engine knows (cond_stage_model.* / conditioner.embedders.*)");
    }
}
