using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Encoders;

/// <summary>
/// The OpenCLIP text transformer in open_clip names (<c>token_embedding</c>, <c>positional_embedding</c>,
/// <c>transformer.resblocks.N</c>, <c>ln_final</c>, <c>text_projection</c>, <c>logit_scale</c>): SD2's ViT-H and SDXL's bigG.
/// </summary>
public sealed class OpenClipTextModel : nn.Module<Tensor, Tensor>
{
    /// <summary>SD2 single-file checkpoints.</summary>
    public const string Sd2Prefix = "cond_stage_model.model.";

    /// <summary>SDXL single-file checkpoints (the bigG role).</summary>
    public const string SdxlPrefix = "conditioner.embedders.1.model.";

    private readonly Embedding _tokenEmbedding;
    private readonly Parameter _positionalEmbedding;
    private readonly ModuleList<ResidualAttentionBlock> _resblocks;
    private readonly LayerNorm _lnFinal;
    private readonly Parameter _textProjection;

    public OpenClipTextModel(int vocabSize, int width, int layers, int heads, int mlpWidth, int positions, int embedDim,
        TextActivation activation = TextActivation.Gelu, double layerNormEps = 1e-5) : base(nameof(OpenClipTextModel))
    {
        Width = width;
        Layers = layers;
        Heads = heads;
        _tokenEmbedding = nn.Embedding(vocabSize, width);
        _positionalEmbedding = new Parameter(zeros(positions, width), requires_grad: false);
        _resblocks = new ModuleList<ResidualAttentionBlock>(
            Enumerable.Range(0, layers).Select(_ => new ResidualAttentionBlock(width, heads, mlpWidth, activation, layerNormEps)).ToArray());
        _lnFinal = nn.LayerNorm(width, layerNormEps);
        _textProjection = new Parameter(zeros(width, embedDim), requires_grad: false);
        register_module("token_embedding", _tokenEmbedding);
        register_parameter("positional_embedding", _positionalEmbedding);
        register_module("transformer", new TransformerContainer(_resblocks));
        register_module("ln_final", _lnFinal);
        register_parameter("text_projection", _textProjection);
        register_parameter("logit_scale", new Parameter(ones(Array.Empty<long>()), requires_grad: false));
    }

    public int Width { get; }
    public int Layers { get; }
    public int Heads { get; }

    /// <summary>Builds the encoder with sizes detected from the weights under <paramref name="prefix"/> and loads them.</summary>
    public static OpenClipTextModel Load(IModelFile file, string prefix, TextEncoderOptions? options = null)
    {
        options ??= new TextEncoderOptions();
        var token = ClipTextModel.Require(file, prefix + "token_embedding.weight");
        var position = ClipTextModel.Require(file, prefix + "positional_embedding");
        var cfc = ClipTextModel.Require(file, prefix + "transformer.resblocks.0.mlp.c_fc.weight");
        var projection = ClipTextModel.Require(file, prefix + "text_projection");
        int layers = 0;
        var names = file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        while (names.Contains($"{prefix}transformer.resblocks.{layers}.ln_1.weight")) layers++;
        long width = token.Shape[1];
        var model = new OpenClipTextModel((int)token.Shape[0], (int)width, layers, options.HeadsFor(width), (int)cfc.Shape[0],
            (int)position.Shape[0], (int)projection.Shape[1], options.Activation ?? TextActivation.Gelu, options.LayerNormEps);
        model.eval();
        StrictLoader.Load(model, file, prefix);
        return model;
    }

    public Tensor EmbedTokens(Tensor ids) => _tokenEmbedding.forward(ids);

    /// <summary>All hidden states (embeddings, then each resblock's output, no <c>ln_final</c>) for token ids [B, T].</summary>
    public TextEncoderOutput Encode(Tensor ids)
    {
        using var tokens = EmbedTokens(ids);
        return EncodeEmbeddings(tokens);
    }

    public TextEncoderOutput EncodeEmbeddings(Tensor tokenEmbeddings)
    {
        long t = tokenEmbeddings.shape[1];
        var states = new List<Tensor>(_resblocks.Count + 1);
        using var positions = _positionalEmbedding.narrow(0, 0, t);
        var x = tokenEmbeddings + positions;
        states.Add(x);
        using var mask = CausalSelfAttention.CausalMask(t, x.dtype, x.device);
        foreach (var block in _resblocks)
        {
            x = block.Run(x, mask);
            states.Add(x);
        }
        return new TextEncoderOutput(states);
    }

    public Tensor FinalLayerNorm(Tensor hidden) => _lnFinal.forward(hidden);

    /// <summary>
    /// open_clip's pooled text feature: <c>ln_final(last)</c> at the first position of the largest id (the EOS when
    /// pads are 0) <c>@ text_projection</c>; [B, E].
    /// </summary>
    public Tensor Pool(Tensor lastHiddenState, Tensor ids)
    {
        using var normed = FinalLayerNorm(lastHiddenState);
        using var eos = ids.argmax(-1);
        using var rows = arange(ids.shape[0], device: ids.device);
        using var picked = normed[rows, eos];
        return matmul(picked, _textProjection);
    }

    /// <summary>SD2's conditioning: <c>ln_final</c> of the penultimate resblock's output.</summary>
    public override Tensor forward(Tensor ids)
    {
        using var output = Encode(ids);
        return FinalLayerNorm(output.FromEnd(2));
    }

    private sealed class TransformerContainer : nn.Module
    {
        public TransformerContainer(ModuleList<ResidualAttentionBlock> blocks) : base("transformer") => register_module("resblocks", blocks);
    }

    private sealed class ResidualAttentionBlock : nn.Module
    {
        private readonly LayerNorm _ln1, _ln2;
        private readonly PackedAttention _attn;
        private readonly Linear _cFc, _cProj;
        private readonly TextActivation _activation;

        public ResidualAttentionBlock(int width, int heads, int mlp, TextActivation activation, double eps) : base("resblock")
        {
            _activation = activation;
            _ln1 = nn.LayerNorm(width, eps);
            _attn = new PackedAttention(width, heads);
            _ln2 = nn.LayerNorm(width, eps);
            _cFc = nn.Linear(width, mlp);
            _cProj = nn.Linear(mlp, width);
            register_module("ln_1", _ln1);
            register_module("attn", _attn);
            register_module("ln_2", _ln2);
            register_module("mlp", new MlpContainer(_cFc, _cProj));
        }

        public Tensor Run(Tensor x, Tensor mask)
        {
            using var n1 = _ln1.forward(x);
            using var a = _attn.Run(n1, mask);
            using var h = x + a;
            using var n2 = _ln2.forward(h);
            using var f = _cFc.forward(n2);
            using var g = _activation.Apply(f);
            using var m = _cProj.forward(g);
            return h + m;
        }
    }

    private sealed class MlpContainer : nn.Module
    {
        public MlpContainer(Linear cFc, Linear cProj) : base("mlp")
        {
            register_module("c_fc", cFc);
            register_module("c_proj", cProj);
        }
    }

    /// <summary>torch <c>nn.MultiheadAttention</c> weights: one packed q/k/v projection (rows q, k, v) and <c>out_proj</c>.</summary>
    private sealed class PackedAttention : nn.Module
    {
        private readonly Parameter _inProjWeight, _inProjBias;
        private readonly Linear _outProj;
        private readonly int _heads;

        public PackedAttention(int width, int heads) : base("attn")
        {
            _heads = heads;
            _inProjWeight = new Parameter(zeros(3 * width, width), requires_grad: false);
            _inProjBias = new Parameter(zeros(3 * width), requires_grad: false);
            _outProj = nn.Linear(width, width);
            register_parameter("in_proj_weight", _inProjWeight);
            register_parameter("in_proj_bias", _inProjBias);
            register_module("out_proj", _outProj);
        }

        public Tensor Run(Tensor x, Tensor mask)
        {
            using var qkv = nn.functional.linear(x, _inProjWeight, _inProjBias);
            var parts = qkv.chunk(3, -1);
            try
            {
                using var o = CausalSelfAttention.Attend(parts[0], parts[1], parts[2], _heads, mask);
                return _outProj.forward(o);
            }
            finally
            {
                foreach (var p in parts) p.Dispose();
            }
        }
    }
}
