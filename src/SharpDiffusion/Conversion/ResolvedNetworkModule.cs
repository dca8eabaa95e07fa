namespace SharpDiffusion.Conversion;

/// <summary>One module of a network file matched to the model weight it changes.</summary>
/// <param name="Name">The module's name in the network file (its keys minus the tensor suffix), e.g. <c>lora_unet_down_blocks_0_attentions_0_proj_in</c>.</param>
/// <param name="Target">The model weight (and bias) it changes.</param>
/// <param name="Algorithm">How its tensors combine into a weight change.</param>
/// <param name="Tensors">
/// Canonical tensor role (LyCORIS/kohya spelling: <c>lora_up.weight</c>, <c>lora_down.weight</c>, <c>lora_mid.weight</c>, <c>alpha</c>,
/// <c>dora_scale</c>, <c>hada_w1_a</c>..., <c>lokr_w1</c>..., <c>weight</c>, <c>on_input</c>, <c>diff</c>, <c>diff_b</c>, <c>w_norm</c>,
/// <c>b_norm</c>, <c>a1.weight</c>...) to the tensor's key in the network file, whatever naming style the file uses.
/// </param>
public sealed record ResolvedNetworkModule(string Name, NetworkTarget Target, NetworkAlgorithm Algorithm, IReadOnlyDictionary<string, string> Tensors);
