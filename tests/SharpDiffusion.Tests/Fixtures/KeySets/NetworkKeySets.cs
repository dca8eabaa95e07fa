using System.Globalization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>
/// Small add-on files: textual-inversion embeddings (A1111, emb_params, SDXL, diffusers), A1111 hypernetworks
/// (current and first-version layouts, built the way <c>HypernetworkModule</c> stacks its layers), ControlNets
/// (LDM and diffusers) and ESRGAN / Real-ESRGAN upscalers.
/// </summary>
public static class NetworkKeySets
{
    public static KeySet A1111Embedding(int vectors, int width, string name = "my-style", long step = 3000) =>
        new KeySet().Add("string_to_param.*", TensorDType.F32, vectors, width)
            .WithMetadata("name", name).WithMetadata("step", step.ToString(CultureInfo.InvariantCulture))
            .WithMetadata("string_to_token.*", "265").WithMetadata("sd_checkpoint", "cc6cb27103")
            .WithMetadata("sd_checkpoint_name", "v1-5-pruned-emaonly");

    public static KeySet SdxlEmbedding(int vectors) =>
        new KeySet().Add("clip_g", TensorDType.F32, vectors, 1280).Add("clip_l", TensorDType.F32, vectors, 768);

    public static KeySet EmbParamsEmbedding(int vectors) => new KeySet().Add("emb_params", TensorDType.F32, vectors, 768);

    public static KeySet DiffusersEmbedding(string token) => new KeySet().Add(token, TensorDType.F32, 768);

    /// <summary>
    /// A1111 hypernetwork in the current layout: per width two modules (key, value) whose <c>linear</c> Sequential
    /// holds Linear, then activation (not after the last Linear), then LayerNorm and Dropout when enabled.
    /// </summary>
    public static KeySet Hypernetwork(int[] dims, double[] structure, bool layerNorm = false, bool dropout = false,
        string activation = "relu", bool withMetadata = true)
    {
        var set = new KeySet();
        foreach (var dim in dims)
        {
            for (int module = 0; module < 2; module++)
            {
                int j = 0;
                for (int i = 0; i < structure.Length - 1; i++)
                {
                    long input = (long)(dim * structure[i]), output = (long)(dim * structure[i + 1]);
                    set.Add($"{dim}.{module}.linear.{j}.weight", TensorDType.F32, output, input);
                    set.Add($"{dim}.{module}.linear.{j}.bias", TensorDType.F32, output);
                    j++;
                    if (activation != "linear" && i < structure.Length - 2) j++;
                    if (layerNorm)
                    {
                        set.Add($"{dim}.{module}.linear.{j}.weight", TensorDType.F32, output);
                        set.Add($"{dim}.{module}.linear.{j}.bias", TensorDType.F32, output);
                        j++;
                    }
                    if (dropout && i < structure.Length - 3) j++;
                }
            }
        }
        if (withMetadata)
        {
            set.WithMetadata("layer_structure", "[" + string.Join(",", structure.Select(s => s.ToString("R", CultureInfo.InvariantCulture))) + "]")
                .WithMetadata("activation_func", activation).WithMetadata("is_layer_norm", layerNorm ? "true" : "false")
                .WithMetadata("use_dropout", dropout ? "true" : "false").WithMetadata("step", "1200").WithMetadata("name", "tiny_hn");
        }
        return set;
    }

    /// <summary>First-version A1111 hypernetwork: linear1 [2d, d] and linear2 [d, 2d] per module.</summary>
    public static KeySet HypernetworkV1(int[] dims)
    {
        var set = new KeySet();
        foreach (var dim in dims)
        {
            for (int module = 0; module < 2; module++)
            {
                set.Add($"{dim}.{module}.linear1.weight", TensorDType.F32, dim * 2, dim).Add($"{dim}.{module}.linear1.bias", TensorDType.F32, dim * 2);
                set.Add($"{dim}.{module}.linear2.weight", TensorDType.F32, dim, dim * 2).Add($"{dim}.{module}.linear2.bias", TensorDType.F32, dim);
            }
        }
        return set;
    }

    /// <summary>
    /// LDM ControlNet (cldm): the U-Net encoder half under <c>control_model.</c>, the hint encoder, one zero conv per
    /// input block and <c>middle_block_out</c>.
    /// </summary>
    public static KeySet ControlNet(LdmUnetConfig config, TensorDType dtype = TensorDType.F16)
    {
        const string p = "control_model.";
        var unet = LdmUnetKeys.Generate(config, p, dtype)
            .Where(e => !e.Name.StartsWith(p + "output_blocks.", StringComparison.Ordinal) && !e.Name.StartsWith(p + "out.", StringComparison.Ordinal))
            .ToList();
        var set = KeySet.Of(unet);
        int[] hint = { 3, 16, 16, 32, 32, 96, 96, 256 };
        for (int i = 0; i < hint.Length; i++)
        {
            long output = i + 1 < hint.Length ? hint[i + 1] : config.ModelChannels;
            set.Add($"{p}input_hint_block.{i * 2}.weight", dtype, output, hint[i], 3, 3).Add($"{p}input_hint_block.{i * 2}.bias", dtype, output);
        }
        var inputBlockChannels = unet.Where(e => e.Name.StartsWith(p + "input_blocks.", StringComparison.Ordinal) && e.Name.EndsWith(".bias", StringComparison.Ordinal))
            .GroupBy(e => int.Parse(e.Name[(p + "input_blocks.").Length..].Split('.')[0], CultureInfo.InvariantCulture))
            .OrderBy(g => g.Key).Select(g => g.Last().Shape[0]).ToList();
        for (int i = 0; i < inputBlockChannels.Count; i++)
        {
            long ch = inputBlockChannels[i];
            set.Add($"{p}zero_convs.{i}.0.weight", dtype, ch, ch, 1, 1).Add($"{p}zero_convs.{i}.0.bias", dtype, ch);
        }
        long mid = config.ModelChannels * config.ChannelMult[^1];
        set.Add(p + "middle_block_out.0.weight", dtype, mid, mid, 1, 1).Add(p + "middle_block_out.0.bias", dtype, mid);
        return set;
    }

    /// <summary>diffusers ControlNet: the SD1.5 diffusers U-Net encoder half plus the conditioning embedding and zero convs.</summary>
    public static KeySet DiffusersControlNet()
    {
        var unet = ReferenceTsv.Load("sd15_diffusers_unet.tsv")
            .Where(e => !e.Name.StartsWith("up_blocks.", StringComparison.Ordinal) && !e.Name.StartsWith("conv_norm_out", StringComparison.Ordinal)
                && !e.Name.StartsWith("conv_out", StringComparison.Ordinal));
        var set = KeySet.Of(unet);
        set.Add("controlnet_cond_embedding.conv_in.weight", TensorDType.F32, 16, 3, 3, 3);
        set.Add("controlnet_cond_embedding.conv_out.weight", TensorDType.F32, 320, 256, 3, 3);
        for (int i = 0; i < 12; i++) set.Add($"controlnet_down_blocks.{i}.weight", TensorDType.F32, 320, 320, 1, 1);
        set.Add("controlnet_mid_block.weight", TensorDType.F32, 1280, 1280, 1, 1);
        return set;
    }

    /// <summary>ESRGAN in the old architecture: model.0 conv, 23 RRDBs of 3 dense blocks, upsampling convs.</summary>
    public static KeySet EsrganOld(int blocks = 23)
    {
        var set = new KeySet().Add("model.0.weight", TensorDType.F32, 64, 3, 3, 3).Add("model.0.bias", TensorDType.F32, 64);
        for (int b = 0; b < blocks; b++)
        {
            for (int r = 1; r <= 3; r++)
            {
                for (int c = 1; c <= 5; c++)
                {
                    long output = c == 5 ? 64 : 32;
                    set.Add($"model.1.sub.{b}.RDB{r}.conv{c}.0.weight", TensorDType.F32, output, 64 + 32 * (c - 1), 3, 3);
                    set.Add($"model.1.sub.{b}.RDB{r}.conv{c}.0.bias", TensorDType.F32, output);
                }
            }
        }
        set.Add($"model.1.sub.{blocks}.weight", TensorDType.F32, 64, 64, 3, 3);
        foreach (var i in new[] { 3, 6, 8, 10 }) set.Add($"model.{i}.weight", TensorDType.F32, i == 10 ? 3 : 64, 64, 3, 3);
        return set;
    }

    /// <summary>Real-ESRGAN (BasicSR RRDBNet) under <c>params_ema.</c>, as its .pth files store it.</summary>
    public static KeySet RealEsrgan(int blocks = 23)
    {
        const string p = "params_ema.";
        var set = new KeySet().Add(p + "conv_first.weight", TensorDType.F32, 64, 3, 3, 3);
        for (int b = 0; b < blocks; b++)
        {
            for (int r = 1; r <= 3; r++)
            {
                for (int c = 1; c <= 5; c++) set.Add($"{p}body.{b}.rdb{r}.conv{c}.weight", TensorDType.F32, c == 5 ? 64 : 32, 64 + 32 * (c - 1), 3, 3);
            }
        }
        foreach (var n in new[] { "conv_body", "conv_up1", "conv_up2", "conv_hr" }) set.Add(p + n + ".weight", TensorDType.F32, 64, 64, 3, 3);
        set.Add(p + "conv_last.weight", TensorDType.F32, 3, 64, 3, 3);
        return set;
    }
}
