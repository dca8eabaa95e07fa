namespace SharpDiffusion.Conversion;

/// <summary>The kind of weight change a network module stores (kohya / LyCORIS / diffusers naming of its tensors).</summary>
public enum NetworkAlgorithm
{
    /// <summary>Low-rank up @ down (LoRA, LoCon, LoCon with CP/Tucker <c>lora_mid</c>, PEFT <c>lora_A/lora_B</c>).</summary>
    LoRA,

    /// <summary>Hadamard product of two low-rank products (<c>hada_w1_a</c> ...), optionally Tucker (<c>hada_t1/t2</c>).</summary>
    LoHa,

    /// <summary>Kronecker product (<c>lokr_w1</c>, <c>lokr_w2</c> or their low-rank factors).</summary>
    LoKr,

    /// <summary>(IA)^3: rows (or, <c>on_input</c>, columns) of the weight scaled by 1 + w.</summary>
    IA3,

    /// <summary>Full weight difference (<c>diff</c>, <c>diff_b</c>).</summary>
    Full,

    /// <summary>Norm-layer difference (<c>w_norm</c>, <c>b_norm</c>).</summary>
    Norm,

    /// <summary>Generalised LoRA (<c>a1</c>, <c>a2</c>, <c>b1</c>, <c>b2</c>): W + W·A + B.</summary>
    GLoRA,
}
