using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Tests.Fixtures.Torch;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>
/// Checkpoints for workshop tests, built in memory from the tiny SD1 checkpoint (real LDM key names, small shapes):
/// perturbed copies, other dtypes, extra keys, written as safetensors or as a torch zip (.ckpt).
/// </summary>
internal sealed class CheckpointFixture
{
    public sealed record Tensor(string Name, TensorDType DType, long[] Shape, byte[] Data)
    {
        public float[] Floats => DTypeConversion.ToSingle(Data, DType);
    }

    private static readonly Lazy<List<Tensor>> TinySd1 = new(() => Load(TestPaths.GoldenFile("tiny_sd1.safetensors")).Tensors);

    public CheckpointFixture(List<Tensor> tensors, Dictionary<string, string>? metadata = null)
    {
        Tensors = tensors;
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    public List<Tensor> Tensors { get; }
    public Dictionary<string, string> Metadata { get; }

    public Tensor this[string name] => Tensors.Single(t => t.Name == name);

    /// <summary>The tiny SD1 checkpoint as it is (F32 and the I64 position ids).</summary>
    public static CheckpointFixture Sd1() => new(TinySd1.Value.ToList());

    public static CheckpointFixture Load(string path)
    {
        using var file = ModelFileReader.Open(path);
        var tensors = file.Tensors.Select(t =>
        {
            var data = new byte[t.ByteLength];
            file.ReadTensorData(t, data);
            return new Tensor(t.Name, t.DType, t.Shape, data);
        }).ToList();
        return new CheckpointFixture(tensors, file.Metadata.ToDictionary());
    }

    /// <summary>Every float tensor gets seeded noise of <paramref name="scale"/> added (integers untouched).</summary>
    public CheckpointFixture Perturbed(int seed, float scale = 0.05f)
    {
        var random = new Random(seed);
        return Map(t =>
        {
            if (!t.DType.IsFloatingPoint()) return t;
            var values = t.Floats;
            for (int i = 0; i < values.Length; i++) values[i] += scale * (float)(random.NextDouble() * 2 - 1);
            return t with { Data = DTypeConversion.FromSingle(values, t.DType) };
        });
    }

    /// <summary>Float tensors stored as <paramref name="dtype"/>.</summary>
    public CheckpointFixture As(TensorDType dtype) =>
        Map(t => t.DType.IsFloatingPoint() ? t with { DType = dtype, Data = DTypeConversion.FromSingle(t.Floats, dtype) } : t);

    public CheckpointFixture Map(Func<Tensor, Tensor> map) => new(Tensors.Select(map).ToList(), new Dictionary<string, string>(Metadata));

    public CheckpointFixture Where(Func<Tensor, bool> keep) => new(Tensors.Where(keep).ToList(), new Dictionary<string, string>(Metadata));

    public CheckpointFixture With(params Tensor[] extra) => new(Tensors.Concat(extra).ToList(), new Dictionary<string, string>(Metadata));

    public static Tensor Float(string name, long[] shape, float start, float step = 0.001f, TensorDType dtype = TensorDType.F32)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var values = Enumerable.Range(0, (int)n).Select(i => start + i * step).ToArray();
        return new Tensor(name, dtype, shape, DTypeConversion.FromSingle(values, dtype));
    }

    public string WriteSafetensors(string path)
    {
        SafetensorsWriter.Write(path, Tensors.Select(t => TensorToWrite.FromBytes(t.Name, t.DType, t.Shape, t.Data)), Metadata);
        return path;
    }

    /// <summary>
    /// A torch zip checkpoint: <c>{"state_dict": {...}, "global_step": 1}</c>, one storage per tensor, optionally
    /// wrapped in nothing (<paramref name="wrapInStateDict"/> false, as standalone VAE .pt files sometimes are).
    /// </summary>
    public string WriteCkpt(string path, bool wrapInStateDict = true)
    {
        var storages = new Dictionary<string, FixtureStorage>();
        var sd = new FixtureDict(ordered: true);
        int key = 0;
        foreach (var t in Tensors)
        {
            string storageKey = (key++).ToString(System.Globalization.CultureInfo.InvariantCulture);
            storages[storageKey] = new FixtureStorage(StorageType(t.DType), t.DType.ElementSize(), t.Data);
            sd.Add(t.Name, new FixtureTensor(storageKey, 0, t.Shape, RowMajorStrides(t.Shape)));
        }
        object root = wrapInStateDict ? new FixtureDict { { "global_step", 1L }, { "state_dict", sd } } : sd;
        TorchFixtureWriter.WriteZip(path, root, storages);
        return path;
    }

    private static string StorageType(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => "FloatStorage",
        TensorDType.F16 => "HalfStorage",
        TensorDType.BF16 => "BFloat16Storage",
        TensorDType.F64 => "DoubleStorage",
        TensorDType.I64 => "LongStorage",
        TensorDType.I32 => "IntStorage",
        _ => throw new ArgumentException($"no fixture storage for {dtype}"),
    };

    private static long[] RowMajorStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= shape[i];
        }
        return strides;
    }
}
