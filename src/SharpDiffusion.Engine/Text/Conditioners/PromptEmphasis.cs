using SharpDiffusion.Engine.Text.Prompts;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Conditioners;

/// <summary>A1111's <c>sd_emphasis</c>: apply per-token multipliers to one chunk of encoder output for the whole batch.</summary>
public static class PromptEmphasis
{
    /// <param name="z">[B, 77, C] encoder output of one chunk index.</param>
    /// <param name="multipliers">[B, 77] float32 multipliers.</param>
    /// <param name="mode">A1111's <c>opts.emphasis</c>.</param>
    public static Tensor Apply(Tensor z, Tensor multipliers, EmphasisMode mode)
    {
        if (mode is EmphasisMode.Ignore or EmphasisMode.None) return z.alias();
        using var m = multipliers.to(z.dtype).unsqueeze(-1);
        var weighted = z * m;
        if (mode == EmphasisMode.NoNorm) return weighted;
        // "Original": restore the mean over all B·77·C values (one float32 factor for the whole batch).
        using (weighted)
        using (var originalMean = z.mean())
        using (var newMean = weighted.mean())
        using (var factor = originalMean / newMean)
            return weighted * factor;
    }
}
