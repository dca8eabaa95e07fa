using SharpDiffusion.Architectures;
using System.Runtime.InteropServices;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>One tensor a random checkpoint will hold.</summary>
public sealed record PlannedTensor(string Name, TensorDType DType, long[] Shape);

/// <summary>
/// Random-weight checkpoints in the real LDM single-file layout (<c>model.diffusion_model.*</c>,
/// <c>first_stage_model.*</c>, <c>cond_stage_model.transformer.text_model.*</c> with its position_ids, and the DDPM
/// buffers), for benchmarks and tests without the real 4 GB download. Names and shapes come from the engine's own
/// modules, so whatever loads into them loads from these files.
/// </summary>
public static class RandomModel
{
    public const string UNetPrefix = LdmPrefixes.Unet;
    public const string VaePrefix = LdmPrefixes.Vae;

    /// <summary>Random models are SD1-shaped: CLIP ViT-L where the registry's SD1 keeps it.</summary>
    public static string TextPrefix => ModelArchitectures.Sd1.TextEncoders[0].Prefix;

    /// <summary>Std of the biases: small, so layers start near their linear part without being exactly zero.</summary>
    private const double BiasStd = 0.01;

    /// <summary>
    /// Every tensor of the checkpoint, in writing order: U-Net, VAE, text encoder, position_ids (I64), DDPM buffers
    /// (F32). Module weights are stored as <paramref name="precision"/>.
    /// </summary>
    public static IReadOnlyList<PlannedTensor> Plan(RandomModelArchitecture arch, TensorDType precision = TensorDType.F16)
    {
        if (precision is not (TensorDType.F16 or TensorDType.BF16 or TensorDType.F32))
            throw new ArgumentException($"precision {precision}: the weights can be stored as F16, BF16 or F32");
        var plan = new List<PlannedTensor>();
        var meta = new LayerFactory(META, ScalarType.Float32);
        using (var unet = new UNetModel(arch.UNet, meta)) AddModule(plan, unet, UNetPrefix, precision);
        using (var vae = new AutoencoderKL(arch.Vae, meta)) AddModule(plan, vae, VaePrefix, precision);
        // ClipTextModel has no device argument: built on the CPU for its names and shapes only, then released.
        using (var clip = new ClipTextModel(arch.TextVocab, arch.TextWidth, arch.TextLayers, arch.TextHeads, arch.TextMlpWidth, arch.TextPositions))
            AddModule(plan, clip, TextPrefix, precision);
        plan.Add(new PlannedTensor(TextPrefix + ClipTextModel.PositionIdsKey, TensorDType.I64, new long[] { 1, arch.TextPositions }));
        foreach (var name in RandomModelSchedule.Names) plan.Add(new PlannedTensor(name, TensorDType.F32, new long[] { 1000 }));
        return plan;
    }

    private static void AddModule(List<PlannedTensor> plan, nn.Module module, string prefix, TensorDType precision)
    {
        foreach (var (name, tensor) in module.state_dict())
            plan.Add(new PlannedTensor(prefix + name, precision, tensor.shape));
    }

    /// <summary>
    /// Writes the checkpoint to <paramref name="path"/> (atomically), one tensor at a time: only the tensor being
    /// written is in memory. Weights ~ N(0, 1/fan_in), 1-D weights (norm scales) 1, biases ~ N(0, 0.01²), so
    /// activations stay finite through the whole network. The same seed gives the same file.
    /// </summary>
    /// <param name="progress">Cumulative tensor bytes written.</param>
    public static void Write(string path, RandomModelArchitecture arch, TensorDType precision = TensorDType.F16, long seed = 0,
        IProgress<long>? progress = null)
    {
        var plan = Plan(arch, precision);
        var buffers = RandomModelSchedule.Buffers();
        var generator = new Generator((ulong)seed);
        var metadata = new Dictionary<string, string>
        {
            ["sharpdiffusion.random_model"] = arch.Name,
            ["sharpdiffusion.seed"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var tensors = plan.Select(t => new TensorToWrite(t.Name, t.DType, t.Shape, stream =>
        {
            if (buffers.TryGetValue(t.Name, out var values)) stream.Write(MemoryMarshal.AsBytes(values.AsSpan()));
            else if (t.DType == TensorDType.I64) WritePositionIds(stream, t.Shape[^1]);
            else WriteRandom(stream, t, generator);
        }));
        SafetensorsWriter.Write(path, tensors, metadata, progress);
    }

    private static void WritePositionIds(Stream stream, long count)
    {
        var ids = new long[count];
        for (int i = 0; i < count; i++) ids[i] = i;
        stream.Write(MemoryMarshal.AsBytes(ids.AsSpan()));
    }

    private static void WriteRandom(Stream stream, PlannedTensor planned, Generator generator)
    {
        using var scope = NewDisposeScope();
        Tensor values;
        if (planned.Shape.Length >= 2)
        {
            long fanIn = planned.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            values = randn(planned.Shape, generator: generator).mul_(1.0 / Math.Sqrt(fanIn));
        }
        else if (planned.Name.EndsWith(".bias", StringComparison.Ordinal))
        {
            values = randn(planned.Shape, generator: generator).mul_(BiasStd);
        }
        else
        {
            values = ones(planned.Shape); // GroupNorm / LayerNorm scales
        }
        var stored = values.to(ToScalarType(planned.DType)).contiguous();
        stream.Write(stored.bytes);
    }

    private static ScalarType ToScalarType(TensorDType dtype) => dtype switch
    {
        TensorDType.F16 => ScalarType.Float16,
        TensorDType.BF16 => ScalarType.BFloat16,
        _ => ScalarType.Float32,
    };

    /// <summary>Parses fp16/bf16/fp32 (also f16, float16, ...) as a storage type.</summary>
    public static TensorDType ParsePrecision(string text) => text.ToLowerInvariant() switch
    {
        "fp16" or "f16" or "float16" or "half" => TensorDType.F16,
        "bf16" or "bfloat16" => TensorDType.BF16,
        "fp32" or "f32" or "float32" or "float" => TensorDType.F32,
        _ => throw new ArgumentException($"unknown precision '{text}': fp16, bf16 or fp32"),
    };
}
