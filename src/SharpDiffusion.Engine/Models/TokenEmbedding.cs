using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// A lookup table (torch <c>nn.Embedding</c> without its options): <c>weight</c> [count, dim], rows picked by id.
/// TorchSharp's Embedding draws a random float32 table on the CPU whatever device it is built for (~1 s for CLIP's
/// 49,408 x 768), which a model about to be loaded does not need.
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    public TokenEmbedding(Parameter weight) : base(nameof(TokenEmbedding)) => register_parameter("weight", weight);

    /// <summary>The table, [count, dim].</summary>
    public Parameter weight => get_parameter("weight")!;

    /// <summary>Fields are never registered by reflection: the one parameter is registered by name.</summary>
    protected override void RegisterComponents() { }

    /// <summary>Rows of the table for <paramref name="ids"/> [...]: [..., dim].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var flat = ids.reshape(-1);
        using var rows = weight.index_select(0, flat);
        return rows.reshape(ids.shape.Append(weight.shape[1]).ToArray());
    }
}
