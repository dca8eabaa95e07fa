using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Encoders;

/// <summary>
/// The CLIP text transformer in Hugging Face <c>CLIPTextModel</c> names (under <c>text_model.</c>): pre-norm layers,
/// causal mask, quick_gelu (CLIP-L) or gelu. Returns every hidden state.
/// </summary>
public sealed class ClipTextModel : nn.Module<Tensor, Tensor>
{
    /// <summary>SD1 single-file checkpoints.</summary>
    public const string Sd1Prefix = "cond_stage_model.transformer.";

    /// <summary>SDXL single-file checkpoints (the CLIP-L role).</summary>
    public const string SdxlPrefix = "conditioner.embedders.0.transformer.";

    /// <summary>A buffer real checkpoints carry (arange(77)); the positions are implied, so it is not loaded.</summary>
    public const string PositionIdsKey = "text_model.embeddings.position_ids";

    private readonly ClipTextTransformer _textModel;

    public ClipTextModel(int vocabSize, int width, int layers, int heads, int mlpWidth, int positions,
        TextActivation activation = TextActivation.QuickGelu, double layerNormEps = 1e-5) : base(nameof(ClipTextModel))
    {
        Width = width;
        Layers = layers;
        Heads = heads;
        _textModel = new ClipTextTransformer(vocabSize, width, layers, heads, mlpWidth, positions, activation, layerNormEps);
        register_module("text_model", _textModel);
    }

    public int Width { get; }
    public int Layers { get; }
    public int Heads { get; }

    /// <summary>Builds the encoder with sizes detected from the weights under <paramref name="prefix"/> and loads them.</summary>
    public static ClipTextModel Load(IModelFile file, string prefix, TextEncoderOptions? options = null)
    {
        options ??= new TextEncoderOptions();
        var token = Require(file, prefix + "text_model.embeddings.token_embedding.weight");
        var position = Require(file, prefix + "text_model.embeddings.position_embedding.weight");
        var fc1 = Require(file, prefix + "text_model.encoder.layers.0.mlp.fc1.weight");
        int layers = 0;
        var names = file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        while (names.Contains($"{prefix}text_model.encoder.layers.{layers}.layer_norm1.weight")) layers++;
        long width = token.Shape[1];
        var model = new ClipTextModel((int)token.Shape[0], (int)width, layers, options.HeadsFor(width), (int)fc1.Shape[0],
            (int)position.Shape[0], options.Activation ?? TextActivation.QuickGelu, options.LayerNormEps);
        model.eval();
        StrictLoader.Load(model, file, prefix, new[] { PositionIdsKey });
        return model;
    }

    internal static TensorInfo Require(IModelFile file, string name) =>
        file.Tensors.FirstOrDefault(t => t.Name == name)
        ?? throw new InvalidModelFileException(file.Path, $"no tensor {name}: not a text encoder of this layout");

    /// <summary>Token embeddings plus positions, [B, T, W]; textual-inversion vectors are placed between this and <see cref="Encode(Tensor)"/>.</summary>
    public Tensor EmbedTokens(Tensor ids) => _textModel.Embeddings.TokenEmbedding.forward(ids);

    /// <summary>All hidden states for token ids [B, T].</summary>
    public TextEncoderOutput Encode(Tensor ids)
    {
        using var tokens = EmbedTokens(ids);
        return EncodeEmbeddings(tokens);
    }

    /// <summary>All hidden states for token embeddings [B, T, W] (positions are added here).</summary>
    public TextEncoderOutput EncodeEmbeddings(Tensor tokenEmbeddings) => _textModel.Run(tokenEmbeddings);

    /// <summary>The final layer norm (HF <c>final_layer_norm</c>), for CLIP skip.</summary>
    public Tensor FinalLayerNorm(Tensor hidden) => _textModel.FinalLayerNorm.forward(hidden);

    /// <summary>HF <c>last_hidden_state</c>: the final layer norm of the last layer's output.</summary>
    public override Tensor forward(Tensor ids)
    {
        using var output = Encode(ids);
        return FinalLayerNorm(output.FromEnd(1));
    }

    private sealed class ClipTextTransformer : nn.Module
    {
        public readonly ClipTextEmbeddings Embeddings;
        public readonly ModuleList<ClipEncoderLayer> EncoderLayers;
        public readonly LayerNorm FinalLayerNorm;

        public ClipTextTransformer(int vocab, int width, int layers, int heads, int mlp, int positions, TextActivation act, double eps)
            : base("text_model")
        {
            Embeddings = new ClipTextEmbeddings(vocab, width, positions);
            EncoderLayers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, layers).Select(_ => new ClipEncoderLayer(width, heads, mlp, act, eps)).ToArray());
            FinalLayerNorm = nn.LayerNorm(width, eps);
            register_module("embeddings", Embeddings);
            var encoder = new EncoderContainer(EncoderLayers);
            register_module("encoder", encoder);
            register_module("final_layer_norm", FinalLayerNorm);
        }

        public TextEncoderOutput Run(Tensor tokenEmbeddings)
        {
            long t = tokenEmbeddings.shape[1];
            var states = new List<Tensor>(EncoderLayers.Count + 1);
            using var positions = Embeddings.PositionEmbedding.weight!.narrow(0, 0, t);
            var x = tokenEmbeddings + positions;
            states.Add(x);
            using var mask = CausalSelfAttention.CausalMask(t, x.dtype, x.device);
            foreach (var layer in EncoderLayers)
            {
                x = layer.Run(x, mask);
                states.Add(x);
            }
            return new TextEncoderOutput(states);
        }
    }

    private sealed class EncoderContainer : nn.Module
    {
        public EncoderContainer(ModuleList<ClipEncoderLayer> layers) : base("encoder") => register_module("layers", layers);
    }

    private sealed class ClipTextEmbeddings : nn.Module
    {
        public readonly Embedding TokenEmbedding;
        public readonly Embedding PositionEmbedding;

        public ClipTextEmbeddings(int vocab, int width, int positions) : base("embeddings")
        {
            TokenEmbedding = nn.Embedding(vocab, width);
            PositionEmbedding = nn.Embedding(positions, width);
            register_module("token_embedding", TokenEmbedding);
            register_module("position_embedding", PositionEmbedding);
        }
    }

    private sealed class ClipEncoderLayer : nn.Module
    {
        private readonly ClipAttention _selfAttn;
        private readonly LayerNorm _layerNorm1;
        private readonly ClipMlp _mlp;
        private readonly LayerNorm _layerNorm2;

        public ClipEncoderLayer(int width, int heads, int mlp, TextActivation act, double eps) : base("layer")
        {
            _selfAttn = new ClipAttention(width, heads);
            _layerNorm1 = nn.LayerNorm(width, eps);
            _mlp = new ClipMlp(width, mlp, act);
            _layerNorm2 = nn.LayerNorm(width, eps);
            register_module("self_attn", _selfAttn);
            register_module("layer_norm1", _layerNorm1);
            register_module("mlp", _mlp);
            register_module("layer_norm2", _layerNorm2);
        }

        public Tensor Run(Tensor x, Tensor mask)
        {
            using var n1 = _layerNorm1.forward(x);
            using var a = _selfAttn.Run(n1, mask);
            using var h = x + a;
            using var n2 = _layerNorm2.forward(h);
            using var m = _mlp.Run(n2);
            return h + m;
        }
    }

    private sealed class ClipAttention : nn.Module
    {
        private readonly Linear _q, _k, _v, _out;
        private readonly int _heads;

        public ClipAttention(int width, int heads) : base("self_attn")
        {
            _heads = heads;
            _q = nn.Linear(width, width);
            _k = nn.Linear(width, width);
            _v = nn.Linear(width, width);
            _out = nn.Linear(width, width);
            register_module("q_proj", _q);
            register_module("k_proj", _k);
            register_module("v_proj", _v);
            register_module("out_proj", _out);
        }

        public Tensor Run(Tensor x, Tensor mask)
        {
            using var q = _q.forward(x);
            using var k = _k.forward(x);
            using var v = _v.forward(x);
            using var o = CausalSelfAttention.Attend(q, k, v, _heads, mask);
            return _out.forward(o);
        }
    }

    private sealed class ClipMlp : nn.Module
    {
        private readonly Linear _fc1, _fc2;
        private readonly TextActivation _activation;

        public ClipMlp(int width, int hidden, TextActivation activation) : base("mlp")
        {
            _activation = activation;
            _fc1 = nn.Linear(width, hidden);
            _fc2 = nn.Linear(hidden, width);
            register_module("fc1", _fc1);
            register_module("fc2", _fc2);
        }

        public Tensor Run(Tensor x)
        {
            using var h = _fc1.forward(x);
            using var a = _activation.Apply(h);
            return _fc2.forward(a);
        }
    }
}
