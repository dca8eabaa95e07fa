using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// LDM/sgm <c>openaimodel.UNetModel</c> with spatial transformers (SD1, SD2, SDXL), its state_dict names equal
/// to the checkpoint keys under "model.diffusion_model.".
/// </summary>
public sealed class UNetModel : NamedModule
{
    private readonly Linear _timeIn, _timeOut;
    private readonly Linear? _labelIn, _labelOut;
    private readonly TimestepEmbedSequential[] _inputBlocks, _outputBlocks;
    private readonly TimestepEmbedSequential _middle;
    private readonly GroupNorm32 _outNorm;
    private readonly Conv2d _outConv;

    /// <param name="config">The architecture.</param>
    /// <param name="factory">Device and dtype of the parameters (default: CPU float32; meta for shape-only checks).</param>
    public UNetModel(UNetConfig config, LayerFactory? factory = null) : base(nameof(UNetModel))
    {
        Config = config;
        var f = factory ?? LayerFactory.Cpu();
        int mc = config.ModelChannels, ted = config.TimeEmbedDim;

        var timeEmbed = Child("time_embed", new IndexedModules());
        _timeIn = timeEmbed.Add(0, f.Linear(mc, ted));
        _timeOut = timeEmbed.Add(2, f.Linear(ted, ted));
        if (config.AdmInChannels is int adm)
        {
            var seq = Child("label_emb", new IndexedModules()).Add(0, new IndexedModules());
            _labelIn = seq.Add(0, f.Linear(adm, ted));
            _labelOut = seq.Add(2, f.Linear(ted, ted));
        }

        var inputList = Child("input_blocks", new IndexedModules());
        var inputs = new List<TimestepEmbedSequential>();
        TimestepEmbedSequential NewInput()
        {
            var block = inputList.Add(inputs.Count, new TimestepEmbedSequential());
            inputs.Add(block);
            return block;
        }
        NewInput().Add(f.Conv(config.InChannels, mc, 3, padding: 1));
        var skipChannels = new Stack<int>();
        skipChannels.Push(mc);
        int ch = mc;
        for (int level = 0; level < config.Levels; level++)
        {
            for (int r = 0; r < config.NumResBlocks[level]; r++)
            {
                var block = NewInput();
                int outCh = config.ChannelMult[level] * mc;
                block.Add(new ResBlock(f, ch, ted, outCh));
                ch = outCh;
                if (config.TransformerDepth[level] > 0) block.Add(Transformer(f, config, ch, config.TransformerDepth[level]));
                skipChannels.Push(ch);
            }
            if (level != config.Levels - 1)
            {
                NewInput().Add(new UNetDownsample(f, ch));
                skipChannels.Push(ch);
            }
        }
        _inputBlocks = inputs.ToArray();

        _middle = Child("middle_block", new TimestepEmbedSequential());
        _middle.Add(new ResBlock(f, ch, ted, ch));
        if (config.TransformerDepthMiddle > 0) _middle.Add(Transformer(f, config, ch, config.TransformerDepthMiddle));
        _middle.Add(new ResBlock(f, ch, ted, ch));

        var outputList = Child("output_blocks", new IndexedModules());
        var outputs = new List<TimestepEmbedSequential>();
        for (int level = config.Levels - 1; level >= 0; level--)
        {
            for (int r = 0; r <= config.NumResBlocks[level]; r++)
            {
                var block = outputList.Add(outputs.Count, new TimestepEmbedSequential());
                outputs.Add(block);
                int outCh = config.ChannelMult[level] * mc;
                block.Add(new ResBlock(f, ch + skipChannels.Pop(), ted, outCh));
                ch = outCh;
                if (config.TransformerDepth[level] > 0) block.Add(Transformer(f, config, ch, config.TransformerDepth[level]));
                if (level > 0 && r == config.NumResBlocks[level]) block.Add(new UNetUpsample(f, ch));
            }
        }
        _outputBlocks = outputs.ToArray();

        var outSeq = Child("out", new IndexedModules());
        _outNorm = outSeq.Add(0, f.GroupNorm(ch, 1e-5));
        _outConv = outSeq.Add(2, f.Conv(mc, config.OutChannels, 3, padding: 1));
        FreezeParameters();
    }

    public UNetConfig Config { get; }

    /// <summary>
    /// The key/value hook of every attention layer (self- and cross-attention), e.g. A1111 hypernetworks; null (the
    /// default) leaves the U-Net unchanged. Setting it sets it on all of them.
    /// </summary>
    public IAttentionContextHook? ContextHook
    {
        get => _contextHook;
        set
        {
            _contextHook = value;
            foreach (var module in modules())
                if (module is CrossAttention attention) attention.ContextHook = value;
        }
    }

    private IAttentionContextHook? _contextHook;

    /// <summary>
    /// Training sets this so that Forward records autograd history for trainable adapters hooked into its layers
    /// (the U-Net's own parameters stay frozen); inference leaves it off and runs without a graph.
    /// </summary>
    public bool RecordsGradients { get; set; }

    /// <summary>The parameters' element type (float32, or bfloat16 for the fast path).</summary>
    public ScalarType DType => _timeIn.weight!.dtype;

    private static SpatialTransformer Transformer(LayerFactory f, UNetConfig config, int channels, int depth)
    {
        var (heads, dimHead) = config.HeadsFor(channels);
        return new SpatialTransformer(f, channels, heads, dimHead, depth, config.ContextDim, config.UseLinearInTransformer);
    }

    /// <inheritdoc />
    public Tensor Forward(Tensor x, Tensor timesteps, Tensor context, Tensor? y = null) => Forward(x, timesteps, context, y, controlResiduals: null);

    /// <summary>
    /// The forward pass with ControlNet residuals added (cldm <c>ControlledUnetModel</c>): one per input block, in
    /// input-block order, plus the middle block's last. The last is added to the middle block's output; residual i to
    /// the skip connection of input block i before it joins its output block. Null: the plain U-Net.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor timesteps, Tensor context, Tensor? y, IReadOnlyList<Tensor>? controlResiduals)
    {
        if (controlResiduals != null && controlResiduals.Count != _inputBlocks.Length + 1)
            throw new ArgumentException($"{controlResiduals.Count} control residuals for a U-Net with {_inputBlocks.Length} input blocks (expected {_inputBlocks.Length + 1})");
        if ((y is not null) != (Config.AdmInChannels != null))
            throw new ArgumentException(Config.AdmInChannels != null ? "this UNet needs the vector conditioning y" : "this UNet takes no vector conditioning y");
        using var noGrad = RecordsGradients ? null : no_grad();
        using var scope = NewDisposeScope();
        var dtype = DType;
        var tEmb = TimestepEmbedding.Sinusoidal(timesteps, Config.ModelChannels).to(dtype);
        var emb = _timeOut.forward(F.silu(_timeIn.forward(tEmb), inplace: true));
        if (y is not null) emb = emb.add_(_labelOut!.forward(F.silu(_labelIn!.forward(y.to(dtype)), inplace: true)));
        var embSilu = F.silu(emb);
        var ctx = context.to(dtype);

        var skips = new Stack<Tensor>();
        var h = x.to(dtype);
        foreach (var block in _inputBlocks)
        {
            h = block.Forward(h, embSilu, ctx);
            skips.Push(h);
        }
        h = _middle.Forward(h, embSilu, ctx);
        if (controlResiduals != null) h = h.add_(controlResiduals[^1].to(dtype));
        foreach (var block in _outputBlocks)
        {
            var skip = skips.Pop();
            if (controlResiduals != null) skip = skip.add_(controlResiduals[skips.Count].to(dtype));
            var joined = cat(new[] { h, skip }, 1);
            h.Dispose();
            skip.Dispose();
            h = block.Forward(joined, embSilu, ctx);
            joined.Dispose();
        }
        var result = NarrowOutputConvolution.Forward(_outConv, F.silu(_outNorm.Forward(h), inplace: true)).to(x.dtype);
        return result.MoveToOuterDisposeScope();
    }
}
