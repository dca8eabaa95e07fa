using static TorchSharp.torch;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>
/// A low-rank factorisation <c>up @ down</c> of one weight change, shaped as a kohya LoRA stores it:
/// linear up [out, r], down [r, in]; conv up [out, r, 1, 1], down [r, in, kh, kw].
/// </summary>
public sealed class LowRankFactors : IDisposable
{
    internal LowRankFactors(Tensor up, Tensor down, double keptEnergy)
    {
        Up = up;
        Down = down;
        KeptEnergy = keptEnergy;
    }

    public Tensor Up { get; }
    public Tensor Down { get; }
    public long Rank => Down.shape[0];

    /// <summary>Sum of the kept squared singular values over the sum of all of them (1 for a zero matrix: nothing lost).</summary>
    public double KeptEnergy { get; }

    public void Dispose()
    {
        Up.Dispose();
        Down.Dispose();
    }
}
