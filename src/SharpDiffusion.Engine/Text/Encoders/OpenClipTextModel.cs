using SharpDiffusion.Engine.Models;
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
    // TorchSharp registers submodules and parameters under their field names, so fields carry the checkpoint names.
#pragma warning disable IDE1006
    private readonly TokenEmbedding token_embedding;
    private readonly Parameter positional_embedding;
    private readonly Transformer transformer;
    private readonly LayerNorm ln_final;
    private readonly Parameter text_projection;
    private readonly Parameter logit_scale;
#pragma warning restore IDE1006

    public OpenClipTextModel(int vocabSize, int width, int layers, int heads, int mlpWidth, int positions, int embedDim,
        TextActivation activation = TextActivation.Gelu, double layerNormEps = 1e-5, LayerFactory? factory = null) : base(nameof(OpenClipTextModel))
    {
        var f = factory ?? LayerFactory.Cpu();
        Width = width;
        Layers = layers;
        Heads = heads;
        token_embedding = f.Embedding(vocabSize, width);
        positional_embedding = f.Parameter(positions, width);
        transformer = new Transformer(f, width, layers, heads, mlpWidth, activation, layerNormEps);
        ln_final = f.LayerNorm(width, layerNormEps);
        text_projection = f.Parameter(width, embedDim);
        logit_scale = new Parameter(ones(Array.Empty<long>()), requires_grad: false);
        RegisterComponents();
    }

    public int Width { get; }
    public int Layers { get; }
    public int Heads { get; }

    /// <summary>Width of the pooled, projected embedding (text_projection's second dimension).</summary>
    public long ProjectionDim => text_projection.shape[1];

    /// <summary>Builds the encoder with sizes detected from the weights under <paramref name="prefix"/> and loads them.</summary>
    public static OpenClipTextModel Load(IModelFile file, string prefix, TextEncoderOptions? options = null)
    {
        options ??= new TextEncoderOptions();
        var token = ClipTextModel.Require(file, prefix + "token_embedding.weight");
        var position = ClipTextModel.Require(file, prefix + "positional_embedding");
        var cfc = ClipTextModel.Require(file, prefix + "transformer.resblocks.0.mlp.c_fc.weight");
        // A diffusers folder has no logit_scale (unused here), and SD 2.x's text encoder there has no projection
        // either (SD 2.x conditions on the tokens, never on the pooled projection).
        var projection = file.Tensors.FirstOrDefault(t => t.Name == prefix + "text_projection");
        int layers = 0;
        var names = file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        while (names.Contains($"{prefix}transformer.resblocks.{layers}.ln_1.weight")) layers++;
        long width = token.Shape[1];
        var model = new OpenClipTextModel((int)token.Shape[0], (int)width, layers, options.HeadsFor(width), (int)cfc.Shape[0],
            (int)position.Shape[0], (int)(projection?.Shape[1] ?? token.Shape[1]), options.Activation ?? TextActivation.Gelu, options.LayerNormEps, LayerFactory.ForLoading(CPU, options.DType));
        model.eval();
        foreach (var parameter in model.parameters()) parameter.requires_grad = false; // inference only: no autograd graph
        StrictLoader.Load(model, file, prefix, optional: projection == null ? ["logit_scale", "text_projection"] : ["logit_scale"]);
        if (projection == null)
        {
            using var noGrad = no_grad();
            model.text_projection.zero_(); // allocated uninitialised for loading; never read by SD 2.x conditioning
        }
        return model;
    }

    public Tensor EmbedTokens(Tensor ids) => token_embedding.forward(ids);

    /// <summary>All hidden states (embeddings, then each resblock's output, no <c>ln_final</c>) for token ids [B, T].</summary>
    public TextEncoderOutput Encode(Tensor ids)
    {
        using var tokens = EmbedTokens(ids);
        return EncodeEmbeddings(tokens);
    }

    public TextEncoderOutput EncodeEmbeddings(Tensor tokenEmbeddings)
    {
        long t = tokenEmbeddings.shape[1];
        var states = new List<Tensor>(transformer.resblocks.Count + 1);
        using var positions = positional_embedding.narrow(0, 0, t);
        var x = tokenEmbeddings + positions;
        states.Add(x);
        using var mask = CausalSelfAttention.CausalMask(t, x.dtype, x.device);
        foreach (var block in transformer.resblocks)
        {
            x = block.Run(x, mask);
            states.Add(x);
        }
        return new TextEncoderOutput(states);
    }

    public Tensor FinalLayerNorm(Tensor hidden) => ln_final.forward(hidden);

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
        return matmul(picked, text_projection);
    }

    /// <summary>
    /// Training hook (kohya's q/k/v LoRA on a packed projection): adds <paramref name="branch"/>(x), [.., 3W] with rows
    /// q, k, v, to resblock <paramref name="layer"/>'s <c>in_proj</c> output; null removes it. Inference patches weights instead.
    /// </summary>
    public void SetInProjectionBranch(int layer, Func<Tensor, Tensor>? branch) => transformer.resblocks[layer].Attention.InProjectionBranch = branch;

    /// <summary>SD2's conditioning: <c>ln_final</c> of the penultimate resblock's output.</summary>
    public override Tensor forward(Tensor ids)
    {
        using var output = Encode(ids);
        return FinalLayerNorm(output.FromEnd(2));
    }

#pragma warning disable IDE1006 // field names are checkpoint key names
    private sealed class Transformer : nn.Module
    {
        public readonly ModuleList<ResidualAttentionBlock> resblocks;

        public Transformer(LayerFactory f, int width, int layers, int heads, int mlp, TextActivation activation, double eps) : base("transformer")
        {
            resblocks = new ModuleList<ResidualAttentionBlock>(
                Enumerable.Range(0, layers).Select(_ => new ResidualAttentionBlock(f, width, heads, mlp, activation, eps)).ToArray());
            RegisterComponents();
        }
    }

    private sealed class ResidualAttentionBlock : nn.Module
    {
        private readonly LayerNorm ln_1, ln_2;
        private readonly PackedAttention attn;
        private readonly Mlp mlp;

        public ResidualAttentionBlock(LayerFactory f, int width, int heads, int mlpWidth, TextActivation activation, double eps) : base("resblock")
        {
            ln_1 = f.LayerNorm(width, eps);
            attn = new PackedAttention(f, width, heads);
            ln_2 = f.LayerNorm(width, eps);
            mlp = new Mlp(f, width, mlpWidth, activation);
            RegisterComponents();
        }

        public PackedAttention Attention => attn;

        public Tensor Run(Tensor x, Tensor mask)
        {
            using var n1 = ln_1.forward(x);
            using var a = attn.Run(n1, mask);
            using var h = x + a;
            using var n2 = ln_2.forward(h);
            using var m = mlp.Run(n2);
            return h + m;
        }
    }

    private sealed class Mlp : nn.Module
    {
        private readonly Linear c_fc, c_proj;
        private readonly TextActivation _activation;

        public Mlp(LayerFactory f, int width, int hidden, TextActivation activation) : base("mlp")
        {
            _activation = activation;
            c_fc = f.Linear(width, hidden);
            c_proj = f.Linear(hidden, width);
            RegisterComponents();
        }

        public Tensor Run(Tensor x)
        {
            using var f = c_fc.forward(x);
            using var g = _activation.Apply(f);
            return c_proj.forward(g);
        }
    }

    /// <summary>torch <c>nn.MultiheadAttention</c> weights: one packed q/k/v projection (rows q, k, v) and <c>out_proj</c>.</summary>
    private sealed class PackedAttention : nn.Module
    {
        private readonly Parameter in_proj_weight, in_proj_bias;
        private readonly Linear out_proj;
        private readonly int _heads;

        public PackedAttention(LayerFactory f, int width, int heads) : base("attn")
        {
            _heads = heads;
            in_proj_weight = f.Parameter(3 * width, width);
            in_proj_bias = f.Parameter(3 * width);
            out_proj = f.Linear(width, width);
            RegisterComponents();
        }

        /// <summary>Training only: a branch whose output [.., 3W] (rows q, k, v) is added to the packed projection's.</summary>
        public Func<Tensor, Tensor>? InProjectionBranch { get; set; }

        public Tensor Run(Tensor x, Tensor mask)
        {
            var qkv = nn.functional.linear(x, in_proj_weight, in_proj_bias);
            if (InProjectionBranch is { } branch)
            {
                using var plain = qkv;
                using var delta = branch(x);
                qkv = plain + delta.to(plain.dtype);
            }
            using var _ = qkv;
            var parts = qkv.chunk(3, -1);
            try
            {
                using var o = CausalSelfAttention.Attend(parts[0], parts[1], parts[2], _heads, mask);
                return out_proj.forward(o);
            }
            finally
            {
                foreach (var p in parts) p.Dispose();
            }
        }
    }
#pragma warning restore IDE1006
}
