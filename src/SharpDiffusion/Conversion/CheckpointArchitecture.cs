namespace SharpDiffusion.Conversion;

/// <summary>Which text encoders a single-file checkpoint holds, and under which prefixes (see <see cref="KeyPrefixes"/>).</summary>
public enum CheckpointArchitecture
{
    /// <summary>SD 1.x: CLIP ViT-L under <c>cond_stage_model.transformer.</c>.</summary>
    Sd1,

    /// <summary>SD 2.x: OpenCLIP ViT-H under <c>cond_stage_model.model.</c>.</summary>
    Sd2,

    /// <summary>SDXL: CLIP ViT-L under <c>conditioner.embedders.0.transformer.</c>, OpenCLIP bigG under <c>conditioner.embedders.1.model.</c>.</summary>
    Sdxl,
}
