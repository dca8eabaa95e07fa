using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>The images of one job (RGB bytes, row-major), their seeds, and the final latents [B, C, h, w].</summary>
public sealed class GenerationResult : IDisposable
{
    public GenerationResult(IReadOnlyList<byte[]> images, int width, int height, IReadOnlyList<long> seeds, Tensor latents)
    {
        Images = images;
        Width = width;
        Height = height;
        Seeds = seeds;
        Latents = latents;
    }

    public IReadOnlyList<byte[]> Images { get; }
    public int Width { get; }
    public int Height { get; }
    public IReadOnlyList<long> Seeds { get; }

    /// <summary>The sampler's output before VAE decoding (unscaled: decode multiplies by 1/scale_factor).</summary>
    public Tensor Latents { get; }

    /// <summary>
    /// Sampling was stopped early (<see cref="Generation.GenerationControl"/>): <see cref="Latents"/> and the images
    /// are the denoised prediction of the last step that ran.
    /// </summary>
    public bool Interrupted { get; init; }

    /// <summary>The refiner took over during sampling (A1111 writes its infotext fields only then).</summary>
    public bool Refined { get; init; }

    public void Dispose() => Latents.Dispose();
}
