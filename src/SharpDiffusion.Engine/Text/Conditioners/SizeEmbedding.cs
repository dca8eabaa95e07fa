using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Conditioners;

/// <summary>
/// sgm's <c>ConcatTimestepEmbedderND</c>: every number through the sinusoidal timestep embedding (cos first,
/// <c>f = exp(-ln(10000)·arange(half)/half)</c>, all in float32), concatenated in input order.
/// </summary>
public static class SizeEmbedding
{
    /// <param name="values">[B, n] numbers (e.g. height, width).</param>
    /// <param name="dim">Embedding size per number (SDXL: 256).</param>
    /// <returns>[B, n·dim] float32.</returns>
    public static Tensor Embed(Tensor values, int dim)
    {
        using var scope = NewDisposeScope();
        long b = values.shape[0], n = values.shape[1];
        int half = dim / 2;
        var freqs = exp(arange(0, half, dtype: ScalarType.Float32, device: values.device) * (float)-Math.Log(10000) / half);
        var args = values.reshape(b * n).to(ScalarType.Float32).unsqueeze(1) * freqs.unsqueeze(0);
        var emb = cat(new[] { cos(args), sin(args) }, -1);
        return emb.reshape(b, n * dim).MoveToOuterDisposeScope();
    }

    /// <summary>SDXL's size part of the vector: E(orig h), E(orig w), E(crop top), E(crop left), E(target h), E(target w).</summary>
    public static Tensor ForSizes(IReadOnlyList<ImageSizeConditioning> rows, int dim, Device? device = null)
    {
        using var scope = NewDisposeScope();
        Tensor Pairs(Func<ImageSizeConditioning, (int, int)> pick) =>
            tensor(rows.SelectMany(r => { var (a, c) = pick(r); return new float[] { a, c }; }).ToArray(), new long[] { rows.Count, 2 })
                .to(device ?? CPU);
        var parts = new[]
        {
            Embed(Pairs(r => (r.OriginalHeight, r.OriginalWidth)), dim),
            Embed(Pairs(r => (r.CropTop, r.CropLeft)), dim),
            Embed(Pairs(r => (r.TargetHeight, r.TargetWidth)), dim),
        };
        return cat(parts, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The SDXL refiner's part of the vector: E(orig h), E(orig w), E(crop top), E(crop left), E(aesthetic score)
    /// (sgm's sd_xl_refiner.yaml embedders in order; the target size is not an input).
    /// </summary>
    public static Tensor ForRefiner(IReadOnlyList<ImageSizeConditioning> rows, double aestheticScore, int dim, Device? device = null)
    {
        using var scope = NewDisposeScope();
        var values = rows.SelectMany(r => new float[] { r.OriginalHeight, r.OriginalWidth, r.CropTop, r.CropLeft, (float)aestheticScore }).ToArray();
        return Embed(tensor(values, new long[] { rows.Count, 5 }).to(device ?? CPU), dim).MoveToOuterDisposeScope();
    }
}
