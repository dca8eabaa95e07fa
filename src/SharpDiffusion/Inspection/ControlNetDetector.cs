namespace SharpDiffusion.Inspection;

/// <summary>
/// ControlNets (LDM <c>control_model.input_hint_block</c> / <c>zero_convs</c> / <c>middle_block_out</c>, diffusers
/// <c>controlnet_cond_embedding</c> / <c>controlnet_down_blocks</c>) and T2I-Adapters (<c>body.N.block1</c>).
/// A ControlNet copies the U-Net encoder, so the U-Net signals (context width, ADM input) give its family.
/// </summary>
internal static class ControlNetDetector
{
    public static bool TryDetect(TensorIndex index, ModelClassification result)
    {
        foreach (var prefix in new[] { "control_model.", "" })
        {
            var hint = index.FirstWithPrefix(prefix + "input_hint_block.");
            if (hint == null || !(index.AnyWithPrefix(prefix + "zero_convs.") || index.AnyWithPrefix(prefix + "middle_block_out."))) continue;
            result.Kind = ModelKind.ControlNet;
            Evidence.Add(result, Evidence.Key(hint, "ControlNet hint encoder (input_hint_block) with zero convolutions"));
            ApplyFamily(index, result, prefix);
            return true;
        }

        var cond = index.FirstWithPrefix("controlnet_cond_embedding.");
        if (cond != null && index.AnyWithPrefix("controlnet_down_blocks."))
        {
            result.Kind = ModelKind.ControlNet;
            Evidence.Add(result, Evidence.Key(cond, "diffusers ControlNet conditioning embedding"));
            ApplyFamily(index, result, "");
            return true;
        }

        var adapter = index.FirstEndingWith("body.0.block1.weight") ?? index.FirstEndingWith("body.0.resnets.0.block1.weight");
        if (adapter != null)
        {
            var convIn = index.Get("conv_in.weight") ?? index.Get("adapter.conv_in.weight");
            result.Kind = ModelKind.ControlNet;
            result.Variant = "t2i-adapter";
            Evidence.Add(result, Evidence.Key(adapter, "T2I-Adapter residual block"));
            if (convIn is { Rank: 4 })
            {
                // Adapters pixel-unshuffle the RGB hint: 8x8 (192 channels) for SD1/SD2, 16x16 (768) for SDXL.
                if (convIn.Shape[1] == 768)
                {
                    result.Base = BaseFamily.SDXL;
                    Evidence.Add(result, Evidence.Key(convIn, "16x16 pixel-unshuffled RGB hint (SDXL adapter)"));
                }
                else
                {
                    result.CompatibleBases.AddRange(new[] { BaseFamily.SD1, BaseFamily.SD2 });
                    Evidence.Add(result, Evidence.Key(convIn, "8x8 pixel-unshuffled hint: SD1/SD2 adapter (the weights cannot tell which)"));
                }
            }
            return true;
        }
        return false;
    }

    private static void ApplyFamily(TensorIndex index, ModelClassification result, string prefix)
    {
        var facts = UnetFamilyDetector.Detect(index, prefix);
        result.Base = facts.Base;
        result.InputChannels = facts.InputChannels;
        foreach (var line in facts.Evidence) Evidence.Add(result, line);
    }
}
