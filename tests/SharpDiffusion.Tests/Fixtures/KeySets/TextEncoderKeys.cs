using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>
/// Text-encoder keys in both layouts SD files use: Hugging Face <c>CLIPTextModel</c> names (SD1 checkpoints,
/// diffusers, SDXL's first encoder) and OpenCLIP names (SD2's ViT-H, SDXL's bigG in single files).
/// </summary>
public static class TextEncoderKeys
{
    public const int Vocabulary = 49408;
    public const int Positions = 77;

    /// <summary>HF CLIP text model under <paramref name="prefix"/> (e.g. "cond_stage_model.transformer.text_model.").</summary>
    public static List<KeyEntry> HuggingFaceClip(string prefix, int layers, int width, TensorDType dtype = TensorDType.F32, bool positionIds = true)
    {
        var keys = new List<KeyEntry>();
        void Add(string name, params long[] shape) => keys.Add(new KeyEntry(prefix + name, dtype, shape));
        if (positionIds) keys.Add(new KeyEntry(prefix + "embeddings.position_ids", TensorDType.I64, new long[] { 1, Positions }));
        Add("embeddings.token_embedding.weight", Vocabulary, width);
        Add("embeddings.position_embedding.weight", Positions, width);
        for (int i = 0; i < layers; i++)
        {
            var l = $"encoder.layers.{i}.";
            foreach (var proj in new[] { "k_proj", "v_proj", "q_proj", "out_proj" })
            {
                Add(l + "self_attn." + proj + ".weight", width, width);
                Add(l + "self_attn." + proj + ".bias", width);
            }
            Add(l + "layer_norm1.weight", width);
            Add(l + "layer_norm1.bias", width);
            Add(l + "mlp.fc1.weight", width * 4, width);
            Add(l + "mlp.fc1.bias", width * 4);
            Add(l + "mlp.fc2.weight", width, width * 4);
            Add(l + "mlp.fc2.bias", width);
            Add(l + "layer_norm2.weight", width);
            Add(l + "layer_norm2.bias", width);
        }
        Add("final_layer_norm.weight", width);
        Add("final_layer_norm.bias", width);
        return keys;
    }

    /// <summary>CLIP ViT-L/14 text tower (SD1): 12 layers, width 768.</summary>
    public static List<KeyEntry> ClipL(string prefix, TensorDType dtype = TensorDType.F32) => HuggingFaceClip(prefix, 12, 768, dtype);

    /// <summary>OpenCLIP text tower under <paramref name="prefix"/> (e.g. "cond_stage_model.model.").</summary>
    public static List<KeyEntry> OpenClip(string prefix, int layers, int width, TensorDType dtype = TensorDType.F32)
    {
        var keys = new List<KeyEntry>();
        void Add(string name, params long[] shape) => keys.Add(new KeyEntry(prefix + name, dtype, shape));
        Add("positional_embedding", Positions, width);
        Add("text_projection", width, width);
        Add("logit_scale");
        Add("token_embedding.weight", Vocabulary, width);
        Add("ln_final.weight", width);
        Add("ln_final.bias", width);
        for (int i = 0; i < layers; i++)
        {
            var l = $"transformer.resblocks.{i}.";
            Add(l + "ln_1.weight", width);
            Add(l + "ln_1.bias", width);
            Add(l + "attn.in_proj_weight", width * 3, width);
            Add(l + "attn.in_proj_bias", width * 3);
            Add(l + "attn.out_proj.weight", width, width);
            Add(l + "attn.out_proj.bias", width);
            Add(l + "ln_2.weight", width);
            Add(l + "ln_2.bias", width);
            Add(l + "mlp.c_fc.weight", width * 4, width);
            Add(l + "mlp.c_fc.bias", width * 4);
            Add(l + "mlp.c_proj.weight", width, width * 4);
            Add(l + "mlp.c_proj.bias", width);
        }
        return keys;
    }

    /// <summary>OpenCLIP ViT-H/14 text tower (SD2): 24 layers, width 1024.</summary>
    public static List<KeyEntry> OpenClipH(string prefix, TensorDType dtype = TensorDType.F32) => OpenClip(prefix, 24, 1024, dtype);

    /// <summary>OpenCLIP ViT-bigG/14 text tower (SDXL): 32 layers, width 1280, with text_projection.</summary>
    public static List<KeyEntry> OpenClipBigG(string prefix, TensorDType dtype = TensorDType.F32) => OpenClip(prefix, 32, 1280, dtype);
}
