namespace SharpDiffusion.Conversion;

/// <summary>Which names diffusers uses for the VAE mid-block attention projections.</summary>
public enum VaeAttentionNames
{
    /// <summary>diffusers 0.14+: <c>to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>.</summary>
    Modern,

    /// <summary>Older exports: <c>query</c>, <c>key</c>, <c>value</c>, <c>proj_attn</c>.</summary>
    Legacy,
}
