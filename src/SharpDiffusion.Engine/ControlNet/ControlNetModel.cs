using SharpDiffusion.Engine.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.ControlNet;

/// <summary>
/// lllyasviel/ControlNet's <c>cldm.ControlNet</c>: a copy of the U-Net encoder (<c>time_embed</c>, <c>input_blocks</c>,
/// <c>middle_block</c>) fed the latent plus the encoded control image (<c>input_hint_block</c>, added after the first
/// input block), with a 1x1 <c>zero_convs.i</c> after every input block and <c>middle_block_out</c> after the middle
/// block. Its state_dict names are the single-file keys under <c>control_model.</c>; <see cref="ControlNetLoader"/>
/// also reads the diffusers layout.
/// </summary>
public sealed class ControlNetModel : NamedModule
{
    private readonly Linear _timeIn, _timeOut;
    private readonly TimestepEmbedSequential[] _inputBlocks;
    private readonly TimestepEmbedSequential _middle;
    private readonly Conv2d[] _zeroConvs;
    private readonly Conv2d _middleOut;
    private readonly Conv2d[] _hintConvs;

    /// <param name="config">The encoder's architecture: the base U-Net's (heads included); in_channels from the ControlNet.</param>
    /// <param name="hintChannels">Hint block: image channels, then the channels of every conv (the last is the model channels).</param>
    /// <param name="factory">Device and dtype of the parameters.</param>
    public ControlNetModel(UNetConfig config, IReadOnlyList<int> hintChannels, LayerFactory? factory = null) : base(nameof(ControlNetModel))
    {
        if (hintChannels.Count < 3 || hintChannels.Count % 2 != 1 || hintChannels[^1] != config.ModelChannels)
            throw new ArgumentException($"hint block channels [{string.Join(", ", hintChannels)}] do not follow conv_in, (same, stride-2 widening)*, conv_out to {config.ModelChannels}");
        Config = config;
        HintChannels = hintChannels.ToArray();
        var f = factory ?? LayerFactory.Cpu();
        int mc = config.ModelChannels, ted = config.TimeEmbedDim;

        var timeEmbed = Child("time_embed", new IndexedModules());
        _timeIn = timeEmbed.Add(0, f.Linear(mc, ted));
        _timeOut = timeEmbed.Add(2, f.Linear(ted, ted));

        // conv_in (stride 1); per channel step a same-width conv and a stride-2 widening conv; conv_out (stride 1).
        var hint = Child("input_hint_block", new IndexedModules());
        int convs = hintChannels.Count - 1;
        _hintConvs = new Conv2d[convs];
        for (int k = 0; k < convs; k++)
        {
            bool widening = k > 0 && k < convs - 1 && k % 2 == 0;
            _hintConvs[k] = hint.Add(2 * k, f.Conv(hintChannels[k], hintChannels[k + 1], 3, stride: widening ? 2 : 1, padding: 1));
        }

        var inputList = Child("input_blocks", new IndexedModules());
        var zeroList = Child("zero_convs", new IndexedModules());
        var inputs = new List<TimestepEmbedSequential>();
        var zeros = new List<Conv2d>();
        TimestepEmbedSequential NewInput(int channels)
        {
            var block = inputList.Add(inputs.Count, new TimestepEmbedSequential());
            zeros.Add(zeroList.Add(inputs.Count, new IndexedModules()).Add(0, f.Conv(channels, channels, 1)));
            inputs.Add(block);
            return block;
        }
        NewInput(mc).Add(f.Conv(config.InChannels, mc, 3, padding: 1));
        int ch = mc;
        for (int level = 0; level < config.Levels; level++)
        {
            int outCh = config.ChannelMult[level] * mc;
            for (int r = 0; r < config.NumResBlocks[level]; r++)
            {
                var block = NewInput(outCh);
                block.Add(new ResBlock(f, ch, ted, outCh));
                ch = outCh;
                if (config.TransformerDepth[level] > 0) block.Add(Transformer(f, config, ch, config.TransformerDepth[level]));
            }
            if (level != config.Levels - 1) NewInput(ch).Add(new UNetDownsample(f, ch));
        }
        _inputBlocks = inputs.ToArray();
        _zeroConvs = zeros.ToArray();

        _middle = Child("middle_block", new TimestepEmbedSequential());
        _middle.Add(new ResBlock(f, ch, ted, ch));
        if (config.TransformerDepthMiddle > 0) _middle.Add(Transformer(f, config, ch, config.TransformerDepthMiddle));
        _middle.Add(new ResBlock(f, ch, ted, ch));
        _middleOut = Child("middle_block_out", new IndexedModules()).Add(0, f.Conv(ch, ch, 1));
        FreezeParameters();
    }

    public UNetConfig Config { get; }

    /// <summary>Image channels, then each hint conv's outputs: (3, 16, 16, 32, 32, 96, 96, 256, 320) for SD1.5's ControlNets.</summary>
    public IReadOnlyList<int> HintChannels { get; }

    /// <summary>How much smaller the latent is than the hint image: 2 per widening conv (8 = SD's VAE factor).</summary>
    public int HintDownsampling => 1 << ((HintChannels.Count - 3) / 2);

    public ScalarType DType => _timeIn.weight!.dtype;

    /// <summary>Number of residuals: one per input block plus the middle block's.</summary>
    public int ResidualCount => _inputBlocks.Length + 1;

    private static SpatialTransformer Transformer(LayerFactory f, UNetConfig config, int channels, int depth)
    {
        var (heads, dimHead) = config.HeadsFor(channels);
        return new SpatialTransformer(f, channels, heads, dimHead, depth, config.ContextDim, config.UseLinearInTransformer);
    }

    /// <summary>input_hint_block(hint): conv, SiLU, conv, SiLU, ..., conv (no activation after the last).</summary>
    public Tensor GuidedHint(Tensor hint)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var h = hint.to(DType);
        for (int k = 0; k < _hintConvs.Length; k++)
        {
            h = NarrowOutputConvolution.Forward(_hintConvs[k], h);
            if (k < _hintConvs.Length - 1) h = F.silu(h);
        }
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The control residuals for latent <paramref name="x"/> [B, 4, h, w], timesteps [B], context [B, 77, C] and
    /// hint [B, 3, h·<see cref="HintDownsampling"/>, w·...] in [0, 1]: one per input block, then the middle block's —
    /// unscaled (multiply by the control weight, <see cref="ControlResiduals.Scale"/>), in the ControlNet's dtype.
    /// </summary>
    public ControlResiduals Forward(Tensor x, Tensor timesteps, Tensor context, Tensor hint)
    {
        if (hint.shape[2] != x.shape[2] * HintDownsampling || hint.shape[3] != x.shape[3] * HintDownsampling)
            throw new ArgumentException($"hint of {hint.shape[3]}x{hint.shape[2]} pixels for a {x.shape[3]}x{x.shape[2]} latent (expected x{HintDownsampling})");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var dtype = DType;
        var tEmb = TimestepEmbedding.Sinusoidal(timesteps, Config.ModelChannels).to(dtype);
        var embSilu = F.silu(_timeOut.forward(F.silu(_timeIn.forward(tEmb))));
        var ctx = context.to(dtype);
        var guided = GuidedHint(hint);
        var outputs = new List<Tensor>();
        var h = x.to(dtype);
        for (int i = 0; i < _inputBlocks.Length; i++)
        {
            h = _inputBlocks[i].Forward(h, embSilu, ctx);
            if (i == 0) h = h.add(guided);
            outputs.Add(_zeroConvs[i].forward(h));
        }
        h = _middle.Forward(h, embSilu, ctx);
        outputs.Add(_middleOut.forward(h));
        foreach (var o in outputs) o.MoveToOuterDisposeScope();
        return new ControlResiduals(outputs);
    }
}
