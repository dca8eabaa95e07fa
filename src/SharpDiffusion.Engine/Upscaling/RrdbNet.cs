using SharpDiffusion.Engine.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Upscaling;

/// <summary>
/// BasicSR's RRDBNet (ESRGAN, Real-ESRGAN x4plus / x2plus), with BasicSR's parameter names: <c>conv_first</c>,
/// <c>body.N.rdbK.convM</c>, <c>conv_body</c>, <c>conv_up1..</c>, <c>conv_hr</c>, <c>conv_last</c>. The original ESRGAN
/// network (<c>model.N</c> names) computes the same function; <see cref="UpscalerModel"/> renames its keys to these.
/// Every convolution is 3x3, padding 1, with bias; LeakyReLU slope 0.2.
/// </summary>
public sealed class RrdbNet : NamedModule
{
    private const double Slope = 0.2;
    private readonly Conv2d _convFirst;
    private readonly ResidualInResidualDenseBlock[] _body;
    private readonly Conv2d _convBody;
    private readonly Conv2d[] _convUp;
    private readonly Conv2d _convHr;
    private readonly Conv2d _convLast;

    public RrdbNet(RrdbNetConfig config, LayerFactory f) : base(nameof(RrdbNet))
    {
        Config = config;
        int firstInputs = config.InChannels * config.UnshuffleFactor * config.UnshuffleFactor;
        int nf = config.Features;
        _convFirst = Child("conv_first", f.Conv(firstInputs, nf, 3, padding: 1));
        var body = Child("body", new IndexedModules());
        _body = Enumerable.Range(0, config.Blocks).Select(i => body.Add(i, new ResidualInResidualDenseBlock(f, nf, config.GrowthChannels))).ToArray();
        _convBody = Child("conv_body", f.Conv(nf, nf, 3, padding: 1));
        _convUp = Enumerable.Range(1, config.Upsamplings).Select(i => Child($"conv_up{i}", f.Conv(nf, nf, 3, padding: 1))).ToArray();
        _convHr = Child("conv_hr", f.Conv(nf, nf, 3, padding: 1));
        _convLast = Child("conv_last", f.Conv(nf, config.OutChannels, 3, padding: 1));
        FreezeParameters();
    }

    public RrdbNetConfig Config { get; }

    /// <summary>
    /// [B, C, H, W] in [0, 1] (BGR for the released models, as A1111 feeds them) -> [B, C, H·scale, W·scale], raw
    /// (not clamped). Unshuffling models pad odd sizes by reflection first and crop the result, as spandrel does.
    /// </summary>
    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long h = x.shape[2], w = x.shape[3];
        int r = Config.UnshuffleFactor;
        var feat = x;
        if (r > 1)
        {
            long padH = (r - h % r) % r, padW = (r - w % r) % r;
            if (padH + padW > 0) feat = F.pad(feat, new[] { 0, padW, 0, padH }, TorchSharp.PaddingModes.Reflect);
            feat = PixelUnshuffle(feat, r);
        }
        feat = Conv(_convFirst, feat);
        var trunk = feat;
        foreach (var block in _body)
        {
            var next = block.Forward(trunk);
            if (!ReferenceEquals(trunk, feat)) trunk.Dispose();
            trunk = next;
        }
        using (trunk)
        using (var body = Conv(_convBody, trunk)) feat = feat.add(body);
        // The upsampled stages are the largest tensors (64 channels at 2x and 4x): each is freed as soon as it is used.
        foreach (var up in _convUp)
        {
            using var previous = feat;
            using var upsampled = F.interpolate(previous, scale_factor: new[] { 2.0, 2.0 }, mode: InterpolationMode.Nearest);
            feat = Conv(up, upsampled).leaky_relu_(Slope);
        }
        Tensor output;
        using (feat)
        using (var hr = Conv(_convHr, feat).leaky_relu_(Slope)) output = Conv(_convLast, hr);
        if (r > 1 && (output.shape[2] != h * Config.Scale || output.shape[3] != w * Config.Scale))
            output = output[.., .., ..(int)(h * Config.Scale), ..(int)(w * Config.Scale)];
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>BasicSR's pixel_unshuffle: out[c·r² + i·r + j, y, x] = in[c, r·y + i, r·x + j].</summary>
    public static Tensor PixelUnshuffle(Tensor x, int r)
    {
        long b = x.shape[0], c = x.shape[1], h = x.shape[2] / r, w = x.shape[3] / r;
        using var split = x.reshape(b, c, h, r, w, r);
        using var moved = split.permute(0, 1, 3, 5, 2, 4);
        return moved.reshape(b, c * r * r, h, w);
    }

    /// <summary>Every convolution goes through the bf16 workaround: conv_last has 3 outputs, small nets have narrow growth convs.</summary>
    internal static Tensor Conv(Conv2d conv, Tensor x) => NarrowOutputConvolution.Forward(conv, x);

    /// <summary>RRDB: three dense blocks, scaled residual: rdb3(rdb2(rdb1(x)))·0.2 + x.</summary>
    private sealed class ResidualInResidualDenseBlock : NamedModule
    {
        private readonly ResidualDenseBlock[] _blocks;

        public ResidualInResidualDenseBlock(LayerFactory f, int features, int growth) : base("RRDB") =>
            _blocks = Enumerable.Range(1, 3).Select(k => Child($"rdb{k}", new ResidualDenseBlock(f, features, growth))).ToArray();

        public Tensor Forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var h = x;
            foreach (var block in _blocks) h = block.Forward(h);
            return h.mul(0.2).add_(x).MoveToOuterDisposeScope();
        }
    }

    /// <summary>RDB: x1..x4 = lrelu(convK(cat(x, x1..))), x5 = conv5(cat(x, x1..x4)); returns x5·0.2 + x.</summary>
    private sealed class ResidualDenseBlock : NamedModule
    {
        private readonly Conv2d[] _convs;

        public ResidualDenseBlock(LayerFactory f, int features, int growth) : base("RDB") =>
            _convs = Enumerable.Range(1, 5)
                .Select(m => Child($"conv{m}", f.Conv(features + (m - 1) * growth, m == 5 ? features : growth, 3, padding: 1)))
                .ToArray();

        public Tensor Forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var inputs = new List<Tensor> { x };
            for (int m = 0; m < 4; m++)
            {
                using var joined = cat(inputs, 1);
                inputs.Add(F.leaky_relu(Conv(_convs[m], joined), Slope));
            }
            using var all = cat(inputs, 1);
            return Conv(_convs[4], all).mul_(0.2).add_(x).MoveToOuterDisposeScope();
        }
    }
}
