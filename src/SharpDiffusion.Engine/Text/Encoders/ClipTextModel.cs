using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Encoders;

/// <summary>
/// The CLIP text transformer in Hugging Face <c>CLIPTextModel</c> names (under <c>text_model.</c>): pre-norm layers,
/// causal mask, quick_gelu (CLIP-L) or gelu. Returns every hidden state. The attention and MLP Linear layers are invoked
/// with call() so that forward hooks run (LoRA training's trainable branch, Training/LoraTrainingHooks).
/// </summary>
public sealed class ClipTextModel : nn.Module<Tensor, Tensor>
{
    /// <summary>A buffer real checkpoints carry (arange(77)); the positions are implied, so it is not loaded.</summary>
    public const string PositionIdsKey = "text_model.embeddings.position_ids";

    // TorchSharp registers submodules and parameters under their field names, so fields carry the checkpoint names.
#pragma warning disable IDE1006
    private readonly ClipTextTransformer text_model;
#pragma warning restore IDE1006

    public ClipTextModel(int vocabSize, int width, int layers, int heads, int mlpWidth, int positions,
        TextActivation activation = TextActivation.QuickGelu, double layerNormEps = 1e-5, LayerFactory? factory = null) : base(nameof(ClipTextModel))
    {
        var f = factory ?? LayerFactory.Cpu();
        Width = width;
        Layers = layers;
        Heads = heads;
        Positions = positions;
        text_model = new ClipTextTransformer(f, vocabSize, width, layers, heads, mlpWidth, positions, activation, layerNormEps);
        RegisterComponents();
    }

    public int Width { get; }
    public int Layers { get; }
    public int Heads { get; }

    /// <summary>Rows of the position embedding (77 for every SD text encoder).</summary>
    public int Positions { get; }

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
            (int)position.Shape[0], options.Activation ?? TextActivation.QuickGelu, options.LayerNormEps, LayerFactory.ForLoading(CPU, options.DType));
        model.eval();
        foreach (var parameter in model.parameters()) parameter.requires_grad = false; // inference only: no autograd graph
        StrictLoader.Load(model, file, prefix, new[] { PositionIdsKey });
        return model;
    }

    internal static TensorInfo Require(IModelFile file, string name) =>
        file.Tensors.FirstOrDefault(t => t.Name == name)
        ?? throw new InvalidModelFileException(file.Path, $"no tensor {name}: not a text encoder of this layout");

    /// <summary>Token embeddings plus positions, [B, T, W]; textual-inversion vectors are placed between this and <see cref="Encode(Tensor)"/>.</summary>
    public Tensor EmbedTokens(Tensor ids) => text_model.embeddings.token_embedding.forward(ids);

    /// <summary>All hidden states for token ids [B, T].</summary>
    public TextEncoderOutput Encode(Tensor ids)
    {
        using var tokens = EmbedTokens(ids);
        return EncodeEmbeddings(tokens);
    }

    /// <summary>All hidden states for token embeddings [B, T, W] (positions are added here).</summary>
    public TextEncoderOutput EncodeEmbeddings(Tensor tokenEmbeddings) => text_model.Run(tokenEmbeddings);

    /// <summary>The final layer norm (HF <c>final_layer_norm</c>), for CLIP skip.</summary>
    public Tensor FinalLayerNorm(Tensor hidden) => text_model.final_layer_norm.forward(hidden);

    /// <summary>HF <c>last_hidden_state</c>: the final layer norm of the last layer's output.</summary>
    public override Tensor forward(Tensor ids)
    {
        using var output = Encode(ids);
        return FinalLayerNorm(output.FromEnd(1));
    }

#pragma warning disable IDE1006 // field names are checkpoint key names
    private sealed class ClipTextTransformer : nn.Module
    {
        public readonly ClipTextEmbeddings embeddings;
        public readonly ClipEncoder encoder;
        public readonly LayerNorm final_layer_norm;

        public ClipTextTransformer(LayerFactory f, int vocab, int width, int layers, int heads, int mlp, int positions, TextActivation act, double eps)
            : base("text_model")
        {
            embeddings = new ClipTextEmbeddings(f, vocab, width, positions);
            encoder = new ClipEncoder(f, width, layers, heads, mlp, act, eps);
            final_layer_norm = f.LayerNorm(width, eps);
            RegisterComponents();
        }

        public TextEncoderOutput Run(Tensor tokenEmbeddings)
        {
            long t = tokenEmbeddings.shape[1];
            var states = new List<Tensor>(encoder.layers.Count + 1);
            using var positions = embeddings.position_embedding.weight!.narrow(0, 0, t);
            var x = tokenEmbeddings + positions;
            states.Add(x);
            using var mask = CausalSelfAttention.CausalMask(t, x.dtype, x.device);
            foreach (var layer in encoder.layers)
            {
                x = layer.Run(x, mask);
                states.Add(x);
            }
            return new TextEncoderOutput(states);
        }
    }

    private sealed class ClipEncoder : nn.Module
    {
        public readonly ModuleList<ClipEncoderLayer> layers;

        public ClipEncoder(LayerFactory f, int width, int count, int heads, int mlp, TextActivation act, double eps) : base("encoder")
        {
            layers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, count).Select(_ => new ClipEncoderLayer(f, width, heads, mlp, act, eps)).ToArray());
            RegisterComponents();
        }
    }

    private sealed class ClipTextEmbeddings : nn.Module
    {
        public readonly TokenEmbedding token_embedding;
        public readonly TokenEmbedding position_embedding;

        public ClipTextEmbeddings(LayerFactory f, int vocab, int width, int positions) : base("embeddings")
        {
            token_embedding = f.Embedding(vocab, width);
            position_embedding = f.Embedding(positions, width);
            RegisterComponents();
        }
    }

    private sealed class ClipEncoderLayer : nn.Module
    {
        private readonly ClipAttention self_attn;
        private readonly LayerNorm layer_norm1;
        private readonly ClipMlp mlp;
        private readonly LayerNorm layer_norm2;

        public ClipEncoderLayer(LayerFactory f, int width, int heads, int mlpWidth, TextActivation act, double eps) : base("layer")
        {
            self_attn = new ClipAttention(f, width, heads);
            layer_norm1 = f.LayerNorm(width, eps);
            mlp = new ClipMlp(f, width, mlpWidth, act);
            layer_norm2 = f.LayerNorm(width, eps);
            RegisterComponents();
        }

        public Tensor Run(Tensor x, Tensor mask)
        {
            using var n1 = layer_norm1.forward(x);
            using var a = self_attn.Run(n1, mask);
            using var h = x + a;
            using var n2 = layer_norm2.forward(h);
            using var m = mlp.Run(n2);
            return h + m;
        }
    }

    private sealed class ClipAttention : nn.Module
    {
        private readonly Linear q_proj, k_proj, v_proj, out_proj;
        private readonly int _heads;

        public ClipAttention(LayerFactory f, int width, int heads) : base("self_attn")
        {
            _heads = heads;
            q_proj = f.Linear(width, width);
            k_proj = f.Linear(width, width);
            v_proj = f.Linear(width, width);
            out_proj = f.Linear(width, width);
            RegisterComponents();
        }

        public Tensor Run(Tensor x, Tensor mask)
        {
            using var q = q_proj.call(x);
            using var k = k_proj.call(x);
            using var v = v_proj.call(x);
            using var o = CausalSelfAttention.Attend(q, k, v, _heads, mask);
            return out_proj.call(o);
        }
    }

    private sealed class ClipMlp : nn.Module
    {
        private readonly Linear fc1, fc2;
        private readonly TextActivation _activation;

        public ClipMlp(LayerFactory f, int width, int hidden, TextActivation activation) : base("mlp")
        {
            _activation = activation;
            fc1 = f.Linear(width, hidden);
            fc2 = f.Linear(hidden, width);
            RegisterComponents();
        }

        public Tensor Run(Tensor x)
        {
            using var h = fc1.call(x);
            using var a = _activation.Apply(h);
            return fc2.call(a);
        }
    }
#pragma warning restore IDE1006
}
