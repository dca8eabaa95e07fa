namespace SharpDiffusion.Conversion;

/// <summary>
/// OpenCLIP text tower names (SD 2.x <c>cond_stage_model.model.</c>, SDXL <c>conditioner.embedders.1.model.</c>) to the
/// transformers CLIPTextModel names a diffusers folder uses, and back. Keys here are without the checkpoint prefix.
/// OpenCLIP keeps q, k and v in one <c>in_proj_weight</c>; transformers splits them, so that key has three counterparts.
/// </summary>
public static class OpenClipKeyNames
{
    private static readonly string[] QkvNames = ["q_proj", "k_proj", "v_proj"];

    private static readonly (string OpenClip, string Hf)[] LayerParts =
    [
        ("ln_1", "layer_norm1"),
        ("ln_2", "layer_norm2"),
        ("attn.out_proj", "self_attn.out_proj"),
        ("mlp.c_fc", "mlp.fc1"),
        ("mlp.c_proj", "mlp.fc2"),
    ];

    /// <summary>One HF counterpart of an OpenCLIP key.</summary>
    public readonly record struct Counterpart(string Key, TensorTransform Transform, int SliceIndex = 0, int SliceCount = 1);

    /// <summary>The HF CLIP keys for an OpenCLIP key (three for <c>in_proj_*</c>, none when there is no counterpart).</summary>
    /// <param name="withProjection">Whether the HF model has <c>text_projection</c> (CLIPTextModelWithProjection, SDXL's second encoder).</param>
    public static IReadOnlyList<Counterpart> ToHf(string key, bool withProjection)
    {
        switch (key)
        {
            case "token_embedding.weight": return [new("text_model.embeddings.token_embedding.weight", TensorTransform.None)];
            case "positional_embedding": return [new("text_model.embeddings.position_embedding.weight", TensorTransform.None)];
            case "ln_final.weight": return [new("text_model.final_layer_norm.weight", TensorTransform.None)];
            case "ln_final.bias": return [new("text_model.final_layer_norm.bias", TensorTransform.None)];
            case "text_projection": return withProjection ? [new("text_projection.weight", TensorTransform.Transpose)] : [];
        }
        const string blocks = "transformer.resblocks.";
        if (!key.StartsWith(blocks, StringComparison.Ordinal)) return [];
        var rest = key[blocks.Length..];
        int dot = rest.IndexOf('.');
        if (dot <= 0 || !UnetLayout.TryIndex(rest[..dot], out int layer)) return [];
        var part = rest[(dot + 1)..];
        string head = $"text_model.encoder.layers.{layer}.";
        if (part is "attn.in_proj_weight" or "attn.in_proj_bias")
        {
            string tail = part.EndsWith("weight", StringComparison.Ordinal) ? "weight" : "bias";
            return [.. QkvNames.Select((name, i) => new Counterpart($"{head}self_attn.{name}.{tail}", TensorTransform.RowSlice, i, 3))];
        }
        foreach (var (open, hf) in LayerParts)
        {
            if (part == open + ".weight" || part == open + ".bias") return [new(head + hf + part[open.Length..], TensorTransform.None)];
        }
        return [];
    }

    /// <summary>The OpenCLIP key (and the slice of it) for an HF CLIP key; null when it has no counterpart.</summary>
    public static Counterpart? ToOpenClip(string hfKey, bool withProjection)
    {
        switch (hfKey)
        {
            case "text_model.embeddings.token_embedding.weight": return new("token_embedding.weight", TensorTransform.None);
            case "text_model.embeddings.position_embedding.weight": return new("positional_embedding", TensorTransform.None);
            case "text_model.final_layer_norm.weight": return new("ln_final.weight", TensorTransform.None);
            case "text_model.final_layer_norm.bias": return new("ln_final.bias", TensorTransform.None);
            case "text_projection.weight": return withProjection ? new("text_projection", TensorTransform.Transpose) : null;
        }
        const string layers = "text_model.encoder.layers.";
        if (!hfKey.StartsWith(layers, StringComparison.Ordinal)) return null;
        var rest = hfKey[layers.Length..];
        int dot = rest.IndexOf('.');
        if (dot <= 0 || !UnetLayout.TryIndex(rest[..dot], out int layer)) return null;
        var part = rest[(dot + 1)..];
        string head = $"transformer.resblocks.{layer}.";
        for (int i = 0; i < QkvNames.Length; i++)
        {
            string module = "self_attn." + QkvNames[i];
            if (part == module + ".weight") return new(head + "attn.in_proj_weight", TensorTransform.RowSlice, i, 3);
            if (part == module + ".bias") return new(head + "attn.in_proj_bias", TensorTransform.RowSlice, i, 3);
        }
        foreach (var (open, hf) in LayerParts)
        {
            if (part == hf + ".weight" || part == hf + ".bias") return new(head + open + part[hf.Length..], TensorTransform.None);
        }
        return null;
    }
}
