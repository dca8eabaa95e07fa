namespace SharpDiffusion.Engine.Training;

/// <summary>
/// kohya's aspect-ratio buckets (library/model_util.py <c>make_bucket_resolutions</c>, train_util.py BucketManager):
/// resolutions of about the area of <c>resolution²</c> in steps of <see cref="Step"/>, widths from
/// <see cref="MinSize"/> to <see cref="MaxSize"/>; an image goes to the bucket whose aspect ratio is nearest its own,
/// is scaled to cover it (area-preserving up to the rounding) and centre-cropped.
/// </summary>
public sealed class AspectRatioBuckets
{
    public AspectRatioBuckets(int resolution, int step = 64, int? minSize = null, int? maxSize = null)
    {
        if (step < 1 || resolution < step) throw new ArgumentException($"resolution {resolution} must be at least the bucket step {step}");
        Step = step;
        MinSize = minSize ?? Math.Max(step, resolution / 2 / step * step);
        MaxSize = maxSize ?? resolution * 2;
        long maxArea = (long)resolution * resolution;
        var set = new SortedSet<(int W, int H)>();
        int square = (int)(Math.Sqrt(maxArea) / step) * step;
        set.Add((square, square));
        for (int width = MinSize; width <= MaxSize; width += step)
        {
            int height = (int)Math.Min(MaxSize, maxArea / width / step * step);
            if (height < MinSize) continue;
            set.Add((width, height));
            set.Add((height, width));
        }
        Resolutions = set.ToList();
    }

    public int Step { get; }
    public int MinSize { get; }
    public int MaxSize { get; }

    /// <summary>Sorted (width, height) pairs.</summary>
    public IReadOnlyList<(int Width, int Height)> Resolutions { get; }

    /// <summary>The bucket whose width/height is nearest the image's (the first such in sorted order on ties, as numpy argmin).</summary>
    public (int Width, int Height) Select(int imageWidth, int imageHeight)
    {
        double ratio = (double)imageWidth / imageHeight;
        var best = Resolutions[0];
        double bestError = double.MaxValue;
        foreach (var r in Resolutions)
        {
            double error = Math.Abs((double)r.Width / r.Height - ratio);
            if (error < bestError)
            {
                bestError = error;
                best = r;
            }
        }
        return best;
    }
}
