namespace SharpDiffusion.Conversion;

/// <summary>Key prefixes of the model parts inside a single-file (LDM / sgm) checkpoint.</summary>
public static class KeyPrefixes
{
    public const string Unet = "model.diffusion_model.";
    public const string Vae = "first_stage_model.";

    /// <summary>SD 1.x text encoder: a transformers CLIPTextModel (HF names follow, starting <c>text_model.</c>).</summary>
    public const string Sd1TextEncoder = "cond_stage_model.transformer.";

    /// <summary>SD 2.x text encoder: an OpenCLIP ViT-H text tower (OpenCLIP names follow).</summary>
    public const string Sd2TextEncoder = "cond_stage_model.model.";

    /// <summary>SDXL first text encoder: CLIP ViT-L as a transformers CLIPTextModel.</summary>
    public const string SdxlTextEncoder1 = "conditioner.embedders.0.transformer.";

    /// <summary>SDXL second text encoder: OpenCLIP ViT-bigG text tower.</summary>
    public const string SdxlTextEncoder2 = "conditioner.embedders.1.model.";
}
