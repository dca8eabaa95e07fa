using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.LoraTools;

/// <summary>The tiny SD1 checkpoint, fine-tuned copies of it with known low-rank changes, and small LoRA files.</summary>
internal static class LoraToolsFixtures
{
    public static string TinySd1 => TestPaths.GoldenFile("tiny_sd1.safetensors");

    public const string Unet = "model.diffusion_model.";
    public const string TextEncoder = "cond_stage_model.transformer.text_model.encoder.layers.";

    /// <summary>The four transformer blocks of the tiny U-Net (LDM prefixes) and their diffusers names.</summary>
    public static readonly (string Ldm, string Diffusers)[] Transformers =
    [
        ("input_blocks.3.1", "down_blocks_1_attentions_0"),
        ("middle_block.1", "mid_block_attentions_0"),
        ("output_blocks.0.1", "up_blocks_0_attentions_0"),
        ("output_blocks.1.1", "up_blocks_0_attentions_1"),
    ];

    public static readonly string[] TransformerLayers =
    [
        "proj_in", "proj_out",
        "transformer_blocks.0.attn1.to_q", "transformer_blocks.0.attn1.to_k", "transformer_blocks.0.attn1.to_v", "transformer_blocks.0.attn1.to_out.0",
        "transformer_blocks.0.attn2.to_q", "transformer_blocks.0.attn2.to_k", "transformer_blocks.0.attn2.to_v", "transformer_blocks.0.attn2.to_out.0",
        "transformer_blocks.0.ff.net.0.proj", "transformer_blocks.0.ff.net.2",
    ];

    public static readonly string[] TextEncoderLayers = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"];

    /// <summary>A random change of exactly <paramref name="rank"/> shaped like <paramref name="shape"/> (conv: rank of the [out, in*k*k] matrix).</summary>
    public static Tensor LowRankChange(long[] shape, int rank, double magnitude, Generator generator)
    {
        long outDim = shape[0], flatIn = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        using var a = randn(outDim, rank, generator: generator);
        using var b = randn(rank, flatIn, generator: generator);
        using var product = a.mm(b);
        return (product * (magnitude / Math.Sqrt(rank))).reshape(shape);
    }

    /// <summary>Writes a copy of <paramref name="basePath"/> where each listed weight has its change added (float32).</summary>
    public static void WriteTuned(string basePath, string outputPath, IReadOnlyDictionary<string, Tensor> changes)
    {
        using var file = ModelFileReader.Open(basePath);
        SafetensorsWriter.Write(outputPath, file.Tensors.Select(info =>
        {
            if (!changes.TryGetValue(info.Name, out var change)) return TensorToWrite.FromModelFile(file, info);
            return new TensorToWrite(info.Name, TensorDType.F32, info.Shape, stream =>
            {
                using var weight = TensorReading.Read(file, info, ScalarType.Float32);
                using var tuned = (weight + change).contiguous();
                stream.Write(DTypeConversion.FromSingle(tuned.data<float>().ToArray(), TensorDType.F32));
            });
        }).ToList());
    }

    /// <summary>Writes F32 tensors (0-d allowed) to a safetensors file.</summary>
    public static void WriteTensors(string path, IEnumerable<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        SafetensorsWriter.Write(path, tensors.Select(t => new TensorToWrite(t.Name, TensorDType.F32, t.Value.shape, stream =>
        {
            using var c = t.Value.to(ScalarType.Float32).contiguous();
            stream.Write(DTypeConversion.FromSingle(c.data<float>().ToArray(), TensorDType.F32));
        })).ToList(), metadata);
    }

    /// <summary>All tensors of a file as float32, by name (floating tensors only).</summary>
    public static Dictionary<string, Tensor> ReadAll(IModelFile file) =>
        file.Tensors.Where(t => t.DType.IsFloatingPoint()).ToDictionary(t => t.Name, t => TensorReading.Read(file, t, ScalarType.Float32), StringComparer.Ordinal);

    public static double MaxAbs(Tensor a, Tensor b)
    {
        using var d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return d.item<double>();
    }
}
