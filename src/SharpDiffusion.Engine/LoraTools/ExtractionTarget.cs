namespace SharpDiffusion.Engine.LoraTools;

/// <summary>One layer a LoRA is extracted for.</summary>
/// <param name="ModuleName">kohya LoRANetwork name, e.g. <c>lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q</c>.</param>
/// <param name="WeightKey">The checkpoint's weight key, e.g. <c>model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight</c>.</param>
/// <param name="IsTextEncoder">A text-encoder layer (kept only when the text encoders differ by more than --min-diff).</param>
/// <param name="IsConv3x3">A convolution with a kernel larger than 1x1 (uses --conv-rank).</param>
public sealed record ExtractionTarget(string ModuleName, string WeightKey, bool IsTextEncoder, bool IsConv3x3);
