using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// openaimodel.TimestepEmbedSequential: layers "0", "1", ... each fed what it needs
/// (ResBlocks the embedding, SpatialTransformers the context, the rest only x).
/// </summary>
public sealed class TimestepEmbedSequential : NamedModule
{
    private readonly List<Func<Tensor, Tensor, Tensor, Tensor>> _layers = new();

    public TimestepEmbedSequential() : base(nameof(TimestepEmbedSequential)) { }

    public int Count => _layers.Count;

    public void Add(nn.Module<Tensor, Tensor> layer) => Add(layer, (x, _, _) => layer.forward(x));

    public void Add(ResBlock block) => Add(block, (x, emb, _) => block.Forward(x, emb));

    public void Add(SpatialTransformer transformer) => Add(transformer, (x, _, context) => transformer.Forward(x, context));

    public void Add(UNetDownsample down) => Add(down, (x, _, _) => down.Forward(x));

    public void Add(UNetUpsample up) => Add(up, (x, _, _) => up.Forward(x));

    private void Add(nn.Module module, Func<Tensor, Tensor, Tensor, Tensor> forward)
    {
        Child(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        _layers.Add(forward);
    }

    /// <summary>Runs the layers; intermediate results are disposed, the input is not.</summary>
    public Tensor Forward(Tensor x, Tensor embSilu, Tensor context)
    {
        var h = x;
        foreach (var layer in _layers)
        {
            var next = layer(h, embSilu, context);
            if (!ReferenceEquals(h, x)) h.Dispose();
            h = next;
        }
        return h;
    }
}
