using SharpDiffusion.Architectures;
using System.Globalization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// Textual-inversion embeddings in their four layouts: A1111 (<c>string_to_param.*</c>, metadata <c>name</c>,
/// <c>step</c>, <c>string_to_token.*</c>), <c>emb_params</c>, SDXL (<c>clip_l</c> [n,768] + <c>clip_g</c> [n,1280]) and
/// diffusers (one tensor named after its token, or <c>learned_embeds</c>). The vector width gives the family.
/// </summary>
internal static class EmbeddingDetector
{
    /// <summary>Token widths of the CLIP text encoders the families use (768, 1024, 1280).</summary>
    private static readonly int[] TokenWidths = [.. ModelArchitectures.Families.SelectMany(a => a.TextEncoders)
        .Where(e => e.Kind != TextEncoderKind.T5Xxl).Select(e => e.Width).Distinct()];

    public static bool TryDetect(TensorIndex index, ModelClassification result)
    {
        if (index.Count > 4) return false;
        var stringToParam = index.FirstWithPrefix("string_to_param.");
        var embParams = index.Get("emb_params");
        var clipL = index.Get("clip_l");
        var clipG = index.Get("clip_g");

        EmbeddingDetails details;
        var vectors = new List<TensorInfo>();
        if (stringToParam != null && IsVectorShape(stringToParam))
        {
            details = new EmbeddingDetails { Layout = "a1111" };
            vectors.Add(stringToParam);
            var placeholder = stringToParam.Name["string_to_param.".Length..];
            details.Token = index.Meta("name") ?? (placeholder != "*" ? placeholder : null);
            Evidence.Add(result, Evidence.Key(stringToParam, "A1111 textual-inversion vectors (string_to_param)"));
        }
        else if (embParams != null && IsVectorShape(embParams) && index.Count == 1)
        {
            details = new EmbeddingDetails { Layout = "emb_params", Token = index.Meta("name") };
            vectors.Add(embParams);
            Evidence.Add(result, Evidence.Key(embParams, "single emb_params tensor: textual-inversion vectors"));
        }
        else if ((clipL != null || clipG != null) && index.Tensors.All(t => t.Name is "clip_l" or "clip_g") && index.Tensors.All(IsVectorShape))
        {
            details = new EmbeddingDetails { Layout = "sdxl", Token = index.Meta("name") };
            if (clipL != null) vectors.Add(clipL);
            if (clipG != null) vectors.Add(clipG);
            foreach (var v in vectors) Evidence.Add(result, Evidence.Key(v, v.Name == "clip_l" ? "vectors for the CLIP-L encoder" : "vectors for the OpenCLIP bigG encoder"));
        }
        else if (index.Count <= 2 && index.Tensors.All(t => !t.Name.Contains('.') && IsVectorTable(t)))
        {
            var t = index.Tensors[0];
            details = new EmbeddingDetails { Layout = "diffusers" };
            vectors.AddRange(index.Tensors);
            details.Token = index.Meta("name") ?? (t.Name is "learned_embeds" or "emb_params" ? null : t.Name);
            Evidence.Add(result, Evidence.Key(t, "diffusers textual-inversion: one vector table keyed by its token"));
        }
        else
        {
            return false;
        }

        result.Kind = ModelKind.Embedding;
        result.Embedding = details;
        details.Vectors = (int)(vectors[0].Rank == 1 ? 1 : vectors[0].Shape[0]);
        foreach (var v in vectors) details.Dims.Add((int)v.Shape[^1]);
        if (long.TryParse(index.Meta("step"), NumberStyles.Integer, CultureInfo.InvariantCulture, out long step)) details.Step = step;

        // One vector table per text encoder: the family whose encoders have exactly these widths.
        var kinds = details.Dims.Select(TextEncoderKinds.ClipOfWidth).ToList();
        var families = kinds.All(k => k != null)
            ? ModelArchitectures.Families.Where(a => a.TextEncoders.Select(e => e.Kind).Order().SequenceEqual(kinds.Select(k => k!.Value).Order()))
                .Select(a => a.Family).ToList()
            : [];
        if (families is [var family])
        {
            result.Base = family;
            Evidence.Add(result, string.Join(" + ", details.Dims) + "-wide vectors: the token space of "
                + string.Join(" + ", kinds.Select(k => k!.Value.DisplayName())) + $" ({family.DisplayName()})");
        }
        else
        {
            Evidence.Add(result, "vector width " + string.Join("+", details.Dims) + " matches no single family");
        }
        return true;
    }

    private static bool IsVectorTable(TensorInfo t) => IsVectorShape(t) && TokenWidths.Contains((int)t.Shape[^1]);

    /// <summary>
    /// Float [n, W] or [W]. The named layouts (<c>string_to_param</c>, <c>emb_params</c>, <c>clip_l</c>/<c>clip_g</c>) need no known width: their
    /// keys say what they are, and embeddings trained on small test models have small widths (the family stays open).
    /// </summary>
    private static bool IsVectorShape(TensorInfo t) => t.DType.IsFloatingPoint()
        && (t.Rank == 2 || t.Rank == 1) && (t.Rank == 1 || t.Shape[0] is >= 1 and <= 512);
}
