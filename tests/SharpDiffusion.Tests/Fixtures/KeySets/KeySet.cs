using System.Globalization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>One tensor of a generated key set: name, dtype, shape.</summary>
public sealed record KeyEntry(string Name, TensorDType DType, long[] Shape)
{
    public TensorInfo ToTensorInfo() => new(Name, DType, Shape);

    /// <summary>"name\tF32\t[a,b]", the reference TSV spelling.</summary>
    public string Line => Name + "\t" + DType.SafetensorsName() + "\t[" + string.Join(",", Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";
}

/// <summary>A generated tensor list plus the metadata and the few tensor bytes (alphas) a test file carries.</summary>
public sealed class KeySet
{
    public List<KeyEntry> Entries { get; } = new();
    public Dictionary<string, string> Metadata { get; } = new();
    public Dictionary<string, byte[]> Data { get; } = new();

    public KeySet Add(string name, TensorDType dtype, params long[] shape)
    {
        Entries.Add(new KeyEntry(name, dtype, shape));
        return this;
    }

    public KeySet AddRange(IEnumerable<KeyEntry> entries)
    {
        Entries.AddRange(entries);
        return this;
    }

    /// <summary>A scalar with its bytes stored, readable through <see cref="InMemoryModelFile.ReadTensorData"/>.</summary>
    public KeySet AddScalar(string name, TensorDType dtype, double value)
    {
        Entries.Add(new KeyEntry(name, dtype, Array.Empty<long>()));
        Data[name] = dtype switch
        {
            TensorDType.F16 => BitConverter.GetBytes((Half)value),
            TensorDType.F32 => BitConverter.GetBytes((float)value),
            TensorDType.BF16 => BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits((float)value) >> 16)),
            _ => BitConverter.GetBytes(value),
        };
        return this;
    }

    public KeySet WithMetadata(string key, string value)
    {
        Metadata[key] = value;
        return this;
    }

    public InMemoryModelFile ToFile(ModelFormat format = ModelFormat.Safetensors) => InMemoryModelFile.From(this, format);

    public static KeySet Of(IEnumerable<KeyEntry> entries) => new KeySet().AddRange(entries);
}
