namespace SharpDiffusion.Conversion;

/// <summary>How a tensor changes when its key moves between the single-file (LDM) and the diffusers layout.</summary>
public enum TensorTransform
{
    /// <summary>Same values, same shape.</summary>
    None,

    /// <summary>LDM stores a 1x1 convolution [C_out, C_in, 1, 1]; diffusers a Linear [C_out, C_in] (VAE mid attention).</summary>
    Conv1x1ToLinear,

    /// <summary>
    /// LDM holds q, k and v stacked along dim 0 in one tensor (OpenCLIP <c>in_proj_weight</c>/<c>in_proj_bias</c>);
    /// the diffusers key is the part <see cref="KeyCorrespondence.SliceIndex"/> of <see cref="KeyCorrespondence.SliceCount"/> equal row blocks.
    /// </summary>
    RowSlice,

    /// <summary>LDM holds a matrix used as x @ P (OpenCLIP <c>text_projection</c>); diffusers a Linear weight P^T.</summary>
    Transpose,
}
