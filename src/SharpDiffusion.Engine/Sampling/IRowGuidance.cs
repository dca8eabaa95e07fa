using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// Guidance over a raw per-row model evaluation, for samplers that do not work with k-diffusion's D(x, σ): the
/// timestep samplers (eps at a timestep), LCM (its own scalings) and DDIM CFG++ (which also needs the
/// unconditional output).
/// </summary>
public interface IRowGuidance
{
    /// <summary>The model wrapper (schedule, U-Net, eps or v).</summary>
    IDenoiser Denoiser { get; }

    /// <summary>
    /// <paramref name="rows"/>(x rows, conditioning rows) evaluated on the cond and uncond rows, combined as
    /// <c>u + (c - u)·scale·scaleFactor</c>; also returns the unconditional part (the conditional output when there is no
    /// guidance).
    /// </summary>
    (Tensor Guided, Tensor Uncond) Guide(Tensor x, Func<Tensor, Conditioning, Tensor> rows, double scaleFactor = 1.0);
}
