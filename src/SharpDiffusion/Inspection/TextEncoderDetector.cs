using SharpDiffusion.Architectures;
using System.Globalization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>One text encoder found in a file: what it is, how wide and deep, and the key that showed it.</summary>
internal sealed record TextEncoderFacts(string Prefix, TextEncoderKind? Kind, int Width, int Layers, TensorInfo Key)
{
    /// <summary>"CLIP ViT-L", "OpenCLIP ViT-H", ...; "CLIP" for a CLIP of non-standard width.</summary>
    public string Architecture => Kind?.DisplayName() ?? "CLIP";

    public string Describe() => Evidence.Key(Key, $"{Architecture} text encoder, width {Width}, {Layers} layers");
}

/// <summary>
/// Recognises text encoders by layout: Hugging Face CLIP names (<c>text_model.encoder.layers.N.*</c>, used by SD1
/// checkpoints and diffusers), OpenCLIP names (<c>transformer.resblocks.N.*</c>, SD2 and SDXL's bigG) and T5
/// (<c>encoder.block.N.*</c>, SD3/Flux). The width tells them apart: 768 CLIP ViT-L, 1024 OpenCLIP ViT-H, 1280 bigG.
/// </summary>
internal static class TextEncoderDetector
{
    /// <summary>The text encoder whose weights start at <paramref name="prefix"/>, or null.</summary>
    public static TextEncoderFacts? At(TensorIndex index, string prefix)
    {
        foreach (var root in new[] { prefix + "text_model.", prefix })
        {
            var token = index.Get(root + "embeddings.token_embedding.weight");
            if (token is { Rank: 2 })
            {
                int width = (int)token.Shape[1];
                int layers = CountIndexed(index, root + "encoder.layers.");
                return new TextEncoderFacts(prefix, TextEncoderKinds.ClipOfWidth(width), width, layers, token);
            }
        }

        var openClipToken = index.Get(prefix + "token_embedding.weight");
        if (openClipToken is { Rank: 2 } && index.AnyWithPrefix(prefix + "transformer.resblocks."))
        {
            int width = (int)openClipToken.Shape[1];
            int layers = CountIndexed(index, prefix + "transformer.resblocks.");
            return new TextEncoderFacts(prefix, TextEncoderKinds.ClipOfWidth(width), width, layers, openClipToken);
        }

        foreach (var root in new[] { prefix + "transformer.", prefix })
        {
            var t5Block = index.Get(root + "encoder.block.0.layer.0.SelfAttention.q.weight");
            if (t5Block is { Rank: 2 })
            {
                int layers = CountIndexed(index, root + "encoder.block.");
                return new TextEncoderFacts(prefix, TextEncoderKind.T5Xxl, (int)t5Block.Shape[1], layers, t5Block);
            }
        }
        return null;
    }

    /// <summary>Number of numbered children under <paramref name="prefix"/> (max index + 1).</summary>
    public static int CountIndexed(TensorIndex index, string prefix)
    {
        int max = -1;
        foreach (var t in index.Tensors)
        {
            var name = t.Name;
            if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            int end = name.IndexOf('.', prefix.Length);
            if (end < 0) continue;
            if (int.TryParse(name.AsSpan(prefix.Length, end - prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int i) && i > max)
            {
                max = i;
            }
        }
        return max + 1;
    }

    /// <summary>What text encoders alone say about the family: exact for pairs or ViT-H, a compatible set otherwise.</summary>
    public static (BaseFamily? Base, List<BaseFamily> Compatible) FamilyOf(IReadOnlyList<TextEncoderFacts> encoders)
    {
        var (family, compatible) = ModelArchitectures.FamilyOfTextEncoders(encoders.Where(e => e.Kind != null).Select(e => e.Kind!.Value).ToList());
        return (family, compatible.ToList());
    }
}
