namespace SharpDiffusion.Engine.Embeddings;

/// <summary>How a textual-inversion file stores its vectors (the layouts A1111's <c>load_from_file</c> accepts).</summary>
public enum EmbeddingLayout
{
    /// <summary>A1111 / original textual inversion: <c>string_to_param.*</c> [n, C] plus <c>name</c>, <c>step</c>, ...</summary>
    StringToParam,

    /// <summary>One tensor under any name: diffusers' <c>learned_embeds.bin</c> (<c>&lt;token&gt;</c> → [C] or [1, C]) or kohya's <c>emb_params</c> [n, C].</summary>
    SingleTensor,

    /// <summary>SDXL: <c>clip_l</c> [n, 768] and <c>clip_g</c> [n, 1280], one set per text encoder.</summary>
    Sdxl,
}
