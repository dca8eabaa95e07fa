namespace SharpDiffusion.Inspection;

/// <summary>
/// Image upscalers: ESRGAN (old <c>model.0</c> + <c>model.1.sub.N.RDB</c>, new <c>conv_first</c> + <c>RRDB_trunk</c>),
/// Real-ESRGAN RRDBNet (<c>conv_first</c> + <c>body.N.rdb1</c>), Real-ESRGAN compact (<c>body.N</c> convs only) and
/// transformer upscalers such as SwinIR (<c>conv_first</c> + <c>layers.N.residual_group</c>). BasicSR checkpoints
/// nest the weights under <c>params_ema</c> or <c>params</c>.
/// </summary>
internal static class UpscalerDetector
{
    public static bool TryDetect(TensorIndex index, ModelClassification result)
    {
        foreach (var prefix in new[] { "", "params_ema.", "params." })
        {
            if (Detect(index, prefix, result)) return true;
        }
        return false;
    }

    private static bool Detect(TensorIndex index, string prefix, ModelClassification result)
    {
        var model0 = index.Get(prefix + "model.0.weight");
        var oldRdb = model0 is { Rank: 4 } ? index.FirstContaining(".sub.0.RDB1.") : null;
        if (oldRdb != null)
        {
            return Accept(result, "esrgan", Evidence.Key(model0!, "first conv of an ESRGAN (old architecture) network"),
                Evidence.Key(oldRdb, "residual-in-residual dense block (RRDB)"));
        }

        var convFirst = index.Get(prefix + "conv_first.weight");
        if (convFirst is { Rank: 4 })
        {
            var trunk = index.FirstWithPrefix(prefix + "RRDB_trunk.");
            if (trunk != null) return Accept(result, "esrgan", Evidence.Key(convFirst, "ESRGAN first conv"), Evidence.Key(trunk, "RRDB trunk (ESRGAN)"));
            var rdb = index.FirstWithPrefix(prefix + "body.0.rdb1.");
            if (rdb != null) return Accept(result, "real-esrgan", Evidence.Key(convFirst, "RRDBNet first conv"), Evidence.Key(rdb, "RRDB body (Real-ESRGAN / BasicSR RRDBNet)"));
            var swin = index.FirstWithPrefix(prefix + "layers.0.residual_group.");
            if (swin != null) return Accept(result, "swinir", Evidence.Key(convFirst, "shallow-feature conv"), Evidence.Key(swin, "residual Swin transformer group (SwinIR)"));
            var layers = index.FirstWithPrefix(prefix + "layers.");
            if (layers != null) return Accept(result, "transformer-upscaler", Evidence.Key(convFirst, "shallow-feature conv"), Evidence.Key(layers, "transformer layers (SwinIR-like upscaler)"));
        }

        var body0 = index.Get(prefix + "body.0.weight");
        if (body0 is { Rank: 4 } && body0.Shape[1] == 3 && index.Tensors.All(t => t.Name.StartsWith(prefix + "body.", StringComparison.Ordinal)))
        {
            return Accept(result, "real-esrgan-compact", Evidence.Key(body0, "RGB input conv of a plain conv stack (Real-ESRGAN compact / SRVGG)"), null);
        }
        return false;
    }

    private static bool Accept(ModelClassification result, string architecture, string first, string? second)
    {
        result.Kind = ModelKind.Upscaler;
        result.Variant = architecture;
        Evidence.Add(result, first);
        if (second != null) Evidence.Add(result, second);
        Evidence.Add(result, "image-space super-resolution network: not tied to a diffusion base model");
        return true;
    }
}
