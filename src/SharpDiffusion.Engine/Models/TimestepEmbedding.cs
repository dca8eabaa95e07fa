using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// openaimodel.timestep_embedding: half = dim/2, freqs = exp(-ln(10000)·arange(half)/half) in float32,
/// args = t.float()[:, None]·freqs, emb = cat(cos(args), sin(args)) — cos first; odd dims get a zero column.
/// </summary>
public static class TimestepEmbedding
{
    public static Tensor Sinusoidal(Tensor timesteps, int dim, double maxPeriod = 10000)
    {
        using var scope = NewDisposeScope();
        int half = dim / 2;
        var freqs = arange(0, half, dtype: ScalarType.Float32, device: timesteps.device)
            .mul(-Math.Log(maxPeriod)).div(half).exp();
        var args = timesteps.to(ScalarType.Float32).unsqueeze(1).mul(freqs.unsqueeze(0));
        var emb = cat(new[] { args.cos(), args.sin() }, -1);
        if (dim % 2 == 1) emb = cat(new[] { emb, zeros_like(emb[.., ..1]) }, -1);
        return emb.MoveToOuterDisposeScope();
    }
}
