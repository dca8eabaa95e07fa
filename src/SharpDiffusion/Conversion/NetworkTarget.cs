namespace SharpDiffusion.Conversion;

/// <summary>
/// The model weight a network module changes: a single-file key, optionally a block of its rows
/// (kohya's <c>q_proj</c> of an OpenCLIP text encoder is the first third of <c>attn.in_proj_weight</c>).
/// </summary>
/// <param name="WeightKey">The model's weight key, e.g. <c>model.diffusion_model.input_blocks.1.1.proj_in.weight</c>.</param>
/// <param name="BiasKey">The model's bias key of the same layer when the model has one (for <c>diff_b</c> / <c>b_norm</c>).</param>
/// <param name="Part">U-Net or which text encoder.</param>
/// <param name="SliceIndex">Row block of the weight (and bias) the module covers.</param>
/// <param name="SliceCount">Number of equal row blocks; 1 = the whole tensor.</param>
public sealed record NetworkTarget(string WeightKey, string? BiasKey, ModelPart Part, int SliceIndex = 0, int SliceCount = 1)
{
    public bool IsTextEncoder => Part != ModelPart.Unet;
}
