namespace SharpDiffusion.Conversion;

/// <summary>
/// One tensor name in the single-file (LDM) layout and its counterpart in a diffusers folder component.
/// </summary>
/// <param name="LdmKey">Full single-file key, e.g. <c>model.diffusion_model.input_blocks.1.0.in_layers.0.weight</c>.</param>
/// <param name="Component">Diffusers component folder: <c>unet</c>, <c>vae</c>, <c>text_encoder</c>, <c>text_encoder_2</c>.</param>
/// <param name="DiffusersKey">Key inside that component, e.g. <c>down_blocks.0.resnets.0.norm1.weight</c>.</param>
/// <param name="Transform">What happens to the tensor on the way (reshape, slice, transpose).</param>
/// <param name="SliceIndex">For <see cref="TensorTransform.RowSlice"/>: which row block (0 = q, 1 = k, 2 = v).</param>
/// <param name="SliceCount">For <see cref="TensorTransform.RowSlice"/>: how many equal row blocks the LDM tensor holds.</param>
public sealed record KeyCorrespondence(
    string LdmKey,
    string Component,
    string DiffusersKey,
    TensorTransform Transform = TensorTransform.None,
    int SliceIndex = 0,
    int SliceCount = 1)
{
    /// <summary>The diffusers-folder tensor name (<c>component/key</c>), as the diffusers folder reader exposes it.</summary>
    public string FolderTensorName => Component + "/" + DiffusersKey;

    /// <summary>
    /// The diffusers shape of this key given the LDM tensor's shape; null when the shape does not fit the transform.
    /// (Conv1x1ToLinear and RowSlice keep the bytes' order: a reshape, or a contiguous block of rows.)
    /// </summary>
    public long[]? DiffusersShapeFromLdm(long[] ldmShape) => Transform switch
    {
        TensorTransform.None => ldmShape,
        TensorTransform.Conv1x1ToLinear when ldmShape is [var o, var i, 1, 1] => [o, i],
        TensorTransform.Transpose when ldmShape.Length == 2 => [ldmShape[1], ldmShape[0]],
        TensorTransform.RowSlice when ldmShape.Length >= 1 && ldmShape[0] % SliceCount == 0 =>
            [ldmShape[0] / SliceCount, .. ldmShape[1..]],
        _ => null,
    };

    /// <summary>The LDM shape this diffusers shape corresponds to (for checks); null when it cannot be told from one part.</summary>
    public long[]? LdmShapeFromDiffusers(long[] diffusersShape) => Transform switch
    {
        TensorTransform.None => diffusersShape,
        TensorTransform.Conv1x1ToLinear when diffusersShape.Length == 2 => [diffusersShape[0], diffusersShape[1], 1, 1],
        TensorTransform.Transpose when diffusersShape.Length == 2 => [diffusersShape[1], diffusersShape[0]],
        TensorTransform.RowSlice when diffusersShape.Length >= 1 =>
            [diffusersShape[0] * SliceCount, .. diffusersShape[1..]],
        _ => null,
    };
}
