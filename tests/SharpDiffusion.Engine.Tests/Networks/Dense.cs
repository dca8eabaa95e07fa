namespace SharpDiffusion.Engine.Tests.Networks;

/// <summary>
/// A float64 row-major array for reference formulas written as plain loops, independent of torch.
/// Values are drawn as float32 so the same numbers feed torch and the reference.
/// </summary>
internal sealed class Dense
{
    public Dense(long[] shape, double[] data)
    {
        Shape = shape;
        Data = data;
        if (data.Length != shape.Aggregate(1L, (a, b) => a * b)) throw new ArgumentException("data does not fit the shape");
    }

    public long[] Shape { get; }
    public double[] Data { get; }
    public int Count => Data.Length;

    public static Dense Random(int seed, double scale, params long[] shape)
    {
        var rng = new System.Random(seed);
        var n = shape.Aggregate(1L, (a, b) => a * b);
        var data = new double[n];
        for (long i = 0; i < n; i++) data[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return new Dense(shape, data);
    }

    public static Dense Scalar(double value) => new([], [(float)value]);

    public static Dense Zeros(params long[] shape) => new(shape, new double[shape.Aggregate(1L, (a, b) => a * b)]);

    public float[] ToFloats() => [.. Data.Select(d => (float)d)];

    public TorchSharp.torch.Tensor ToTensor() => TorchSharp.torch.tensor(ToFloats(), Shape);

    public Dense Reshape(params long[] shape) => new(shape, Data);

    /// <summary>Rows x (everything else): the flatten(1) view.</summary>
    public (int Rows, int Cols) Matrix => ((int)Shape[0], Count / (int)Shape[0]);

    public double At(int row, int col) => Data[row * Matrix.Cols + col];

    public static Dense MatMul(Dense a, Dense b)
    {
        var (m, k) = a.Matrix;
        var (k2, n) = b.Matrix;
        if (k != k2) throw new ArgumentException("inner dimensions differ");
        var r = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int t = 0; t < k; t++) s += a.Data[i * k + t] * b.Data[t * n + j];
                r[i * n + j] = s;
            }
        return new Dense([m, n], r);
    }

    public Dense Map(Func<double, double> f) => new(Shape, [.. Data.Select(f)]);

    public static Dense Zip(Dense a, Dense b, Func<double, double, double> f)
    {
        if (a.Count != b.Count) throw new ArgumentException("sizes differ");
        return new Dense(a.Shape, [.. a.Data.Zip(b.Data, f)]);
    }

    public static Dense operator +(Dense a, Dense b) => Zip(a, b, (x, y) => x + y);
    public static Dense operator -(Dense a, Dense b) => Zip(a, b, (x, y) => x - y);
    public static Dense operator *(Dense a, double s) => a.Map(x => x * s);

    /// <summary>Kronecker product of two arrays of equal rank.</summary>
    public static Dense Kron(Dense a, Dense b)
    {
        int rank = a.Shape.Length;
        var shape = new long[rank];
        for (int d = 0; d < rank; d++) shape[d] = a.Shape[d] * b.Shape[d];
        var result = Zeros(shape);
        var ia = new long[rank];
        for (int x = 0; x < a.Count; x++)
        {
            Unravel(x, a.Shape, ia);
            var ib = new long[rank];
            for (int y = 0; y < b.Count; y++)
            {
                Unravel(y, b.Shape, ib);
                long flat = 0;
                for (int d = 0; d < rank; d++) flat = flat * shape[d] + ia[d] * b.Shape[d] + ib[d];
                result.Data[flat] = a.Data[x] * b.Data[y];
            }
        }
        return result;
    }

    private static void Unravel(long index, long[] shape, long[] into)
    {
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            into[d] = index % shape[d];
            index /= shape[d];
        }
    }
}
