using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Previews;

/// <summary>
/// TAESD (madebyollin/taesd), the tiny conv-only autoencoder A1111 uses for live previews and its fast "TAESD"
/// decode. The published files (<c>taesd_decoder.pth</c>, <c>taesdxl_decoder.pth</c>, <c>.safetensors</c> copies) are
/// <c>nn.Sequential</c> state dicts, so the weights are addressed by layer index. Runs in float32 (its 3-channel output
/// convolution is one libtorch's CPU bf16 kernels get wrong).
/// </summary>
public sealed class Taesd : IDisposable
{
    private enum Op { Clamp, Conv, StridedConv, Relu, Block, Upsample }

    /// <summary>taesd.py <c>Decoder</c>: Clamp, conv, ReLU, 3 Blocks, 3 × [upsample, conv, Blocks (3, 3, 1)], conv.</summary>
    private static readonly (Op Op, int Index)[] DecoderLayers =
    {
        (Op.Clamp, 0), (Op.Conv, 1), (Op.Relu, 2), (Op.Block, 3), (Op.Block, 4), (Op.Block, 5),
        (Op.Upsample, 6), (Op.Conv, 7), (Op.Block, 8), (Op.Block, 9), (Op.Block, 10),
        (Op.Upsample, 11), (Op.Conv, 12), (Op.Block, 13), (Op.Block, 14), (Op.Block, 15),
        (Op.Upsample, 16), (Op.Conv, 17), (Op.Block, 18), (Op.Conv, 19),
    };

    /// <summary>taesd.py <c>Encoder</c>: conv, Block, 3 × [stride-2 conv, 3 Blocks], conv.</summary>
    private static readonly (Op Op, int Index)[] EncoderLayers =
    {
        (Op.Conv, 0), (Op.Block, 1), (Op.StridedConv, 2), (Op.Block, 3), (Op.Block, 4), (Op.Block, 5),
        (Op.StridedConv, 6), (Op.Block, 7), (Op.Block, 8), (Op.Block, 9),
        (Op.StridedConv, 10), (Op.Block, 11), (Op.Block, 12), (Op.Block, 13), (Op.Conv, 14),
    };

    private readonly Dictionary<string, Tensor> weights;
    private readonly (Op Op, int Index)[] layers;

    private Taesd(Dictionary<string, Tensor> weights, bool decoder, int latentChannels)
    {
        this.weights = weights;
        layers = decoder ? DecoderLayers : EncoderLayers;
        IsDecoder = decoder;
        LatentChannels = latentChannels;
    }

    /// <summary>The decoder's three nearest-neighbour ×2 upsamplings: images are 8× the latent size.</summary>
    public const int UpsampleFactor = 8;

    public bool IsDecoder { get; }

    /// <summary>4 for SD1/SD2/SDXL TAESD (16 for SD3/FLUX variants).</summary>
    public int LatentChannels { get; }

    /// <summary>
    /// Loads a TAESD decoder or encoder (told apart by its layout: the decoder's first conv is layer 1, the encoder's
    /// layer 0), through <see cref="ModelFileReader"/> (pickles go through the safe unpickler).
    /// </summary>
    public static Taesd Load(string path)
    {
        using var file = ModelFileReader.Open(path);
        var byName = file.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        bool decoder = byName.ContainsKey("1.weight") && byName.ContainsKey("19.weight");
        bool encoder = byName.ContainsKey("0.weight") && byName.ContainsKey("14.weight");
        if (!decoder && !encoder)
            throw new InvalidModelFileException(path, "not a TAESD decoder or encoder (expected nn.Sequential keys 1.weight … 19.weight or 0.weight … 14.weight)");
        var expected = ExpectedKeys(decoder ? DecoderLayers : EncoderLayers, byName);
        var missing = expected.Where(k => !byName.ContainsKey(k)).ToArray();
        if (missing.Length > 0) throw new InvalidModelFileException(path, $"TAESD {(decoder ? "decoder" : "encoder")} is missing {string.Join(", ", missing.Take(5))}");
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var key in expected) weights[key] = TensorReading.Read(file, byName[key], ScalarType.Float32);
        }
        catch
        {
            foreach (var w in weights.Values) w.Dispose();
            throw;
        }
        int latentChannels = (int)(decoder ? weights["1.weight"].shape[1] : weights["14.weight"].shape[0]);
        return new Taesd(weights, decoder, latentChannels);
    }

    private static List<string> ExpectedKeys((Op Op, int Index)[] layers, Dictionary<string, TensorInfo> present)
    {
        var keys = new List<string>();
        foreach (var (op, index) in layers)
        {
            switch (op)
            {
                case Op.Conv:
                    keys.Add($"{index}.weight");
                    if (present.ContainsKey($"{index}.bias")) keys.Add($"{index}.bias");
                    break;
                case Op.StridedConv:
                    keys.Add($"{index}.weight");
                    break;
                case Op.Block:
                    foreach (int c in new[] { 0, 2, 4 }) keys.AddRange(new[] { $"{index}.conv.{c}.weight", $"{index}.conv.{c}.bias" });
                    if (present.ContainsKey($"{index}.skip.weight")) keys.Add($"{index}.skip.weight");
                    break;
            }
        }
        return keys;
    }

    /// <summary>Decoder: scaled latents (as the sampler holds them) → image in about [0, 1]; encoder: image in [0, 1] → latents.</summary>
    public Tensor Forward(Tensor input)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = input.to(ScalarType.Float32);
        foreach (var (op, index) in layers)
        {
            x = op switch
            {
                Op.Clamp => (x / 3).tanh() * 3,
                Op.Conv => Convolution(x, index, 1),
                Op.StridedConv => Convolution(x, index, 2),
                Op.Relu => nn.functional.relu(x),
                Op.Upsample => nn.functional.interpolate(x, scale_factor: new[] { 2.0, 2.0 }, mode: InterpolationMode.Nearest),
                _ => Block(x, index),
            };
        }
        return x.MoveToOuterDisposeScope();
    }

    private Tensor Convolution(Tensor x, int index, long stride)
    {
        weights.TryGetValue($"{index}.bias", out var bias);
        return nn.functional.conv2d(x, weights[$"{index}.weight"], bias, strides: new[] { stride, stride }, padding: new long[] { 1, 1 });
    }

    /// <summary>taesd.py <c>Block</c>: ReLU(conv → ReLU → conv → ReLU → conv, plus a 1×1 skip when the widths differ).</summary>
    private Tensor Block(Tensor x, int index)
    {
        var h = nn.functional.relu(Convolution(x, index, $"conv.0"));
        h = nn.functional.relu(Convolution(h, index, $"conv.2"));
        h = Convolution(h, index, $"conv.4");
        var skip = weights.TryGetValue($"{index}.skip.weight", out var s) ? nn.functional.conv2d(x, s) : x;
        return nn.functional.relu(h + skip);
    }

    private Tensor Convolution(Tensor x, int index, string layer) =>
        nn.functional.conv2d(x, weights[$"{index}.{layer}.weight"], weights[$"{index}.{layer}.bias"], padding: new long[] { 1, 1 });

    public void Dispose()
    {
        foreach (var w in weights.Values) w.Dispose();
    }
}
