using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>One float tensor of a LoRA file to write: its values are produced (as float32) only when written.</summary>
internal sealed record LoraTensor(string Name, long[] Shape, Func<float[]> Values)
{
    public static LoraTensor From(string name, Tensor value) =>
        new(name, value.shape, () => value.to(ScalarType.Float32).contiguous().data<float>().ToArray());

    /// <summary>A 0-d tensor (kohya's <c>alpha</c>).</summary>
    public static LoraTensor Scalar(string name, float value) => new(name, [], () => [value]);
}

/// <summary>Writes LoRA tensors to a .safetensors file in one precision, atomically (temporary file, then rename).</summary>
internal static class LoraFileWriter
{
    public static void Write(string path, IReadOnlyList<LoraTensor> tensors, TensorDType dtype, IReadOnlyDictionary<string, string> metadata,
        IProgress<LoraToolProgress>? progress, IEnumerable<TensorToWrite>? rawTensors = null)
    {
        int total = tensors.Count, done = 0;
        var items = tensors.Select(t => new TensorToWrite(t.Name, dtype, t.Shape, stream =>
        {
            stream.Write(DTypeConversion.FromSingle(t.Values(), dtype));
            progress?.Report(new LoraToolProgress("write", ++done, total, t.Name));
        }));
        SafetensorsWriter.Write(path, rawTensors == null ? items : items.Concat(rawTensors), metadata);
    }
}
